r"""Mean-field (high-temperature) free energy of a general one-body Coulomb gas.

For the gas on :math:`(0,\infty)^N` with pair repulsion :math:`|x_i-x_j|^\beta`,
:math:`\beta = \kappa/N`, and one-body weight

.. math::

    \log w(x) = (a-1)\log x - b\log(1+x/c) - h/x - x/s,

the unordered partition function satisfies :math:`\log Z_N = N\varphi + O(1)` as
:math:`N\to\infty` at fixed :math:`\kappa`, with the Gibbs/mean-field variational
principle

.. math::

    \varphi(\kappa, w) = -\min_\mu\Bigl[\int -\log w\,d\mu
        - \frac\kappa2\iint\log|x-y|\,d\mu(x)\,d\mu(y) + \int\mu\log\mu\Bigr].

The minimiser solves :math:`\rho^*(x) = w(x)e^{\kappa U(x)}/C`,
:math:`U(x) = \int\log|x-y|\,\rho^*(y)\,dy`, and
:math:`\varphi = \log C - \tfrac\kappa2\int U\rho^*`. By the envelope theorem
:math:`\partial\varphi/\partial\theta = \int\partial_\theta\log w\,d\rho^*` for
every weight parameter and :math:`\partial\varphi/\partial\kappa = \tfrac12\int
U\rho^*`, so one solve gives the value and the gradient.

:func:`equilibrium` is the NumPy/SciPy solver (the grid method is in
:mod:`htmp_infer.meanfield._solver`); :func:`meanfield_phi` is its JAX entry point
(``pure_callback`` + ``custom_jvp``), usable under ``jit``, ``grad`` and ``vmap``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike
from numpy.typing import NDArray

from htmp_infer.errors import HTMPError
from htmp_infer.meanfield._solver import Solution, Weight, solve_weight

__all__ = ["Equilibrium", "equilibrium", "meanfield_phi", "meanfield_phi_and_grad"]

#: Order of the parameters in :attr:`Equilibrium.grad` and :func:`meanfield_phi`.
PARAMS = ("kappa", "a", "b", "c", "h", "s")


class Equilibrium(NamedTuple):
    r"""Mean-field equilibrium of the one-body Coulomb gas (original units).

    Attributes
    ----------
    x : ndarray
        Grid, uniform in :math:`\log x` (may underflow to 0 or overflow for
        densities spanning hundreds of decades; use ``log_x`` there).
    density : ndarray
        :math:`\rho^*(x)` on ``x``; :math:`\int\rho^* dx = 1`.
    log_x : ndarray
        :math:`t = \log x` on the grid (spacing ``log_x[1] - log_x[0]``).
    log_density : ndarray
        :math:`\log\rho^*(x)` on the grid (``-inf`` where it underflows).
    log_c : float
        :math:`\log C = \log\int w\,e^{\kappa U}dx`.
    phi : float
        :math:`\varphi = \log C - \tfrac\kappa2\int U\rho^*`.
    mean_inv_x, mean_log_x, mean_x : float
        :math:`E[1/x]`, :math:`E[\log x]`, :math:`E[x]` under :math:`\rho^*`
        (``inf`` where the moment diverges).
    mean_log1p : float
        :math:`E[\log(1+x/c)]` (0 for :math:`c = \infty`).
    mean_x_over_c_plus_x : float
        :math:`E[x/(c+x)]` (0 for :math:`c = \infty`).
    mean_u : float
        :math:`\int U\rho^*`.
    grad : ndarray
        :math:`\partial\varphi/\partial(\kappa, a, b, c, h, s)` by the envelope
        formulas (0 for a parameter at infinity).
    """

    x: NDArray[np.float64]
    density: NDArray[np.float64]
    log_x: NDArray[np.float64]
    log_density: NDArray[np.float64]
    log_c: float
    phi: float
    mean_inv_x: float
    mean_log_x: float
    mean_x: float
    mean_log1p: float
    mean_x_over_c_plus_x: float
    mean_u: float
    grad: NDArray[np.float64]


def _check(
    kappa: float, a: float, b: float, c: float, h: float, s: float
) -> tuple[Weight, float]:
    """Validate and reduce to dimensionless units; returns the weight and scale."""
    vals = {"kappa": kappa, "a": a, "b": b, "c": c, "h": h, "s": s}
    for name, v in vals.items():
        if not isinstance(v, float) or math.isnan(v):
            raise HTMPError(f"meanfield: {name} must be a real number, got {v!r}")
    if not (0.0 <= kappa < math.inf):
        raise HTMPError(f"meanfield: kappa must be finite and >= 0, got {kappa}")
    if not math.isfinite(a):
        raise HTMPError(f"meanfield: a must be finite, got {a}")
    if not (0.0 <= b < math.inf):
        raise HTMPError(f"meanfield: b must be finite and >= 0, got {b}")
    if not c > 0.0:
        raise HTMPError(f"meanfield: c must be > 0 (inf allowed), got {c}")
    if not (0.0 <= h < math.inf):
        raise HTMPError(f"meanfield: h must be finite and >= 0, got {h}")
    if not s > 0.0:
        raise HTMPError(f"meanfield: s must be > 0 (inf allowed), got {s}")
    if a <= 0.0 and h == 0.0:
        raise HTMPError(f"meanfield: a = {a} <= 0 needs h > 0 (integrability at 0)")
    b_eff = b if math.isfinite(c) else 0.0
    if math.isinf(s) and a - b_eff + kappa >= 0.0:
        raise HTMPError(
            "meanfield: with s = inf the density ~ x^(a-b+kappa-1) at infinity "
            f"needs b > a + kappa (a={a}, b={b_eff}, kappa={kappa})"
        )
    if math.isfinite(s):
        scale = s
    elif math.isfinite(c) and b > 0.0:
        scale = c
    else:
        scale = h
    cc = c / scale if b > 0.0 else math.inf
    weight = Weight(a, b if math.isfinite(cc) else 0.0, cc, h / scale, s / scale)
    return weight, scale


def _tail(values: NDArray[np.float64], h: float, slope: float | None) -> float:
    """Trapezoid sum plus the exponential tail beyond the last node."""
    total = h * float(np.sum(values))
    if slope is None:
        return total
    if slope >= 0.0:
        return math.inf
    # trapezoid weight h/2 at the last node, then the exact exponential tail
    return total + float(values[-1]) * (1.0 / (-slope) - 0.5 * h)


def _moments(sol: Solution, w: Weight, kappa: float) -> dict[str, float]:
    t, p, hh = sol.grid.t, sol.p, sol.grid.h
    slope_lo, slope_hi = w.slopes(kappa)
    with np.errstate(over="ignore", invalid="ignore"):
        ex = np.exp(t) * p
        einv = np.exp(-t) * p
    mean_x = _tail(ex, hh, None if slope_hi is None else slope_hi + 1.0)
    mean_inv = _tail(einv[::-1], hh, None if slope_lo is None else 1.0 - slope_lo)
    if math.isfinite(w.c):
        lc = np.logaddexp(0.0, t - math.log(w.c))
        m_log1p = hh * float(np.sum(lc * p))
        m_ratio = hh * float(np.sum(p / (1.0 + w.c * np.exp(-t))))
    else:
        m_log1p = m_ratio = 0.0
    return {
        "mean_x": mean_x,
        "mean_inv_x": mean_inv,
        "mean_log_x": hh * float(np.sum(t * p)),
        "mean_log1p": m_log1p,
        "mean_x_over_c_plus_x": m_ratio,
        "mean_u": hh * float(np.sum(sol.u * p)),
    }


def equilibrium(
    kappa: float,
    a: float,
    b: float = 0.0,
    c: float = math.inf,
    h: float = 0.0,
    s: float = 1.0,
    *,
    warm: bool = False,
) -> Equilibrium:
    r"""Solve the mean-field equation and return :math:`\varphi` and its gradient.

    Parameters
    ----------
    kappa : float
        Coupling :math:`\kappa = \beta N \ge 0`.
    a : float
        Power :math:`x^{a-1}` near 0; :math:`a > 0`, or any real when
        :math:`h > 0`.
    b : float, optional
        Power-law damping :math:`(1+x/c)^{-b}`, :math:`b \ge 0`.
    c : float, optional
        Its scale, :math:`c > 0`; ``inf`` drops the factor.
    h : float, optional
        Hard-edge barrier :math:`e^{-h/x}`, :math:`h \ge 0`.
    s : float, optional
        Exponential scale :math:`e^{-x/s}`, :math:`s > 0`; ``inf`` needs
        :math:`b > a + \kappa` (``c`` finite).
    warm : bool, optional
        Start from the previous ``warm`` solve when its parameters are close
        (used by :func:`meanfield_phi`; several times faster, and equal to a
        cold solve to the solver tolerance rather than bit for bit).

    Returns
    -------
    Equilibrium
        Grid, density, :math:`\log C`, :math:`\varphi`, moments and gradient.

    Raises
    ------
    HTMPError
        For parameters outside the domain or a weight that is not integrable,
        and when the grid would need more than :math:`2^{20}` nodes (tails
        decaying like :math:`x^{\pm\epsilon}`, e.g. :math:`a \lesssim 10^{-3}`).

    Notes
    -----
    Scaling :math:`x\to Lx` maps :math:`(c, h, s)\to(c/L, h/L, s/L)` and adds
    :math:`(a+\kappa/2)\log L` to :math:`\varphi`; the solver works with
    :math:`L = s` (or :math:`c`, or :math:`h`). The envelope gradient is

    .. math::

        \partial_\kappa\varphi = \tfrac12 E[U],\ \partial_a\varphi = E\log x,\
        \partial_b\varphi = -E\log(1+x/c),\
        \partial_c\varphi = \tfrac bc E\tfrac{x}{c+x},\
        \partial_h\varphi = -E[1/x],\ \partial_s\varphi = E[x]/s^2 .

    Accuracy: :math:`\varphi` to :math:`\sim 10^{-13}` relative (float64
    rounding of the grid sums; see ``tests/meanfield/test_meanfield.py``).
    """
    args = [float(v) for v in (kappa, a, b, c, h, s)]
    kappa, a, b, c, h, s = args
    weight, scale = _check(kappa, a, b, c, h, s)
    sol = solve_weight(weight, kappa, warm=warm)
    m = _moments(sol, weight, kappa)
    log_l = math.log(scale)
    mean_u = m["mean_u"] + log_l
    log_c = sol.log_c + (a + kappa) * log_l
    phi = log_c - 0.5 * kappa * mean_u
    mean_x = m["mean_x"] * scale
    mean_inv = m["mean_inv_x"] / scale
    mean_log_x = m["mean_log_x"] + log_l
    has_c = math.isfinite(c) and b > 0.0
    m_log1p = m["mean_log1p"] if has_c else 0.0
    m_ratio = m["mean_x_over_c_plus_x"] if has_c else 0.0
    grad = np.array(
        [
            0.5 * mean_u,
            mean_log_x,
            -m_log1p,
            b / c * m_ratio if has_c else 0.0,
            -mean_inv,
            mean_x / s**2 if math.isfinite(s) else 0.0,
        ]
    )
    log_x = sol.grid.t + log_l
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        x = np.exp(log_x)
        log_density = np.log(sol.p) - log_x
        density = np.exp(log_density)
    return Equilibrium(
        x=x,
        density=density,
        log_x=log_x,
        log_density=log_density,
        log_c=log_c,
        phi=phi,
        mean_inv_x=mean_inv,
        mean_log_x=mean_log_x,
        mean_x=mean_x,
        mean_log1p=m_log1p,
        mean_x_over_c_plus_x=m_ratio,
        mean_u=mean_u,
        grad=grad,
    )


def meanfield_phi_and_grad(
    kappa: float, a: float, b: float, c: float, h: float, s: float
) -> tuple[float, NDArray[np.float64]]:
    """:math:`\\varphi` and its gradient, ordered as ``PARAMS`` (warm solve)."""
    eq = equilibrium(kappa, a, b, c, h, s, warm=True)
    return eq.phi, eq.grad


def _callback(*params: NDArray) -> tuple[NDArray, NDArray]:
    phi, grad = meanfield_phi_and_grad(*(float(np.asarray(v)) for v in params))
    return np.asarray(phi, dtype=np.float64), np.asarray(grad, dtype=np.float64)


def _phi_grad(params: tuple[Array, ...]) -> tuple[Array, Array]:
    shapes = (
        jax.ShapeDtypeStruct((), jnp.float64),
        jax.ShapeDtypeStruct((6,), jnp.float64),
    )
    phi, grad = jax.pure_callback(_callback, shapes, *params, vmap_method="sequential")
    return phi, grad


@jax.custom_jvp
def _meanfield_phi(
    kappa: Array, a: Array, b: Array, c: Array, h: Array, s: Array
) -> Array:
    return _phi_grad((kappa, a, b, c, h, s))[0]


@_meanfield_phi.defjvp
def _meanfield_phi_jvp(
    primals: tuple[Array, ...], tangents: tuple[Array, ...]
) -> tuple[Array, Array]:
    phi, grad = _phi_grad(primals)
    # An infinite envelope derivative (E[1/x] at h = 0, E[x] for a heavy tail)
    # becomes the largest float: a parameter held fixed (zero tangent) then
    # contributes exactly 0 instead of inf * 0 = nan, and the tangent stays linear.
    big = jnp.finfo(jnp.float64).max
    grad = jnp.where(jnp.isinf(grad), jnp.sign(grad) * big, grad)
    out = jnp.zeros((), jnp.float64)
    for i, dt in enumerate(tangents):
        out = out + grad[i] * dt
    return phi, out


def meanfield_phi(
    kappa: ArrayLike,
    a: ArrayLike,
    b: ArrayLike = 0.0,
    c: ArrayLike = math.inf,
    h: ArrayLike = 0.0,
    s: ArrayLike = 1.0,
) -> Array:
    r"""Mean-field free energy :math:`\varphi(\kappa, a, b, c, h, s)` as a JAX scalar.

    Parameters
    ----------
    kappa, a, b, c, h, s : array_like
        Scalars as in :func:`equilibrium` (traced values are fine).

    Returns
    -------
    Array
        :math:`\varphi`, float64 scalar.

    Notes
    -----
    A ``jax.pure_callback`` to :func:`equilibrium` (``vmap`` runs the solves
    one after the other), wrapped in ``jax.custom_jvp`` whose tangent is the
    envelope gradient :math:`\sum_\theta\partial_\theta\varphi\,\dot\theta` of
    :attr:`Equilibrium.grad`, so value and gradient cost one solve. The solver
    raises :class:`~htmp_infer.errors.HTMPError` inside the callback for
    parameters outside its domain; restrict priors accordingly. Second
    derivatives are not available.
    """
    params = [jnp.asarray(v, dtype=jnp.float64) for v in (kappa, a, b, c, h, s)]
    return _meanfield_phi(*params)
