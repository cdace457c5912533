r"""The Edelman–Sutton β-Jacobi and β-prime samplers: laws, accuracy, reproducibility.

Statistical tests use fixed seeds, so each outcome is deterministic; the quoted
false-failure rates say how unlucky a seed would have to be for a correct sampler to
fail (they matter when seeds or numpy's generator change). Every goodness-of-fit
assertion is p > 1e-3 (nominal false-failure rate 0.1% each) and every z-test is
|z| < 4.5 (two-sided normal rate 7e-6 each).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import mpmath
import numpy as np
import pytest
from scipy import integrate, interpolate, special, stats

from htmp_infer.ensembles.jacobi import betaprime_log_normalizer, jacobi_log_normalizer
from htmp_infer.ensembles.sampling_jacobi import (
    _bidiagonals,
    sample_beta_jacobi,
    sample_beta_jacobi_with_complement,
    sample_betaprime,
)
from htmp_infer.errors import HTMPError

P_MIN = 1e-3  # nominal false-failure rate of each goodness-of-fit assertion
Z_MAX = 4.5  # two-sided normal false-failure rate 7e-6 per z-test

# --------------------------------------------------------------------------------------
# β = 1, 2 against dense MANOVA matrices
# --------------------------------------------------------------------------------------

# Conventions. X (N×m1) and Y (N×m2) with i.i.d. standard real (β = 1) or complex
# (β = 2) Gaussian entries, m1, m2 >= N; A = X Xᴴ, B = Y Yᴴ. The eigenvalues of
# (A+B)^{-1} A (the matrix-variate Beta / MANOVA ensemble; Muirhead 1982 Thm 3.3.1
# and its complex analogue) have density
#   ∝ |Δ|^β ∏ x^{β(m1-N+1)/2 - 1} (1-x)^{β(m2-N+1)/2 - 1},
# i.e. a = β(m1-N+1)/2, b = β(m2-N+1)/2. The variance of the entries cancels.
REPLICATES = 2000


def _dense_manova(
    rng: np.random.Generator, n: int, m1: int, m2: int, beta: int
) -> np.ndarray:
    def gauss(m: int) -> np.ndarray:
        z = rng.standard_normal((REPLICATES, n, m))
        return z + 1j * rng.standard_normal((REPLICATES, n, m)) if beta == 2 else z

    x, y = gauss(m1), gauss(m2)
    a = x @ np.swapaxes(x, 1, 2).conj()
    b = y @ np.swapaxes(y, 1, 2).conj()
    linv = np.linalg.inv(np.linalg.cholesky(a + b))
    return np.linalg.eigvalsh(linv @ a @ np.swapaxes(linv, 1, 2).conj())


@pytest.mark.parametrize("beta", [1, 2])
@pytest.mark.parametrize(("n", "m1", "m2"), [(4, 5, 7), (3, 3, 8), (5, 9, 5)])
def test_matches_dense_manova(n, m1, m2, beta):
    # Two-sample KS, p > 1e-3. Smallest and largest eigenvalue: one value per
    # matrix, i.i.d., so the nominal rate 1e-3 is exact for each. Pooled eigenvalues
    # (N per matrix) repel within a matrix, which makes the empirical CDF less
    # variable than for independent draws (a theorem for the determinantal β = 2
    # case), so treating them as independent is conservative (rate <= 1e-3).
    a, b = beta * (m1 - n + 1) / 2, beta * (m2 - n + 1) / 2
    dense = _dense_manova(np.random.default_rng(100 * n + m1 + beta), n, m1, m2, beta)
    es = sample_beta_jacobi(1000 * n + 10 * m1 + beta, n, beta, a, b, size=REPLICATES)
    assert stats.ks_2samp(dense.ravel(), es.ravel()).pvalue > P_MIN
    assert stats.ks_2samp(dense[:, 0], es[:, 0]).pvalue > P_MIN
    assert stats.ks_2samp(dense[:, -1], es[:, -1]).pvalue > P_MIN


def test_dense_manova_comparison_has_power():
    # The comparison would catch a convention slip: a off by 1/2 at β = 1 (m1 off
    # by one column) and b off by 2 at β = 2 (m2 off by two columns) are rejected
    # with p < 1e-8 at the same sample sizes (measured p = 5e-18 and 1e-32).
    n, m1, m2 = 4, 5, 7
    real = _dense_manova(np.random.default_rng(1), n, m1, m2, 1)
    wrong_a = sample_beta_jacobi(
        2, n, 1.0, (m1 - n + 2) / 2, (m2 - n + 1) / 2, size=2000
    )
    assert stats.ks_2samp(real.ravel(), wrong_a.ravel()).pvalue < 1e-8
    cplx = _dense_manova(np.random.default_rng(3), n, m1, m2, 2)
    wrong_b = sample_beta_jacobi(4, n, 2.0, m1 - n + 1.0, m2 - n + 3.0, size=2000)
    assert stats.ks_2samp(cplx.ravel(), wrong_b.ravel()).pvalue < 1e-8


# --------------------------------------------------------------------------------------
# N = 2: the exact law of the largest eigenvalue, by quadrature
# --------------------------------------------------------------------------------------


def _max_cdf_n2(beta: float, a: float, b: float) -> Callable[[np.ndarray], np.ndarray]:
    r"""CDF of max(x1, x2) for the N = 2 gas, by one-dimensional quadrature.

    P(max <= t) = (2/S_2) ∫_0^t dv ∫_0^v du (v-u)^β w(u) w(v), w = x^{a-1}(1-x)^{b-1}
    (2: the two orderings; S_2 is the unordered Selberg integral). With u = v·s the
    inner integral is v^{a+β} B(a, β+1) ₂F₁(1-b, a; a+β+1; v) (Euler's integral), so
    the integrand is f(v) = v^{2a+β-1} (1-v)^{b-1} B(a, β+1) ₂F₁(1-b, a; a+β+1; v).
    QUADPACK's QAWS (weight='alg') integrates the algebraic endpoint factors exactly:
    [0, t] for t < 1/2, and 1 - ∫_t^1 above. The CDF is tabulated on 600 points
    clustered at both ends (t = sin²(πu/2)) and interpolated by PCHIP in u.
    """
    const = 2.0 * special.beta(a, beta + 1.0) / math.exp(_log_s2(beta, a, b))

    def smooth(v: float) -> float:
        return float(special.hyp2f1(1.0 - b, a, a + beta + 1.0, v))

    def exact(t: float) -> float:
        if t < 0.5:
            g = lambda v: smooth(v) * (1.0 - v) ** (b - 1.0)  # noqa: E731
            val, _ = integrate.quad(g, 0.0, t, weight="alg", wvar=(2 * a + beta - 1, 0))
            return const * val
        g = lambda v: smooth(v) * v ** (2 * a + beta - 1.0)  # noqa: E731
        val, _ = integrate.quad(g, t, 1.0, weight="alg", wvar=(0, b - 1.0))
        return 1.0 - const * val

    u = np.linspace(0.0, 1.0, 601)
    table = np.array(
        [0.0, *(exact(math.sin(math.pi * v / 2) ** 2) for v in u[1:-1]), 1.0]
    )
    interp = interpolate.PchipInterpolator(u, table)
    # The interpolant agrees with direct quadrature at off-grid points to < 1e-6,
    # far below the KS resolution (critical distance ~0.036 at n = 3000, p = 1e-3).
    for t in (0.013, 0.31, 0.77, 0.996):
        assert abs(interp(2 / math.pi * math.asin(math.sqrt(t))) - exact(t)) < 1e-6

    def cdf(t: np.ndarray) -> np.ndarray:
        clipped = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
        return np.asarray(interp(2 / np.pi * np.arcsin(np.sqrt(clipped))))

    return cdf


def _log_s2(beta: float, a: float, b: float) -> float:
    return float(jacobi_log_normalizer(2, beta, a, b))


@pytest.mark.parametrize(("beta", "a", "b"), [(0.7, 0.6, 1.7), (3.0, 2.2, 0.4)])
def test_two_eigenvalues_match_exact_law(beta, a, b):
    # The full mass computed the [0, t] way equals 1 (checks the S_2 convention and
    # the quadrature; QAWS reaches ~1e-12 here, 1e-8 leaves room).
    total, _ = integrate.quad(
        lambda v: special.hyp2f1(1.0 - b, a, a + beta + 1.0, v),
        0.0,
        1.0,
        weight="alg",
        wvar=(2 * a + beta - 1.0, b - 1.0),
    )
    const = 2.0 * special.beta(a, beta + 1.0) / math.exp(_log_s2(beta, a, b))
    assert const * total == pytest.approx(1.0, abs=1e-8)
    # One-sample KS on i.i.d. replicates: exact false-failure rate 1e-3 per
    # assertion. The largest x tests the law of x; the largest 1 - x (the
    # complement returned by the sampler, a Jacobi(b, a) gas) tests 1 - x.
    x, y = sample_beta_jacobi_with_complement(17, 2, beta, a, b, size=3000)
    assert stats.kstest(x[:, 1], _max_cdf_n2(beta, a, b)).pvalue > P_MIN
    assert stats.kstest(y[:, 0], _max_cdf_n2(beta, b, a)).pvalue > P_MIN
    # Power: the interaction enters only through the c'-angle (N >= 2); a reference
    # with β -> 2β is rejected on the same data (measured p = 4e-52 and 3e-12).
    assert stats.kstest(x[:, 1], _max_cdf_n2(2 * beta, a, b)).pvalue < 1e-6


def test_single_eigenvalue_is_beta():
    # N = 1: x = c_1² ~ Beta(a, b) exactly; one-sample KS, rate 1e-3.
    x = sample_beta_jacobi(5, 1, 0.3, 0.4, 2.5, size=3000)
    assert x.shape == (3000, 1)
    assert stats.kstest(x[:, 0], stats.beta(0.4, 2.5).cdf).pvalue > P_MIN


# --------------------------------------------------------------------------------------
# Every β: E[Σ log x] = ∂_a log S_N and E[Σ log(1-x)] = ∂_b log S_N
# --------------------------------------------------------------------------------------


def _z(values: np.ndarray, mean: float) -> float:
    return float((values.mean() - mean) / (values.std(ddof=1) / math.sqrt(values.size)))


@pytest.mark.parametrize(
    ("n", "kappa", "a", "b", "reps"),
    [
        (40, 5.0, 0.9, 1.6, 1500),  # moderate temperature
        (200, 0.05, 0.05, 0.08, 600),  # small κ: x spans ~100 decades at both ends
        (2000, 0.01, 0.03, 0.04, 60),  # the smallest β: 5e-6
    ],
)
def test_log_moments_match_selberg_derivatives(n, kappa, a, b, reps):
    # log S_N(a, b) is the log-partition function of the exponential family with
    # sufficient statistics Σ log x and Σ log(1-x), so its gradient is their mean.
    # z-test of the mean of `reps` i.i.d. replicates with the sample sd: |z| < 4.5
    # (CLT; rate ~7e-6 per assertion; the statistics have all moments).
    beta = kappa / n
    x, y = sample_beta_jacobi_with_complement(n + 3, n, beta, a, b, size=reps)
    grad_a, grad_b = jax.grad(jacobi_log_normalizer, argnums=(2, 3))(n, beta, a, b)
    sum_log_x = np.log(x).sum(axis=1)
    sum_log_1mx = np.log(y).sum(axis=1)
    assert np.all(np.isfinite(sum_log_x)) and np.all(np.isfinite(sum_log_1mx))
    assert abs(_z(sum_log_x, float(grad_a))) < Z_MAX
    assert abs(_z(sum_log_1mx, float(grad_b))) < Z_MAX
    # x and 1 - x are computed from different bidiagonals; they add up to 1 up to
    # the dqds error, a small multiple of N·eps relative to each value in theory
    # and at most 161 eps = 3.6e-14 measured over ~1e5 values up to N = 2000.
    # 1e-13 (450 eps) leaves room; a real slip (wrong pairing, a lost digit) is
    # orders of magnitude larger.
    assert np.max(np.abs(x + y - 1.0)) < 1e-13
    if kappa < 1:
        # The small-κ cases really do span decades at both ends: values of 1 - x
        # below 1e-20 exist, which 1 - x formed in float64 would have rounded to 0.
        assert x.min() < 1e-20 and y.min() < 1e-20


def test_log_moment_test_has_power():
    # The same z-test rejects data drawn with a + 0.1 instead of a (|z| = 17
    # measured; a + 0.05 already gives |z| = 8.6).
    n, kappa, a, b = 40, 5.0, 0.9, 1.6
    beta = kappa / n
    x = sample_beta_jacobi(43, n, beta, a + 0.1, b, size=1500)
    grad_a = jax.grad(jacobi_log_normalizer, argnums=2)(n, beta, a, b)
    assert abs(_z(np.log(x).sum(axis=1), float(grad_a))) > 2 * Z_MAX


# --------------------------------------------------------------------------------------
# Relative accuracy of x and 1 - x at small κ
# --------------------------------------------------------------------------------------


def _same_bidiagonals(seed: int, n: int, beta: float, a: float, b: float):
    return _bidiagonals(np.random.default_rng(seed), n, beta, a, b, 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_small_kappa_matches_high_precision_reference(seed):
    # N = 12, κ = 0.05, a = b = 0.05: x and 1 - x both reach far below 1e-16.
    # Reference: eigenvalues of B11ᵀB11 and B21ᵀB21 built from the same draws, in
    # mpmath with (decades + 40) digits, exact to ~1e-40 relative. Tolerance 1e-12
    # relative: the entries are products of two float64 numbers each rounded to a
    # few ulps, and bidiagonal singular values move by at most ~(2N-1)·(entry error)
    # relative under entrywise perturbations (Demmel–Kahan), i.e. ~1e-14.
    n, beta, a, b = 12, 0.05 / 12, 0.05, 0.05
    x, y = sample_beta_jacobi_with_complement(seed, n, beta, a, b)
    d11, e11, d21, e21 = (v[0] for v in _same_bidiagonals(seed, n, beta, a, b))
    decades = -math.log10(min(x[0], y[-1]))
    assert decades > 16  # the regime where 1 - x in float64 would fail
    with mpmath.workdps(int(2 * decades) + 40):
        for diag, sup, values in ((d11, e11, x), (d21, e21, y[::-1])):
            bmat = mpmath.zeros(n, n)
            for k in range(n):
                bmat[k, k] = mpmath.mpf(float(diag[k]))
                if k < n - 1:
                    bmat[k, k + 1] = mpmath.mpf(float(sup[k]))
            ev = mpmath.eigsy(bmat.T * bmat, eigvals_only=True)
            ref = np.array(sorted(float(e) for e in ev))
            np.testing.assert_allclose(values, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("n", "kappa"), [(200, 0.05), (2000, 0.01)])
def test_small_kappa_determinant_invariants(n, kappa):
    # Exact invariants of the bidiagonals: Π x = det(B11)² = Π d11² and
    # Π (1-x) = det(B21)² = Π d21², dominated by the tiny values at each end. A
    # relative error δ per value moves Σ log by <= Nδ; tolerance 1e-9 absolute
    # allows δ ~ 5e-13 at N = 2000 (measured: <= 4e-12 in total, the rounding
    # of the sums themselves).
    beta, a, b = kappa / n, 0.04, 0.04
    x, y = sample_beta_jacobi_with_complement(n, n, beta, a, b)
    d11, _, d21, _ = (v[0] for v in _same_bidiagonals(n, n, beta, a, b))
    assert x[0] < 1e-30 and y[-1] < 1e-30  # spans decades at both ends
    assert np.sum(np.log(x)) == pytest.approx(2 * np.sum(np.log(d11)), abs=1e-9, rel=0)
    assert np.sum(np.log(y)) == pytest.approx(2 * np.sum(np.log(d21)), abs=1e-9, rel=0)
    # Power: 1 - x formed in float64 from x loses the values near 1 entirely.
    with np.errstate(divide="ignore"):
        assert not np.isfinite(np.sum(np.log1p(-x)))


# --------------------------------------------------------------------------------------
# β-prime
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "kappa", "a", "bp", "scale", "reps"),
    [(30, 3.0, 1.2, 2.5, 0.7, 1500), (300, 0.03, 0.04, 0.05, 5.0, 300)],
)
def test_betaprime_log_moments(n, kappa, a, bp, scale, reps):
    # log Z_N(a, b, c) of the β-prime gas has ∂_a log Z = E[Σ log λ - Σ log(1+λ/c)]
    # and ∂_b log Z = -E[Σ log(1+λ/c)] (the weight is λ^{a-1}(1+λ/c)^{-(a+b)-β(N-1)}).
    # z-tests as above, |z| < 4.5. The small-κ case has λ/c up to ~1e100, which only
    # an accurate 1 - x resolves.
    beta = kappa / n
    lam = sample_betaprime(n + 1, n, beta, a, bp, scale, size=reps)
    assert np.all(np.isfinite(lam)) and np.all(lam > 0)
    grad_a, grad_b = jax.grad(betaprime_log_normalizer, argnums=(2, 3))(
        n, beta, a, bp, scale
    )
    sum_log1p = np.log1p(lam / scale).sum(axis=1)
    assert abs(_z(-sum_log1p, float(grad_b))) < Z_MAX
    assert abs(_z(np.log(lam).sum(axis=1) - sum_log1p, float(grad_a))) < Z_MAX
    if kappa < 1:
        assert lam.max() / scale > 1e20


def test_betaprime_is_the_jacobi_image():
    # Same key, same Jacobi draw: λ = c x/(1-x) with the accurate complement.
    x, y = sample_beta_jacobi_with_complement(9, 7, 0.4, 0.3, 0.6, size=4)
    lam = sample_betaprime(9, 7, 0.4, 0.3, 0.6, 2.0, size=4)
    np.testing.assert_allclose(lam, 2.0 * x / y, rtol=1e-15)
    assert np.all(np.diff(lam, axis=1) >= 0)


# --------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------


def test_shapes_sorting_and_reproducibility():
    one = sample_beta_jacobi(3, 6, 0.5, 1.0, 2.0)
    assert one.shape == (6,)
    many = sample_beta_jacobi(np.random.default_rng(3), 6, 0.5, 1.0, 2.0, size=5)
    assert many.shape == (5, 6)
    assert np.all(np.diff(many, axis=1) >= 0) and np.all((many >= 0) & (many <= 1))
    key = jax.random.key(4)
    np.testing.assert_array_equal(
        sample_beta_jacobi(key, 6, 0.5, 1.0, 2.0, size=2),
        sample_beta_jacobi(key, 6, 0.5, 1.0, 2.0, size=2),
    )
    np.testing.assert_array_equal(
        sample_betaprime(7, 6, 0.5, 1.0, 2.0, 3.0),
        sample_betaprime(7, 6, 0.5, 1.0, 2.0, 3.0),
    )


@pytest.mark.parametrize(
    "args",
    [
        (0, 1.0, 1.0, 1.0),
        (3, 0.0, 1.0, 1.0),
        (3, 1.0, -1.0, 1.0),
        (3, 1.0, 1.0, np.nan),
    ],
)
def test_bad_input_raises(args):
    with pytest.raises(HTMPError):
        sample_beta_jacobi(0, *args)


def test_bad_scale_and_size_raise():
    with pytest.raises(HTMPError, match="scale"):
        sample_betaprime(0, 3, 1.0, 1.0, 1.0, -2.0)
    with pytest.raises(HTMPError, match="size"):
        sample_beta_jacobi(0, 3, 1.0, 1.0, 1.0, size=0)
