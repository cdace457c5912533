r"""The Dumitriu–Edelman samplers: laws, normalisation, accuracy, reproducibility.

Statistical tests use fixed seeds, so each outcome is deterministic; the quoted
false-failure rates say how unlucky a seed would have to be for a correct sampler
to fail (they matter when seeds or numpy's generator change). Every
goodness-of-fit test asserts p > 1e-3, i.e. a nominal false-failure rate of 0.1%
per assertion.
"""

from __future__ import annotations

import math

import jax
import mpmath
import numpy as np
import pytest
import scipy.linalg
from scipy import stats
from scipy.special import logsumexp

from htmp_infer.ensembles.sampling import sample_beta_laguerre, sample_htmp

P_MIN = 1e-3  # nominal false-failure rate of each goodness-of-fit assertion

# --------------------------------------------------------------------------------------
# β = 1, 2 against dense Wishart matrices
# --------------------------------------------------------------------------------------

# Conventions (derived). For X an N×M matrix (N <= M) of i.i.d. entries:
# * real, x ~ N(0, 1): the eigenvalues of X Xᵀ have density
#   ∝ |Δ|^1 ∏ λ^{(M-N-1)/2} e^{-λ/2}, i.e. β = 1, α = (M-N+1)/2, rate 1/2;
# * complex, x = a + i b with a, b ~ N(0, 1) independent, so E|x|² = 2: the density
#   of a complex Gaussian entry is ∝ e^{-|x|²/2}, hence the matrix density is
#   ∝ e^{-tr(X X^H)/2} and the eigenvalues of X X^H have density
#   ∝ |Δ|^2 ∏ λ^{M-N} e^{-λ/2}: β = 2, α = M-N+1 = β(M-N+1)/2, rate 1/2.
#   (With E|x|² = 1 the weight would be e^{-λ}, i.e. rate 1.)
# The bidiagonal model agrees: its diagonal χ² has 2α + β(N-1-i) = β(M-i) degrees of
# freedom, which for β = 2 is |complex vector of length M-i|² with E|x|² = 2.
REPLICATES = 2000


def _dense_wishart(rng: np.random.Generator, n: int, m: int, beta: int) -> np.ndarray:
    x = rng.standard_normal((REPLICATES, n, m))
    if beta == 2:
        x = x + 1j * rng.standard_normal((REPLICATES, n, m))
    return np.linalg.eigvalsh(x @ np.swapaxes(x, 1, 2).conj())


@pytest.mark.parametrize("beta", [1, 2])
@pytest.mark.parametrize(("n", "m"), [(4, 7), (5, 5), (3, 10)])
def test_matches_dense_wishart(n, m, beta):
    # Two-sample KS tests, p > 1e-3. Largest and smallest eigenvalue: one value per
    # matrix, so the samples are i.i.d. and the nominal false-failure rate 1e-3 is
    # exact (two such assertions: <= 2e-3 together). Pooled
    # eigenvalues (N per matrix): within a matrix they repel, which makes the count
    # below any level less variable than for N independent draws (for β = 2 it is a
    # determinantal process, where this is a theorem), so treating them as
    # independent makes the test conservative (false-failure rate <= 1e-3).
    alpha = beta * (m - n + 1) / 2
    dense = _dense_wishart(np.random.default_rng(100 * n + m + beta), n, m, beta)
    de = sample_beta_laguerre(10 * n + m + beta, n, beta, alpha, 0.5, size=REPLICATES)
    assert stats.ks_2samp(dense.ravel(), de.ravel()).pvalue > P_MIN
    assert stats.ks_2samp(dense[:, -1], de[:, -1]).pvalue > P_MIN
    assert stats.ks_2samp(dense[:, 0], de[:, 0]).pvalue > P_MIN


def test_dense_wishart_comparison_has_power():
    # The comparison above would catch a convention slip: α off by 1/2 (β = 1) and
    # a complex variance E|x|² = 1 instead of 2 (β = 2, i.e. rate 1) are rejected
    # with p < 1e-8 at the same sample sizes (measured p = 5e-18 and 8e-297).
    n, m = 4, 7
    real = _dense_wishart(np.random.default_rng(1), n, m, 1)
    wrong_alpha = sample_beta_laguerre(2, n, 1.0, (m - n + 2) / 2, 0.5, size=REPLICATES)
    assert stats.ks_2samp(real.ravel(), wrong_alpha.ravel()).pvalue < 1e-8
    cplx = _dense_wishart(np.random.default_rng(3), n, m, 2)
    wrong_rate = sample_beta_laguerre(4, n, 2.0, m - n + 1.0, 1.0, size=REPLICATES)
    assert stats.ks_2samp(cplx.ravel(), wrong_rate.ravel()).pvalue < 1e-8


# --------------------------------------------------------------------------------------
# Exact finite-N laws available for every β
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("beta", "alpha", "rate"), [(0.3, 0.2, 0.5), (4.0, 2.5, 3.0)])
def test_trace_is_exactly_gamma_distributed(beta, alpha, rate):
    # tr(B Bᵀ) = Σ d_i² + Σ s_i² is a sum of independent χ², with
    # Σ [2α + β(N-1-i)] + Σ β(N-1-i) = 2E degrees of freedom, E = Nα + βN(N-1)/2.
    # So Σλ = tr/(2ϑ) ~ Gamma(E, rate ϑ) exactly, for any β (the Selberg energy).
    # One-sample KS on i.i.d. replicates: exact false-failure rate 1e-3.
    n = 6
    energy = n * alpha + beta * n * (n - 1) / 2
    draws = sample_beta_laguerre(7, n, beta, alpha, rate, size=2000)
    total = draws.sum(axis=1)
    assert stats.kstest(total, stats.gamma(energy, scale=1 / rate).cdf).pvalue > P_MIN


def test_single_eigenvalue_is_gamma():
    # N = 1: no repulsion, the density is λ^{α-1} e^{-ϑλ}, i.e. Gamma(α, rate ϑ).
    draws = sample_beta_laguerre(11, 1, 0.7, 0.35, 2.0, size=3000)
    assert draws.shape == (3000, 1)
    assert stats.kstest(draws[:, 0], stats.gamma(0.35, scale=0.5).cdf).pvalue > P_MIN


# --------------------------------------------------------------------------------------
# sample_htmp normalisation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gamma", "kappa", "scale"),
    [(0.5, 2.0, 1.0), (0.3255, 1.9, 3.7), (0.25, 0.5, 0.01), (1.0, 0.05, 1.0)],
)
def test_htmp_mean_eigenvalue_is_scale(gamma, kappa, scale):
    # N·βM·x̄/scale = tr(B Bᵀ) ~ χ²_{βNM} exactly (see the trace test), so the mean
    # eigenvalue x̄ has E = scale and sd = scale·sqrt(2/(βNM)) = scale·sqrt(2γ/(κN)).
    # (a) z-test of the average of R = 800 replicates with that exact sd:
    #     |z| < 4.5, a two-sided normal false-failure rate of 7e-6 (the average of
    #     800 scaled χ² has skewness sqrt(8/(800·βNM)) <= 0.05 even for the
    #     βNM = 5 case, so the normal tail is accurate).
    # (b) one-sample KS of x̄ against the exact scaled χ² law: p > 1e-3.
    n, reps = 100, 800
    x = sample_htmp(17, n, kappa, gamma=gamma, scale=scale, size=reps)
    means = x.mean(axis=1)
    dof = kappa * n / gamma  # βNM
    sd = scale * math.sqrt(2.0 / dof)
    z = (means.mean() - scale) / (sd / math.sqrt(reps))
    assert abs(z) < 4.5
    law = stats.gamma(dof / 2, scale=2 * scale / dof)
    assert stats.kstest(means, law.cdf).pvalue > P_MIN


def _exact_mean_empirical_variance(n: int, gamma: float, kappa: float) -> float:
    r"""E[(1/N)Σ(x_i - x̄)²] for sample_htmp(scale=1), from the χ² moments.

    With T = B Bᵀ, d_i² ~ χ²_{a_i}, a_i = β(M-i), s_i² ~ χ²_{b_i}, b_i = β(N-1-i):
    tr T² = Σ_i (d_i² + s_{i-1}²)² + 2 Σ_i d_i² s_i², E χ²_k = k, E (χ²_k)² = k(k+2);
    (tr T)² has mean K² + 2K with K = Σa + Σb = βNM. Then
    E var = [E tr T²/N - E (tr T)²/N²] / (βM)².
    """
    beta = kappa / n
    m = n / gamma
    i = np.arange(n)
    a = beta * (m - i)
    b = beta * (n - 1 - i[:-1])
    b_prev = np.concatenate([[0.0], b])
    e_tr2 = np.sum(a * (a + 2) + 2 * a * b_prev + b_prev * (b_prev + 2))
    e_tr2 += 2 * np.sum(a[:-1] * b)
    k = a.sum() + b.sum()
    return float((e_tr2 / n - (k * k + 2 * k) / n**2) / (beta * m) ** 2)


def test_exact_finite_n_variance_correction_is_minus_one_over_n():
    # The χ² moment computation gives E var = γ(1+2/κ)(1 - 1/N) exactly: the limit
    # Var = γ(1+2/κ) (docs/maths.md §2.2) with an O(1/N) finite-N correction that
    # shrinks 8x from N = 100 to N = 800. Rounding of the sums: ~1e-13 relative.
    for gamma, kappa in [(0.5, 2.0), (0.3255, 1.9), (0.25, 0.5), (0.5, 20.0)]:
        limit = gamma * (1 + 2 / kappa)
        errors = []
        for n in (100, 400, 800):
            exact = _exact_mean_empirical_variance(n, gamma, kappa)
            assert exact / limit - 1 == pytest.approx(-1 / n, rel=1e-9, abs=1e-12)
            errors.append(abs(exact / limit - 1))
        assert errors[2] == pytest.approx(errors[0] / 8, rel=1e-9)


@pytest.mark.parametrize(
    ("gamma", "kappa"), [(0.5, 2.0), (0.3255, 1.9), (0.25, 0.5), (0.5, 20.0)]
)
def test_htmp_variance_tends_to_limit(gamma, kappa):
    # Average over R replicates of the empirical variance (ddof = 0) of one N = 400
    # draw of normalised eigenvalues. Its expectation is γ(1+2/κ)(1 - 1/N) exactly
    # (previous test). Tolerances:
    # * against that finite-N value: 4.5 standard errors of the replicate average
    #   (normal approximation of an average of 120 i.i.d. variances; false-failure
    #   rate ~1e-5);
    # * against the limit γ(1+2/κ): |rel. error| <= 1/N + 4.5 SE/limit, which here is
    #   at most ~4% (SE/limit is measured at 0.3–1.4% per case); asserted < 5%.
    n, reps = 400, 120
    x = sample_htmp(int(1000 * kappa + 100 * gamma), n, kappa, gamma=gamma, size=reps)
    var = x.var(axis=1)
    avg, se = var.mean(), var.std(ddof=1) / math.sqrt(reps)
    limit = gamma * (1 + 2 / kappa)
    finite_n = _exact_mean_empirical_variance(n, gamma, kappa)
    assert abs(avg - finite_n) < 4.5 * se
    rel_err = abs(avg / limit - 1)
    assert rel_err <= 1 / n + 4.5 * se / limit
    assert rel_err < 0.05


# --------------------------------------------------------------------------------------
# Relative accuracy at tiny κ (eigenvalues spanning tens of decades)
# --------------------------------------------------------------------------------------


def _same_chi_draws(seed: int, n: int, beta: float, alpha: float):
    """The χ² draws sample_beta_laguerre makes for one spectrum with this seed.

    Diagonal χ²_{2α+β(N-1-i)} then sub-diagonal χ²_{β(N-1-i)}, i = 0..N-1 (N-2),
    drawn in that order from ``numpy.random.default_rng(seed)`` (Dumitriu–Edelman).
    """
    rng = np.random.default_rng(seed)
    i = np.arange(n, dtype=np.float64)
    d2 = rng.chisquare(2 * alpha + beta * (n - 1 - i))
    s2 = rng.chisquare(beta * (n - 1 - i[:-1]))
    return d2, s2


def _htmp_beta_alpha(n: int, kappa: float, gamma: float) -> tuple[float, float]:
    beta = kappa / n
    return beta, beta * (n / gamma - n + 1) / 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_kappa_matches_high_precision_reference(seed):
    # N = 12, κ = 0.05: the spectrum spans 15–50 decades, far below the eps·λmax
    # absolute accuracy of a tridiagonal eigensolver. Reference: eigenvalues of
    # T = B Bᵀ built from the same χ² draws, in mpmath with (decades + 40) digits,
    # so the reference is exact to ~1e-40 relative even for the smallest value.
    # Tolerance 1e-12 relative: B's entries are sqrt(χ²) rounded to 1 ulp, and
    # the singular values of a bidiagonal matrix move by at most ~(2N-1)·eps
    # relative under such entrywise perturbations (Demmel–Kahan), i.e. ~5e-15.
    n, kappa, gamma = 12, 0.05, 0.5
    beta, alpha = _htmp_beta_alpha(n, kappa, gamma)
    lam = sample_beta_laguerre(seed, n, beta, alpha, 0.5)
    d2, s2 = _same_chi_draws(seed, n, beta, alpha)
    decades = math.log10(lam[-1] / lam[0])
    assert decades > 10  # the regime that needs relative accuracy
    with mpmath.workdps(int(decades) + 40):
        b = mpmath.zeros(n, n)
        for k in range(n):
            b[k, k] = mpmath.sqrt(mpmath.mpf(float(d2[k])))
            if k < n - 1:
                b[k + 1, k] = mpmath.sqrt(mpmath.mpf(float(s2[k])))
        ev = mpmath.eigsy(b * b.T, eigvals_only=True)
        ref = np.array(sorted(float(e) for e in ev))
    np.testing.assert_allclose(lam, ref, rtol=1e-12, atol=0)


def _log_trace_inverse(d2: np.ndarray, s2: np.ndarray) -> float:
    r"""log Σ 1/λ_i(B Bᵀ) = log ‖B⁻¹‖_F², exactly, in log space.

    B is lower bidiagonal (diagonal d, sub-diagonal s), so B⁻¹ is lower triangular
    with |B⁻¹_{ij}| = ∏_{k=j}^{i-1} s_k / ∏_{k=j}^{i} d_k: products of positive
    numbers with no cancellation, hence relatively accurate. Zero sub-diagonal
    entries (χ² underflow at tiny degrees of freedom) give exact zeros (-inf).
    """
    n = d2.size
    log_d = 0.5 * np.log(d2)
    with np.errstate(divide="ignore"):
        log_s = 0.5 * np.log(s2)
    row = np.full(n, -np.inf)  # log|B⁻¹_{i, j}| for j <= i, updated row by row
    terms = []
    for i in range(n):
        if i > 0:
            row = row + log_s[i - 1] - log_d[i]
        row[i] = -log_d[i]
        terms.append(row[: i + 1].copy())
    return float(logsumexp(2 * np.concatenate(terms)))


@pytest.mark.parametrize("seed", [0, 3])
def test_small_kappa_n200_relative_accuracy_invariants(seed):
    # κ = 0.05, N = 200: eigenvalues from ~1e-60 to ~1e2. Two exact invariants of
    # T = B Bᵀ, both dominated by (or equally weighting) the tiny eigenvalues:
    # * Σ log λ = log det T - N log(2ϑ) = Σ log d_i² - N log(2ϑ) (det of a
    #   triangular B). A relative error δ per eigenvalue moves this by <= Nδ;
    #   tolerance 1e-9 absolute allows δ ~ 5e-12 (measured: ~1e-15 per value).
    # * Σ 1/λ = 2ϑ ‖B⁻¹‖_F², dominated by the smallest eigenvalue; tolerance 1e-10
    #   relative (measured ~1e-14).
    n, kappa, gamma = 200, 0.05, 0.5
    beta, alpha = _htmp_beta_alpha(n, kappa, gamma)
    rate = 0.7
    lam = sample_beta_laguerre(seed, n, beta, alpha, rate)
    d2, s2 = _same_chi_draws(seed, n, beta, alpha)
    assert lam.shape == (n,)
    assert np.all(lam > 0)
    assert np.all(np.diff(lam) > 0)
    assert lam[0] / lam[-1] < 1e-30  # the regime that needs relative accuracy
    log_2rate = math.log(2 * rate)
    assert np.sum(np.log(lam)) == pytest.approx(
        np.sum(np.log(d2)) - n * log_2rate, abs=1e-9, rel=0
    )
    ref = _log_trace_inverse(d2, s2) + log_2rate
    assert float(logsumexp(-np.log(lam))) == pytest.approx(ref, abs=1e-10, rel=0)
    # Power check: the tridiagonal eigensolver alone (absolute accuracy eps·λmax)
    # gets these invariants badly wrong, so the assertions above discriminate.
    main = d2.copy()
    main[1:] += s2
    naive = scipy.linalg.eigvalsh_tridiagonal(main, np.sqrt(d2[:-1] * s2))
    naive = naive / (2 * rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        naive_log_det = np.sum(np.log(naive))
    assert not abs(naive_log_det - (np.sum(np.log(d2)) - n * log_2rate)) < 1.0


def test_small_kappa_htmp_is_positive_sorted_and_finite():
    x = sample_htmp(5, 200, 0.05, gamma=0.5, size=4)
    assert x.shape == (4, 200)
    assert np.all(np.isfinite(x))
    assert np.all(x > 0)
    assert np.all(np.diff(x, axis=1) > 0)


# --------------------------------------------------------------------------------------
# Randomness, shapes, arguments
# --------------------------------------------------------------------------------------


def test_same_seed_same_numbers_and_key_kinds():
    args = (30, 0.4, 1.3, 0.9)
    a = sample_beta_laguerre(7, *args)
    np.testing.assert_array_equal(a, sample_beta_laguerre(7, *args))
    # An int seed is numpy's default_rng(seed).
    np.testing.assert_array_equal(
        a, sample_beta_laguerre(np.random.default_rng(7), *args)
    )
    np.testing.assert_array_equal(a, sample_beta_laguerre(np.int64(7), *args))
    # A JAX key: the same key gives the same numbers, typed and raw keys agree, and
    # the key data seed numpy's generator.
    typed = sample_beta_laguerre(jax.random.key(7), *args)
    np.testing.assert_array_equal(typed, sample_beta_laguerre(jax.random.key(7), *args))
    np.testing.assert_array_equal(
        typed, sample_beta_laguerre(jax.random.PRNGKey(7), *args)
    )
    data = np.asarray(jax.random.key_data(jax.random.key(7))).tolist()
    np.testing.assert_array_equal(
        typed, sample_beta_laguerre(np.random.default_rng(data), *args)
    )
    # A split key is a different stream.
    other = sample_beta_laguerre(jax.random.split(jax.random.key(7))[0], *args)
    assert not np.array_equal(typed, other)


def test_different_seeds_and_generator_state_give_different_numbers():
    args = (30, 0.4, 1.3, 0.9)
    a = sample_beta_laguerre(1, *args)
    b = sample_beta_laguerre(2, *args)
    assert not np.any(a == b)
    rng = np.random.default_rng(3)
    first, second = sample_beta_laguerre(rng, *args), sample_beta_laguerre(rng, *args)
    assert not np.any(first == second)
    h1 = sample_htmp(1, 50, 2.0, gamma=0.5)
    h2 = sample_htmp(2, 50, 2.0, gamma=0.5)
    assert not np.any(h1 == h2)


def test_size_shape_and_sorted_rows():
    assert sample_beta_laguerre(0, 8, 1.0, 1.0).shape == (8,)
    assert sample_beta_laguerre(0, 8, 1.0, 1.0, size=1).shape == (1, 8)
    out = sample_beta_laguerre(0, 8, 1.0, 1.0, size=5)
    assert out.shape == (5, 8)
    assert out.dtype == np.float64
    assert np.all(np.diff(out, axis=1) > 0)
    assert len({tuple(r) for r in out}) == 5  # replicates are independent draws
    h = sample_htmp(0, 20, 1.5, n_cols=35, size=3)
    assert h.shape == (3, 20)
    assert np.all(np.diff(h, axis=1) > 0)
    assert sample_htmp(0, 20, 1.5, gamma=0.5).shape == (20,)


def test_htmp_gamma_ncols_and_scale_are_consistent():
    # gamma = N/M and n_cols = M select the same law; scale only multiplies.
    a = sample_htmp(4, 40, 3.0, gamma=0.5)
    np.testing.assert_array_equal(a, sample_htmp(4, 40, 3.0, n_cols=80))
    np.testing.assert_array_equal(a, sample_htmp(4, 40, 3.0, gamma=0.5, n_cols=80))
    np.testing.assert_allclose(
        sample_htmp(4, 40, 3.0, gamma=0.5, scale=2.5), 2.5 * a, rtol=1e-14
    )
    # sample_htmp is β-Laguerre with β = κ/N, α = β(M-N+1)/2, ϑ = βM/(2·scale).
    beta = 3.0 / 40
    np.testing.assert_allclose(
        a,
        sample_beta_laguerre(4, 40, beta, beta * 41 / 2, beta * 80 / 2),
        rtol=1e-14,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0, "beta": 1.0, "shape": 1.0},
        {"n": -3, "beta": 1.0, "shape": 1.0},
        {"n": 5, "beta": 0.0, "shape": 1.0},
        {"n": 5, "beta": -1.0, "shape": 1.0},
        {"n": 5, "beta": float("nan"), "shape": 1.0},
        {"n": 5, "beta": 1.0, "shape": 0.0},
        {"n": 5, "beta": 1.0, "shape": -0.5},
        {"n": 5, "beta": 1.0, "shape": 1.0, "rate": 0.0},
        {"n": 5, "beta": 1.0, "shape": 1.0, "rate": -2.0},
    ],
)
def test_beta_laguerre_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        sample_beta_laguerre(0, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kappa": 0.0, "gamma": 0.5},
        {"kappa": -1.0, "gamma": 0.5},
        {"kappa": float("nan"), "gamma": 0.5},
        {"kappa": 1.0},  # neither gamma nor n_cols
        {"kappa": 1.0, "gamma": 0.0},
        {"kappa": 1.0, "gamma": 1.5},
        {"kappa": 1.0, "gamma": -0.5},
        {"kappa": 1.0, "n_cols": 5},  # M < N
        {"kappa": 1.0, "gamma": 0.5, "n_cols": 30},  # disagree (N/γ = 20)
        {"kappa": 1.0, "gamma": 0.5, "n": 0},
        {"kappa": 1.0, "n_cols": 3, "n": 0},
    ],
)
def test_htmp_bad_arguments(kwargs):
    kwargs = dict(kwargs)
    n = kwargs.pop("n", 10)
    with pytest.raises(ValueError):
        sample_htmp(0, n, **kwargs)


@pytest.mark.parametrize("key", [7.0, "7", None])
def test_bad_key_type_raises_type_error(key):
    with pytest.raises(TypeError, match="key must be"):
        sample_beta_laguerre(key, 3, 1.0, 1.0)
