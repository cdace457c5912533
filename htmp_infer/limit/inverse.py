r"""The inverse HTMP law of :math:`w = 1/x`, used for kernel spectra.

This module gives the log-density, density and CDF of :math:`w = 1/x` with
:math:`x \sim \rho_{\gamma,\kappa}`, by a change of variables on the HTMP
evaluation of :mod:`htmp_infer.limit._solver`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from htmp_infer.limit._params import _shaped
from htmp_infer.limit._solver import _evaluate

__all__ = ["inverse_htmp_cdf", "inverse_htmp_logpdf", "inverse_htmp_pdf"]


def _inverse_evaluate(
    w: ArrayLike, gamma: object, kappa: object
) -> tuple[NDArray[np.float64], NDArray[np.float64], tuple[int, ...]]:
    wa = np.asarray(w, dtype=np.float64)
    flat = wa.ravel()
    with np.errstate(divide="ignore"):
        x = np.where(flat > 0.0, 1.0 / flat, -1.0)
    x[np.isnan(flat)] = np.nan
    logpdf_x, cdf_x, _ = _evaluate(x, gamma, kappa)
    pos = flat > 0.0
    logpdf = np.full(flat.shape, -np.inf)
    cdf = np.zeros(flat.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        logpdf[pos] = logpdf_x[pos] - 2.0 * np.log(flat[pos])
    logpdf[flat == np.inf] = -np.inf
    cdf[pos] = 1.0 - cdf_x[pos]
    nan = np.isnan(flat)
    logpdf[nan] = np.nan
    cdf[nan] = np.nan
    return logpdf, cdf, wa.shape


def inverse_htmp_logpdf(
    w: ArrayLike, gamma: float, kappa: float
) -> NDArray[np.float64]:
    r"""Log-density of :math:`w = 1/x` with :math:`x\sim\rho_{\gamma,\kappa}`.

    Parameters
    ----------
    w : array_like
        Points, any shape (kernel eigenvalues in units where
        :math:`\mathbb E[1/w] = 1`).
    gamma : float
        Aspect ratio in (0, 1].
    kappa : float
        Eigenvalue-repulsion parameter, > 0.

    Returns
    -------
    ndarray
        :math:`\log p_w(w)`; ``-inf`` for ``w <= 0``.

    Raises
    ------
    ValueError
        For invalid ``gamma`` or ``kappa``.

    See Also
    --------
    htmp_logpdf, htmp_tail_exponents

    Notes
    -----
    By the change of variables (``docs/maths.md`` §1.5),
    :math:`p_w(w) = w^{-2}\rho_{\gamma,\kappa}(1/w)`. Its upper tail is the power
    law :math:`w^{-(1+\delta)}` (HT-SR :math:`\alpha = 1+\delta`) and its lower
    tail is inverse-Gamma, :math:`w^{-(\delta+\kappa+1)}e^{-\theta/w}`.
    """
    logpdf, _, shape = _inverse_evaluate(w, gamma, kappa)
    return _shaped(logpdf, shape)


def inverse_htmp_pdf(w: ArrayLike, gamma: float, kappa: float) -> NDArray[np.float64]:
    r"""Density :math:`p_w(w) = w^{-2}\rho_{\gamma,\kappa}(1/w)` of the inverse law.

    Parameters
    ----------
    w : array_like
        Points, any shape.
    gamma : float
        Aspect ratio in (0, 1].
    kappa : float
        Eigenvalue-repulsion parameter, > 0.

    Returns
    -------
    ndarray
        :math:`p_w(w)`; 0 for ``w <= 0``.

    Raises
    ------
    ValueError
        For invalid ``gamma`` or ``kappa``.

    See Also
    --------
    inverse_htmp_logpdf

    Notes
    -----
    ``exp`` of :func:`inverse_htmp_logpdf`.
    """
    logpdf, _, shape = _inverse_evaluate(w, gamma, kappa)
    with np.errstate(over="ignore"):
        return _shaped(np.exp(logpdf), shape)


def inverse_htmp_cdf(w: ArrayLike, gamma: float, kappa: float) -> NDArray[np.float64]:
    r"""CDF of :math:`w = 1/x`, :math:`P(w' \le w) = 1 - F(1/w)`.

    Parameters
    ----------
    w : array_like
        Points, any shape.
    gamma : float
        Aspect ratio in (0, 1].
    kappa : float
        Eigenvalue-repulsion parameter, > 0.

    Returns
    -------
    ndarray
        The CDF; 0 for ``w <= 0`` and 1 for ``w = inf``.

    Raises
    ------
    ValueError
        For invalid ``gamma`` or ``kappa``.

    See Also
    --------
    htmp_cdf

    Notes
    -----
    :math:`F` is :func:`htmp_cdf`. The error is absolute (about
    :math:`10^{-12}`), so the survival function :math:`F(1/w)` of the power-law
    upper tail is not resolved below that level.
    """
    _, cdf, shape = _inverse_evaluate(w, gamma, kappa)
    return _shaped(cdf, shape)
