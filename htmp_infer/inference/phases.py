r"""The 5+1 phases of training (Martin & Mahoney) from measured spectral features.

Principle (``docs/model.md`` §6, written before the rules were tested)
-----------------------------------------------------------------------
A phase names a shape of the spectrum, so it is read from features of the
fitted density that every model has at every :math:`\gamma \le 1`
(:mod:`htmp_infer.inference.features`): the lower-edge exponent :math:`a`, the
upper-tail exponent :math:`\alpha`, the bulk's distance from Marchenko–Pastur
(:math:`\kappa`) and the spike separation. Each posterior draw is assigned one
phase (first match):

================  ==============================================================
phase             rule
================  ==============================================================
rank-collapse     :math:`a < 1/4` (half the real-Gaussian square edge
                  :math:`a = 1/2`: the density at zero diverges faster than
                  :math:`\lambda^{-3/4}`)
heavy-tailed      :math:`\alpha < 4` (Martin & Mahoney's very and moderately
                  heavy-tailed classes, on a fitted exponent)
bulk-decay        :math:`\kappa < 20` (bulk variance :math:`\gamma(1+2/\kappa)`
                  more than 10% above MP's)
random-like       :math:`\kappa \ge 20` and :math:`k = 0`
bleeding-out      :math:`\kappa \ge 20`, :math:`k \ge 1`, top eigenvalue
                  < 1.25 × the bulk maximum
bulk+spikes       :math:`\kappa \ge 20`, :math:`k \ge 1`, top eigenvalue
                  ≥ 1.25 × the bulk maximum
================  ==============================================================

The probabilities are averaged over models by their weights
(:func:`averaged_phases`); a layer's phase is the most probable one when its
probability is at least :data:`DECIDED` and ``undetermined`` otherwise, or when
the model its readings come from fails its check (:func:`decide`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from htmp_infer.inference.features import features

__all__ = [
    "DECIDED",
    "PHASES",
    "UNDETERMINED",
    "averaged_phases",
    "classify",
    "decide",
    "phase_posterior",
]

PHASES = (
    "random-like",
    "bleeding-out",
    "bulk+spikes",
    "bulk-decay",
    "heavy-tailed",
    "rank-collapse",
)
#: The label of a layer whose phase the data do not settle.
UNDETERMINED = "undetermined"
#: Below this lower-edge exponent the edge is collapsed (half the Gaussian 1/2).
EDGE_COLLAPSE = 0.25
#: Below this upper-tail exponent the spectrum is heavy-tailed.
ALPHA_HEAVY = 4.0
#: At or above this κ the bulk's variance is within 10% of Marchenko–Pastur's.
KAPPA_MP = 20.0
#: Spikes at least this far above the bulk maximum are separated.
SPIKE_SEPARATION = 1.25
#: The probability the most probable phase needs to be the layer's phase.
DECIDED = 0.75


def classify(
    kappa: NDArray[np.float64],
    edge_exponent: NDArray[np.float64],
    alpha_tail: NDArray[np.float64],
    n_spikes: NDArray[np.float64] | None = None,
    spike_ratio: NDArray[np.float64] | None = None,
) -> NDArray[np.int64]:
    """Phase index (into :data:`PHASES`) of each draw.

    Parameters
    ----------
    kappa, edge_exponent, alpha_tail : ndarray
        Per-draw features (:mod:`htmp_infer.inference.features`).
    n_spikes : ndarray, optional
        Spike count per draw (0 when absent).
    spike_ratio : ndarray, optional
        Largest eigenvalue over the bulk maximum per draw (1 when no spike).
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    k = np.zeros(kappa.shape) if n_spikes is None else np.asarray(n_spikes)
    ratio = np.ones(kappa.shape) if spike_ratio is None else np.asarray(spike_ratio)
    mp_like = kappa >= KAPPA_MP
    out = np.select(
        [
            np.asarray(edge_exponent) < EDGE_COLLAPSE,
            np.asarray(alpha_tail) < ALPHA_HEAVY,
            ~mp_like,
            k == 0,
            ratio < SPIKE_SEPARATION,
        ],
        [5, 4, 3, 0, 1],
        default=2,
    )
    return np.asarray(out, dtype=np.int64)


def phase_posterior(fit: xr.DataTree) -> xr.DataArray:
    """Posterior probability of each phase under one model's fit.

    Parameters
    ----------
    fit : xarray.DataTree
        The result of :func:`htmp_infer.fit` for any model.

    Returns
    -------
    xarray.DataArray
        Probabilities over the ``phase`` dimension (sums to one).
    """
    f = features(fit)
    idx = classify(
        f["kappa"], f["edge_exponent"], f["alpha_tail"], f["n_spikes"], f["spike_ratio"]
    )
    prob = np.bincount(idx, minlength=len(PHASES)) / idx.size
    return xr.DataArray(
        prob, dims=["phase"], coords={"phase": list(PHASES)}, name="probability"
    )


def averaged_phases(
    fits: Mapping[str, xr.DataTree], weights: Mapping[str, float]
) -> xr.DataArray:
    r"""Phase probabilities averaged over models by their weights.

    :math:`P(\text{phase}) = \sum_m w_m P(\text{phase}\mid m) / \sum_m w_m`
    over the models in ``fits`` (those with a non-negligible weight).
    """
    total = sum(weights[m] for m in fits)
    if not fits or total <= 0:
        raise ValueError("no fitted model with a positive weight")
    prob = sum(weights[m] * phase_posterior(fits[m]) for m in fits) / total
    return xr.DataArray(prob).rename("probability")


def decide(phases: xr.DataArray, fits: bool) -> str:
    """A layer's phase: the most probable one if it has :data:`DECIDED`, else
    :data:`UNDETERMINED` (also when the reading model fails its check)."""
    if not fits or float(phases.max()) < DECIDED:
        return UNDETERMINED
    return str(phases.idxmax().item())
