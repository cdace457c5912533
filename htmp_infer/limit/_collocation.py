"""Adaptive Radau IIA collocation used to integrate the Riccati equations.

This module provides the L-stable, 24-node Radau IIA collocation (order 47) with
Newton iterations, an error estimate from the trailing Chebyshev coefficients,
adaptive panel lengths and spectral dense output at requested points. It knows
nothing about the HTMP law: each leg of the path supplies a panel function.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.polynomial import chebyshev, legendre
from numpy.typing import NDArray

_N_NODES = 24  # Radau IIA nodes per panel
_TOL = 1.0e-12  # local error tolerance of a panel
_NOISE = 50.0 * np.finfo(np.float64).eps  # rounding floor of the error estimate
_MAX_PANELS = 20000
_MAX_NEWTON = 12


@dataclass(frozen=True)
class _Radau:
    """Tables of the ``n``-node Radau IIA collocation on a panel ``[0, 1]``.

    Polynomials on the panel are expanded in Chebyshev polynomials of
    ``2 tau - 1``; their last two coefficients estimate the truncation error.
    """

    n: int
    c: NDArray[np.float64]  # nodes in (0, 1], last one is 1
    a: NDArray[np.float64]  # a[i, j] = int_0^{c_i} l_j (Lagrange basis l_j)
    tail_q: NDArray[np.float64]  # last two coefficients from data at the nodes
    tail_y: NDArray[np.float64]  # same, from data at (0, c_1, ..., c_n)
    int_coef: NDArray[np.float64]  # coefficients of int_0^tau l_j
    interp_coef: NDArray[np.float64]  # coefficients of the interpolant

    def dense(
        self, tau: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Weights for the integral of node data and for the interpolant at tau."""
        arg = np.arccos(np.clip(2.0 * tau - 1.0, -1.0, 1.0))
        v = np.cos(arg[:, None] * np.arange(self.n + 1)[None, :])  # T_k(2 tau - 1)
        return v @ self.int_coef, v @ self.interp_coef


def _inverse(m: NDArray[np.floating]) -> NDArray[np.float64]:
    return np.asarray(np.linalg.inv(m), dtype=np.float64)


@functools.cache
def _radau(n: int = _N_NODES) -> _Radau:
    coef = np.zeros(n + 1)
    coef[n], coef[n - 1] = 1.0, -1.0  # P_n - P_{n-1}: right Radau points
    x = np.sort(legendre.legroots(coef).real)
    x[-1] = 1.0
    vinv = _inverse(chebyshev.chebvander(x, n - 1))
    int_coef = np.empty((n + 1, n))
    for j in range(n):
        int_coef[:, j] = 0.5 * chebyshev.chebint(vinv[:, j], lbnd=-1.0)
    a = chebyshev.chebvander(x, n) @ int_coef
    interp = _inverse(chebyshev.chebvander(np.concatenate([[-1.0], x]), n))
    return _Radau(
        n=n,
        c=0.5 * (x + 1.0),
        a=a,
        tail_q=vinv[-2:],
        tail_y=interp[-2:],
        int_coef=int_coef,
        interp_coef=interp,
    )


def _tail(coef: NDArray[np.float64], data: NDArray) -> float:
    """Size of the last two Chebyshev coefficients above the rounding floor."""
    mag = float(np.sum(np.abs(coef @ data)))
    return max(0.0, mag - _NOISE * float(np.max(np.abs(data))))


class _Panel(NamedTuple):
    y: NDArray  # Newton-solved component at the nodes
    q: list[NDArray]  # integrands of the quadrature components at the nodes
    y_scale: float  # error scale of the Newton component
    q_scale: list[float]  # magnitudes of the integrands, for their error scales
    extra: Callable[[NDArray, float], list[NDArray]] | None  # exact parts


_PanelFn = Callable[[float, float, tuple], _Panel | None]


def _newton(
    residual: Callable[[NDArray], tuple[NDArray, NDArray]],
    y: NDArray,
    scale: float,
    damp: Callable[[NDArray], float] | None = None,
) -> NDArray | None:
    """Newton iterations for a collocation system; ``None`` if they fail.

    ``damp(dy)`` may return a factor <= 1 that shortens a Newton step (a trust
    region for exponential nonlinearities).
    """
    last = math.inf
    with np.errstate(all="ignore"):
        for it in range(_MAX_NEWTON):
            g, jac = residual(y)
            if not (np.all(np.isfinite(g)) and np.all(np.isfinite(jac))):
                return None
            try:
                dy = np.linalg.solve(jac, -g)
            except np.linalg.LinAlgError:
                return None
            size = float(np.max(np.abs(dy)))
            if not math.isfinite(size) or (it >= 3 and size > 2.0 * last):
                return None
            if damp is not None:
                dy = dy * damp(dy)
            y = y + dy
            if size <= 1e-2 * _TOL * scale + 16.0 * _NOISE * float(np.max(np.abs(y))):
                return y
            last = size
    return None


def _march(
    panel: _PanelFn,
    s0: float,
    y0: tuple,
    s_end: float,
    targets: NDArray[np.float64],
    h0: float,
) -> tuple[tuple, list[NDArray]]:
    """Integrate from ``s0`` to ``s_end`` with adaptive collocation panels.

    ``y0[0]`` is the Newton-solved component, ``y0[1:]`` are integrals of the
    integrands returned by ``panel``. ``targets`` must be sorted in the direction
    of integration and lie between ``s0`` and ``s_end``. Returns the final state
    and, per component, the values at the targets.
    """
    rad = _radau()
    direction = 1.0 if s_end >= s0 else -1.0
    s, y = s0, y0
    h = direction * abs(h0)
    ncomp = len(y0)
    dtype = np.result_type(*[np.asarray(v) for v in y0], np.float64)
    out = [np.empty(targets.size, dtype=dtype) for _ in range(ncomp)]
    it_target = 0
    for _ in range(_MAX_PANELS):
        remaining = (s_end - s) * direction
        if remaining <= 1e-14 * max(1.0, abs(s)):
            break
        if abs(h) >= remaining:
            h = s_end - s
        if abs(h) <= 1e-13 * max(1.0, abs(s)):
            break  # reported below
        res = panel(s, h, y)
        if res is None:
            h *= 0.25
            continue
        ya = np.concatenate([[y[0]], res.y])
        err = _tail(rad.tail_y, ya) / (_TOL * res.y_scale)
        for q, qmax in zip(res.q, res.q_scale, strict=True):
            err = max(
                err,
                abs(h) * _tail(rad.tail_q, q) / (_TOL * max(1.0, abs(h) * qmax)),
            )
        fac = min(3.0, max(0.25, (0.2 / err) ** (1.0 / rad.n))) if err > 0 else 3.0
        if err > 1.0:
            h *= min(0.9, fac)
            continue
        # dense output at the targets inside this panel
        stop = it_target
        while stop < targets.size and (targets[stop] - (s + h)) * direction <= 0.0:
            stop += 1
        if stop > it_target:
            tau = (targets[it_target:stop] - s) / h
            w_int, w_interp = rad.dense(tau)
            out[0][it_target:stop] = w_interp @ ya
            for k, q in enumerate(res.q):
                out[k + 1][it_target:stop] = y[k + 1] + h * (w_int @ q)
            if res.extra is not None:
                for k, corr in enumerate(res.extra(tau, h)):
                    out[k + 1][it_target:stop] += corr
            it_target = stop
        y_end = [res.y[-1]]
        for k, q in enumerate(res.q):
            y_end.append(y[k + 1] + h * (rad.a[-1] @ q))
        if res.extra is not None:
            for k, corr in enumerate(res.extra(np.array([1.0]), h)):
                y_end[k + 1] = y_end[k + 1] + corr[0]
        s, y = s + h, tuple(y_end)
        h *= fac
    if (s_end - s) * direction > 1e-14 * max(1.0, abs(s)):
        raise RuntimeError(
            "htmp_infer.limit: the collocation did not reach the end point "
            f"(stopped at s={s:.6g}, target {s_end:.6g})"
        )
    # targets equal to the end point (or when no step was needed)
    for k in range(it_target, targets.size):
        for c in range(ncomp):
            out[c][k] = y[c]
    return y, out
