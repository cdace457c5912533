r"""What a comparison reads off a spectrum, and from which model.

Every reading (κ, the lower-edge and upper-tail exponents, the spikes, the
phase) comes from a model the data support, never from a model by convention:

1. every model with a non-negligible weight (:data:`NEGLIGIBLE`) is fitted and
   gets its own posterior-predictive check
   (:func:`htmp_infer.inference.predictive.ppc_pvalue`);
2. the readings come from the most probable of them whose check passes
   (p ≥ :data:`POOR_FIT_P`); when none passes the layer says ``no model fits``,
   the readings are those of the most probable model, and the phase is
   ``undetermined``;
3. the phase probabilities are averaged over the models that pass, by weight
   (:func:`htmp_infer.inference.phases.averaged_phases`);
4. the upper-tail exponent :math:`\alpha` is the reading model's ``alpha_top``
   (:mod:`htmp_infer.inference.features`): the spikes' Pareto index + 1 in the
   draws with spikes, the bulk's tail exponent in the others (``power_law``:
   :math:`b'+1`, ``inverse_htmp``: :math:`1+\delta`; :math:`\infty` for the
   models with an exponential upper edge); ``alpha_source`` says which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from htmp_infer.inference.features import features
from htmp_infer.inference.phases import averaged_phases, decide

__all__ = [
    "NEGLIGIBLE",
    "POOR_FIT_P",
    "Reading",
    "candidates",
    "read",
]

#: Models with a smaller weight are neither fitted nor checked.
NEGLIGIBLE = 0.01
#: A model fails its posterior-predictive check below this p-value.
POOR_FIT_P = 0.05

#: ``Reading.verdict`` values.
FITS, BEST_FAILS, NONE_FITS, UNCHECKED = (
    "fits",
    "most probable model fails its check",
    "no model fits",
    "not checked",
)


class Reading(NamedTuple):
    """The readings of one spectrum.

    Attributes
    ----------
    model : str
        The model κ, the edge exponent, the spikes and the check come from.
    verdict : str
        ``fits``; ``most probable model fails its check`` (the readings come
        from the next that passes); ``no model fits``; or ``not checked``
        (no replicates were drawn).
    ppc_p : float
        The reading model's posterior-predictive p-value.
    phases : xarray.DataArray
        Phase probabilities averaged over the models that pass their check.
    phase : str
        The layer's phase, or ``undetermined``.
    alpha_source : str
        What ``alpha_tail`` measures: ``spikes`` (most draws have spikes: their
        Pareto index + 1), ``bulk`` (the bulk's power-law tail) or ``none``
        (no spikes and an exponential upper edge: α is infinite).
    draws : dict of str to ndarray
        Per-draw ``kappa``, ``edge_exponent``, ``n_spikes`` and
        ``alpha_tail`` (the top exponent ``alpha_top``) of ``model``.
    """

    model: str
    verdict: str
    ppc_p: float
    phases: xr.DataArray
    phase: str
    alpha_source: str
    draws: dict[str, NDArray[np.float64]]


def candidates(table: pd.DataFrame) -> list[str]:
    """The models worth fitting: weight at least :data:`NEGLIGIBLE`, by weight."""
    w = table["weight"]
    return [str(m) for m in table.index if w[m] >= NEGLIGIBLE]


def read(table: pd.DataFrame, fits: Mapping[str, xr.DataTree]) -> Reading:
    """The readings from the fitted candidates (``table`` sorted by weight,
    with a ``ppc_p`` column; ``fits`` holds every candidate and, where needed,
    the tail model)."""
    cands = candidates(table)
    p = table["ppc_p"]
    checked = not any(math.isnan(p[m]) for m in cands)
    passing = [m for m in cands if not checked or p[m] >= POOR_FIT_P]
    model = passing[0] if passing else cands[0]
    if not checked:
        verdict = UNCHECKED
    elif not passing:
        verdict = NONE_FITS
    else:
        verdict = FITS if model == cands[0] else BEST_FAILS
    pool = passing or cands
    weights = {m: float(table.loc[m, "weight"]) for m in pool}
    phases = averaged_phases({m: fits[m] for m in pool}, weights)
    phase = decide(phases, fits=verdict != NONE_FITS)
    own = features(fits[model])
    draws = {
        "kappa": own["kappa"],
        "edge_exponent": own["edge_exponent"],
        "n_spikes": own["n_spikes"],
        "alpha_tail": own["alpha_top"],
    }
    if np.mean(own["n_spikes"] >= 1) >= 0.5:
        source = "spikes"
    else:
        source = "bulk" if np.isfinite(own["alpha_tail"]).any() else "none"
    return Reading(model, verdict, float(p[model]), phases, phase, source, draws)
