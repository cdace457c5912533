r"""Public functions of the HTMP limit law :math:`\rho_{\gamma,\kappa}`.

This module holds the user-facing HTMP functions: log-density, density and CDF
(through :mod:`htmp_infer.limit._solver`), the Stieltjes transform (positive-axis
leg only), the exact moments and variance, and the tail exponents of the law and
of its inverse.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from htmp_infer.limit._params import (
    KAPPA_MP_SWITCH,
    _check_params,
    _shape_params,
    _shaped,
    kappa_to_delta,
)
from htmp_infer.limit._paths import _asymptotic_start, _asymptotic_w, _positive_axis
from htmp_infer.limit._solver import _evaluate

__all__ = [
    "TailExponents",
    "htmp_cdf",
    "htmp_logpdf",
    "htmp_moments",
    "htmp_pdf",
    "htmp_stieltjes",
    "htmp_tail_exponents",
    "htmp_variance",
]


def htmp_logpdf(x: ArrayLike, gamma: float, kappa: float) -> NDArray[np.float64]:
    r"""Log-density of the HTMP limit law :math:`\rho_{\gamma,\kappa}`.

    Parameters
    ----------
    x : array_like
        Points, any shape, in normalised units (the law has mean 1).
    gamma : float
        Aspect ratio :math:`\gamma = N/M \in (0, 1]`.
    kappa : float
        Eigenvalue-repulsion parameter :math:`\kappa = \lim \beta N > 0`.

    Returns
    -------
    ndarray
        :math:`\log\rho_{\gamma,\kappa}(x)`, with the shape of ``x``; ``-inf`` for
        ``x <= 0`` and ``x = inf``, ``nan`` for ``nan``. A scalar ``x`` gives a
        NumPy scalar.

    Raises
    ------
    ValueError
        If ``gamma`` is not in (0, 1] or ``kappa`` is not finite and positive.
    RuntimeError
        If the integration fails, which happens only far outside the validated
        range :math:`\theta = \kappa/(2\gamma) \le 5\times10^{9}` (for example
        :math:`\gamma = 10^{-7}`, :math:`\kappa = 10^{5}`).

    See Also
    --------
    htmp_pdf, htmp_cdf, mp_logpdf, KAPPA_MP_SWITCH

    Notes
    -----
    With :math:`b=\kappa/2`, :math:`\delta=\kappa(1-\gamma)/(2\gamma)` and
    :math:`\theta=\kappa/(2\gamma)=b+\delta`,

    .. math::

        \rho_{\gamma,\kappa}(x)=\frac{\theta^{\delta}x^{\delta-1}e^{-\theta x}}
        {\Gamma(b+1)\,\Gamma(b+\delta)\,|U(b,1-\delta,-\theta x)|^{2}},

    the Askey–Wimp weight of the associated Laguerre polynomials and the limit of
    the β-Laguerre ensemble with :math:`\beta=\kappa/N` (``docs/maths.md``
    §1.3). It is evaluated through :math:`\pi b x\rho(x) = -\operatorname{Im}
    w(-\theta x + i0)`, :math:`w = d\log U/d\log z`, continued by Kummer's
    Riccati equation along a stable path (:mod:`htmp_infer.limit` docstring).
    Against mpmath at 30 digits the absolute error of the log-density is below
    :math:`2\times10^{-11}` (below :math:`10^{-15}|\log\rho|` in the deep tails) for
    :math:`10^{-3}\le\kappa\le10^{3}`, :math:`0.05\le\gamma\le1`; mass, mean,
    variance and :math:`m_3` agree with their exact values to :math:`10^{-12}`
    or better for :math:`0.01\le\gamma\le1` up to the switch. For
    :math:`\theta x\ge10^{3}(b+1)(\theta+1)` the asymptotic series of :math:`U`,
    accurate to rounding there, is used. For ``kappa > KAPPA_MP_SWITCH`` the
    Marchenko–Pastur log-density is returned. All ``x`` of one call share one
    integration (10–80 ms for a few hundred points), so pass them together.
    """
    logpdf, _, shape = _evaluate(x, gamma, kappa)
    return _shaped(logpdf, shape)


def htmp_pdf(x: ArrayLike, gamma: float, kappa: float) -> NDArray[np.float64]:
    r"""Density of the HTMP limit law, ``exp(htmp_logpdf(x, gamma, kappa))``.

    Parameters
    ----------
    x : array_like
        Points, any shape, in normalised units.
    gamma : float
        Aspect ratio in (0, 1].
    kappa : float
        Eigenvalue-repulsion parameter, > 0.

    Returns
    -------
    ndarray
        :math:`\rho_{\gamma,\kappa}(x)`; 0 for ``x <= 0``.

    Raises
    ------
    ValueError
        For ``gamma`` outside (0, 1] or ``kappa`` not finite and positive.

    See Also
    --------
    htmp_logpdf

    Notes
    -----
    The density diverges like :math:`x^{\delta-1}` at 0 when :math:`\delta<1`,
    i.e. :math:`\kappa<2\gamma/(1-\gamma)`; work with :func:`htmp_logpdf` in the
    tails, where the density underflows.
    """
    logpdf, _, shape = _evaluate(x, gamma, kappa)
    with np.errstate(over="ignore"):
        return _shaped(np.exp(logpdf), shape)


def htmp_cdf(x: ArrayLike, gamma: float, kappa: float) -> NDArray[np.float64]:
    r"""Cumulative distribution function of the HTMP limit law.

    Parameters
    ----------
    x : array_like
        Points, any shape, in normalised units.
    gamma : float
        Aspect ratio in (0, 1].
    kappa : float
        Eigenvalue-repulsion parameter, > 0.

    Returns
    -------
    ndarray
        :math:`F(x)=\int_0^x\rho_{\gamma,\kappa}`, in [0, 1], non-decreasing in
        ``x``; 0 for ``x <= 0`` and 1 for ``x = inf``.

    Raises
    ------
    ValueError
        For ``gamma`` outside (0, 1] or ``kappa`` not finite and positive.

    See Also
    --------
    htmp_pdf

    Notes
    -----
    The CDF is the unwrapped phase of :math:`U` (``docs/maths.md`` §2.2),

    .. math::

        F(x) = -\frac{1}{\pi b}\arg U(b, 1-\delta, -\theta x + i0),

    since :math:`\log U(b,1-\delta,\theta\tau) = -b\,\mathbb E\log(x+\tau)
    - b\log\theta` has no zeros in the cut plane. It is obtained from the arc
    leg of the path and from :math:`dF/d\log x = x\rho(x)` along the cut, in the
    same integration as the density. The error is absolute, about
    :math:`10^{-12}`; in the far lower tail, below that level, the relative
    error is not controlled.
    """
    _, cdf, shape = _evaluate(x, gamma, kappa)
    return _shaped(cdf, shape)


def htmp_stieltjes(t: ArrayLike, gamma: float, kappa: float) -> NDArray[np.float64]:
    r"""Stieltjes transform :math:`S(t) = \mathbb E[1/(x+t)]` for ``t > 0``.

    Parameters
    ----------
    t : array_like
        Positive points, any shape.
    gamma : float
        Aspect ratio in (0, 1].
    kappa : float
        Eigenvalue-repulsion parameter, > 0.

    Returns
    -------
    ndarray
        :math:`S(t)`, with the shape of ``t``; 0 for ``t = inf``.

    Raises
    ------
    ValueError
        For ``t <= 0`` or ``nan``, ``gamma`` outside (0, 1], or ``kappa`` not
        finite and positive.

    Notes
    -----
    With :math:`r=\theta t` (``docs/maths.md`` §2.2),

    .. math::

        S(t) = \theta\,\frac{U(b+1,2-\delta,r)}{U(b,1-\delta,r)}
             = -\frac{w(r)}{b\,t}, \qquad w = r\,\frac{d}{dr}\log U(b,1-\delta,r),

    and :math:`w` solves :math:`dw/d\log r = -w^2+(\delta+r)w+br`, integrated
    (stably: :math:`U` is recessive at :math:`+\infty`) from the asymptotic
    series at large :math:`r` down to the requested points. The relative error
    is about :math:`10^{-12}`. For ``kappa > KAPPA_MP_SWITCH`` the MP transform
    :math:`2/\bigl(t+1-\gamma+\sqrt{(t+1-\gamma)^2+4\gamma t}\bigr)` is returned.
    """
    g, k = _check_params(gamma, kappa)
    ta = np.asarray(t, dtype=np.float64)
    flat = ta.ravel()
    bad = ~(flat > 0.0)
    if np.any(bad):
        raise ValueError(f"t must be > 0, got {float(flat[bad][0])!r}")
    out = np.zeros(flat.shape)
    fin = np.isfinite(flat)
    if k > KAPPA_MP_SWITCH:
        u = flat[fin] + 1.0 - g
        out[fin] = 2.0 / (u + np.sqrt(u * u + 4.0 * g * flat[fin]))
    elif np.any(fin):
        b, delta, theta = _shape_params(g, k)
        uniq, inverse = np.unique(flat[fin], return_inverse=True)
        with np.errstate(over="ignore"):
            r = theta * uniq
        r_big = _asymptotic_start(b, theta, 0.0)
        w = np.empty_like(r)
        big = r >= r_big
        if np.any(big):
            w[big], _ = _asymptotic_w(r[big], b, theta, 1.0)
        if np.any(~big):
            w[~big] = _positive_axis(b, delta, theta, r[~big])
        out[fin] = (-w / (b * uniq))[inverse]
    return _shaped(out, ta.shape)


def htmp_moments(gamma: float, kappa: float, order: int = 4) -> NDArray[np.float64]:
    r"""Exact moments :math:`m_1, \dots, m_{\mathrm{order}}` of the HTMP law.

    Parameters
    ----------
    gamma : float
        Aspect ratio in (0, 1].
    kappa : float
        Eigenvalue-repulsion parameter, > 0.
    order : int, default 4
        Highest moment, 1 to 4.

    Returns
    -------
    ndarray
        ``[m_1, ..., m_order]`` with :math:`m_k = \int x^k \rho_{\gamma,\kappa}`.

    Raises
    ------
    ValueError
        For invalid ``gamma``, ``kappa`` or ``order``.

    See Also
    --------
    htmp_variance

    Notes
    -----
    From the Riccati equation of the Stieltjes transform (``docs/maths.md``
    §2.2), with :math:`\epsilon = 1/\kappa`:

    .. math::

        m_1 &= 1,\qquad m_2 = 1+\gamma+2\gamma\epsilon,\\
        m_3 &= 1+3\gamma+\gamma^2+(6\gamma+6\gamma^2)\epsilon+8\gamma^2\epsilon^2,\\
        m_4 &= 1+6\gamma+6\gamma^2+\gamma^3+(12\gamma+34\gamma^2+12\gamma^3)\epsilon
               +(44\gamma^2+44\gamma^3)\epsilon^2+48\gamma^3\epsilon^3.

    As :math:`\kappa\to\infty` they tend to the MP moments (Narayana
    polynomials). They hold for every :math:`\kappa` (no MP switch).
    """
    g, k = _check_params(gamma, kappa)
    if (
        isinstance(order, bool)
        or not isinstance(order, (int, np.integer))
        or not (1 <= order <= 4)
    ):
        raise ValueError(f"order must be an integer in 1..4, got {order!r}")
    e = 1.0 / k
    m = [
        1.0,
        1.0 + g + 2.0 * g * e,
        1.0 + 3.0 * g + g * g + (6.0 * g + 6.0 * g * g) * e + 8.0 * g * g * e * e,
        1.0
        + 6.0 * g
        + 6.0 * g**2
        + g**3
        + (12.0 * g + 34.0 * g**2 + 12.0 * g**3) * e
        + (44.0 * g**2 + 44.0 * g**3) * e**2
        + 48.0 * g**3 * e**3,
    ]
    return np.array(m[: int(order)])


def htmp_variance(gamma: float, kappa: float) -> float:
    r"""Variance :math:`\gamma(1 + 2/\kappa)` of the HTMP law.

    Parameters
    ----------
    gamma : float
        Aspect ratio in (0, 1].
    kappa : float
        Eigenvalue-repulsion parameter, > 0.

    Returns
    -------
    float
        :math:`m_2 - m_1^2 = \gamma(1+2/\kappa)`.

    Raises
    ------
    ValueError
        For invalid ``gamma`` or ``kappa``.

    Notes
    -----
    The MP limit :math:`\kappa\to\infty` has variance :math:`\gamma`; the extra
    :math:`2\gamma/\kappa` is the high-temperature broadening.
    """
    g, k = _check_params(gamma, kappa)
    return g * (1.0 + 2.0 / k)


class TailExponents(NamedTuple):
    r"""Power-law exponents of the HTMP law and of its inverse.

    Attributes
    ----------
    lower : float
        Exponent :math:`\delta - 1` of :math:`\rho(x) \propto x^{\delta-1}`
        as :math:`x \to 0`.
    alpha : float
        HT-SR exponent :math:`\alpha = 1 + \delta` of the inverse law,
        :math:`p_w(w) \propto w^{-\alpha}` as :math:`w \to \infty`.
    """

    lower: float
    alpha: float


def htmp_tail_exponents(gamma: float, kappa: float) -> TailExponents:
    r"""Tail exponents of the HTMP law and of the inverse HTMP law.

    Parameters
    ----------
    gamma : float
        Aspect ratio in (0, 1].
    kappa : float
        Eigenvalue-repulsion parameter, > 0.

    Returns
    -------
    TailExponents
        ``lower`` :math:`=\delta-1=\kappa(1-\gamma)/(2\gamma)-1`, the exponent of
        the lower tail of :math:`\rho_{\gamma,\kappa}`, and ``alpha``
        :math:`=1+\kappa(1-\gamma)/(2\gamma)`, the HT-SR (WeightWatcher) density
        exponent of the upper tail of the inverse HTMP law.

    Raises
    ------
    ValueError
        For invalid ``gamma`` or ``kappa``.

    Notes
    -----
    ``docs/maths.md`` §2.4: as :math:`x\to0`,
    :math:`\rho(x)\simeq\theta^{\delta}\Gamma(b+\delta)/(\Gamma(b+1)\Gamma(\delta)^2)
    \,x^{\delta-1}`, and for :math:`w=1/x\to\infty` the inverse law has
    :math:`p_w(w)\simeq C w^{-(\delta+1)}` (Hill index :math:`\delta`). The upper
    tail of :math:`\rho` is Gamma-like, :math:`x^{\delta+\kappa-1}e^{-\theta x}`,
    with no power law.
    """
    g, k = _check_params(gamma, kappa)
    delta = kappa_to_delta(k, g)
    return TailExponents(lower=delta - 1.0, alpha=1.0 + delta)
