r"""The Selberg (Laguerre) normaliser against independent evaluations.

``laguerre_log_normalizer(n, beta, shape, rate)`` is

.. math::

    \log Z_N = \log\int_{(0,\infty)^N}\prod_{i<j}|\lambda_i-\lambda_j|^\beta
               \prod_i\lambda_i^{\alpha-1}e^{-\vartheta\lambda_i}\,d\lambda

(unordered eigenvalues). It is checked against

* adaptive quadrature (QUADPACK through ``scipy.integrate``) for N = 2 and N = 3 on
  a grid of (β, α, ϑ), using the ordered-simplex substitution
  :math:`\lambda_N = r`, :math:`\lambda_{k} = r\,v_{k}\cdots` (see ``_log_z2`` and
  ``_log_z3``), and, without any analytic step, full 2-D and 3-D quadrature;
* the Heine identity for β = 2 (a Hankel determinant of Gamma moments);
* the β → 0 limit (independent Gamma variables);
* the rate scaling law :math:`Z(\vartheta) = \vartheta^{-E}Z(1)`;
* and ``laguerre_log_marginal`` against quadrature of the likelihood over the rate.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from scipy import integrate
from scipy.special import gammaln

import htmp_infer  # noqa: F401  (enables jax x64)
from htmp_infer.ensembles.likelihood import (
    laguerre_log_likelihood,
    laguerre_log_marginal,
)
from htmp_infer.ensembles.selberg import laguerre_log_normalizer
from htmp_infer.spectrum import Spectrum

BETAS = [0.5, 1.0, 2.0, 0.01]
ALPHAS = [0.7, 1.5, 3.0]
RATES = [0.5, 2.3]


def _quad(f, a, b, **kw):
    """``scipy.integrate.quad`` that fails the test on any IntegrationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", integrate.IntegrationWarning)
        return integrate.quad(f, a, b, epsabs=0.0, limit=200, **kw)


def _log_z2(beta: float, alpha: float, rate: float) -> tuple[float, float]:
    r"""log Z_2 by quadrature; returns (value, relative error estimate).

    Order 0 < λ1 < λ2 (factor 2! for the unordered integral) and put λ2 = r,
    λ1 = r u with u ∈ (0, 1), Jacobian r. The integrand becomes
    r^{E-1} e^{-ϑ r (1+u)} · u^{α-1} (1-u)^β with E = 2α + β; the r integral is
    Γ(E) (ϑ(1+u))^{-E}. The remaining u integral carries the algebraic endpoint
    factors u^{α-1}(1-u)^β, which QUADPACK's QAWS rule (``weight="alg"``)
    integrates exactly, so the smooth rest (1+u)^{-E} converges fast.
    """
    e = 2 * alpha + beta
    val, err = _quad(
        lambda u: (1.0 + u) ** (-e),
        0.0,
        1.0,
        weight="alg",
        wvar=(alpha - 1.0, beta),
        epsrel=1e-12,
    )
    log_z = math.log(2.0) + math.lgamma(e) - e * math.log(rate) + math.log(val)
    return log_z, err / val


def _log_z3(beta: float, alpha: float, rate: float) -> tuple[float, float]:
    r"""log Z_3 by quadrature; returns (value, relative error estimate).

    Order 0 < λ1 < λ2 < λ3 (factor 3!) and map the simplex to a cube:
    λ3 = r, λ2 = r v, λ1 = r v u with u, v ∈ (0, 1), Jacobian r² v. Then

    |Δ|^β = r^{3β} v^β (1-v)^β (1-uv)^β (1-u)^β,
    ∏λ^{α-1} = r^{3α-3} v^{2α-2} u^{α-1},

    so the integrand is r^{E-1} e^{-ϑ r (1+v+uv)} times
    u^{α-1}(1-u)^β · v^{2α+β-1}(1-v)^β · (1-uv)^β with E = 3α + 3β. The r integral
    is Γ(E) (ϑ(1+v+uv))^{-E}, leaving a 2-D integral whose endpoint singularities
    are handled exactly by QAWS in both variables. The inner tolerance (1e-13) is
    100x tighter than the outer one so that the outer error estimate (1e-11)
    bounds the total.
    """
    e = 3 * alpha + 3 * beta

    def inner(v: float) -> float:
        val, _ = _quad(
            lambda u: (1.0 - u * v) ** beta * (1.0 + v + u * v) ** (-e),
            0.0,
            1.0,
            weight="alg",
            wvar=(alpha - 1.0, beta),
            epsrel=1e-13,
        )
        return val

    val, err = _quad(
        inner, 0.0, 1.0, weight="alg", wvar=(2 * alpha + beta - 1.0, beta), epsrel=1e-11
    )
    log_z = math.log(6.0) + math.lgamma(e) - e * math.log(rate) + math.log(val)
    return log_z, err / val


def _lib(n: int, beta: float, alpha: float, rate: float) -> float:
    return float(laguerre_log_normalizer(n, beta, alpha, rate))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("beta", BETAS)
def test_selberg_n2_n3_against_quadrature(beta, alpha, rate):
    # Quadrature relative error estimates are <= 1e-11 (asserted); a relative
    # error r in Z is an absolute error r in log Z. The tolerance 1e-9 leaves a
    # 100x margin over the estimate, and float64 evaluation of the library's
    # gammaln sum is good to ~1e-14 here.
    for n, ref in ((2, _log_z2), (3, _log_z3)):
        log_z, rel_err = ref(beta, alpha, rate)
        assert rel_err < 1e-10
        assert _lib(n, beta, alpha, rate) == pytest.approx(log_z, abs=1e-9, rel=0)


@pytest.mark.parametrize(
    ("beta", "alpha", "rate"),
    [(0.5, 0.7, 1.0), (1.0, 1.5, 0.7), (2.0, 3.0, 2.0), (0.01, 1.5, 0.5)],
)
def test_selberg_n2_full_2d_quadrature(beta, alpha, rate):
    # No analytic step at all: dblquad of the raw integrand over the ordered
    # region 0 < λ1 < λ2 < ∞, times 2!. Requested relative accuracy 1e-10;
    # asserted agreement 1e-8 in log Z (100x the requested accuracy, since the
    # nested estimate ignores the inner rule's error).
    def f(l1: float, l2: float) -> float:
        return (
            (l2 - l1) ** beta * (l1 * l2) ** (alpha - 1) * math.exp(-rate * (l1 + l2))
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error", integrate.IntegrationWarning)
        val, err = integrate.dblquad(
            f, 0.0, np.inf, 0.0, lambda l2: l2, epsabs=0.0, epsrel=1e-10
        )
    assert err / val < 1e-9
    assert _lib(2, beta, alpha, rate) == pytest.approx(
        math.log(2 * val), abs=1e-8, rel=0
    )


@pytest.mark.parametrize(("beta", "alpha", "rate"), [(2.0, 3.0, 2.0), (1.0, 3.0, 1.0)])
def test_selberg_n3_full_3d_quadrature(beta, alpha, rate):
    # No analytic step: a 3-D nquad of the raw integrand over the ordered simplex
    # in the coordinates λ3 = r ∈ (0, ∞), λ2 = r v, λ1 = r v u (u, v ∈ (0, 1);
    # Jacobian r² v), times 3!. Parameters where the integrand is smooth keep this
    # under a second. Requested relative accuracy 1e-7 at every level, error
    # estimate asserted < 1e-6, agreement asserted to 1e-5 in log Z (10x the
    # estimate). epsabs = 1e-30 only stops QUADPACK from chasing relative accuracy
    # on inner integrals that underflow (r → 0 or ∞); Z itself is > 1e-2 here.
    def f(u: float, v: float, r: float) -> float:
        l3, l2, l1 = r, r * v, r * v * u
        dens = ((l3 - l2) * (l3 - l1) * (l2 - l1)) ** beta * (l1 * l2 * l3) ** (
            alpha - 1
        )
        return dens * math.exp(-rate * (l1 + l2 + l3)) * r * r * v

    with warnings.catch_warnings():
        warnings.simplefilter("error", integrate.IntegrationWarning)
        val, err = integrate.nquad(
            f,
            [(0.0, 1.0), (0.0, 1.0), (0.0, np.inf)],
            opts={"epsabs": 1e-30, "epsrel": 1e-7, "limit": 200},
        )
    assert val > 1e-2
    assert err / val < 1e-6
    assert _lib(3, beta, alpha, rate) == pytest.approx(
        math.log(6 * val), abs=1e-5, rel=0
    )


@pytest.mark.parametrize("alpha", [0.7, 3.0])
@pytest.mark.parametrize("n", [2, 4, 7])
def test_selberg_beta2_heine_identity(n, alpha):
    # For β = 2, Andréief/Heine: Z_N = N! det[m_{i+j}]_{i,j<N}, the Hankel
    # determinant of the one-body moments m_k = Γ(α+k) ϑ^{-(α+k)}. Evaluated in
    # 60-digit arithmetic, so the reference is exact to ~1e-40; the tolerance
    # 1e-11 (relative in log Z) covers float64 rounding of the O(N) gammaln sum.
    rate = 1.7
    with mpmath.workdps(60):
        h = mpmath.matrix(n, n)
        for i in range(n):
            for j in range(n):
                k = alpha + i + j
                h[i, j] = mpmath.gamma(k) * mpmath.mpf(rate) ** (-k)
        ref = float(mpmath.log(mpmath.factorial(n) * mpmath.det(h)))
    assert _lib(n, 2.0, alpha, rate) == pytest.approx(ref, rel=1e-11, abs=1e-11)


@pytest.mark.parametrize("n", [1, 7, 50])
def test_selberg_small_beta_limit_is_independent_gammas(n):
    # At β → 0 the gas is N independent Gamma(α, ϑ) variables:
    # Z = (Γ(α) ϑ^{-α})^N. With β = 1e-13 the β-dependent terms are
    # O(β N² log N) < 1e-8 at N = 50 and < 1e-10 at N <= 7.
    beta = 1e-13
    for alpha, rate in [(0.3, 0.5), (2.5, 3.0)]:
        ref = n * (gammaln(alpha) - alpha * math.log(rate))
        tol = 1e-8 if n > 7 else 1e-10
        assert _lib(n, beta, alpha, rate) == pytest.approx(ref, abs=tol, rel=0)


@pytest.mark.parametrize("n", [1, 2, 3, 50, 1000])
def test_selberg_rate_scaling_law(n):
    # Substituting λ = μ/ϑ gives Z(ϑ) = ϑ^{-E} Z(1) with E = Nα + βN(N-1)/2.
    # The tolerance is relative to the size of the terms (1e-13 of |log Z| +
    # |E log ϑ|), i.e. float64 rounding of a sum of O(N) terms.
    for beta, alpha in [(0.01, 0.7), (1.0, 1.5), (2.0 / n, 3.0)]:
        energy = n * alpha + beta * n * (n - 1) / 2
        z1 = _lib(n, beta, alpha, 1.0)
        for rate in [0.01, 0.5, 7.0]:
            expected = z1 - energy * math.log(rate)
            scale = abs(z1) + abs(energy * math.log(rate)) + 1.0
            assert _lib(n, beta, alpha, rate) == pytest.approx(
                expected, abs=1e-13 * scale, rel=0
            )


def test_selberg_broadcasts_over_parameter_arrays():
    # Vectorised evaluation must equal the scalar loop (used by grid searches).
    betas = jnp.array([0.01, 0.5, 2.0])[:, None]
    alphas = jnp.array([0.7, 3.0])[None, :]
    out = np.asarray(laguerre_log_normalizer(20, betas, alphas, 1.3))
    assert out.shape == (3, 2)
    for i, b in enumerate([0.01, 0.5, 2.0]):
        for j, a in enumerate([0.7, 3.0]):
            assert out[i, j] == pytest.approx(_lib(20, b, a, 1.3), rel=1e-14, abs=0)


@pytest.mark.parametrize(("beta", "alpha"), [(0.5, 0.7), (1.0, 2.0), (0.05, 0.02)])
def test_log_marginal_equals_rate_integral_of_likelihood(beta, alpha):
    # laguerre_log_marginal = log ∫_0^∞ p(λ | β, α, ϑ) dϑ/ϑ. Reference: quadrature
    # of the library likelihood in t = log ϑ (dϑ/ϑ = dt), with the integrand
    # divided by its value at the mode ϑ* = E/S so the quadrature sees O(1)
    # numbers. The likelihood is ϑ^E e^{-ϑS}, a log-Gamma bump in t of width
    # 1/sqrt(E), so ±40/sqrt(E) (plus a margin) around the mode holds all the
    # mass to far below 1e-12. Requested relative accuracy 1e-12; tolerance 1e-9.
    spec = Spectrum.from_eigenvalues([0.31, 1.1, 2.5, 4.0, 0.07], n_cols=9)
    stats = spec.stats
    n = stats.n
    energy = n * alpha + beta * n * (n - 1) / 2
    t_mode = math.log(energy / stats.total)

    # jit: the quadrature calls this a few hundred times.
    loglik_jit = jax.jit(
        lambda t: laguerre_log_likelihood(stats, beta, alpha, jnp.exp(t))
    )

    def loglik(t: float) -> float:
        return float(loglik_jit(t))

    peak = loglik(t_mode)
    half = 40.0 / math.sqrt(energy) + 5.0
    val, err = _quad(
        lambda t: math.exp(loglik(t) - peak),
        t_mode - half,
        t_mode + half,
        points=[t_mode],
        epsrel=1e-12,
    )
    assert err / val < 1e-10
    ref = peak + math.log(val)
    assert float(laguerre_log_marginal(stats, beta, alpha)) == pytest.approx(
        ref, abs=1e-9, rel=0
    )
