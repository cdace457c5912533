r"""The three legs of the integration path of :math:`w = z\,U'/U`.

This module continues the logarithmic derivative of
:math:`U(b, 1-\delta, z)` by Kummer's Riccati equation: from its asymptotic
series down the positive real axis, around the upper half circle to the middle
of the bulk (cached per ``(gamma, kappa)``), and outwards along the cut, where it
yields the log-density and the CDF (see the :mod:`htmp_infer.limit` docstring).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

from htmp_infer.limit._collocation import _march, _newton, _Panel, _radau
from htmp_infer.limit._params import _shape_params


def _asymptotic_w(
    r: NDArray[np.float64], b: float, theta: float, sign: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Asymptotic series of :math:`U(b, 1-\delta, \pm r)` for large ``r``.

    Returns ``(w, log S)`` with ``w = d log U / d log r`` and
    ``U = r^{-b} S`` (``sign=+1``: positive axis; ``sign=-1``: modulus on the
    negative axis, where all terms are positive).
    """
    ssum = np.ones_like(r)
    dsum = np.zeros_like(r)
    term = np.ones_like(r)
    inv_r = 1.0 / r
    for n in range(60):
        term = term * (-sign * (b + n) * (theta + n) / (n + 1)) * inv_r
        ssum = ssum + term
        dsum = dsum - (n + 1) * term
        if np.all(np.abs(term) <= 1e-17 * np.abs(ssum)):
            break
    return -b + dsum / ssum, np.log(np.abs(ssum))


def _asymptotic_start(b: float, theta: float, r_min: float) -> float:
    """A radius beyond which the asymptotic series is accurate to rounding."""
    r = max(8.0 * (b + 1.0) * (theta + 1.0), 4.0 * r_min)
    for _ in range(10):
        term, ssum = 1.0, 1.0
        for n in range(60):
            term *= (b + n) * (theta + n) / ((n + 1) * r)
            ssum += term
            if term <= 1e-17 * ssum:
                return r
        r *= 10.0
    return r


def _positive_axis(
    b: float, delta: float, theta: float, r_targets: NDArray[np.float64]
) -> NDArray[np.float64]:
    r"""``w(r) = r U'/U`` of :math:`U(b, 1-\delta, r)` at the radii ``r_targets``."""
    rad = _radau()
    r_big = _asymptotic_start(b, theta, float(np.max(r_targets)))
    w_big, _ = _asymptotic_w(np.array([r_big]), b, theta, 1.0)
    sig = np.log(r_targets)
    order = np.argsort(-sig)

    def panel(s: float, h: float, y: tuple) -> _Panel | None:
        w0 = y[0]
        r = np.exp(s + rad.c * h)
        ha = h * rad.a
        eye = np.eye(rad.n)

        def residual(w: NDArray) -> tuple[NDArray, NDArray]:
            f = -w * w + (delta + r) * w + b * r
            return w - w0 - ha @ f, eye - ha * (-2.0 * w + delta + r)[None, :]

        r0 = math.exp(s)
        guess = w0 + rad.c * h * (-w0 * w0 + (delta + r0) * w0 + b * r0)
        w = _newton(residual, guess, abs(w0))
        if w is None:
            return None
        return _Panel(w, [], abs(w0) + 1e-300, [], None)

    _, (w_out,) = _march(
        panel,
        math.log(r_big),
        (float(w_big[0]),),
        float(sig[order[-1]]),
        sig[order],
        -1.0,
    )
    w = np.empty_like(r_targets)
    w[order] = w_out.real
    return w


def _arc(b: float, delta: float, r0: float, w0: float) -> tuple[complex, float]:
    r"""Continue ``w`` from ``r0`` to ``-r0 + i0`` along the upper half circle.

    Returns ``w(-r0 + i0)`` and :math:`F(r_0/\theta) = -\arg U(-r_0+i0)/(\pi b)`.
    """
    rad = _radau()
    inv_pib = 1.0 / (math.pi * b)

    def panel(p: float, h: float, y: tuple) -> _Panel | None:
        wstart = y[0]
        z = r0 * np.exp(1j * (p + rad.c * h))
        ha = h * rad.a
        eye = np.eye(rad.n)

        def residual(w: NDArray) -> tuple[NDArray, NDArray]:
            f = 1j * (-w * w + (delta + z) * w + b * z)
            jac = eye - ha * (1j * (-2.0 * w + delta + z))[None, :]
            return w - wstart - ha @ f, jac

        z0 = r0 * complex(math.cos(p), math.sin(p))
        f0 = 1j * (-wstart * wstart + (delta + z0) * wstart + b * z0)
        w = _newton(residual, wstart + rad.c * h * f0, 1.0 + abs(wstart))
        if w is None:
            return None
        q = -w.real * inv_pib
        scale = 1.0 + float(np.max(np.abs(w)))
        return _Panel(w, [q], scale, [float(np.max(np.abs(q)))], None)

    (w_pi, f_pi), _ = _march(panel, 0.0, (complex(w0), 0.0), math.pi, np.empty(0), 0.5)
    return complex(w_pi), float(np.real(f_pi))


def _negative_axis(
    b: float,
    delta: float,
    s0: float,
    state0: tuple[float, float, float],
    s_targets: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Log of ``J = pi b x rho(x)`` and the CDF at ``s = log(theta x)`` targets.

    ``state0 = (R, log J, F)`` at ``s0``; ``s_targets`` are sorted increasingly
    and either all >= s0 or all < s0.
    """
    rad = _radau()
    inv_pib = 1.0 / (math.pi * b)
    if s_targets.size == 0:
        return np.empty(0), np.empty(0)
    upward = s_targets[0] >= s0
    targets = s_targets if upward else s_targets[::-1]

    def exact_part(tau: NDArray, s: float, h: float) -> NDArray:
        # integral of (delta - t) ds from s to s + tau h, without cancellation
        return delta * tau * h - math.exp(s) * np.expm1(tau * h)

    def panel(s: float, h: float, y: tuple) -> _Panel | None:
        r_start, v_start, _ = y
        t = np.exp(s + rad.c * h)
        dt = delta - t
        ha = h * rad.a
        eye = np.eye(rad.n)
        base = v_start + exact_part(rad.c, s, h)

        def residual(r: NDArray) -> tuple[NDArray, NDArray]:
            j2 = np.exp(2.0 * (base - 2.0 * (ha @ r)))
            f = -r * r + j2 + dt * r - b * t
            jac = eye - ha * (-2.0 * r + dt)[None, :]
            jac -= (ha * (-4.0 * j2)[None, :]) @ ha
            return r - r_start - ha @ f, jac

        def damp(dr: NDArray) -> float:
            # keep the change of log J per Newton step below 10 (no overflow)
            return min(1.0, 5.0 / (1e-300 + float(np.max(np.abs(ha @ dr)))))

        # Taylor predictor from the ODE at the panel start: second order where
        # the panel is not stiff, first order where it is (there the second
        # derivative is dominated by rounding errors of the stiff terms)
        t0 = math.exp(s)
        j0 = math.exp(min(v_start, 350.0))
        rate = -2.0 * r_start + delta - t0
        dr = -r_start * r_start + j0 * j0 + (delta - t0) * r_start - b * t0
        ddr = 0.0
        if abs(h * rate) < 1.0:
            ddr = (
                -t0 * (r_start + b)
                + rate * dr
                + 2.0 * j0 * j0 * (delta - t0 - 2.0 * r_start)
            )
        step = rad.c * h
        scale = 1.0 + abs(r_start) + j0  # |w| = |R - iJ| sets the error scale
        r = _newton(residual, r_start + step * (dr + 0.5 * step * ddr), scale, damp)
        if r is None:
            return None
        v = base - 2.0 * (ha @ r)
        with np.errstate(under="ignore"):
            jn = np.exp(v)
        scale = 1.0 + float(np.max(np.abs(r)) + np.max(jn))

        def extra(tau: NDArray, hh: float) -> list[NDArray]:
            return [exact_part(tau, s, hh), np.zeros_like(tau)]

        dens = jn * inv_pib
        # R is not an output: only its effect on log J (the quadrature of -2R,
        # controlled below) matters. A neutral oscillation of R of relative size
        # ~1e-12 (from the accuracy of the starting point) moves log J only by
        # ~1e-12, so R itself is controlled 10x more loosely.
        return _Panel(
            r, [-2.0 * r, dens], 10.0 * scale, [2.0 * scale, float(np.max(dens))], extra
        )

    # first panel: a fraction of the bulk width ~4 sqrt(gamma) in log x, but
    # long enough to damp (not resolve) the fast neutral oscillation of
    # frequency 2J of the linearised system in the bulk (the collocation is
    # L-stable)
    gamma = b / (b + delta)
    h0 = min(0.02, 0.5 * math.sqrt(gamma))
    _, (_, v, cdf) = _march(
        panel, s0, state0, float(targets[-1]), targets, h0 if upward else -h0
    )
    v, cdf = v.real, cdf.real
    if not upward:
        v, cdf = v[::-1], cdf[::-1]
    return v, cdf


@functools.lru_cache(maxsize=128)
def _bulk_start(gamma: float, kappa: float) -> tuple[float, tuple[float, float, float]]:
    """``s0 = log(theta x0)`` and ``(R, log J, F)`` at ``x0 = 1 + gamma``.

    Legs 1 and 2 of the path; cached because they do not depend on ``x``.
    """
    b, delta, theta = _shape_params(gamma, kappa)
    r0 = theta * (1.0 + gamma)
    w0 = float(_positive_axis(b, delta, theta, np.array([r0]))[0])
    w_pi, f0 = _arc(b, delta, r0, w0)
    return math.log(r0), (w_pi.real, math.log(-w_pi.imag), f0)
