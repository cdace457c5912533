"""Core vectorised evaluation of the HTMP log-density and CDF.

This module validates the arguments, handles the special points (``nan``,
``x <= 0``, ``inf``), switches to the Marchenko–Pastur law above
:data:`KAPPA_MP_SWITCH`, and otherwise evaluates all requested points in one
integration along the path of :mod:`htmp_infer.limit._paths`, using the
asymptotic series of :math:`U` in the far upper tail.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

from htmp_infer.limit._params import KAPPA_MP_SWITCH, _check_params, _shape_params
from htmp_infer.limit._paths import _asymptotic_w, _bulk_start, _negative_axis
from htmp_infer.limit.mp import _mp_cdf_raw, _mp_logpdf_raw


def _htmp_core(
    x: NDArray[np.float64], gamma: float, kappa: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Log-density and CDF of the HTMP law at sorted, finite, positive ``x``."""
    b, delta, theta = _shape_params(gamma, kappa)
    logpdf = np.empty_like(x)
    cdf = np.empty_like(x)
    with np.errstate(over="ignore"):
        t = theta * x
    t_asym = 1e3 * (b + 1.0) * (theta + 1.0)
    far = t >= t_asym
    if np.any(far):
        # |U(b, 1-delta, -t)| = t^-b S(t) to rounding accuracy; tail mass ~ e^-t
        _, log_s = _asymptotic_w(t[far], b, theta, -1.0)
        logpdf[far] = (
            (delta + kappa) * math.log(theta)
            + (delta + kappa - 1.0) * np.log(x[far])
            - t[far]
            - gammaln(b + 1.0)
            - gammaln(theta)
            - 2.0 * log_s
        )
        cdf[far] = 1.0
    near = ~far
    if np.any(near):
        s0, state0 = _bulk_start(gamma, kappa)
        s = np.log(x[near]) + math.log(theta)  # no underflow of theta * x
        up = s >= s0
        v = np.empty_like(s)
        f = np.empty_like(s)
        v[up], f[up] = _negative_axis(b, delta, s0, state0, s[up])
        v[~up], f[~up] = _negative_axis(b, delta, s0, state0, s[~up])
        logpdf[near] = v - math.log(math.pi * b) - np.log(x[near])
        cdf[near] = f
    # x is sorted: remove rounding-level non-monotonicity of the dense output
    return logpdf, np.maximum.accumulate(np.clip(cdf, 0.0, 1.0))


def _evaluate(
    x: ArrayLike, gamma: object, kappa: object
) -> tuple[NDArray[np.float64], NDArray[np.float64], tuple[int, ...]]:
    """Validated, vectorised log-density and CDF, flattened, plus the shape."""
    g, k = _check_params(gamma, kappa)
    xa = np.asarray(x, dtype=np.float64)
    shape = xa.shape
    flat = xa.ravel()
    logpdf = np.full(flat.shape, -np.inf)
    cdf = np.zeros(flat.shape)
    nan = np.isnan(flat)
    logpdf[nan] = np.nan
    cdf[nan] = np.nan
    cdf[flat == np.inf] = 1.0
    inside = (flat > 0.0) & np.isfinite(flat)
    if k > KAPPA_MP_SWITCH:
        logpdf[inside] = _mp_logpdf_raw(flat[inside], g)
        cdf[inside] = _mp_cdf_raw(flat[inside], g)
    elif np.any(inside):
        uniq, inverse = np.unique(flat[inside], return_inverse=True)
        try:
            lp, cd = _htmp_core(uniq, g, k)
        except RuntimeError as err:  # only beyond the validated range
            theta = 0.5 * k / g
            raise RuntimeError(
                f"HTMP evaluation failed for gamma={g!r}, kappa={k!r} "
                f"(theta = kappa/(2 gamma) = {theta:.3g}; the method is validated "
                f"for theta <= 5e9): {err}"
            ) from err
        logpdf[inside] = lp[inverse]
        cdf[inside] = cd[inverse]
    return logpdf, cdf, shape
