r"""Simulation-based calibration and mechanism recovery of the registered models.

SBC (Talts et al. 2018) in its continuous form: for each replicate draw the
parameters from the prior, simulate a spectrum exactly (``module.simulate``) and
compute the probability integral transform :math:`u = F_{\rm post}(\theta_{\rm
true})` of every continuous coordinate from the quadrature posterior
(:func:`htmp_infer.evidence.posterior_grid`). A model whose likelihood,
normaliser and simulator agree gives :math:`u \sim U(0,1)`; the rank histogram
of classic SBC is the histogram of :math:`u` in equal bins, tested by χ².

The scale has an improper prior (:math:`d\log`); its truth is fixed at 1. For a
scale family the posterior under that (right-Haar) prior gives exact frequentist
intervals (Lindley 1958), so its :math:`u` is uniform for any fixed truth.

Replicates whose simulated spectrum is not representable in float64 (values
underflowing to 0 at tiny κ, or ties) are redrawn. That event depends on the
data only, so conditioning on it leaves the posterior, and hence :math:`u`,
unchanged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from htmp_infer.errors import EvidenceWarning, HTMPError, SpectrumError
from htmp_infer.evidence import log_evidence, posterior_grid
from htmp_infer.registry import load_model
from htmp_infer.spectrum import Spectrum

__all__ = ["SBCResult", "confusion_matrix", "sbc", "simulate_from_prior"]


class SBCResult(NamedTuple):
    """PIT values of one model's SBC run.

    Attributes
    ----------
    model : str
    pit : dict of str to ndarray
        :math:`u` per coordinate and replicate.
    pvalue : dict of str to float
        χ² uniformity p-value of the 10-bin histogram of ``pit``.
    counts : dict of str to ndarray
        The 10-bin histogram.
    redrawn : int
        Prior draws whose spectra were not representable in float64.
    failed : int
        Replicates whose posterior could not be computed (an ``HTMPError``, e.g.
        an unstable likelihood far in the tails) or was not resolved (an
        ``EvidenceWarning``); excluded from ``pit`` and reported, since
        excluding them could bias the histogram.
    """

    model: str
    pit: dict[str, np.ndarray]
    pvalue: dict[str, float]
    counts: dict[str, np.ndarray]
    redrawn: int
    failed: int


def simulate_from_prior(
    model: str, rng: np.random.Generator, n: int, gamma: float
) -> tuple[dict[str, float], Spectrum, int]:
    """Draw parameters from the prior and one exact spectrum; count redraws."""
    module = load_model(model)
    shape = Spectrum.from_eigenvalues(np.arange(1.0, n + 1.0), gamma=gamma)
    for redrawn in range(1000):
        params = module.sample_prior(rng, n)
        lam = module.simulate(rng, params, shape)
        if not np.all(lam > 0) or lam.min() / lam.max() < 1e-250:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                spec = Spectrum.from_eigenvalues(lam, gamma=gamma, name=model)
        except (SpectrumError, UserWarning):
            continue
        return params, spec, redrawn
    raise HTMPError(f"{model}: 1000 prior draws gave no representable spectrum")


def sbc(
    model: str,
    *,
    n: int,
    gamma: float,
    replicates: int,
    seed: int = 0,
    bins: int = 10,
    progress: bool = False,
) -> SBCResult:
    """Run SBC of ``model`` on the quadrature posterior.

    Parameters
    ----------
    model : str
        A registered model with at least one continuous coordinate.
    n, gamma : int, float
        Spectrum size and aspect ratio of the simulated spectra.
    replicates : int
        Number of prior draws.
    seed : int
        Seed of the prior draws and simulations.
    bins : int
        Histogram bins of the χ² test.
    progress : bool
        Show a progress bar.
    """
    rng = np.random.default_rng(seed)
    pit: dict[str, list[float]] = {}
    redrawn = failed = 0
    for _ in tqdm(range(replicates), desc=f"SBC {model}", disable=not progress):
        params, spec, r = simulate_from_prior(model, rng, n, gamma)
        redrawn += r
        try:
            with warnings.catch_warnings():
                # an unresolved posterior (quadrature error > 0.1 nats) counts
                # as a failed replicate, like one that cannot be computed
                warnings.simplefilter("error", EvidenceWarning)
                grid = posterior_grid(spec, model)
        except (HTMPError, EvidenceWarning):
            failed += 1  # reported, never dropped silently
            continue
        for name in grid.names:
            if name == "log_relative_scale":
                truth = module_relative_scale(model, params, spec)
            else:
                truth = params[name]
            pit.setdefault(name, []).append(grid.cdf(name, truth))
    out = {k: np.asarray(v) for k, v in pit.items()}
    counts = {
        k: np.histogram(v, bins=bins, range=(0.0, 1.0))[0] for k, v in out.items()
    }
    pvalue = {k: float(stats.chisquare(c).pvalue) for k, c in counts.items()}
    return SBCResult(model, out, pvalue, counts, redrawn, failed)


def module_relative_scale(
    model: str, params: dict[str, float], spec: Spectrum
) -> float:
    """The true ``log_relative_scale`` of a simulated spectrum (model-defined)."""
    return float(load_model(model).relative_scale(params, spec))


def confusion_matrix(
    models: Sequence[str],
    *,
    n: int,
    gamma: float,
    replicates: int,
    seed: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean posterior model weights of spectra simulated from each model.

    Returns
    -------
    weights : ndarray, shape (len(models), len(models))
        Row ``i``: mean weight given to each model by spectra from model ``i``.
    hits : ndarray, shape (len(models),)
        Fraction of replicates from model ``i`` whose weight on model ``i`` is
        above 0.5.
    """
    rng = np.random.default_rng(seed)
    m = len(models)
    weights = np.zeros((m, m))
    hits = np.zeros(m)
    bar = tqdm(total=m * replicates, desc="confusion", disable=not progress)
    for i, truth in enumerate(models):
        for _ in range(replicates):
            _, spec, _ = simulate_from_prior(truth, rng, n, gamma)
            logz = np.array([_log_evidence_or_minus_inf(spec, o) for o in models])
            w = np.exp(logz - logz.max())
            w /= w.sum()
            weights[i] += w / replicates
            hits[i] += float(w[i] > 0.5) / replicates
            bar.update()
    bar.close()
    return weights, hits


def _log_evidence_or_minus_inf(spec: Spectrum, model: str) -> float:
    """A model whose evidence cannot be computed gets weight 0, with a warning."""
    try:
        return log_evidence(spec, model).log_evidence
    except HTMPError as e:
        warnings.warn(EvidenceWarning(f"{e}; weight 0"), stacklevel=2)
        return -math.inf
