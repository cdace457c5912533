"""Which layers of a bundle a scan fits: the ``--include/--exclude/--kinds``
filters, and the error type of every bad scan argument."""

from __future__ import annotations

import re
from collections.abc import Sequence

from htmp_infer.errors import ArgumentError
from htmp_infer.networks.bundle import SpectraBundle

__all__ = ["ScanArgumentError", "filter_bundle", "pattern"]


class ScanArgumentError(ArgumentError):
    """A scan argument (options, jobs, layer selection) that cannot be used."""


def filter_bundle(
    bundle: SpectraBundle,
    include: str | None,
    exclude: str | None,
    kinds: Sequence[str] | None,
    *,
    label: str | None = None,
) -> SpectraBundle:
    """The layers of a bundle that pass the name and kind filters.

    Raises
    ------
    HTMPError
        A bad regex or kind, or no layer selected (naming ``label``, by default
        the bundle's source).
    """
    from htmp_infer.networks.layers import Skipped, expand_kinds

    wanted = expand_kinds(kinds) if kinds else None
    want, drop = pattern(include, "--include"), pattern(exclude, "--exclude")
    keep, skipped = [], list(bundle.skipped)
    for layer in bundle.layers:
        shape = layer.shape
        if want and not want.search(layer.name):
            skipped.append(
                Skipped(layer.name, shape, f"does not match --include {include!r}")
            )
        elif drop and drop.search(layer.name):
            skipped.append(Skipped(layer.name, shape, f"matches --exclude {exclude!r}"))
        elif wanted is not None and layer.kind not in wanted:
            skipped.append(
                Skipped(layer.name, shape, f"kind {layer.kind} not selected")
            )
        else:
            keep.append(layer)
    if not keep:
        raise ScanArgumentError(
            f"{label or bundle.source}: none of its {len(bundle.layers)} layers "
            "matches the selection (--include, --exclude, --kinds)"
        )
    return SpectraBundle(keep, skipped, bundle.source, bundle.meta)


def pattern(text: str | None, flag: str) -> re.Pattern[str] | None:
    """Compile a layer-name regex; a bad one is a one-line error naming ``flag``.

    Raises
    ------
    ScanArgumentError
    """
    if not text:
        return None
    try:
        return re.compile(text)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ScanArgumentError(
            f"{flag} {text!r}: not a regular expression ({exc})"
        ) from None
