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
    "likelihood_pvalue",
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


def likelihood_pvalue(fit: xr.DataTree) -> float:
    r"""Predictive p-value of the log-likelihood itself (an omnibus check).

    For each replicate :math:`y_r`, drawn at the posterior draw
    :math:`\theta_r`, :math:`D_r = \log p(y_r\mid\theta_r) -
    \log p(y\mid\theta_r)`: how much more probable the model finds its own
    replicate than the observed spectrum, at the same parameters (the spike
    count summed out, the fit's spike cap). A spectrum outside the model's
    typical set has :math:`D_r \gg 0` whatever the direction of the misfit.
    Treating :math:`D` as normal, :math:`p = P(t_{R-1} \ge \bar D /
    (s_D\sqrt{1+1/R}))`, one-sided. For a model without continuous coordinates
    (``mp``) the log-likelihood is its exact marginal (rate integrated, spikes
    summed). A fit with fewer than 10 replicates that float64 can represent
    gives NaN.
    """
    from htmp_infer.errors import SpectrumError
    from htmp_infer.inference._programs import (
        ExactSum,
        _potential_fns,
        latent_names,
        site_values,
    )
    from htmp_infer.spectrum import Spectrum

    model = str(fit.attrs.get("model", ""))
    if not model or "posterior_predictive" not in fit.children:
        return float("nan")
    const = fit["constant_data"].dataset
    n_cols, cap = float(const["n_cols"]), int(fit.attrs.get("spike_cap", 0))
    observed = np.asarray(fit["observed_data"].dataset["eigenvalues"].values)
    spectrum = Spectrum.from_eigenvalues(observed, n_cols=n_cols).with_max_spikes(cap)
    names = latent_names(model, spectrum)
    pp = fit["posterior_predictive"].dataset
    sel = {"chain": pp["chain"].values, "draw": pp["draw"].values}
    post = fit["posterior"].dataset.sel(sel)
    size = pp.sizes["chain"] * pp.sizes["draw"]
    points = (
        np.stack([post[n].values.reshape(-1) for n in names], axis=-1)
        if names
        else np.zeros((size, 0))
    )
    observed_ll = fit["log_likelihood"].dataset["eigenvalues"].sel(sel).values.ravel()
    reps = pp["eigenvalues"].values.reshape(-1, observed.size)
    diffs = []
    for y, x, ll in zip(reps, points, observed_ll, strict=True):
        try:
            rep = Spectrum.from_eigenvalues(np.sort(y), n_cols=n_cols)
        except (SpectrumError, ValueError):  # underflowed or tied replicate
            continue
        if rep.n != observed.size:
            continue
        rep = rep.with_max_spikes(cap)
        if names:
            _, rep_ll = site_values(rep, model, x[None], batch=1)
            value = float(rep_ll["eigenvalues"][0])
        else:  # no parameters left: the exact marginal likelihood
            exact = _potential_fns(model, rep)
            assert isinstance(exact, ExactSum)
            value = exact.log_evidence
        diffs.append(value - float(ll))
    d = np.asarray(diffs)
    if d.size < 10 or not np.all(np.isfinite(d)):
        return float("nan")
    r = d.size
    sd = d.std(ddof=1) * np.sqrt(1.0 + 1.0 / r)
    if not sd > 0:
        return 1.0 if d.mean() <= 0 else 0.0
    return float(student_t.sf(d.mean() / sd, df=r - 1))


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
    r"""Posterior-predictive p-value of a fit: does the model reproduce it?

    Three checks, each with power where the others lack it, combined by
    Bonferroni (the smallest p-value times their number, capped at 1):

    - the log-likelihood discrepancy (:func:`likelihood_pvalue`): a spectrum
      outside the model's typical set, whatever the direction (it sees a
      neighbouring model's lower edge);
    - the five feature statistics one by one (:func:`statistic_pvalues`,
      Bonferroni over the five): a spectrum in the typical set's level but with
      the wrong shape (the wrong family);
    - the five jointly (:func:`joint_pvalue`): features that are each plausible
      but not together.

    Without a likelihood check (too few representable replicates) the other
    two decide. :func:`ppc_pvalues` gives the features' own p-values (which
    feature fails).

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
    parts = [min(1.0, each.size * float(each.min())), joint_pvalue(obs, rep)]
    lik = likelihood_pvalue(fit)
    if np.isfinite(lik):
        parts.append(lik)
    return float(min(1.0, len(parts) * min(parts)))
