"""How a posterior is drawn: the options shared by fit, compare, scan and the CLI.

:class:`SamplerOptions` holds the six arguments that decide the numbers of every
entry point (method, chains, draws, warmup, seed, replicated spectra), with one
set of defaults and one set of range checks, run once when the object is built:
same options, same numbers. :func:`~htmp_infer.fit` and :func:`~htmp_infer.compare`
take one (``options=``) and also accept its fields as keyword arguments, which
override it, next to ``progress`` (a display choice, not an option of the
result); :class:`~htmp_infer.ScanOptions` extends it with the models a scan
compares; the command line adds the same flags, and ``--no-progress``, to
``fit``, ``compare`` and ``scan`` (:mod:`htmp_infer.cli._args`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Self, TypedDict, Unpack

import numpy as np

from htmp_infer.ensembles.sampling import check_seed
from htmp_infer.errors import ArgumentError

__all__ = [
    "MAX_CHAINS",
    "MAX_ITERATIONS",
    "MAX_PPC_DRAWS",
    "METHODS",
    "Method",
    "SamplerArgs",
    "SamplerOptions",
    "resolve_options",
]

#: Bounds of a run. Every iteration of every chain keeps its position and four
#: NUTS statistics in memory until the end (float64): 10**7 iterations are about
#: half a GiB; each replicated spectrum costs an O(N^2) eigenproblem and N floats.
MAX_CHAINS = 1024
MAX_ITERATIONS = 10_000_000
MAX_PPC_DRAWS = 10_000

Method = Literal["grid", "nuts"]
#: The ways to draw a posterior; the first is the default.
METHODS: tuple[Method, ...] = ("grid", "nuts")


class SamplerArgs(TypedDict, total=False):
    """The fields of :class:`SamplerOptions` as keyword arguments (all optional)."""

    method: Method
    chains: int
    draws: int
    warmup: int
    seed: int
    ppc_draws: int


def _count(value: object, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ArgumentError(f"{what} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ArgumentError(f"{what} must be >= {low}, got {value}")
    return int(value)


@dataclass(frozen=True)
class SamplerOptions:
    """How to draw a posterior: method, run lengths, seed and replicates.

    Parameters
    ----------
    method : {"grid", "nuts"}, default "grid"
        ``"grid"``: independent draws from the evidence quadrature grid
        (:mod:`htmp_infer.inference.grid`; no MCMC, ``warmup`` unused, no
        ``sample_stats``, diagnostics replaced by the quadrature error).
        ``"nuts"``: NUTS chains.
    chains, draws, warmup : int, default 4, 1000, 1000
        Chains and draws per chain (NUTS: iterations after and before
        adaptation). At most :data:`MAX_CHAINS` chains and
        :data:`MAX_ITERATIONS` iterations in all.
    seed : int, default 0
        Seed of every random number (in ``[0, 2**32)``): same seed, same numbers.
    ppc_draws : int, default 40
        Exact replicated spectra in ``posterior_predictive`` (0 to skip; at most
        :data:`MAX_PPC_DRAWS`); each costs one :math:`O(N^2)` eigenproblem.

    Raises
    ------
    ArgumentError
        Naming the first field out of its range or of the wrong type; numpy
        integers are accepted and stored as ``int``.
    """

    method: Method = "grid"
    chains: int = 4
    draws: int = 1000
    warmup: int = 1000
    seed: int = 0
    ppc_draws: int = 40

    def __post_init__(self) -> None:
        chains = _count(self.chains, "chains", 1)
        draws = _count(self.draws, "draws", 1)
        warmup = _count(self.warmup, "warmup", 0)
        ppc_draws = _count(self.ppc_draws, "ppc_draws", 0)
        if chains > MAX_CHAINS:
            raise ArgumentError(f"chains must be <= {MAX_CHAINS}, got {chains}")
        total = chains * (warmup + draws)
        if total > MAX_ITERATIONS:
            raise ArgumentError(
                f"chains x (warmup + draws) = {total} iterations, at most "
                f"{MAX_ITERATIONS} (every one is kept in memory)"
            )
        if ppc_draws > MAX_PPC_DRAWS:
            raise ArgumentError(
                f"ppc_draws must be <= {MAX_PPC_DRAWS}, got {ppc_draws}"
            )
        seed = check_seed(self.seed)
        if not isinstance(self.method, str) or self.method not in METHODS:
            raise ArgumentError(f"method must be 'grid' or 'nuts', got {self.method!r}")
        values = {"chains": chains, "draws": draws, "warmup": warmup}
        values |= {"ppc_draws": ppc_draws, "seed": seed}
        for name, value in values.items():  # plain Python ints (hashable, JSON)
            object.__setattr__(self, name, value)

    def replace(self, **overrides: Unpack[SamplerArgs]) -> Self:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **overrides)


def resolve_options(
    options: SamplerOptions | None, overrides: SamplerArgs
) -> SamplerOptions:
    """``options`` (default :class:`SamplerOptions`) with ``overrides`` applied.

    Raises
    ------
    ArgumentError
        When ``options`` is not a :class:`SamplerOptions`, or a field is out of
        range.
    TypeError
        For a keyword that is not a field (as for any function).
    """
    if options is None:
        return SamplerOptions(**overrides)
    if not isinstance(options, SamplerOptions):
        raise ArgumentError(
            f"options must be a SamplerOptions, got {type(options).__name__}"
        )
    return options.replace(**overrides) if overrides else options
