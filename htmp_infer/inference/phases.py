r"""The 5+1 phases of training (Martin & Mahoney) as a posterior over κ and spikes.

Boundaries (γ-aware; ``docs/model.md`` §Phases)
-----------------------------------------------
With :math:`\delta = \kappa(1-\gamma)/(2\gamma)` — the hard-edge exponent of the
HTMP limit law (density :math:`\sim x^{\delta-1}` at 0) and the Hill index of its
inverse, whose HT-SR density exponent is :math:`\alpha = 1+\delta` — each posterior
draw :math:`(\kappa, k)` is assigned to one phase:

================  ==============================================================
phase             rule (first match)
================  ==============================================================
random-like       :math:`\kappa \ge 20` (variance within 10% of MP:
                  :math:`\mathrm{Var} = \gamma(1+2/\kappa)`) and :math:`k = 0`
bleeding-out      :math:`\kappa \ge 20`, :math:`k \ge 1`, top spike < 1.25 × the
                  bulk maximum (outliers hugging the edge)
bulk+spikes       :math:`\kappa \ge 20`, :math:`k \ge 1`, top spike ≥ 1.25 × the
                  bulk maximum
bulk-decay        :math:`\kappa < 20`, :math:`\delta \ge 3` (α ≥ 4: beyond
                  WeightWatcher's "moderately heavy-tailed" 2 ≤ α ≤ 4)
heavy-tailed      :math:`0.5 \le \delta < 3` (1.5 ≤ α < 4, WeightWatcher's
                  heavy-tailed range widened to its "very heavy" end)
rank-collapse     :math:`\delta < 0.5` (α < 1.5): mass piles at zero
================  ==============================================================

The paper's Figure 2 (γ = 0.3255) has κ = 5.5 (δ = 5.70: bulk-decay),
κ = 1.9 (δ = 1.97: heavy-tailed) and κ = 10⁻³ (δ = 0.001: rank-collapse); κ = ∞
is the top row. The phase probabilities are the fractions of posterior draws.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from htmp_infer.limit import kappa_to_delta

__all__ = ["PHASES", "classify", "phase_posterior"]

PHASES = (
    "random-like",
    "bleeding-out",
    "bulk+spikes",
    "bulk-decay",
    "heavy-tailed",
    "rank-collapse",
)
KAPPA_MP = 20.0
DELTA_DECAY = 3.0
DELTA_COLLAPSE = 0.5
SPIKE_SEPARATION = 1.25


def classify(
    kappa: NDArray[np.float64],
    gamma: float,
    n_spikes: NDArray[np.int64] | None = None,
    spike_ratio: NDArray[np.float64] | None = None,
) -> NDArray[np.int64]:
    """Phase index (into :data:`PHASES`) of each draw.

    Parameters
    ----------
    kappa : ndarray
        Posterior draws of κ.
    gamma : float
        Aspect ratio :math:`N/M`.
    n_spikes : ndarray of int, optional
        Spike count per draw (0 when absent).
    spike_ratio : ndarray, optional
        Largest eigenvalue over the bulk maximum per draw (1 when no spike).
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    k = np.zeros(kappa.shape, np.int64) if n_spikes is None else np.asarray(n_spikes)
    ratio = np.ones(kappa.shape) if spike_ratio is None else np.asarray(spike_ratio)
    delta = kappa_to_delta(kappa, gamma)
    mp_like = kappa >= KAPPA_MP
    out = np.select(
        [
            mp_like & (k == 0),
            mp_like & (ratio < SPIKE_SEPARATION),
            mp_like,
            delta >= DELTA_DECAY,
            delta >= DELTA_COLLAPSE,
        ],
        [0, 1, 2, 3, 4],
        default=5,
    )
    return np.asarray(out, dtype=np.int64)


def phase_posterior(fit: xr.DataTree) -> xr.DataArray:
    """Posterior probability of each phase from a fit's draws.

    Parameters
    ----------
    fit : xarray.DataTree
        The result of :func:`htmp_infer.fit` (``posterior`` with ``kappa`` and,
        for the spiked models, ``n_spikes``; ``observed_data`` and
        ``constant_data``).

    Returns
    -------
    xarray.DataArray
        Probabilities over the ``phase`` dimension (sums to one).
    """
    post = fit["posterior"].dataset
    gamma = float(fit["constant_data"].dataset["gamma"])
    kappa = post["kappa"].values.ravel()
    lam = np.sort(fit["observed_data"].dataset["eigenvalues"].values)
    if "n_spikes" in post:
        k = post["n_spikes"].values.ravel().astype(np.int64)
        ratio = lam[-1] / lam[lam.size - 1 - k]
    else:
        k, ratio = None, None
    idx = classify(kappa, gamma, k, ratio)
    prob = np.bincount(idx, minlength=len(PHASES)) / idx.size
    return xr.DataArray(
        prob, dims=["phase"], coords={"phase": list(PHASES)}, name="probability"
    )
