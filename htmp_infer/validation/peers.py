r"""Peer estimators: what other tools compute, re-implemented with NumPy/SciPy.

These are the baselines the package is compared against (``benchmarks/peers.py``):

- :func:`hill_ks_alpha`: WeightWatcher 0.7.7's layer exponent α (its default
  ``analyze()``), a continuous power-law fit of the upper tail with the
  Clauset–Shalizi–Newman (2009) choice of the lower cut-off :math:`x_{\min}` by
  minimum Kolmogorov–Smirnov distance (defined in :mod:`htmp_infer.validation.hill`,
  checked by ``benchmarks/hill_vs_weightwatcher.py``);
- :func:`moment_kappa`: the moment estimator of :math:`\kappa` from the exact
  variance of the HTMP limit law (``docs/maths.md`` §2.2, §6);
- :func:`iid_mle_kappa`: the maximum-likelihood fit of the limit density
  :math:`\rho_{\gamma,\kappa}` treating the eigenvalues as i.i.d. draws, which is
  what the paper's authors' code does at the limit level (§4.3);
- :func:`kappa_to_alpha` and :func:`alpha_to_kappa`: the bridge between
  :math:`\kappa` and the HT-SR density exponent of the inverse HTMP law (§2.4).

They are independent of the package's Coulomb-gas likelihood: they use only the
eigenvalues, their order statistics, and :func:`htmp_infer.limit.htmp_logpdf`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from htmp_infer.errors import ArgumentError, HTMPError
from htmp_infer.limit import htmp_logpdf, kappa_to_delta
from htmp_infer.validation.hill import PowerLawFit, _positive_values, hill_ks_alpha

__all__ = [
    "PowerLawFit",
    "alpha_to_kappa",
    "hill_ks_alpha",
    "iid_mle_kappa",
    "kappa_to_alpha",
    "moment_kappa",
]


def _check_gamma(gamma: float) -> float:
    g = float(gamma)
    if not (0.0 < g <= 1.0):
        raise ArgumentError(f"gamma must be in (0, 1], got {gamma!r}")
    return g


def moment_kappa(eigenvalues: ArrayLike, gamma: float) -> float:
    r"""Moment estimator of :math:`\kappa` from the normalised second moment.

    Parameters
    ----------
    eigenvalues : array_like
        Positive, finite eigenvalues, at least 2; any scale.
    gamma : float
        Aspect ratio :math:`\gamma = N/M \in (0, 1]`.

    Returns
    -------
    float
        :math:`\hat\kappa > 0`, or ``inf`` when the spectrum is no more spread than
        the Marchenko–Pastur law (denominator :math:`\le 0`, see Notes).

    Raises
    ------
    HTMPError
        On fewer than 2 values, non-finite or non-positive values, or ``gamma``
        outside (0, 1].

    Notes
    -----
    The HTMP limit law (mean 1) has :math:`m_2 = 1+\gamma+2\gamma/\kappa`, i.e.
    variance :math:`\gamma(1+2/\kappa)` (``docs/maths.md`` §2.2). Matching the
    scale-free ratio :math:`\hat m_2/\hat m_1^2` of the sample moments gives (§6)

    .. math::

        \hat\kappa = \frac{2\gamma}{\hat m_2/\hat m_1^{2} - 1 - \gamma}.

    Since :math:`\kappa\to\infty` is the Marchenko–Pastur law, whose normalised
    variance is exactly :math:`\gamma`, a sample variance at or below
    :math:`\gamma\hat m_1^2` is best matched by :math:`\kappa = \infty`: the
    estimator returns ``inf`` there instead of a negative number. It is dominated
    by the largest eigenvalues (outliers, spikes) on real layers (§10).
    """
    g = _check_gamma(gamma)
    x = _positive_values(eigenvalues, 2)
    m1 = float(np.mean(x))
    ratio = float(np.mean((x / m1) ** 2))
    denom = ratio - 1.0 - g
    if denom <= 0.0:
        return math.inf
    return 2.0 * g / denom


def _neg_loglik(
    log_kappa: float, x: NDArray[np.float64], gamma: float, log_scale: float
) -> float:
    """Negative i.i.d. log-likelihood of ``x`` under the scaled limit law."""
    lp = htmp_logpdf(x * math.exp(-log_scale), gamma, math.exp(log_kappa))
    total = float(np.sum(lp)) - x.size * log_scale
    return -total if math.isfinite(total) else math.inf


def iid_mle_kappa(
    eigenvalues: ArrayLike,
    gamma: float,
    *,
    bounds: tuple[float, float] = (1e-3, 1e4),
    profile_scale: bool = False,
    grid_per_decade: int = 3,
) -> tuple[float, float]:
    r"""Maximum-likelihood κ of the limit density, eigenvalues taken as i.i.d.

    Parameters
    ----------
    eigenvalues : array_like
        Positive, finite eigenvalues, at least 2; any scale.
    gamma : float
        Aspect ratio :math:`\gamma = N/M \in (0, 1]`.
    bounds : (float, float), default (1e-3, 1e4)
        Search interval of :math:`\kappa`; the estimate is clipped to it.
    profile_scale : bool, default False
        Also maximise over the scale :math:`s` (a joint Nelder–Mead refinement in
        :math:`(\log\kappa, \log s)`, about 20–50 more likelihood evaluations).
        By default :math:`s` is the mean eigenvalue (see Notes).
    grid_per_decade : int, default 3
        Points per decade of the coarse grid in :math:`\log\kappa`.

    Returns
    -------
    kappa : float
        :math:`\hat\kappa`.
    scale : float
        :math:`\hat s`, the fitted mean eigenvalue.

    Raises
    ------
    HTMPError
        On fewer than 2 values, non-finite or non-positive values, ``gamma``
        outside (0, 1] or bad ``bounds``.

    Notes
    -----
    The estimate maximises

    .. math::

        \ell(\kappa, s) = \sum_{i=1}^{N}\Bigl[\log\rho_{\gamma,\kappa}(\lambda_i/s)
        - \log s\Bigr]

    with :math:`\rho_{\gamma,\kappa}` the HTMP limit density
    (:func:`htmp_infer.limit.htmp_logpdf`), ignoring the eigenvalue repulsion
    (the correlations) of a finite-N spectrum; this is the limit-level fit of the
    paper's authors' code (``docs/maths.md`` §4.3), re-implemented from the
    formula. One evaluation costs 10–60 ms for 1000 eigenvalues, a fit about
    30 evaluations (1–2 s).

    *Scale.* :math:`\rho_{\gamma,\kappa}` has mean exactly 1 for every κ (§2.2),
    and the exact finite-N sampler has :math:`\mathbb E[\bar\lambda] = s`
    (§5), so :math:`\hat s = \bar\lambda` is a consistent, root-N estimator of
    the scale that costs no likelihood evaluation. On exact spectra (N = 1000,
    γ = 0.5, κ ∈ {0.5, 2, 5.5, 20}) the joint maximiser :math:`\hat s` differs
    from :math:`\bar\lambda` by at most 2% and moves :math:`\hat\kappa` by less
    than its sampling spread, so the profile is optional
    (``profile_scale=True``).

    *Search.* :math:`\ell(\cdot, \bar\lambda)` is evaluated on a grid of
    ``grid_per_decade`` points per decade of κ over ``bounds`` (22 points by
    default), then refined by bounded Brent minimisation in :math:`\log\kappa`
    between the neighbours of the best grid point (tolerance :math:`10^{-3}` in
    :math:`\log\kappa`, about 7 evaluations).
    """
    g = _check_gamma(gamma)
    x = _positive_values(eigenvalues, 2)
    lo_k, hi_k = (float(b) for b in bounds)
    if not (0.0 < lo_k < hi_k and math.isfinite(hi_k)):
        raise ArgumentError(f"bounds must satisfy 0 < low < high < inf, got {bounds!r}")
    if int(grid_per_decade) < 1:
        raise ArgumentError(f"grid_per_decade must be >= 1, got {grid_per_decade}")
    log_s = math.log(float(np.mean(x)))
    lo, hi = math.log(lo_k), math.log(hi_k)
    n_grid = max(3, math.ceil((hi - lo) / math.log(10.0) * int(grid_per_decade)) + 1)
    grid = np.linspace(lo, hi, n_grid)
    values = np.array([_neg_loglik(float(t), x, g, log_s) for t in grid])
    if not np.isfinite(values).any():
        raise HTMPError("the limit likelihood is zero for every kappa on the grid")
    i = int(np.argmin(values))
    a, b = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, n_grid - 1)])
    res = optimize.minimize_scalar(
        _neg_loglik,
        bounds=(a, b),
        args=(x, g, log_s),
        method="bounded",
        options={"xatol": 1e-3},
    )
    log_k = float(res.x) if res.fun <= values[i] else float(grid[i])
    if profile_scale:
        joint = optimize.minimize(
            lambda p: _neg_loglik(float(p[0]), x, g, float(p[1])),
            np.array([log_k, log_s]),
            method="Nelder-Mead",
            options={"xatol": 1e-3, "fatol": 1e-4, "maxfev": 200},
        )
        if joint.fun <= _neg_loglik(log_k, x, g, log_s):
            log_k, log_s = float(joint.x[0]), float(joint.x[1])
    kappa = min(max(math.exp(log_k), lo_k), hi_k)
    return kappa, math.exp(log_s)


def kappa_to_alpha(kappa: float, gamma: float) -> float:
    r"""HT-SR density exponent of the inverse HTMP law for a given κ.

    Parameters
    ----------
    kappa : float
        :math:`\kappa > 0` (``inf`` gives ``inf``).
    gamma : float
        Aspect ratio :math:`\gamma\in(0, 1]`.

    Returns
    -------
    float
        :math:`\alpha = 1 + \kappa(1-\gamma)/(2\gamma)`.

    Notes
    -----
    The inverse HTMP law :math:`w = 1/x` has upper tail
    :math:`p(w)\sim C w^{-(1+\delta)}`, :math:`\delta = \kappa(1-\gamma)/(2\gamma)`
    (``docs/maths.md`` §2.4), so its WeightWatcher exponent is
    :math:`\alpha = 1+\delta`. At :math:`\gamma = 1` every κ gives α = 1.
    """
    g = _check_gamma(gamma)
    k = float(kappa)
    if not k > 0:
        raise ArgumentError(f"kappa must be > 0, got {kappa!r}")
    return 1.0 + kappa_to_delta(k, g)


def alpha_to_kappa(alpha: float, gamma: float) -> float:
    r"""Inverse of :func:`kappa_to_alpha`: κ from the HT-SR exponent α.

    Parameters
    ----------
    alpha : float
        HT-SR density exponent :math:`\alpha > 1`.
    gamma : float
        Aspect ratio :math:`\gamma\in(0, 1)`; at :math:`\gamma = 1` the map is not
        invertible (every κ gives α = 1).

    Returns
    -------
    float
        :math:`\kappa`.

    Notes
    -----
    Solves :math:`\alpha = 1 + \kappa(1-\gamma)/(2\gamma)` (``docs/maths.md``
    §2.4) for κ: :math:`\kappa = 2\gamma(\alpha-1)/(1-\gamma)`.
    """
    g = _check_gamma(gamma)
    a = float(alpha)
    if g == 1.0:
        raise ArgumentError(
            "alpha_to_kappa is undefined at gamma = 1 (alpha is always 1)"
        )
    if not a > 1.0:
        raise ArgumentError(f"alpha must be > 1, got {alpha!r}")
    return 2.0 * g * (a - 1.0) / (1.0 - g)
