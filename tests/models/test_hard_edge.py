"""The ``hard_edge`` model: normaliser, likelihood, nesting, simulator, fit.

Its simulation-based calibration is in ``tests/models/test_model_sbc.py``.
Deterministic tests compare numbers (tolerances from float64 rounding); the one
statistical test (:func:`test_simulate_matches_exact_moments`) states its
false-failure rate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import digamma, gammaln, logsumexp

from htmp_infer import Spectrum, fit
from htmp_infer.ensembles.selberg import laguerre_shape_log_normalizer_sizes
from htmp_infer.inference._programs import site_values
from htmp_infer.inference.evidence import evidence_and_grid, log_evidence
from htmp_infer.inference.identification import identification
from htmp_infer.mechanisms.bulk import laguerre_bulk
from htmp_infer.mechanisms.spikes import spike_table
from htmp_infer.models import hard_edge


def _normaliser(n: int, beta: float, a: float) -> tuple[float, float]:
    """Selberg's Laguerre shape normaliser as a direct sum, and its scale."""
    j = np.arange(n)
    terms = gammaln(a + j * beta / 2) + gammaln(1 + (j + 1) * beta / 2)
    terms = np.append(terms, -n * gammaln(1 + beta / 2))
    return float(np.sum(terms)), float(np.sum(np.abs(terms)))


@pytest.mark.parametrize("a", [1e-4, 0.005, 0.3, 0.5, 7.0, 400.0])
@pytest.mark.parametrize("beta", [0.013, 0.5, 2.0])
def test_normaliser_takes_any_exponent(a: float, beta: float) -> None:
    """The shape normaliser is exact for a free exponent, not only the tied one.

    Sizes above 64 take the Euler–Maclaurin path, 30 the direct sum; the
    tolerance is float64 rounding of the sum of |terms| (as for the tied one in
    ``tests/ensembles/test_selberg_fast.py``).
    """
    sizes = (384, 380, 30)
    got = np.asarray(
        laguerre_shape_log_normalizer_sizes(sizes, np.full(3, beta), np.full(3, a))
    )
    for value, n in zip(got, sizes, strict=True):
        want, scale = _normaliser(n, beta, a)
        assert abs(value - want) <= 1e-13 * scale, (n, value, want)


def _brute_log_likelihood(lam: np.ndarray, kappa: float, a: float, cap: int) -> float:
    """The spike-summed likelihood from scratch (numpy/scipy only).

    Per spike count k the bulk is the N−k smallest values: a direct Vandermonde
    double sum, the Selberg normaliser as a direct sum, and the rate integrated
    in closed form, ∫ ϑ^E e^{−ϑS} dϑ/ϑ = Γ(E) S^{−E}; the spikes have their
    Gamma–Pareto density with ν integrated out, P(k) ∝ 2^{−k} on 0..⌊N/4⌋.
    """
    big_n = lam.size
    limit = big_n // 4
    log_prior = -np.arange(limit + 1) * math.log(2.0)
    log_prior = log_prior - logsumexp(log_prior)
    terms = []
    for k in range(cap + 1):
        n = big_n - k
        bulk = lam[:n]
        beta = kappa / n
        diff = bulk[None, :] - bulk[:, None]
        log_v = float(np.sum(np.log(diff[np.triu_indices(n, 1)])))
        energy = n * a + beta * n * (n - 1) / 2
        log_z, _ = _normaliser(n, beta, a)
        ll = (
            beta * log_v
            + (a - 1) * np.sum(np.log(bulk))
            + gammaln(energy)
            - energy * math.log(np.sum(bulk))
            - log_z
            + gammaln(n + 1)
        )
        spikes = lam[n:]
        t = float(np.sum(np.log(spikes / bulk[-1])))
        ll += (
            gammaln(k + 1)
            + gammaln(2 + k)
            - gammaln(2)
            - (2 + k) * math.log1p(t)
            - np.sum(np.log(spikes))
        )
        terms.append(ll + log_prior[k])
    return float(logsumexp(terms))


@pytest.mark.parametrize(
    ("n", "gamma", "kappa", "a", "spikes"),
    [(30, 1.0, 2.0, 0.4, 1), (100, 1.0, 7.0, 0.03, 2), (100, 0.5, 40.0, 3.0, 0)],
)
def test_log_likelihood_matches_brute_force(
    n: int, gamma: float, kappa: float, a: float, spikes: int
) -> None:
    rng = np.random.default_rng(n)
    shape = Spectrum.from_eigenvalues(np.arange(1.0, n + 1.0), gamma=gamma)
    params = {"kappa": kappa, "edge_exponent": a, "scale": 2.5, "n_spikes": spikes}
    lam = hard_edge.simulate(rng, params, shape)
    spec = Spectrum.from_eigenvalues(lam, gamma=gamma)
    cap = len(spike_table(spec).n) - 1
    point = np.array([[math.log(a), math.log(kappa)]])  # sorted site names
    _, loglik = site_values(spec, "hard_edge", point)
    got = float(loglik["eigenvalues"][0])
    want = _brute_log_likelihood(np.sort(lam), kappa, a, cap)
    assert got == pytest.approx(want, rel=1e-10, abs=0.0)


def test_tied_exponent_is_htmp() -> None:
    """At a = β(M−N+1)/2 the bulk of every spike count is htmp's, to the bit."""
    rng = np.random.default_rng(3)
    lam = np.sort(rng.gamma(1.5, size=60))  # direct-sum normaliser: quick to trace
    spec = Spectrum.from_eigenvalues(lam, gamma=0.5)
    m = float(spec.n_cols)
    tab = spike_table(spec)
    kappa = 6.0
    tied = laguerre_bulk(tab, m, kappa)
    for k, n in enumerate(tab.n):
        a = kappa / n * (m - spec.n + 1.0) / 2.0
        free = laguerre_bulk(tab, m, kappa, exponent=a)
        assert float(free[k]) == pytest.approx(float(tied[k]), rel=1e-15, abs=0.0)
    # the whole model, no spikes: hard_edge at the tie is htmp's likelihood
    spec0 = spec.with_max_spikes(0)
    log_kappa = 1.8
    a0 = math.exp(log_kappa) / spec.n * (m - spec.n + 1.0) / 2.0
    point = np.array([[math.log(a0), log_kappa]])  # sorted site names
    _, ll_free = site_values(spec0, "hard_edge", point)
    _, ll_htmp = site_values(spec0, "htmp", np.array([[log_kappa]]))
    assert float(ll_free["eigenvalues"][0]) == pytest.approx(
        float(ll_htmp["eigenvalues"][0]), rel=1e-14, abs=0.0
    )


@pytest.mark.parametrize(
    ("n", "kappa", "a"),
    [(40, 3.0, 0.3), (25, 0.5, 1.7)],  # M_eff = 2a/β + n − 1 = 46.8 and 193.4
)
def test_simulate_matches_exact_moments(n: int, kappa: float, a: float) -> None:
    r"""Three exact moments of the β-Laguerre gas, from its Selberg normaliser.

    With :math:`\log Z = \sum_j[\ln\Gamma(a+j\beta/2)+\ln\Gamma(1+(j+1)\beta/2)
    -\ln\Gamma(1+\beta/2)] - E\log\vartheta` (unordered),
    :math:`\mathbb E\sum\lambda = E/\vartheta`,
    :math:`\mathbb E\sum\log\lambda = \partial_a\log Z` and
    :math:`\mathbb E\sum_{i<j}\log|\lambda_i-\lambda_j| = \partial_\beta\log Z`.
    Each is tested by a z-score of 600 replicates at |z| < 4.5 (false failure
    6.8e-6 per moment, 4e-5 for the six): the one-body exponent enters all three,
    at a non-integer effective column count.
    """
    rng = np.random.default_rng(11)
    shape = Spectrum.from_eigenvalues(np.arange(1.0, n + 1.0), n_cols=n)
    scale = 1.7
    params = {"kappa": kappa, "edge_exponent": a, "scale": scale, "n_spikes": 0}
    beta = kappa / n
    rate = (a + beta * (n - 1) / 2) / scale
    reps = np.array([hard_edge.simulate(rng, params, shape) for _ in range(600)])
    iu = np.triu_indices(n, 1)
    stats = np.stack(
        [
            reps.mean(axis=1),
            np.log(reps).sum(axis=1),
            [np.log(r[iu[1]] - r[iu[0]]).sum() for r in reps],
        ]
    )
    j = np.arange(n)
    want = [
        scale,  # E[mean] = E/(nϑ) = scale by construction
        np.sum(digamma(a + j * beta / 2)) - n * math.log(rate),
        np.sum(
            j / 2 * digamma(a + j * beta / 2)
            + (j + 1) / 2 * digamma(1 + (j + 1) * beta / 2)
            - digamma(1 + beta / 2) / 2
        )
        - n * (n - 1) / 2 * math.log(rate),
    ]
    for row, w in zip(stats, want, strict=True):
        z = (row.mean() - w) / (row.std(ddof=1) / math.sqrt(row.size))
        assert abs(z) < 4.5, (row.mean(), w, z)


def test_postprocess_reports_scale_and_tie() -> None:
    rng = np.random.default_rng(0)
    spec = Spectrum.from_eigenvalues(np.sort(rng.gamma(2.0, size=60)), gamma=1.0)
    tab = spike_table(spec)
    draws = 4000
    samples = {
        "kappa": np.full(draws, 5.0),
        "edge_exponent": np.full(draws, 0.4),
        "spike_logits": np.tile(
            np.r_[0.0, np.full(len(tab.n) - 1, -np.inf)], (draws, 1)
        ),
    }
    out = hard_edge.postprocess(rng, samples, spec)
    assert np.all(out["n_spikes"] == 0)
    # scale = E/(nϑ) with ϑ ~ Gamma(E, S): its mean is S/n · E/(E−1)
    n, beta = spec.n, 5.0 / spec.n
    energy = n * 0.4 + beta * n * (n - 1) / 2
    mean = tab.total[0] / n * energy / (energy - 1)
    sd = mean / math.sqrt(energy - 2)
    assert abs(out["scale"].mean() - mean) < 5 * sd / math.sqrt(draws)
    assert out["tied_edge_exponent"] == pytest.approx(beta / 2)
    assert out["kappa_over_gamma"] == pytest.approx(5.0)


def test_evidence_grid_fit_and_identification() -> None:
    """Two coordinates through quadrature, grid draws, the check and the table."""
    rng = np.random.default_rng(2)
    lam = np.linalg.svd(rng.standard_normal((60, 60)), compute_uv=False) ** 2
    spec = Spectrum.from_eigenvalues(lam, gamma=1.0, name="gaussian")
    ev, grid = evidence_and_grid(spec, "hard_edge")
    assert grid is not None and sorted(grid.names) == [
        "log_edge_exponent",
        "log_kappa",
    ]
    assert ev.dim == 2 and ev.error < 0.1 and math.isfinite(ev.log_evidence)
    assert ev.log_evidence == pytest.approx(
        log_evidence(spec, "hard_edge").log_evidence
    )
    dt = fit(spec, "hard_edge", grid=grid, draws=400, ppc_draws=4, progress=False)
    post = dt["posterior"].dataset
    for name in ("kappa", "edge_exponent", "tied_edge_exponent", "scale", "rate"):
        assert np.all(np.isfinite(post[name].values)), name
    assert dt["posterior_predictive"]["eigenvalues"].shape[-1] == spec.n
    # a real Gaussian square matrix: a = 1/2, κ = N in truth
    lo, hi = np.quantile(post["edge_exponent"].values, [0.005, 0.995])
    assert lo < 0.5 < hi
    table = identification(spec, {"hard_edge": grid})
    assert set(table["parameter"]) >= {"log_kappa", "log_edge_exponent"}
