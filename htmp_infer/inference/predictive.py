"""Posterior predictive replicates with the exact sampler."""

from __future__ import annotations

import numpy as np
import xarray as xr

from htmp_infer.mechanisms.protocol import MechanismModel
from htmp_infer.spectrum import Spectrum

__all__ = ["posterior_predictive", "ppc_pvalue", "thinned_draws"]


def thinned_draws(n_chains: int, n_draws: int, total: int) -> np.ndarray:
    """Evenly spaced draw indices giving about ``total`` replicates over all chains."""
    per_chain = max(1, min(n_draws, -(-total // n_chains)))
    return np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))


def posterior_predictive(
    module: MechanismModel,
    posterior: xr.Dataset,
    spectrum: Spectrum,
    *,
    total: int,
    rng: np.random.Generator,
) -> xr.Dataset:
    """Replicated spectra for a thinned set of posterior draws.

    Parameters
    ----------
    module : module
        The model module; its ``simulate(rng, params, spectrum)`` draws one
        spectrum exactly.
    posterior : xarray.Dataset
        Posterior draws with dims ``(chain, draw)``.
    spectrum : Spectrum
        The observed spectrum (shape and size).
    total : int
        About how many replicates in all (spread evenly over chains and draws).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    xarray.Dataset
        ``eigenvalues`` with dims ``(chain, draw, eig)``, the draw coordinate being
        the subset of posterior draws used.
    """
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    idx = thinned_draws(n_chains, n_draws, total)
    out = np.empty((n_chains, idx.size, spectrum.n))
    names = [v for v in posterior.data_vars if posterior[v].dims == ("chain", "draw")]
    for c in range(n_chains):
        for k, d in enumerate(idx):
            params = {str(v): float(posterior[v].values[c, d]) for v in names}
            out[c, k] = module.simulate(rng, params, spectrum)
    return xr.Dataset(
        {"eigenvalues": (("chain", "draw", "eig"), out)},
        coords={
            "chain": posterior["chain"].values,
            "draw": posterior["draw"].values[idx],
            "eig": np.arange(spectrum.n),
        },
    )


def _statistics(eigenvalues: np.ndarray) -> np.ndarray:
    """Scale-free test statistics of spectra (last axis): tail and spread."""
    lam = np.maximum(eigenvalues, np.finfo(np.float64).tiny)
    mean = lam.mean(axis=-1)
    return np.stack(
        [
            np.log(lam.max(axis=-1) / mean),  # top eigenvalue (spikes, upper tail)
            np.log(mean) - np.log(lam).mean(axis=-1),  # log-spread (lower tail)
        ],
        axis=-1,
    )


def ppc_pvalue(fit: xr.DataTree) -> float:
    r"""Posterior-predictive p-value of a fit, from its replicated spectra.

    Two scale-free statistics are compared with their replicates in
    ``posterior_predictive``: :math:`T_1 = \log(\lambda_{\max}/\bar\lambda)` (the
    top of the spectrum: spikes, upper tail) and
    :math:`T_2 = \log\bar\lambda - \overline{\log\lambda}` (the spread: lower tail,
    rank collapse). Each gives a two-sided p-value
    :math:`2\min(P(T^{\rm rep}\ge T), P(T^{\rm rep}\le T))` (ties counted half);
    the result is the smaller one times 2 (Bonferroni), capped at 1.

    Returns
    -------
    float
        Small values (below 0.05, say) mean the model does not reproduce the
        observed spectrum. With :math:`R` replicates the resolution is
        :math:`\sim 2/R`.
    """
    obs = _statistics(np.asarray(fit["observed_data"].dataset["eigenvalues"]))
    reps = np.asarray(fit["posterior_predictive"].dataset["eigenvalues"])
    rep = _statistics(reps.reshape(-1, reps.shape[-1]))
    above = (rep > obs).mean(axis=0) + 0.5 * (rep == obs).mean(axis=0)
    two_sided = 2.0 * np.minimum(above, 1.0 - above)
    return float(min(1.0, 2.0 * two_sided.min()))
