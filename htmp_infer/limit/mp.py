r"""The Marchenko–Pastur law with ratio ``gamma`` and mean 1.

This module gives the closed-form log-density, density and CDF of the MP law,
the :math:`\kappa\to\infty` limit of the HTMP law; its raw kernels are also
used by the HTMP functions above :data:`KAPPA_MP_SWITCH`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from htmp_infer.limit._params import _check_gamma, _shaped

__all__ = ["mp_cdf", "mp_logpdf", "mp_pdf"]


def _mp_logpdf_raw(x: NDArray[np.float64], gamma: float) -> NDArray[np.float64]:
    sg = math.sqrt(gamma)
    lo, hi = (1.0 - sg) ** 2, (1.0 + sg) ** 2
    out = np.full(x.shape, -np.inf)
    inside = (x > lo) & (x < hi)
    xi = x[inside]
    out[inside] = 0.5 * np.log((hi - xi) * (xi - lo)) - np.log(
        2.0 * math.pi * gamma * xi
    )
    return out


def _mp_cdf_raw(x: NDArray[np.float64], gamma: float) -> NDArray[np.float64]:
    sg = math.sqrt(gamma)
    lo, hi = (1.0 - sg) ** 2, (1.0 + sg) ** 2
    mid, half, root = 1.0 + gamma, 2.0 * sg, 1.0 - gamma  # root = sqrt(lo * hi)
    out = np.where(x >= hi, 1.0, 0.0)
    inside = (x > lo) & (x < hi)
    xi = x[inside]
    arg1 = np.clip((xi - mid) / half, -1.0, 1.0)
    val = np.sqrt((hi - xi) * (xi - lo)) + mid * (np.arcsin(arg1) + 0.5 * math.pi)
    if root > 0.0:
        arg2 = np.clip(
            (2.0 * mid * xi - 2.0 * root * root) / (xi * 2.0 * half), -1.0, 1.0
        )
        val -= root * (np.arcsin(arg2) + 0.5 * math.pi)
    out[inside] = np.clip(val / (2.0 * math.pi * gamma), 0.0, 1.0)
    return out


def _mp_prepare(
    x: ArrayLike, gamma: object
) -> tuple[float, NDArray[np.float64], NDArray[np.bool_], tuple[int, ...]]:
    g = _check_gamma(gamma)
    xa = np.asarray(x, dtype=np.float64)
    flat = xa.ravel()
    return g, flat, np.isnan(flat), xa.shape


def mp_logpdf(x: ArrayLike, gamma: float) -> NDArray[np.float64]:
    r"""Log-density of the Marchenko–Pastur law with ratio ``gamma`` and mean 1.

    Parameters
    ----------
    x : array_like
        Points, any shape.
    gamma : float
        Aspect ratio in (0, 1].

    Returns
    -------
    ndarray
        Log-density; ``-inf`` outside the open support
        :math:`((1-\sqrt\gamma)^2, (1+\sqrt\gamma)^2)`.

    Raises
    ------
    ValueError
        If ``gamma`` is not in (0, 1].

    See Also
    --------
    htmp_logpdf

    Notes
    -----
    .. math::

        \rho_{\mathrm{MP}}(x) = \frac{\sqrt{(\lambda_+-x)(x-\lambda_-)}}
        {2\pi\gamma x}, \qquad \lambda_\pm = (1\pm\sqrt\gamma)^2,

    the :math:`\kappa\to\infty` limit of :math:`\rho_{\gamma,\kappa}`; variance
    :math:`\gamma`. At :math:`\gamma = 1` it diverges like :math:`x^{-1/2}` at 0.
    """
    g, flat, nan, shape = _mp_prepare(x, gamma)
    out = _mp_logpdf_raw(np.where(nan, 0.0, flat), g)
    out[nan] = np.nan
    return _shaped(out, shape)


def mp_pdf(x: ArrayLike, gamma: float) -> NDArray[np.float64]:
    r"""Density of the Marchenko–Pastur law with ratio ``gamma`` and mean 1.

    Parameters
    ----------
    x : array_like
        Points, any shape.
    gamma : float
        Aspect ratio in (0, 1].

    Returns
    -------
    ndarray
        Density; 0 outside the support.

    Raises
    ------
    ValueError
        If ``gamma`` is not in (0, 1].

    See Also
    --------
    mp_logpdf

    Notes
    -----
    ``exp`` of :func:`mp_logpdf`.
    """
    g, flat, nan, shape = _mp_prepare(x, gamma)
    out = np.exp(_mp_logpdf_raw(np.where(nan, 0.0, flat), g))
    out[nan] = np.nan
    return _shaped(out, shape)


def mp_cdf(x: ArrayLike, gamma: float) -> NDArray[np.float64]:
    r"""CDF of the Marchenko–Pastur law with ratio ``gamma`` and mean 1.

    Parameters
    ----------
    x : array_like
        Points, any shape.
    gamma : float
        Aspect ratio in (0, 1].

    Returns
    -------
    ndarray
        The CDF, 0 below :math:`\lambda_-` and 1 above :math:`\lambda_+`.

    Raises
    ------
    ValueError
        If ``gamma`` is not in (0, 1].

    See Also
    --------
    mp_pdf

    Notes
    -----
    With :math:`m = 1+\gamma`, :math:`h = 2\sqrt\gamma` and
    :math:`\sqrt{\lambda_-\lambda_+} = 1-\gamma`, the closed form is

    .. math::

        F(x) = \frac{1}{2\pi\gamma}\Bigl[\sqrt{(\lambda_+-x)(x-\lambda_-)}
        + m\bigl(\arcsin\tfrac{x-m}{h}+\tfrac\pi2\bigr)
        - (1-\gamma)\bigl(\arcsin\tfrac{mx-(1-\gamma)^2}{hx}+\tfrac\pi2\bigr)\Bigr]

    on the support, which is 1 at :math:`\lambda_+`.
    """
    g, flat, nan, shape = _mp_prepare(x, gamma)
    out = _mp_cdf_raw(np.where(nan, 0.0, flat), g)
    out[nan] = np.nan
    return _shaped(out, shape)
