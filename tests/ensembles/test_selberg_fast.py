r"""The O(1) Euler–Maclaurin Selberg normaliser against exact sums.

``laguerre_shape_log_normalizer(n, β, α)`` replaces the O(N) sum

.. math::

    c = \sum_{j=0}^{N-1}\bigl[\ln\Gamma(\alpha + j\beta/2)
        + \ln\Gamma(1 + (j+1)\beta/2)\bigr] - N\ln\Gamma(1+\beta/2)

by a head sum, Euler–Maclaurin and a closed-form integral of ln Γ. The reference
here is independent of JAX: ``scipy.special.gammaln``/``digamma`` term by term
(each good to ~1 ulp, checked against mpmath below) summed with ``math.fsum``, so
the reference carries no O(N) rounding of its own.

Tolerances (value): ``1e-9·max(1, |c|)`` everywhere and ``1e-6`` absolute wherever
``|c| ≤ 1e8``; in addition ``1e-12·Σ|terms|``, which is ~20× the rounding actually
observed (≤ 5e-14·Σ|terms|), to catch any loss of digits. Gradients: ``1e-8``
relative (absolute below 1); observed ≤ 5e-14.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from scipy.special import digamma, gammaln, polygamma

import htmp_infer  # noqa: F401  (enables jax x64)
from htmp_infer.ensembles import selberg
from htmp_infer.ensembles.selberg import (
    laguerre_log_normalizer,
    laguerre_shape_log_normalizer,
    laguerre_shape_log_normalizer_exact,
    laguerre_shape_log_normalizer_sizes,
)

NS = [2, 3, 17, 64, 300, 1000, 4096, 16384]
GAMMAS = [0.01, 0.3255, 0.5, 1.0]


def _kappas(n: int) -> list[float]:
    return [1e-4, 1e-3, 0.1, 1.0, 1.9, 5.5, 20.0, 100.0, 1e3, 1e4, float(n), 4.0 * n]


def _reference(n: int, beta: float, alpha: float) -> dict[str, float]:
    """fsum of scipy terms: value, d/dβ, d/dα, d/dlog κ (β, α ∝ κ) and scales."""
    g = beta / 2.0
    j = np.arange(n, dtype=np.float64)
    x1 = alpha + j * g
    x2 = 1.0 + (j + 1.0) * g
    t1, t2, t0 = gammaln(x1), gammaln(x2), -n * gammaln(1.0 + g)
    p1, p2, p0 = digamma(x1), digamma(x2), digamma(1.0 + g)
    d_beta = [p1 * j / 2, p2 * (j + 1) / 2, [-n * p0 / 2]]
    d_alpha = [p1]
    d_logk = [p1 * x1, p2 * (j + 1) * g, [-n * p0 * g]]
    return {
        "value": math.fsum(np.concatenate([t1, t2, [t0]])),
        "scale": math.fsum(np.abs(np.concatenate([t1, t2, [t0]]))),
        "d_beta": math.fsum(np.concatenate(d_beta)),
        "d_alpha": math.fsum(np.concatenate(d_alpha)),
        "d_logk": math.fsum(np.concatenate(d_logk)),
    }


def _reference_hessian(n: int, beta: float, alpha: float) -> dict[str, float]:
    """fsum of scipy trigamma terms: second derivatives in (β, α)."""
    g = beta / 2.0
    j = np.arange(n, dtype=np.float64)
    t1 = polygamma(1, alpha + j * g)
    t2 = polygamma(1, 1.0 + (j + 1) * g)
    t0 = polygamma(1, 1.0 + g)
    return {
        "bb": math.fsum(np.concatenate([t1 * j**2, t2 * (j + 1) ** 2, [-n * t0]])) / 4,
        "ba": math.fsum(t1 * j) / 2,
        "aa": math.fsum(t1),
    }


def _check_value(got: float, ref: dict[str, float], label: str) -> None:
    exact = ref["value"]
    err = abs(got - exact)
    assert err <= 1e-9 * max(1.0, abs(exact)), (label, got, exact, err)
    if abs(exact) <= 1e8:
        assert err <= 1e-6, (label, got, exact, err)
    assert err <= 1e-12 * max(1.0, ref["scale"]), (label, got, exact, err)


def _check_grad(got: float, exact: float, label: str) -> None:
    err = abs(got - exact)
    assert err <= 1e-8 * max(1.0, abs(exact)), (label, got, exact, err)


# --------------------------------------------------------------------------------------
# Accuracy on the grid
# --------------------------------------------------------------------------------------

# For N > 32 the public function is ``selberg._shape_log_normalizer_em(float(N), β/2,
# α)``; N only enters as a number there, so all N of the grid go through ONE jitted
# vmap(value_and_grad) with N as a batched argument (a jit per static N costs seconds
# of compile each). The public function itself, with static N, is checked against
# this path below, including jit + vmap + grad w.r.t. log κ.

_batched_em = jax.jit(
    jax.vmap(
        jax.value_and_grad(
            lambda n, b, a: selberg._shape_log_normalizer_em(n, b / 2.0, a),
            argnums=(1, 2),
        )
    )
)


def _htmp_points(n: int) -> list[tuple[float, float, str]]:
    """(β, α, label) for β = κ/N, α = β(M − N + 1)/2, M = N/γ (not an integer)."""
    pts = []
    for kappa in _kappas(n):
        for gm in GAMMAS:
            beta = kappa / n
            pts.append(
                (beta, beta * (n / gm - n + 1) / 2, f"kappa={kappa:g} gamma={gm}")
            )
    return pts


def _general_points() -> list[tuple[float, float, str]]:
    # α not tied to β: tiny and large shapes, β from 1e-9 (integral nearly constant
    # over a long range: the regime where [Λ(z2) − Λ(z1)]/g would cancel) to 10.
    return [
        (b, a, f"beta={b:g} alpha={a:g}")
        for b in [1e-9, 1e-3, 0.5, 2.0, 10.0]
        for a in [1e-3, 0.5, 3.0, 50.0]
    ]


#: (N, β, α) where second derivatives are checked by central differences of the
#: gradient. The last point puts the ln(1+q)/q series switch (q = d/z1 = 0.1 in
#: ``_mean_lngamma``) exactly at β, so the differences straddle it: the gradient is
#: continuous there. (At β ~ 1e-9 differences are ill-conditioned; the slow
#: jax.hessian test covers it.)
_FD_POINTS = [
    (1000, 1e-5, 3.0),
    (4096, 0.5, 1e-3),
    (65, 2e-6, 6e-5),
    (300, 0.02, 2.0),
    (1000, 2 * 0.3 / (1000 - 1 - 32 - 0.1 * 32), 3.0),
]
_FD_STEP = 1e-4
_HESSIAN_POINTS = [(1000, 1e-9, 3.0), *_FD_POINTS]


def test_fast_matches_exact_sum_on_grid():
    # HTMP grid: value and d/dlog κ = β ∂_β + α ∂_α (β and α both ∝ κ); general
    # (β, α): value, ∂_β and ∂_α. N = 65 is the smallest N on the Euler–Maclaurin
    # path. Plus central differences of the gradient at _FD_POINTS (second
    # derivatives without compiling jax.hessian; see the slow test below).
    rows = []
    for n in [n for n in NS if n > selberg._DIRECT_MAX_N] + [65]:
        rows += [(n, b, a, lab, True) for b, a, lab in _htmp_points(n)]
        rows += [(n, b, a, lab, False) for b, a, lab in _general_points()]
    fd_rows = []
    for n, b, a in _FD_POINTS:
        for sign in (1.0, -1.0):
            fd_rows.append((n, b * (1 + sign * _FD_STEP), a))
            fd_rows.append((n, b, a * (1 + sign * _FD_STEP)))
    args = [(r[0], r[1], r[2]) for r in rows] + fd_rows
    values, (d_beta, d_alpha) = _batched_em(
        *(jnp.array(c, dtype=jnp.float64) for c in zip(*args, strict=True))
    )
    for i, (n, beta, alpha, lab, htmp) in enumerate(rows):
        ref = _reference(n, beta, alpha)
        label = f"N={n} {lab}"
        _check_value(float(values[i]), ref, label)
        if htmp:
            d_logk = beta * float(d_beta[i]) + alpha * float(d_alpha[i])
            _check_grad(d_logk, ref["d_logk"], label + " d/dlogkappa")
        else:
            _check_grad(float(d_beta[i]), ref["d_beta"], label + " d/dbeta")
            _check_grad(float(d_alpha[i]), ref["d_alpha"], label + " d/dalpha")
    # Rows (β+, α), (β, α+), (β−, α), (β, α−) per point.
    db = np.asarray(d_beta)[len(rows) :].reshape(-1, 2, 2)
    da = np.asarray(d_alpha)[len(rows) :].reshape(-1, 2, 2)
    for k, (n, beta, alpha) in enumerate(_FD_POINTS):
        ref = _reference_hessian(n, beta, alpha)
        h_b, h_a = 2 * _FD_STEP * beta, 2 * _FD_STEP * alpha
        fd = {
            "bb": (db[k, 0, 0] - db[k, 1, 0]) / h_b,
            "ba": (da[k, 0, 0] - da[k, 1, 0]) / h_b,
            "aa": (da[k, 0, 1] - da[k, 1, 1]) / h_a,
        }
        for key, r in ref.items():
            assert fd[key] == pytest.approx(r, rel=1e-6), (n, beta, alpha, key)


@pytest.mark.parametrize("n", [n for n in NS if n <= selberg._DIRECT_MAX_N])
def test_small_n_grid_uses_the_direct_sum(n):
    pts = _htmp_points(n) + _general_points()
    values = laguerre_shape_log_normalizer(
        n, jnp.array([p[0] for p in pts]), jnp.array([p[1] for p in pts])
    )
    for (beta, alpha, lab), v in zip(pts, np.asarray(values), strict=True):
        _check_value(float(v), _reference(n, beta, alpha), lab)


@pytest.mark.parametrize("n", [4096])
def test_public_function_jit_vmap_grad_log_kappa(n):
    # The public function with static N under jit(vmap(value_and_grad)) w.r.t. log κ
    # (through both β and α), against the reference on the HTMP grid.
    pts = [(math.log(k), n / gm) for k in _kappas(n) for gm in GAMMAS]

    def potential(lk, mm):
        beta = jnp.exp(lk) / n
        return laguerre_shape_log_normalizer(n, beta, beta * (mm - n + 1) / 2)

    values, grads = jax.jit(jax.vmap(jax.value_and_grad(potential)))(
        jnp.array([p[0] for p in pts]), jnp.array([p[1] for p in pts])
    )
    for i, (lk, mm) in enumerate(pts):
        beta = math.exp(lk) / n
        ref = _reference(n, beta, beta * (mm - n + 1) / 2)
        label = f"N={n} kappa={math.exp(lk):g} gamma={n / mm:g}"
        _check_value(float(values[i]), ref, label)
        _check_grad(float(grads[i]), ref["d_logk"], label)


def test_reference_sum_agrees_with_mpmath():
    # The scipy + fsum reference itself, against 30-digit mpmath sums.
    for n, beta, alpha in [(300, 1.9 / 300, 1.9 / 300 * 301 / 2), (64, 1e-7, 3.0)]:
        with mpmath.workdps(30):
            g = mpmath.mpf(beta) / 2
            ref = mpmath.fsum(
                mpmath.loggamma(alpha + j * g) + mpmath.loggamma(1 + (j + 1) * g)
                for j in range(n)
            ) - n * mpmath.loggamma(1 + g)
        assert _reference(n, beta, alpha)["value"] == pytest.approx(
            float(ref), abs=1e-12, rel=0
        )


def test_exact_function_is_the_direct_sum():
    for n, beta, alpha in [(5, 0.7, 1.3), (1000, 0.01, 2.0), (4096, 2.0, 0.5)]:
        ref = _reference(n, beta, alpha)
        got = float(laguerre_shape_log_normalizer_exact(n, beta, alpha))
        assert got == pytest.approx(ref["value"], rel=1e-13, abs=1e-12)


def test_small_n_equals_the_direct_sum():
    for n in [1, 2, 17, 64]:
        for beta, alpha in [(0.3, 0.9), (4.0, 1e-3)]:
            fast = float(laguerre_shape_log_normalizer(n, beta, alpha))
            exact = float(laguerre_shape_log_normalizer_exact(n, beta, alpha))
            assert fast == pytest.approx(exact, rel=1e-15, abs=1e-13)


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------


def _barnes_lambda(z: mpmath.mpf) -> mpmath.mpf:
    """∫_0^z lnΓ(x) dx = z(1−z)/2 + (z/2) ln 2π + z lnΓ(z) − ln G(1+z)."""
    return (
        z * (1 - z) / 2
        + z / 2 * mpmath.log(2 * mpmath.pi)
        + z * mpmath.loggamma(z)
        - mpmath.log(mpmath.barnesg(1 + z))
    )


@pytest.mark.parametrize("z1", [1e-3, 0.5, 1.7, 17.0, 3e4])
@pytest.mark.parametrize("d", [1e-9, 1e-3, 0.5, 40.0, 3e4])
def test_mean_lngamma_against_barnes_g(z1, d):
    # (1/d)∫_{z1}^{z1+d} lnΓ: the Barnes-G closed form in 40-digit arithmetic (the
    # identity itself is checked against quadrature at one point). Full precision
    # even for d ≪ z1, where the difference form would cancel.
    with mpmath.workdps(40):
        a = mpmath.mpf(z1)
        b = a + mpmath.mpf(d)
        ref = (_barnes_lambda(b) - _barnes_lambda(a)) / mpmath.mpf(d)
        scale = max(1.0, abs(float(mpmath.loggamma(b))))
    got = float(selberg._mean_lngamma(jnp.asarray(z1), jnp.asarray(d)))
    assert got == pytest.approx(float(ref), abs=2e-14 * scale, rel=0)


def test_barnes_g_integral_identity():
    with mpmath.workdps(30):
        for z in [mpmath.mpf("0.3"), mpmath.mpf("2.5"), mpmath.mpf(20)]:
            quad = mpmath.quad(mpmath.loggamma, [0, z])
            assert abs(_barnes_lambda(z) - quad) < mpmath.mpf(10) ** -25


def test_euler_maclaurin_polygamma_terms():
    # Σ_m B_2m/(2m)! g^{2m-1} ψ^{(2m-2)}(x) against mpmath polygammas, in the range
    # where it is used: g/x ≤ 1/J (x is at least the (J+1)-th node, J = 12).
    pts = [
        (x, g)
        for x in [1e-3, 0.2, 1.0, 7.5, 40.0, 1e4]
        for g in [1e-9, 1e-2, 0.2, 1.0, 2.0, 50.0, 300.0]
        if g / x <= 1 / selberg._HEAD
    ]
    got = selberg._em_derivative_terms(
        jnp.array([p[0] for p in pts]), jnp.array([p[1] for p in pts])
    )
    for (x, g), v in zip(pts, np.asarray(got), strict=True):
        with mpmath.workdps(30):
            ref = float(
                mpmath.fsum(
                    mpmath.mpf(w)
                    * mpmath.mpf(g) ** (2 * m - 1)
                    * mpmath.polygamma(2 * m - 2, x)
                    for m, w in enumerate(selberg._EM_WEIGHTS, start=1)
                )
            )
        assert v == pytest.approx(ref, abs=1e-15 * max(1.0, abs(ref))), (x, g)


def test_euler_maclaurin_remainder_bound_is_below_rounding():
    # The Notes bound 2ζ(2p)/(2π)^{2p}[(2p−3)! g/J^{2p−2} + (2p−2)!/J^{2p−1}].
    p, j = selberg._EM_TERMS, selberg._HEAD
    pre = 2 * float(mpmath.zeta(2 * p)) / (2 * math.pi) ** (2 * p)
    slope = pre * math.factorial(2 * p - 3) / j ** (2 * p - 2)
    const = pre * math.factorial(2 * p - 2) / j ** (2 * p - 1)
    # J = 12, p = 7: (0.60 g + 0.60) x 1e-16, below the rounding of any sum >= 1
    assert slope < 1e-16
    assert const < 1e-16


# --------------------------------------------------------------------------------------
# Transformations
# --------------------------------------------------------------------------------------


def test_broadcasting_under_jit():
    # Broadcast (β, α) arrays under jit with static N, element by element against
    # the reference (vmap is covered by the grid tests).
    n = 1000
    b_list, a_list = [1e-6, 0.01, 0.5, 2.0], [0.7, 3.0, 400.0]
    betas = jnp.array(b_list)[:, None]
    alphas = jnp.array(a_list)[None, :]
    fun = jax.jit(laguerre_shape_log_normalizer, static_argnums=0)
    out = np.asarray(fun(n, betas, alphas))
    assert out.shape == (4, 3)
    for i, b in enumerate(b_list):
        for k, a in enumerate(a_list):
            _check_value(float(out[i, k]), _reference(n, b, a), f"beta={b} alpha={a}")
    log_z = jax.jit(laguerre_log_normalizer, static_argnums=0)(n, betas, alphas, 1.3)
    assert log_z.shape == (4, 3)


@pytest.mark.slow  # compiling second derivatives of the formula takes ~10-20 s
def test_hessian_matches_exact_sum():
    # Second derivatives (e.g. for mass-matrix adaptation or a Laplace fit): the
    # formula is smooth, so they come out as accurately as the first.
    hess = jax.jit(
        jax.vmap(
            jax.hessian(
                lambda n, b, a: selberg._shape_log_normalizer_em(n, b / 2.0, a),
                argnums=(1, 2),
            )
        )
    )(*(jnp.array(c, dtype=jnp.float64) for c in zip(*_HESSIAN_POINTS, strict=True)))
    for i, (n, beta, alpha) in enumerate(_HESSIAN_POINTS):
        ref = _reference_hessian(n, beta, alpha)
        got = {"bb": hess[0][0][i], "ba": hess[0][1][i], "aa": hess[1][1][i]}
        for key, r in ref.items():
            assert float(got[key]) == pytest.approx(r, rel=1e-9), (n, beta, key)


@pytest.mark.parametrize("sizes", [(60, 59, 58, 57, 56), (70, 69, 68, 67, 66, 65, 64)])
def test_all_sizes_at_once_match_each_size_alone(sizes: tuple[int, ...]) -> None:
    """The spike models' batched normaliser (one masked sum for N <= 64 and for
    sizes straddling 64) equals the direct sum of each size to float64 rounding
    (2N gammaln terms of order 1e2 each, so 1e-12 relative), for a batch of (β, α)."""
    rng = np.random.default_rng(5)
    beta = np.exp(rng.uniform(-8.0, 2.0, size=(3, len(sizes))))
    alpha = np.exp(rng.uniform(-3.0, 3.0, size=(3, len(sizes))))
    got = np.asarray(laguerre_shape_log_normalizer_sizes(sizes, beta, alpha))
    want = np.array(
        [
            [
                float(laguerre_shape_log_normalizer_exact(n, beta[r, k], alpha[r, k]))
                for k, n in enumerate(sizes)
            ]
            for r in range(3)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
