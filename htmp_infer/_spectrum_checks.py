r"""Checks of the numbers a :class:`~htmp_infer.Spectrum` is built from.

Numerical range
---------------
A spectrum is refused (:class:`~htmp_infer.errors.SpectrumError`, naming the
cause) rather than rescaled when float64 cannot hold it:

- an eigenvalue below the smallest normal float64 (``2.2e-308``: subnormal, its
  digits are lost), or sums :math:`\sum\lambda_i` or :math:`\sum 1/\lambda_i`
  (the statistics of the Laguerre and inverse models) that overflow. The
  likelihood is scale-free, so the message gives the power of two that brings
  the spectrum into range when one exists; the spectrum is not rescaled
  silently, because the ``scale`` posterior and the stored eigenvalues would
  then be in other units than the user's.
- more than :data:`MAX_EIGENVALUES` eigenvalues (the :math:`O(N^2)`
  log-Vandermonde sum and exact sampler take hours beyond; no weight matrix has
  a smaller side that long).
- an aspect ratio :math:`M/N` above :data:`MAX_ASPECT`: the Laguerre exponent
  :math:`\alpha = \kappa(M-N+1)/(2N)` then cancels against the normaliser in
  float64 and the posterior of κ loses its digits (measured: at
  :math:`M/N = 10^{12}` its quantiles move by 3-10%, at :math:`10^{14}` the
  evidence quadrature fails, for N = 40 and 400); 1e8 stays four decades
  below that, and far above any weight matrix (a 768 x 250k embedding has
  M/N ~ 330).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from htmp_infer.errors import SpectrumError

__all__ = ["MAX_ASPECT", "MAX_EIGENVALUES", "resolve_shape"]

#: Most eigenvalues a spectrum may hold (see the module's "Numerical range").
MAX_EIGENVALUES = 1_000_000
#: Largest aspect ratio M/N (smallest gamma is its inverse).
MAX_ASPECT = 1e8
_TINY = float(np.finfo(np.float64).tiny)
_LOG2_MAX = 1023.0  # sums below 2**1023 leave a factor 2 of headroom
_LOG2_TINY = -1022.0


def _real(value: object, what: str) -> float:
    """``value`` as a finite float, or a :class:`SpectrumError` naming ``what``."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise SpectrumError(f"{what} must be a real number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise SpectrumError(f"{what} is too large for float64, got {value}") from None
    if not math.isfinite(number):
        raise SpectrumError(f"{what} must be a finite number, got {number}")
    return number


def resolve_shape(
    n: int, *, gamma: float | None = None, n_cols: float | None = None
) -> float:
    """Return the larger dimension ``M`` from ``gamma = N/M`` or ``n_cols = M``.

    Raises
    ------
    SpectrumError
        When neither or both are given and disagree, when they are not finite real
        numbers, or when they imply ``M < N`` or ``M/N >`` :data:`MAX_ASPECT`.
    """
    if n < 1:
        raise SpectrumError(f"N must be >= 1, got {n}")
    g = None if gamma is None else _real(gamma, "gamma")
    m_given = None if n_cols is None else _real(n_cols, "n_cols")
    if g is not None:
        if not (0 < g <= 1):
            raise SpectrumError(f"gamma must be in (0, 1], got {g:g}")
        if g < 1 / MAX_ASPECT:
            raise SpectrumError(
                f"gamma = N/M = {g:g} is below {1 / MAX_ASPECT:g} (M/N above "
                f"{MAX_ASPECT:g}): float64 cannot resolve kappa at that aspect ratio"
            )
    if m_given is not None:
        if m_given < n:
            raise SpectrumError(f"n_cols must be >= N={n}, got {m_given:g}")
        if m_given > MAX_ASPECT * n:
            raise SpectrumError(
                f"n_cols = {m_given:g} is more than {MAX_ASPECT:g} x N (N={n}): "
                "float64 cannot resolve kappa at that aspect ratio"
            )
    if g is not None and m_given is not None:
        if not math.isclose(n / g, m_given, rel_tol=1e-9):
            raise SpectrumError(
                f"gamma={g} and n_cols={m_given} disagree for N={n} (N/gamma={n / g:g})"
            )
    if m_given is not None:
        return m_given
    if g is not None:
        return n / g
    raise SpectrumError("the matrix shape is unknown: give gamma (N/M) or n_cols (M)")


def _range_problem(pos: NDArray[np.float64]) -> str | None:
    """Why float64 cannot hold these sorted positive values' statistics, or None."""
    lo, hi = float(pos[0]), float(pos[-1])
    log2_min = math.log2(lo)
    log2_total = math.log2(hi) + math.log2(float(np.sum(pos / hi)))
    log2_inverse = -log2_min + math.log2(float(np.sum(lo / pos)))
    small = int(np.count_nonzero(pos < _TINY))
    if small:
        cause = (
            f"{small} eigenvalue(s) are subnormal (below {_TINY:.3g}, the smallest "
            f"normal float64; min {lo:.3g}): their digits are lost"
        )
    elif log2_total >= _LOG2_MAX:
        cause = f"the sum of the eigenvalues overflows float64 (max {hi:.3g})"
    elif log2_inverse >= _LOG2_MAX:
        cause = f"the sum of 1/eigenvalue overflows float64 (min {lo:.3g})"
    else:
        return None
    k_lo = math.ceil(max(_LOG2_TINY - log2_min, log2_inverse - _LOG2_MAX + 1))
    k_hi = math.floor(_LOG2_MAX - 1 - log2_total)
    if k_lo <= k_hi:
        k = (k_lo + k_hi) // 2
        return f"{cause}; the fit is scale-free: multiply them by 2**{k}"
    return (
        f"{cause}; their spread (max/min = 2**{math.log2(hi) - log2_min:.0f}) is "
        "wider than float64 can hold"
    )


def _check_eigenvalues(values: ArrayLike) -> NDArray[np.float64]:
    if isinstance(values, str | bytes):
        raise SpectrumError(f"eigenvalues must be numbers, got {type(values).__name__}")
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise SpectrumError(
            f"eigenvalues must be a 1-D array of numbers ({exc})"
        ) from None
    if arr.dtype.kind not in "iuf":
        raise SpectrumError(f"eigenvalues must be real numbers, got dtype {arr.dtype}")
    with np.errstate(over="ignore"):
        arr = arr.astype(np.float64)  # float128 beyond float64 becomes inf, refused
    if arr.ndim != 1:
        raise SpectrumError(
            f"eigenvalues must be a 1-D array, got shape {arr.shape} "
            "(pass a matrix with from_matrix / --matrix)"
        )
    if arr.size == 0:
        raise SpectrumError("the spectrum is empty")
    if arr.size > MAX_EIGENVALUES:
        raise SpectrumError(
            f"{arr.size} eigenvalues: at most {MAX_EIGENVALUES} (the fit's O(N^2) "
            "sums would take hours)"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        kind = "NaN" if np.isnan(arr).any() else "inf"
        raise SpectrumError(f"the spectrum contains {int(bad.sum())} {kind} value(s)")
    if (arr < 0).any():
        raise SpectrumError(
            f"the spectrum contains {int((arr < 0).sum())} negative value(s) "
            f"(min {arr.min():.3g}); eigenvalues of WᵀW are >= 0"
        )
    return np.sort(arr)
