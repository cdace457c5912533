"""Posterior predictive replicates with the exact sampler."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.stats import f as f_dist
from scipy.stats import t as student_t

from htmp_infer.mechanisms.protocol import MechanismModel
from htmp_infer.spectrum import Spectrum

__all__ = [
    "STATISTICS",
    "joint_pvalue",
    "posterior_predictive",
    "ppc_pvalue",
    "ppc_pvalues",
    "statistic_pvalues",
    "statistics",
    "thinned_draws",
]


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


#: Names of the check's statistics (:func:`statistics`), in order.
STATISTICS = ("top", "spread", "lower_edge", "upper_bulk", "lower_bulk")


def statistics(eigenvalues: np.ndarray) -> np.ndarray:
    r"""Scale-free test statistics of spectra (last axis), :data:`STATISTICS`.

    Notes
    -----
    With :math:`\bar\lambda` the mean and :math:`q_p` the :math:`p`-quantile:
    ``top`` :math:`\log(\lambda_{\max}/\bar\lambda)` (spikes, upper tail),
    ``spread`` :math:`\log\bar\lambda - \overline{\log\lambda}`,
    ``lower_edge`` :math:`\log(\lambda_{\min}/\bar\lambda)` (the hard edge:
    rank collapse, square matrices), ``upper_bulk`` :math:`\log(q_{0.9}/q_{0.5})`
    and ``lower_bulk`` :math:`\log(q_{0.5}/q_{0.1})` (the bulk's shape). Values
    below the smallest normal float are floored there (an underflowed replicate).
    """
    lam = np.maximum(np.sort(eigenvalues, axis=-1), np.finfo(np.float64).tiny)
    mean = lam.mean(axis=-1)
    q10, q50, q90 = np.quantile(lam, [0.1, 0.5, 0.9], axis=-1)
    return np.stack(
        [
            np.log(lam[..., -1] / mean),
            np.log(mean) - np.log(lam).mean(axis=-1),
            np.log(lam[..., 0] / mean),
            np.log(q90 / q50),
            np.log(q50 / q10),
        ],
        axis=-1,
    )


def statistic_pvalues(observed: np.ndarray, replicates: np.ndarray) -> np.ndarray:
    r"""Two-sided predictive p-value of each statistic (last axis).

    Parameters
    ----------
    observed : ndarray, shape (K,)
    replicates : ndarray, shape (R, K)

    Notes
    -----
    Each statistic is treated as normal under the posterior predictive: with
    replicate mean :math:`m`, standard deviation :math:`s` and :math:`R`
    replicates, :math:`t = (T - m)/(s\sqrt{1+1/R})` is Student-t with
    :math:`R-1` degrees of freedom for a new draw (the prediction interval of a
    normal sample), and :math:`p = 2\,P(|t_{R-1}| \ge |t|)`. Unlike the
    replicate rank, this resolves p-values below :math:`1/R`. A statistic with
    no spread among the replicates gives 1 when observed equal, else 0.
    """
    r = replicates.shape[0]
    mean = replicates.mean(axis=0)
    sd = replicates.std(axis=0, ddof=1) * np.sqrt(1.0 + 1.0 / r)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(observed - mean) / sd
    p = 2.0 * student_t.sf(t, df=max(r - 1, 1))
    flat = ~(sd > 0)
    return np.where(flat, np.where(observed == mean, 1.0, 0.0), p)


def joint_pvalue(observed: np.ndarray, replicates: np.ndarray) -> float:
    r"""Predictive p-value of all statistics at once (Hotelling).

    Notes
    -----
    With :math:`R` replicates of :math:`p` statistics, mean :math:`m` and
    covariance :math:`S`, a new normal draw has
    :math:`T^2 = (T-m)^\top S^{-1}(T-m)/(1+1/R)` and
    :math:`T^2 (R-p)/(p(R-1)) \sim F(p, R-p)`. It sees a spectrum whose
    statistics are each plausible but not together (a lower edge and a bulk
    width that the model only produces apart). Statistics with no spread among
    the replicates are left out; with :math:`R \le p + 1` the result is 1.
    """
    keep = replicates.std(axis=0) > 0
    x, reps = observed[keep], replicates[:, keep]
    r, p = reps.shape
    if p == 0 or r <= p + 1:
        return 1.0
    diff = x - reps.mean(axis=0)
    cov = np.atleast_2d(np.cov(reps, rowvar=False))
    t2 = float(diff @ np.linalg.pinv(cov) @ diff) / (1.0 + 1.0 / r)
    return float(f_dist.sf(t2 * (r - p) / (p * (r - 1)), p, r - p))


def ppc_pvalues(fit: xr.DataTree) -> xr.DataArray:
    """Per-statistic predictive p-values of a fit (:func:`statistic_pvalues`)."""
    obs = statistics(np.asarray(fit["observed_data"].dataset["eigenvalues"]))
    reps = np.asarray(fit["posterior_predictive"].dataset["eigenvalues"])
    rep = statistics(reps.reshape(-1, reps.shape[-1]))
    return xr.DataArray(
        statistic_pvalues(obs, rep),
        dims=["statistic"],
        coords={"statistic": list(STATISTICS)},
        name="ppc_p",
    )


def ppc_pvalue(fit: xr.DataTree) -> float:
    r"""Posterior-predictive p-value of a fit, from its replicated spectra.

    The five scale-free statistics of :func:`statistics` (top, spread, lower
    edge, upper and lower bulk shape) are compared with their replicates one by
    one (:func:`statistic_pvalues`, Bonferroni over the five) and jointly
    (:func:`joint_pvalue`); the result is twice the smaller of the two
    (Bonferroni again), capped at 1.

    Returns
    -------
    float
        Small values (below 0.05, say) mean the model does not reproduce the
        observed spectrum. The rate at which a correct model is flagged and the
        power against the other models are measured by
        ``benchmarks/ppc_power.py`` (``docs/validation.md``).
    """
    obs = statistics(np.asarray(fit["observed_data"].dataset["eigenvalues"]))
    reps = np.asarray(fit["posterior_predictive"].dataset["eigenvalues"])
    rep = statistics(reps.reshape(-1, reps.shape[-1]))
    each = statistic_pvalues(obs, rep)
    single = min(1.0, each.size * float(each.min()))
    return float(min(1.0, 2.0 * min(single, joint_pvalue(obs, rep))))
