r"""Simulation-based calibration and mechanism recovery of the registered models.

SBC (Talts et al. 2018) in its continuous form: for each replicate draw the
parameters from the prior, simulate a spectrum exactly (``module.simulate``) and
compute the probability integral transform :math:`u = F_{\rm post}(\theta_{\rm
true})` of every continuous coordinate from the quadrature posterior
(:func:`htmp_infer.inference.evidence.posterior_grid`). A model whose likelihood,
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

import itertools
import math
import warnings
import zlib
from collections.abc import Sequence
from typing import NamedTuple, cast

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from htmp_infer.errors import (
    ArgumentError,
    CensoredSpikesWarning,
    EvidenceWarning,
    HTMPError,
    SpectrumError,
)
from htmp_infer.inference.comparison import weights_of
from htmp_infer.inference.evidence import log_evidence, posterior_grid
from htmp_infer.inference.registry import load_model
from htmp_infer.mechanisms.protocol import ScaledModel
from htmp_infer.spectrum import Spectrum

__all__ = [
    "ConfusionResult",
    "SBCResult",
    "confusion_matrix",
    "model_stream",
    "sbc",
    "simulate_from_prior",
    "weight_reliability",
]


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
                # mass on the prior's own largest spike count is no error: the
                # posterior is exact for the prior the spectra come from
                warnings.simplefilter("ignore", CensoredSpikesWarning)
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
    return float(cast(ScaledModel, load_model(model)).relative_scale(params, spec))


class ConfusionResult(NamedTuple):
    """Posterior model weights of spectra simulated from each model.

    Attributes
    ----------
    models : tuple of str
    weights : ndarray, shape (len(models), len(models))
        Row ``i``: mean weight given to each model by spectra from model ``i``.
    hits : ndarray, shape (len(models),)
        Fraction of replicates from model ``i`` whose weight on model ``i`` is
        above 0.5.
    records : list of dict
        One per replicate: ``truth``, ``replicate``, the true parameters (prefixed
        ``true_``) and the weight of every model (prefixed ``w_``).
    """

    models: tuple[str, ...]
    weights: np.ndarray
    hits: np.ndarray
    records: list[dict[str, float | str]]


def model_stream(seed: int, model: str) -> np.random.Generator:
    """The random stream of one model's replicates: fixed by ``seed`` and its name.

    A row of the confusion matrix therefore has the same replicates whichever
    other models are in the run.
    """
    return np.random.default_rng([seed, zlib.crc32(model.encode())])


def confusion_matrix(
    models: Sequence[str],
    *,
    n: int,
    gamma: float,
    replicates: int,
    seed: int = 0,
    truths: Sequence[str] | None = None,
    progress: bool = False,
) -> ConfusionResult:
    """Posterior model weights of spectra simulated from each model's prior.

    Parameters
    ----------
    models : sequence of str
        The candidate models, with equal prior probability.
    n, gamma : int, float
        Spectrum size and aspect ratio.
    replicates : int
        Spectra per true model.
    seed : int
        Seed; each true model has its own stream (:func:`model_stream`).
    truths : sequence of str, optional
        The models to simulate from (rows); default ``models``.
    progress : bool
        Show a progress bar.
    """
    models = tuple(models)
    rows = models if truths is None else tuple(truths)
    unknown = [t for t in rows if t not in models]
    if unknown:
        raise ArgumentError(f"true models {unknown} are not among the candidates")
    weights = np.zeros((len(rows), len(models)))
    hits = np.zeros(len(rows))
    records: list[dict[str, float | str]] = []
    bar = tqdm(total=len(rows) * replicates, desc="confusion", disable=not progress)
    for i, truth in enumerate(rows):
        rng = model_stream(seed, truth)
        own = models.index(truth)
        for r in range(replicates):
            params, spec, _ = simulate_from_prior(truth, rng, n, gamma)
            logz = np.array([_log_evidence_or_minus_inf(spec, o) for o in models])
            w = weights_of(logz)
            weights[i] += w / replicates
            hits[i] += float(w[own] > 0.5) / replicates
            rec: dict[str, float | str] = {"truth": truth, "replicate": r}
            rec |= {f"true_{k}": float(v) for k, v in params.items()}
            rec |= {f"w_{o}": float(x) for o, x in zip(models, w, strict=True)}
            records.append(rec)
            bar.update()
    bar.close()
    return ConfusionResult(rows, weights, hits, records)


def weight_reliability(
    records: Sequence[dict[str, float | str]],
    models: Sequence[str],
    edges: Sequence[float] = (0.0, 0.1, 0.5, 0.9, 1.0),
) -> list[tuple[float, float, int, float]]:
    r"""Do the posterior model weights mean what they say?

    Pools every (replicate, candidate model) pair and bins them by the weight
    :math:`w` given to the candidate. With true models drawn in equal numbers
    and equal prior model probabilities, a calibrated weight satisfies
    :math:`P(\text{truth} = m \mid w_m = w) = w`: in each bin, the fraction of
    pairs whose candidate is the truth should match the mean weight.

    Returns
    -------
    list of (mean weight, fraction true, count, binomial sd of the fraction)
        One tuple per non-empty bin.
    """
    w = np.array([[float(r[f"w_{m}"]) for m in models] for r in records])
    is_true = np.array([[r["truth"] == m for m in models] for r in records])
    out = []
    for lo, hi in itertools.pairwise(edges):
        sel = (w >= lo) & ((w < hi) if hi < edges[-1] else (w <= hi))
        c = int(sel.sum())
        if c:
            mean = float(w[sel].mean())
            frac = float(is_true[sel].mean())
            out.append((mean, frac, c, math.sqrt(max(mean * (1 - mean), 1e-12) / c)))
    return out


def _log_evidence_or_minus_inf(spec: Spectrum, model: str) -> float:
    """A model whose evidence cannot be computed gets weight 0, with a warning."""
    try:
        return log_evidence(spec, model).log_evidence
    except HTMPError as e:
        warnings.warn(EvidenceWarning(f"{e}; weight 0"), stacklevel=2)
        return -math.inf
