r"""Argument checks and shared parameters of the HTMP limit-law functions.

This module validates the scalar arguments ``gamma`` and ``kappa``, maps them to
the shape parameters :math:`(b, \delta, \theta)` of ``docs/maths.md``
§1.3 (:func:`kappa_to_delta`, the one place :math:`\delta` is written),
reshapes flattened results back to the caller's shape, and holds
:data:`KAPPA_MP_SWITCH`, the :math:`\kappa` above which the HTMP functions
return the Marchenko–Pastur law.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

KAPPA_MP_SWITCH: float = 1.0e5
r"""Above this :math:`\kappa` the HTMP functions return the Marchenko–Pastur law.

The error made by the switch is :math:`O(1/\kappa)`: in the bulk (the middle 80%
of the MP support) the relative density deviation measures
:math:`\approx c/\kappa` with :math:`c \approx 2` (:math:`\gamma = 0.05`) to
:math:`5` (:math:`\gamma = 1`), the CDF deviation :math:`\approx 0.3/\kappa`,
and the variance is :math:`\gamma(1+2/\kappa)` instead of :math:`\gamma`; so at
the switch the bulk density is off by at most about :math:`5\times10^{-5}`
relatively and the CDF by :math:`3\times10^{-6}`. The HTMP tails beyond the MP
edges (width :math:`O(\kappa^{-2/3})`, exponentially small beyond it) become a
density of zero, i.e. ``-inf`` log-density. Below the switch the true HTMP law
is computed, at a cost that grows slowly with :math:`\kappa` (about 0.1 s for
400 points at :math:`\kappa = 10^{4}` and 0.2 s at :math:`10^{5}`, against
10–80 ms for :math:`\kappa \le 10^{3}`). The moment functions are exact for
every :math:`\kappa` and do not switch.
"""


def _scalar(name: str, value: object) -> float:
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    try:
        return float(arr)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None


def _check_gamma(gamma: object) -> float:
    g = _scalar("gamma", gamma)
    if not (0.0 < g <= 1.0):
        raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
    return g


def _check_params(gamma: object, kappa: object) -> tuple[float, float]:
    g = _check_gamma(gamma)
    k = _scalar("kappa", kappa)
    if not (math.isfinite(k) and k > 0.0):
        raise ValueError(f"kappa must be finite and > 0, got {kappa!r}")
    return g, k


def kappa_to_delta(kappa: Any, gamma: Any) -> Any:
    r"""The tail index :math:`\delta = \kappa(1-\gamma)/(2\gamma)`.

    The HTMP density behaves as :math:`x^{\delta-1}` at its lower edge, and the
    inverse HTMP law of :math:`w = 1/x` has the upper tail :math:`w^{-(1+\delta)}`:
    :math:`\alpha = 1 + \delta` is its HT-SR (WeightWatcher) exponent
    (``docs/maths.md`` §2.4). Elementwise on floats and on NumPy, xarray or JAX
    arrays; the arguments are not checked (the callers do).
    """
    return kappa * (1.0 - gamma) / (2.0 * gamma)


def _shape_params(gamma: float, kappa: float) -> tuple[float, float, float]:
    """Return ``(b, delta, theta)`` of ``docs/maths.md`` §1.3."""
    b = 0.5 * kappa
    delta = kappa_to_delta(kappa, gamma)
    theta = 0.5 * kappa / gamma
    return b, delta, theta


def _shaped(values: NDArray[np.float64], shape: tuple[int, ...]) -> NDArray:
    out = values.reshape(shape)
    return out[()] if shape == () else out
