"""Posterior predictive replicates with the exact sampler."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import xarray as xr

from htmp_infer.spectrum import Spectrum

__all__ = ["posterior_predictive", "thinned_draws"]


def thinned_draws(n_chains: int, n_draws: int, total: int) -> np.ndarray:
    """Evenly spaced draw indices giving about ``total`` replicates over all chains."""
    per_chain = max(1, min(n_draws, -(-total // n_chains)))
    return np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))


def posterior_predictive(
    module: ModuleType,
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
            params = {v: float(posterior[v].values[c, d]) for v in names}
            out[c, k] = module.simulate(rng, params, spectrum)
    return xr.Dataset(
        {"eigenvalues": (("chain", "draw", "eig"), out)},
        coords={
            "chain": posterior["chain"].values,
            "draw": posterior["draw"].values[idx],
            "eig": np.arange(spectrum.n),
        },
    )
