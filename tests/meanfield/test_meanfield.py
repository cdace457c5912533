r"""Mean-field free energy φ(κ, w) of the one-body Coulomb gas against exact results.

* the log-potential operator of the grid solver against mpmath quadrature;
* κ = 0: φ = log ∫ w (QUADPACK);
* Laguerre weight: the equilibrium density is the HTMP limit density
  (``htmp_infer.limit.htmp_pdf``) and ``log Z_N - N φ`` from the exact Selberg
  normaliser has no term growing with N; envelope derivatives equal those of
  ``log Z_N / N`` up to O(1/N);
* β-prime weight (s = ∞) and inverse-Laguerre weight (h > 0, s = c = ∞): the
  same against the exact β-Jacobi / Laguerre normalisers;
* a general weight with h > 0: φ against an independent finer, wider grid, and
  envelope gradients against central finite differences;
* the JAX entry point under jit / grad / vmap, and bad input.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from scipy import integrate

import htmp_infer  # noqa: F401  (enables jax x64)
from htmp_infer.ensembles.jacobi import betaprime_log_normalizer
from htmp_infer.ensembles.selberg import laguerre_log_normalizer
from htmp_infer.errors import HTMPError
from htmp_infer.limit import htmp_pdf
from htmp_infer.meanfield import _solver as ms
from htmp_infer.meanfield.free_energy import equilibrium, meanfield_phi

NS = (250, 1000, 4000, 16000)  # the remainder table
# The drift fit needs N large enough for the 1/N expansion (in powers of κ/N)
# to be captured by two terms: at κ = 50 the set NS leaves 6e-9, this one 3e-17.
NS_DRIFT = (4000, 16000, 64000, 256000)


def _linear_drift(n_values: tuple[int, ...], remainders: list[float]) -> float:
    r"""Coefficient ε of the fit :math:`r_N = εN + r_\infty + c_1/N + c_2/N^2`.

    Four N and four unknowns: an exact solve. A φ that is off by ε makes
    ``log Z_N - N φ`` drift like εN, which this isolates from the O(1) and
    O(1/N) parts of the true remainder.
    """
    n = np.asarray(n_values, dtype=np.float64)
    design = np.stack([n, np.ones_like(n), 1.0 / n, 1.0 / n**2], axis=1)
    coef = np.linalg.solve(design, np.asarray(remainders))
    return float(coef[0])


def test_potential_operator_matches_quadrature() -> None:
    # U(x) = ∫ log|x - y| y e^{-y} dy for the Gamma(2) law, with p(t) = x^2 e^{-x}
    # the density of t = log x; mpmath splits the integral at the singularity.
    grid = ms.make_grid(math.log(1e-9), math.log(60.0), 0.1)
    x = np.exp(grid.t)
    u = ms.potential(grid, x**2 * np.exp(-x))
    for target in (0.01, 0.5, 3.0, 10.0):
        i = int(np.argmin(np.abs(x - target)))
        xi = mpmath.mpf(float(x[i]))
        ref = mpmath.quad(
            lambda y, xi=xi: mpmath.log(abs(xi - y)) * y * mpmath.exp(-y),
            [0, xi, mpmath.inf],
        )
        # spectral: the Fourier multiplier is exact and p is analytic in t, so
        # even h = 0.1 reaches rounding (~1e-15); 1e-12 leaves a wide margin
        assert abs(u[i] - float(ref)) < 1e-12


@pytest.mark.parametrize(
    ("a", "b", "c", "h", "s"),
    [
        (0.5, 0.0, math.inf, 0.0, 1.0),
        (1.5, 1.0, 2.0, 0.3, 1.0),
        (-0.7, 0.0, math.inf, 2.0, 0.5),
        (0.8, 4.0, 3.0, 0.0, math.inf),
    ],
)
def test_kappa_zero_is_log_integral_of_weight(
    a: float, b: float, c: float, h: float, s: float
) -> None:
    def w(x: float) -> float:
        out = x ** (a - 1.0) * math.exp(-h / x - (x / s if math.isfinite(s) else 0))
        return out * (1.0 + x / c) ** (-b) if math.isfinite(c) else out

    # QUADPACK on (0, 1) and (1, ∞) with epsrel 1e-13; the solver's trapezoid
    # sum in log x is spectrally accurate, so 1e-11 absolute is generous
    ref = sum(
        integrate.quad(w, lo, hi, epsabs=0.0, epsrel=1e-13, limit=500)[0]
        for lo, hi in ((0.0, 1.0), (1.0, math.inf))
    )
    assert abs(equilibrium(0.0, a, b, c, h, s).phi - math.log(ref)) < 1e-11


@pytest.mark.parametrize(
    ("kappa", "a", "s"), [(0.01, 0.3, 1.0), (1.9, 1.0, 2.0), (50.0, 20.0, 0.5)]
)
def test_laguerre_density_is_htmp_limit(kappa: float, a: float, s: float) -> None:
    eq = equilibrium(kappa, a, s=s)
    gamma = kappa / (kappa + 2.0 * a)
    mean = s * (a + kappa / 2.0)
    keep = eq.density * eq.x > 1e-8 * np.max(eq.density * eq.x)
    x, rho = eq.x[keep][::5], eq.density[keep][::5]
    ref = htmp_pdf(x / mean, gamma, kappa) / mean
    # two independent methods (Riccati/Radau continuation vs this grid solver);
    # both reach ~1e-13, measured max deviation 1e-13: 1e-9 leaves a margin
    assert np.max(np.abs(rho / ref - 1.0)) < 1e-9
    assert abs(eq.mean_x / mean - 1.0) < 1e-11  # exact mean s(a + κ/2)
    # E log x of the HTMP law (docs/maths.md §2.2): -(2/κ)[lnΓ(δ) - lnΓ(b+δ)] - log θ
    theta = a + kappa / 2.0
    e_log = -(2.0 / kappa) * (math.lgamma(a) - math.lgamma(theta)) - math.log(theta)
    assert abs(eq.mean_log_x - (e_log + math.log(mean))) < 1e-10


def _selberg_laguerre(n: int, kappa: float, a: float, s: float) -> float:
    return float(laguerre_log_normalizer(n, kappa / n, a, 1.0 / s))


@pytest.mark.parametrize(
    ("kappa", "a", "s"), [(0.01, 0.3, 1.0), (1.9, 1.0, 2.0), (50.0, 20.0, 0.5)]
)
def test_laguerre_selberg_remainder_is_bounded(
    kappa: float, a: float, s: float
) -> None:
    eq = equilibrium(kappa, a, s=s)
    r = [_selberg_laguerre(n, kappa, a, s) - n * eq.phi for n in NS]
    # log Z_N = Nφ + r_∞ + O(1/N): successive differences shrink ~4x per 4x N
    # (measured 0.0018, 4.4e-4, 1.1e-4 at κ = 1.9; 1.43, 0.37, 0.094 at κ = 50)
    d = np.diff(r)
    assert abs(d[-1]) < 0.1 * max(1.0, kappa) / 4000.0 * 100.0
    assert np.all(np.abs(d[1:]) < 0.3 * np.abs(d[:-1]) + 1e-9)
    # a φ error ε would add εN; the fit isolates it (measured |ε| <= 5e-15).
    # Selberg rounding (5e-14 Σ|terms|, htmp_infer.ensembles.selberg) at N = 256000 is
    # <~ 1e-6 absolute, i.e. ~1e-12 in ε: 1e-11 |φ| is the resolvable bound
    r2 = [_selberg_laguerre(n, kappa, a, s) - n * eq.phi for n in NS_DRIFT]
    assert abs(_linear_drift(NS_DRIFT, r2)) < 1e-11 * max(1.0, abs(eq.phi))


@pytest.mark.parametrize(("kappa", "a", "s"), [(1.9, 1.0, 2.0), (8.0, 3.0, 1.5)])
def test_laguerre_envelope_gradient_matches_selberg(
    kappa: float, a: float, s: float
) -> None:
    eq = equilibrium(kappa, a, s=s)
    env = np.array([eq.grad[0], eq.grad[1], eq.grad[5]])
    diffs = []
    for n in (4000, 16000):

        def f(theta: jax.Array, n: int = n) -> jax.Array:
            return (
                laguerre_log_normalizer(n, theta[0] / n, theta[1], 1.0 / theta[2]) / n
            )

        g = np.asarray(jax.grad(f)(jnp.array([kappa, a, s])))
        diffs.append(np.abs(g - env))
    # ∂(log Z_N / N) = ∂φ + O(1/N): the gap is below 20/N and shrinks ~4x
    # from N = 4000 to 16000 (ratio test at 0.35 rejects a constant offset)
    assert np.all(diffs[1] < 20.0 / 16000.0)
    assert np.all(diffs[1] < 0.35 * diffs[0] + 1e-9)


@pytest.mark.parametrize(
    ("kappa", "a", "b", "c"), [(0.5, 1.0, 4.0, 1.0), (2.0, 0.7, 6.0, 3.0)]
)
def test_betaprime_selberg_remainder_and_gradient(
    kappa: float, a: float, b: float, c: float
) -> None:
    eq = equilibrium(kappa, a, b=b, c=c, s=math.inf)

    # gas weight λ^{a-1}(1+λ/c)^{-(a+b')-β(N-1)}: b = a + b' + β(N-1)
    def log_z(theta: jax.Array, n: int) -> jax.Array:
        k, aa, bb, cc = theta[0], theta[1], theta[2], theta[3]
        beta = k / n
        return betaprime_log_normalizer(n, beta, aa, bb - aa - beta * (n - 1), cc)

    theta = jnp.array([kappa, a, b, c])
    r = [float(log_z(theta, n)) - n * eq.phi for n in NS]
    d = np.diff(r)
    # measured differences 2e-5, 5e-6, 1e-6 (κ = 0.5) and 9e-4, 2.3e-4, 5.8e-5
    assert abs(d[-1]) < 1e-3
    assert np.all(np.abs(d[1:]) < 0.3 * np.abs(d[:-1]) + 1e-9)
    r2 = [float(log_z(theta, n)) - n * eq.phi for n in NS_DRIFT]
    assert abs(_linear_drift(NS_DRIFT, r2)) < 1e-11 * max(1.0, abs(eq.phi))
    env = eq.grad[:4]
    g = [np.asarray(jax.grad(log_z)(theta, n)) / n for n in (4000, 16000)]
    gaps = [np.abs(gi - env) for gi in g]
    assert np.all(gaps[1] < 20.0 / 16000.0)  # O(1/N), see the Laguerre test
    assert np.all(gaps[1] < 0.35 * gaps[0] + 1e-9)


def test_inverse_laguerre_weight_with_hard_edge() -> None:
    # x^{a-1} e^{-h/x} with s = c = ∞ is the law of 1/λ, λ β-Laguerre with
    # α = -a - β(N-1), rate h
    # (htmp_infer.ensembles.jacobi.inverse_laguerre_log_likelihood)
    kappa, a, h = 1.0, -3.0, 2.0
    eq = equilibrium(kappa, a, h=h, s=math.inf)

    def rem(n: int) -> float:
        alpha = -a - kappa * (n - 1) / n
        return float(laguerre_log_normalizer(n, kappa / n, alpha, h)) - n * eq.phi

    r = [rem(n) for n in NS]
    assert np.all(np.abs(np.diff(r)[1:]) < 0.3 * np.abs(np.diff(r)[:-1]) + 1e-9)
    r2 = [rem(n) for n in NS_DRIFT]
    assert abs(_linear_drift(NS_DRIFT, r2)) < 1e-11 * max(1.0, abs(eq.phi))
    # E[1/x] = E[λ] = (α + κ/2)/h in the limit: ∂φ/∂h = -E[1/x]
    assert abs(eq.grad[4] + (-a - kappa + kappa / 2.0) / h) < 1e-11


GENERAL = (3.0, 1.5, 1.0, 2.0, 0.3, 1.0)  # κ, a, b, c, h, s: no closed form


def test_general_weight_against_finer_grid() -> None:
    eq = equilibrium(*GENERAL)
    kappa, a, b, c, h, s = GENERAL
    weight = ms.Weight(a, b, c, h, s)
    t = eq.log_x
    # independent brute force: twice wider box, half the spacing, own start
    width = t[-1] - t[0]
    grid = ms.make_grid(t[0] - width / 2.0, t[-1] + width / 2.0, (t[1] - t[0]) / 2.0)
    sol = ms.solve(grid, weight.log_w_t(grid.t), kappa, np.logaddexp(grid.t, 0.0))
    phi = sol.log_c - 0.5 * kappa * grid.h * float(np.dot(sol.p, sol.u))
    # both spectrally converged; the difference is rounding (measured ~1e-15)
    assert abs(phi - eq.phi) < 1e-12


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5])
def test_general_weight_envelope_gradient_matches_finite_differences(
    index: int,
) -> None:
    base = np.array(GENERAL)
    step = 1e-4 * max(1.0, abs(base[index]))
    vals = []
    for sign in (1.0, -1.0):
        th = base.copy()
        th[index] += sign * step
        vals.append(equilibrium(*th).phi)
    fd = (vals[0] - vals[1]) / (2.0 * step)
    # central difference: truncation φ'''·step²/6 ~ 1e-9, rounding 1e-13/step
    # ~ 1e-9; 1e-7 absolute separates them from any wrong formula
    assert abs(fd - equilibrium(*base).grad[index]) < 1e-7


def test_jax_entry_point_jit_grad_vmap() -> None:
    theta = jnp.array(GENERAL)
    eq = equilibrium(*GENERAL)

    def phi_of(th: jax.Array) -> jax.Array:
        return meanfield_phi(th[0], th[1], th[2], th[3], th[4], th[5])

    value, grad = jax.jit(jax.value_and_grad(phi_of))(theta)
    # warm solves agree with cold ones to the Newton tolerance (~1e-13)
    assert abs(float(value) - eq.phi) < 1e-11
    np.testing.assert_allclose(np.asarray(grad), eq.grad, rtol=0, atol=1e-10)
    step = 1e-4
    e0 = jnp.zeros(6).at[0].set(step)
    fd = (float(phi_of(theta + e0)) - float(phi_of(theta - e0))) / (2.0 * step)
    assert abs(fd - float(grad[0])) < 1e-7  # as in the finite-difference test
    kappas = jnp.array([0.5, 3.0])
    batch = jax.vmap(lambda k: meanfield_phi(k, 1.5, 1.0, 2.0, 0.3, 1.0))(kappas)
    for k, v in zip(kappas, np.asarray(batch), strict=True):
        assert abs(v - equilibrium(float(k), 1.5, 1.0, 2.0, 0.3, 1.0).phi) < 1e-11
    # a fixed parameter whose envelope derivative is infinite (E[1/x] at h = 0)
    # must not poison the others with inf * 0 = nan
    g_a = jax.grad(lambda a: meanfield_phi(1.9, a, 0.0, math.inf, 0.0, 1.0))(0.8)
    assert abs(float(g_a) - equilibrium(1.9, 0.8).grad[1]) < 1e-10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kappa": -1.0, "a": 1.0},
        {"kappa": 1.0, "a": 0.0},
        {"kappa": 1.0, "a": 1.0, "b": -1.0},
        {"kappa": 1.0, "a": 1.0, "c": 0.0},
        {"kappa": 1.0, "a": 1.0, "s": 0.0},
        {"kappa": 1.0, "a": 1.0, "b": 1.5, "c": 1.0, "s": math.inf},
        {"kappa": 1.0, "a": 1.0, "h": math.nan},
    ],
)
def test_bad_input_raises(kwargs: dict[str, float]) -> None:
    with pytest.raises(HTMPError):
        equilibrium(**kwargs)
