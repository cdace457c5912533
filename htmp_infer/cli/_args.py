"""Argument types of the command line, and the sampler flags shared by subcommands.

:func:`add_sampler_arguments` adds the seven flags of
:class:`~htmp_infer.inference.options.SamplerOptions` (``--method``, ``--chains``,
``--draws``, ``--warmup``, ``--seed``, ``--ppc-draws``, ``--no-progress``) to
``fit``, ``compare`` and ``scan``, with the defaults of the options class the
subcommand builds; :func:`sampler_options` builds that object from the parsed
flags (``--no-progress`` stays a flag of its own: ``args.no_progress``), and names
the flag when a value is out of range.
"""

from __future__ import annotations

import argparse
from typing import Any, TypeVar

from htmp_infer.errors import ArgumentError

__all__ = [
    "SAMPLER_FIELDS",
    "add_sampler_arguments",
    "integer",
    "nonnegative_int",
    "positive_int",
    "sampler_options",
    "seed",
]


def integer(text: str) -> int:
    """An integer flag value (argparse type)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (argparse type)."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (argparse type)."""
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def seed(text: str) -> int:
    """A seed in ``[0, 2**32)`` (argparse type)."""
    value = integer(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"must be an integer in [0, 2**32), got {text}"
        )
    return value


_Options = TypeVar("_Options")

#: The flags of :class:`~htmp_infer.inference.options.SamplerOptions` fields.
SAMPLER_FIELDS = ("method", "chains", "draws", "warmup", "seed", "ppc_draws")


def add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sampler flags and ``--no-progress`` to a subcommand.

    A flag left out is left out of the namespace too, so the options class the
    subcommand builds (:func:`sampler_options`) supplies its default: the
    defaults live in one place, and building the parser imports nothing heavy.
    Values are checked by that class (``--method``, the upper bounds), except
    the integer syntax, which the parser checks.
    """
    absent = argparse.SUPPRESS
    parser.add_argument(
        "--method",
        default=absent,
        help="grid: independent draws from the evidence quadrature grid (the "
        "default); nuts: NUTS chains",
    )
    parser.add_argument("--chains", type=positive_int, default=absent)
    parser.add_argument(
        "--draws", type=positive_int, default=absent, help="draws per chain"
    )
    parser.add_argument(
        "--warmup", type=nonnegative_int, default=absent, help="NUTS adaptation"
    )
    parser.add_argument("--seed", type=seed, default=absent)
    parser.add_argument(
        "--ppc-draws",
        type=nonnegative_int,
        default=absent,
        help="posterior-predictive replicates (0: no check)",
    )
    parser.add_argument("--no-progress", action="store_true")


def sampler_options(  # noqa: UP047  (no PEP 695: tools here read it as 3.11)
    args: argparse.Namespace, cls: type[_Options], **fields: Any
) -> _Options:
    """The options object ``cls`` from the sampler flags given (and ``fields``).

    ``fields`` adds fields (``models`` for a scan); a flag not given takes the
    default of ``cls``.

    Raises
    ------
    ArgumentError
        A value out of the range of ``cls``, with the field named as its flag
        (``--ppc-draws must be <= 10000, got ...``).
    """
    given = {k: getattr(args, k) for k in SAMPLER_FIELDS if hasattr(args, k)}
    try:
        return cls(**given, **fields)
    except ArgumentError as exc:
        name, _, rest = str(exc).partition(" ")
        if name not in (*SAMPLER_FIELDS, *fields):
            raise
        raise type(exc)(f"--{name.replace('_', '-')} {rest}") from None
