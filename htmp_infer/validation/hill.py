r"""WeightWatcher's layer exponent α, re-implemented with NumPy.

:func:`hill_ks_alpha` reproduces the ``alpha`` column of WeightWatcher 0.7.7's
``analyze()`` at its defaults: a continuous power-law fit of the upper tail of the
eigenvalues, with the Clauset–Shalizi–Newman (2009) choice of the lower cut-off
:math:`x_{\min}` by minimum Kolmogorov–Smirnov distance. It is the scan's
``hill_alpha`` column; ``benchmarks/hill_vs_weightwatcher.py`` checks it against
WeightWatcher on all-MiniLM-L6-v2. :mod:`htmp_infer.validation.peers` re-exports it
with the other peer estimators.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from htmp_infer.errors import ArgumentError, HTMPError

__all__ = ["WW_EVALS_THRESH", "WW_SMALL_N", "PowerLawFit", "hill_ks_alpha"]

# Cap on the number of (candidate, point) pairs held in memory at once by the
# vectorised KS scan: 2**22 float64 = 32 MiB per temporary.
_KS_BLOCK = 1 << 22

# WeightWatcher 0.7.7's constants (weightwatcher/constants.py, WW_powerlaw.py):
# EVALS_THRESH (without CUDA torch; 1e-4 with it), SMALL_N_CUTOFF, and the
# tail-size floor (k_min) of its small-sample fit.
WW_EVALS_THRESH = 1e-5
WW_SMALL_N = 20
_WW_SMALL_N_MIN_TAIL = 8


class PowerLawFit(NamedTuple):
    r"""A continuous power-law fit of an upper tail, :math:`p(x)\propto x^{-\alpha}`.

    Attributes
    ----------
    alpha : float
        Density exponent :math:`\hat\alpha` (the HT-SR / WeightWatcher α).
    xmin : float
        Lower cut-off of the tail chosen by minimum KS distance.
    ks : float
        KS distance between the tail's empirical CDF and the fitted Pareto CDF,
        as WeightWatcher computes it (:func:`hill_ks_alpha`, Notes).
    n_tail : int
        Number of points at or above ``xmin``.
    alpha_se : float
        Asymptotic standard error :math:`(\hat\alpha-1)/\sqrt{n_{\rm tail}}`.
    """

    alpha: float
    xmin: float
    ks: float
    n_tail: int
    alpha_se: float


def _positive_values(eigenvalues: ArrayLike, minimum: int) -> NDArray[np.float64]:
    """Sorted float64 copy of finite, positive values; at least ``minimum``."""
    try:
        arr = np.asarray(eigenvalues, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ArgumentError("eigenvalues must be an array of real numbers") from None
    if arr.size < minimum:
        raise ArgumentError(f"need at least {minimum} eigenvalues, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ArgumentError(
            f"eigenvalues contain {int((~np.isfinite(arr)).sum())} non-finite value(s)"
        )
    if (arr <= 0).any():
        raise ArgumentError(
            f"eigenvalues must be > 0, got {int((arr <= 0).sum())} value(s) <= 0 "
            f"(min {arr.min():.3g})"
        )
    return np.sort(arr)


def _ww_ks(
    logx: NDArray[np.float64],
    first: NDArray[np.intp],
    n_tail: NDArray[np.intp],
    log_xmin: NDArray[np.float64],
    alpha: NDArray[np.float64],
) -> NDArray[np.float64]:
    r"""WeightWatcher's KS distance of each candidate, vectorised in bounded blocks.

    For the candidate whose tail is ``logx[first:]`` (``n`` points), the distance
    is :math:`\max_{0\le r<n}|F(x_{(k+r)}) - r/n|`, :math:`k` = ``first``, with
    :math:`F(x) = 1-(x/x_{\min})^{1-\alpha}`.
    """
    n_all = logx.size
    ks = np.empty(first.size)
    offsets = np.arange(n_all)
    step = max(1, _KS_BLOCK // n_all)
    for lo in range(0, first.size, step):
        sl = slice(lo, lo + step)
        k0 = int(first[sl].min())
        rank = offsets[None, k0:] - first[sl, None]  # 0-based rank within each tail
        # points below a tail (rank < 0) are masked; clip them to xmin so that
        # exp cannot overflow there
        log_ratio = np.maximum(logx[None, k0:] - log_xmin[sl, None], 0.0)
        cdf = -np.expm1((1.0 - alpha[sl, None]) * log_ratio)
        gap = np.abs(cdf - rank / n_tail[sl, None].astype(np.float64))
        ks[sl] = np.where(rank >= 0, gap, -np.inf).max(axis=1)
    return ks


def _ww_small_n_fit(x: NDArray[np.float64]) -> PowerLawFit:
    r"""WeightWatcher 0.7.7's small-sample fit (``WWFit.fit_powerlaw_smallN``).

    Used by WeightWatcher when fewer than 20 values remain; ``x`` is sorted. That
    method ranks the candidates by :math:`D - 0.868/\sqrt n`, but
    ``WWFit.__init__`` then re-selects by the smallest ``D`` among the candidates
    it scored; the latter is WeightWatcher's reported fit, and this one's.
    """
    n_all = x.size
    logx = np.log(x) - math.log(float(x[0]))
    best: tuple[float, int, float] | None = None  # (D, index, alpha)
    for i in range(n_all - _WW_SMALL_N_MIN_TAIL + 1):  # tails of 8 points or more
        n = n_all - i
        s = float(np.sum(logx[i:])) - n * float(logx[i])
        if s <= 1e-12:  # WeightWatcher's test of a degenerate tail
            continue
        a = 1.0 + (n - 1.0) / s  # the (n - 1) bias-corrected MLE
        d = float(
            _ww_ks(logx, np.array([i]), np.array([n]), logx[[i]], np.array([a]))[0]
        )
        if best is None or d < best[0]:
            best = (d, i, a)
    if best is None:  # no tail of 8 points: WeightWatcher fits all the values
        s = float(np.sum(logx))
        if s <= 1e-12:
            raise HTMPError("every candidate tail is a single repeated value")
        a = 1.0 + (n_all - 1.0) / s
        d = float(
            _ww_ks(logx, np.array([0]), np.array([n_all]), logx[:1], np.array([a]))[0]
        )
        best = (d, 0, a)
    d, i, a = best
    nt = n_all - i
    return PowerLawFit(
        alpha=a, xmin=float(x[i]), ks=d, n_tail=nt, alpha_se=(a - 1.0) / math.sqrt(nt)
    )


def hill_ks_alpha(
    eigenvalues: ArrayLike,
    *,
    xmin_candidates: ArrayLike | None = None,
    min_tail: int = 2,
    evals_thresh: float = WW_EVALS_THRESH,
    small_n: int = WW_SMALL_N,
) -> PowerLawFit:
    r"""WeightWatcher's layer exponent α: a power-law tail fit, xmin by KS distance.

    A NumPy re-implementation of the ``alpha`` column of WeightWatcher 0.7.7's
    ``analyze()`` at its defaults (``fit='PL'``, ``pl_package='ww'``,
    ``xmax=None``, ``fix_fingers=False``): given the eigenvalues WeightWatcher
    computes (the squared singular values of the raw weight matrix, ascending,
    unnormalised), it returns the same α, xmin, KS distance ``D`` and ``sigma``.

    Parameters
    ----------
    eigenvalues : array_like
        Positive, finite values (any order), in the units WeightWatcher uses
        (squared singular values of the unscaled matrix) when ``evals_thresh`` is
        left at its default.
    xmin_candidates : array_like, optional
        Cut-offs to try instead of WeightWatcher's (every value but the largest).
        The tail of a candidate is the values at or above it; candidates with fewer
        than ``min_tail`` of them, or whose tail is a single repeated value, are
        ignored. Given candidates always use the standard fit, never the small-sample
        one.
    min_tail : int, default 2
        Smallest tail size considered by the standard fit (at least 2;
        WeightWatcher's is 2).
    evals_thresh : float, default 1e-5
        Values at or below it are dropped first, as WeightWatcher does with its
        ``EVALS_THRESH`` (1e-5 without CUDA torch). An absolute threshold: it makes
        the fit depend on the scale of the values; 0 turns it off.
    small_n : int, default 20
        With fewer values than this (after the threshold) and no
        ``xmin_candidates``, WeightWatcher's small-sample fit is used (see Notes);
        0 turns it off.

    Returns
    -------
    PowerLawFit
        ``alpha``, ``xmin``, ``ks``, ``n_tail``, ``alpha_se`` (WeightWatcher's
        ``alpha``, ``xmin``, ``D``, ``num_pl_spikes`` and ``sigma``).

    Raises
    ------
    HTMPError
        On non-finite or non-positive values, fewer than ``min_tail`` values (before
        or after the threshold), ``min_tail < 2``, a negative or non-finite
        ``evals_thresh``, or when no candidate is usable.

    Notes
    -----
    *Estimator.* For the cut-off :math:`x_{\min} = x_{(k)}` of the sorted values
    :math:`x_{(0)}\le\dots\le x_{(N-1)}`, the tail is
    :math:`x_{(k)},\dots,x_{(N-1)}`, :math:`n = N-k` points, and the
    maximum-likelihood exponent of the continuous Pareto density
    :math:`(\alpha-1)x_{\min}^{\alpha-1}x^{-\alpha}` is (Clauset, Shalizi & Newman
    2009, Eq. 3.1)

    .. math::

        \hat\alpha = 1 + n\Big/\sum_{r=0}^{n-1}\log\frac{x_{(k+r)}}{x_{\min}},
        \qquad \mathrm{se}(\hat\alpha) = \frac{\hat\alpha-1}{\sqrt n}.

    *xmin search.* The candidates are all the values but the largest,
    :math:`k = 0,\dots,N-2` (tails of 2 to :math:`N` points; by index, so
    repeated values are separate candidates as in WeightWatcher). Each gets the KS
    distance of WeightWatcher (and of ``powerlaw`` 2.0 for distinct values)

    .. math::

        D = \max_{0\le r<n}\Bigl|F(x_{(k+r)}) - \frac{r}{n}\Bigr|,\qquad
        F(x) = 1-(x/x_{\min})^{1-\hat\alpha},

    the empirical CDF taken just below each point, not the two-sided
    Kolmogorov–Smirnov statistic (which is at most :math:`1/n` larger). A
    candidate with :math:`\hat\alpha\le 1` gets :math:`D = 1`. The smallest
    :math:`D` wins, the smallest xmin on ties. No restriction on the tail size
    (beyond ``min_tail``), no xmax and no finger handling: at WeightWatcher's
    defaults, a small top tail with a large α can win (e.g. α = 12.35 with 16
    points on MiniLM's pooler). The sums for every cut-off come from one
    cumulative sum of :math:`\log(x/x_{(0)})`; the scan costs :math:`O(N^2)`
    operations in blocks of bounded memory (about 5 ms for N = 384).

    *Small samples.* With :math:`N < 20`, WeightWatcher 0.7.7 switches to
    ``fit_powerlaw_smallN``: tails of at least 8 points and the bias-corrected
    :math:`\hat\alpha = 1 + (n-1)/\sum\log(x/x_{\min})` (in :math:`F` too).
    Its code ranks them by :math:`D - 0.868/\sqrt n`, but its caller then keeps
    the smallest :math:`D`, and that is the α it reports; with no tail of 8
    points, all values are fitted. Both are reproduced here.

    *Not reproduced.* A tail of one repeated value (:math:`\hat\alpha = \infty`)
    is skipped here; WeightWatcher keeps it with :math:`D = (n-1)/n`, which never
    wins against a proper tail. WeightWatcher's other options (``fix_fingers``,
    ``xmax``, ``pl_package='powerlaw'``, truncated power laws) are not.
    """
    if int(min_tail) < 2:
        raise ArgumentError(f"min_tail must be >= 2, got {min_tail}")
    min_tail = int(min_tail)
    thresh = float(evals_thresh)
    if not (math.isfinite(thresh) and thresh >= 0.0):
        raise ArgumentError(
            f"evals_thresh must be finite and >= 0, got {evals_thresh!r}"
        )
    x = _positive_values(eigenvalues, min_tail)
    x = x[x > thresh]
    if x.size < min_tail:
        raise HTMPError(
            f"need at least {min_tail} eigenvalues above evals_thresh = {thresh:g}, "
            f"got {x.size}"
        )
    if xmin_candidates is None and x.size < int(small_n):
        return _ww_small_n_fit(x)
    n_all = x.size
    # logs relative to the smallest value: non-negative terms, scale-free sums
    logx = np.log(x) - math.log(float(x[0]))
    suffix = np.concatenate([np.cumsum(logx[::-1])[::-1], [0.0]])  # sum of logx[k:]

    if xmin_candidates is None:
        first = np.arange(n_all - 1)  # every value but the largest
        xmin = x[first]
        log_xmin = logx[first]
    else:
        cand = np.unique(np.asarray(xmin_candidates, dtype=np.float64).ravel())
        if not (np.isfinite(cand).all() and (cand > 0).all()):
            raise ArgumentError("xmin_candidates must be finite and > 0")
        first = np.searchsorted(x, cand, side="left")
        xmin = cand
        log_xmin = np.log(cand) - math.log(float(x[0]))
    n_tail = n_all - first
    keep = n_tail >= min_tail
    first, n_tail, xmin, log_xmin = (
        first[keep],
        n_tail[keep],
        xmin[keep],
        log_xmin[keep],
    )
    if first.size == 0:
        raise HTMPError(f"no xmin candidate leaves at least {min_tail} points above it")
    log_ratio_sum = suffix[first] - n_tail * log_xmin
    usable = log_ratio_sum > 0  # else the whole tail equals xmin
    first, n_tail, xmin, log_xmin = (
        first[usable],
        n_tail[usable],
        xmin[usable],
        log_xmin[usable],
    )
    if first.size == 0:
        raise HTMPError("every candidate tail is a single repeated value")
    alpha = 1.0 + n_tail / log_ratio_sum[usable]
    ks = _ww_ks(logx, first, n_tail, log_xmin, alpha)
    ks[alpha <= 1.0] = 1.0  # WeightWatcher leaves D = 1 where alpha <= 1

    best = int(np.argmin(ks))
    a, nt = float(alpha[best]), int(n_tail[best])
    return PowerLawFit(
        alpha=a,
        xmin=float(xmin[best]),
        ks=float(ks[best]),
        n_tail=nt,
        alpha_se=(a - 1.0) / math.sqrt(nt),
    )
