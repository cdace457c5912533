"""Spike component and per-spike-count bulk likelihoods against references."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from htmp_infer import Spectrum
from htmp_infer._numerics import log_abs_vandermonde
from htmp_infer.ensembles.jacobi import (
    betaprime_log_likelihood,
    inverse_laguerre_log_likelihood,
)
from htmp_infer.ensembles.likelihood import laguerre_log_marginal
from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.mechanisms.bulk import (
    betaprime_bulk,
    inverse_laguerre_bulk,
    laguerre_bulk,
)
from htmp_infer.mechanisms.spikes import (
    NU_RATE,
    NU_SHAPE,
    add_spikes,
    draw_spike_counts,
    spike_log_prior,
    spike_table,
)
from htmp_infer.spectrum import SufficientStats

N, GAMMA = 200, 0.5


@pytest.fixture(scope="module")
def spectrum() -> Spectrum:
    x = sample_htmp(11, N, 2.0, gamma=GAMMA)
    return Spectrum.from_eigenvalues(x, gamma=GAMMA)


def _bulk(spectrum: Spectrum, k: int) -> np.ndarray:
    return spectrum.eigenvalues[: spectrum.n - k]


def test_table_matches_brute_force(spectrum: Spectrum) -> None:
    t = spike_table(spectrum)
    assert t.max_spikes == min(8, N // 20)
    for k, n in enumerate(t.n):
        b = _bulk(spectrum, k)
        assert n == b.size
        # float64 sums of ~2e4 terms: relative 1e-10 is ~1e5 ulps of headroom.
        assert t.log_vandermonde[k] == pytest.approx(log_abs_vandermonde(b), rel=1e-10)
        assert t.sum_log[k] == pytest.approx(np.sum(np.log(b)), rel=1e-12, abs=1e-9)
        assert t.total[k] == pytest.approx(np.sum(b), rel=1e-12)
        assert t.sum_inv[k] == pytest.approx(np.sum(1 / b), rel=1e-12)


def test_spike_density_is_the_pareto_gamma_mixture(spectrum: Spectrum) -> None:
    """k = 1 and 2: closed form vs quadrature over the Pareto index nu."""
    t = spike_table(spectrum)
    lam = spectrum.eigenvalues
    for k in (1, 2):
        m = lam[-k - 1]
        spikes = lam[-k:]

        def integrand(nu: float, m: float = m, spikes: np.ndarray = spikes) -> float:
            logs = np.log(spikes)
            log_dens = spikes.size * math.log(nu) + nu * np.sum(math.log(m) - logs)
            log_dens -= np.sum(logs)
            return float(
                np.exp(log_dens) * stats.gamma.pdf(nu, NU_SHAPE, scale=1 / NU_RATE)
            )

        value, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-12)
        expected = math.log(value) + math.lgamma(k + 1.0)  # k! orders the spikes
        assert t.spike_log_density[k] == pytest.approx(expected, abs=1e-9)


def test_prior_is_normalised_geometric() -> None:
    p = np.exp(spike_log_prior(6))
    assert p.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.allclose(p[1:] / p[:-1], 0.5)


@pytest.mark.slow
def test_bulk_likelihoods_match_single_spectrum_references(spectrum: Spectrum) -> None:
    t = spike_table(spectrum)
    m_cols = spectrum.n_cols
    kappa, tail, scale = 1.7, 2.5, 0.7
    lag = np.asarray(laguerre_bulk(t, m_cols, kappa))
    bp = np.asarray(betaprime_bulk(t, spectrum.eigenvalues, m_cols, kappa, tail, scale))
    for k in (0, 3, t.max_spikes):  # eager references are slow; ends and middle
        n = t.n[k]
        b = _bulk(spectrum, k)
        beta = kappa / n
        a = beta * (m_cols - k - n + 1) / 2
        st = SufficientStats(n, log_abs_vandermonde(b), np.log(b).sum(), b.sum())
        # ~1e3-sized log densities summed in float64: 1e-9 absolute.
        assert lag[k] == pytest.approx(
            float(laguerre_log_marginal(st, beta, a)), abs=1e-9
        )
        ref = betaprime_log_likelihood(b, log_abs_vandermonde(b), beta, a, tail, scale)
        assert bp[k] == pytest.approx(float(ref), abs=1e-9)


@pytest.mark.slow
def test_inverse_bulk_integrates_the_rate(spectrum: Spectrum) -> None:
    """Rate-marginal of the inverse-Laguerre density by quadrature in log(rate)."""
    t = spike_table(spectrum, 1)
    kappa = 1.3
    inv = np.asarray(inverse_laguerre_bulk(t, spectrum.n_cols, kappa))
    for k, n in enumerate(t.n):
        mu = _bulk(spectrum, k)
        beta = kappa / n
        a = beta * (spectrum.n_cols - k - n + 1) / 2
        v = log_abs_vandermonde(mu)
        log_lik = jax.jit(
            lambda log_rate, n=n, v=v, mu=mu, beta=beta, a=a: (
                inverse_laguerre_log_likelihood(
                    n, v, np.log(mu).sum(), (1 / mu).sum(), beta, a, jnp.exp(log_rate)
                )
            )
        )
        peak = math.log((n * a + beta * n * (n - 1) / 2) / (1 / mu).sum())
        shift = float(log_lik(peak))
        val, _ = integrate.quad(
            lambda r, f=log_lik, c=shift: math.exp(float(f(r)) - c),
            peak - 3,
            peak + 3,
            epsrel=1e-12,
        )
        assert inv[k] == pytest.approx(math.log(val) + shift, abs=1e-7)


def test_add_spikes_ratio_law() -> None:
    """log-ratio of one spike: P(log u > s) = E exp(-nu s) = (1 + s)^-2 (nu ~ G(2,1)).

    KS at the fixed seed; false-failure rate of the 1e-3 threshold is 0.1%.
    """
    rng = np.random.default_rng(5)
    bulk = np.array([0.5, 1.0])
    s = np.array([np.log(add_spikes(rng, bulk, 1)[-1]) for _ in range(4000)])
    p = stats.kstest(s, lambda x: 1 - (1 + np.maximum(x, 0)) ** -2).pvalue
    assert p > 1e-3


def test_draw_spike_counts_frequencies() -> None:
    rng = np.random.default_rng(0)
    logits = np.log(np.array([0.2, 0.5, 0.3]))
    k = draw_spike_counts(rng, np.broadcast_to(logits, (20000, 3)))
    freq = np.bincount(k, minlength=3) / k.size
    # binomial sd <= 0.0036; 5 sd
    assert np.allclose(freq, [0.2, 0.5, 0.3], atol=0.018)


def test_table_rejects_too_many_spikes(spectrum: Spectrum) -> None:
    with pytest.raises(ValueError, match="max_spikes"):
        spike_table(spectrum, N)


@pytest.mark.slow
@pytest.mark.parametrize("n", [100, 1000])
@pytest.mark.parametrize("kappa", [1e-3, 0.5, 200.0])
def test_fast_jacobi_normaliser_matches_the_direct_sum(n: int, kappa: float) -> None:
    """Euler–Maclaurin Selberg–Jacobi sums vs the O(N) gammaln sum.

    Both are float64 sums of ~4N terms of mixed sign: 1e-11 relative is ~100x the
    rounding observed (<= 4e-13), far below any posterior-relevant change.
    """
    from htmp_infer.ensembles.jacobi import jacobi_log_normalizer
    from htmp_infer.mechanisms.bulk import _jacobi_sizes

    sizes = tuple(range(n, n - 5, -1))
    nn = np.array(sizes, dtype=float)
    b = kappa / nn
    a = b * (n / 0.4 - nn + 1) / 2
    fast = np.asarray(_jacobi_sizes(sizes, jnp.asarray(b), jnp.asarray(a), 2.5))
    for i, s in enumerate(sizes):
        ref = float(jacobi_log_normalizer(s, b[i], a[i], 2.5))
        assert fast[i] == pytest.approx(ref, rel=1e-11)
