r"""Spectra: eigenvalues with the matrix shape they came from.

Convention
----------
A spectrum holds the :math:`N` positive eigenvalues :math:`\lambda_i` of
:math:`W^\top W` (equivalently the squared singular values of :math:`W`) for an
:math:`N\times M` or :math:`M\times N` matrix, :math:`N = \min`, :math:`M = \max`,
aspect ratio :math:`\gamma = N/M \in (0, 1]`. The eigenvalues are stored as given,
not rescaled: inference is scale-free (the scale is a model parameter), and the
limit law and the plots use :math:`x = \lambda/\bar\lambda` (mean one).

Numerical range
---------------
Spectra that float64 cannot hold are refused, not rescaled; the rules and their
reasons are in :mod:`htmp_infer._spectrum_checks`.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

import htmp_infer._x64  # noqa: F401  (float64 before any array)
from htmp_infer._numerics import log_abs_vandermonde
from htmp_infer._spectrum_checks import (
    _TINY,
    MAX_ASPECT,
    MAX_EIGENVALUES,
    _check_eigenvalues,
    _range_problem,
    resolve_shape,
)
from htmp_infer.errors import SpectrumError

__all__ = [
    "MAX_ASPECT",
    "MAX_EIGENVALUES",
    "Spectrum",
    "SufficientStats",
    "matrix_eigenvalues",
    "resolve_shape",
]

_BUILD = (
    "build a spectrum with Spectrum.from_eigenvalues(lam, gamma=N/M) or "
    "Spectrum.from_matrix(W)"
)


class SufficientStats(NamedTuple):
    r"""Sufficient statistics of a spectrum for every β-Laguerre likelihood.

    Attributes
    ----------
    n : int
        Number of eigenvalues.
    log_vandermonde : float
        :math:`V = \sum_{i<j}\log|\lambda_i-\lambda_j|`.
    sum_log : float
        :math:`L = \sum_i \log\lambda_i`.
    total : float
        :math:`S = \sum_i \lambda_i`.
    """

    n: int
    log_vandermonde: float
    sum_log: float
    total: float


def matrix_eigenvalues(matrix: ArrayLike) -> NDArray[np.float64]:
    r"""The :math:`\min(N, M)` eigenvalues of :math:`W^\top W`, ascending, in float64.

    Computed as squared singular values (LAPACK ``gesdd`` on the CPU; JAX's SVD on
    the default device when it is a GPU), never by forming :math:`W^\top W`.
    A matrix more than twice as long as it is wide is first reduced on the CPU to
    the triangular factor :math:`R` of :math:`W = QR` (same singular values) by
    Householder QR of blocks of :math:`4\min(N, M)` rows in float64
    (:func:`_blocked_r`), so the float64 working memory is :math:`O(\min(N,M)^2)`
    instead of twice the matrix.
    Singular values at or below :math:`\sigma_{\max}\max(N,M)\,\epsilon`
    (numpy's ``matrix_rank`` tolerance) are zero up to rounding and returned as 0.

    Raises
    ------
    SpectrumError
        For a non-real dtype, a shape that is not 2-D of at least 2 x 2, or NaN/inf
        entries.
    """
    try:
        w = np.asarray(matrix)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise SpectrumError(
            f"the matrix must be a 2-D array of numbers ({exc})"
        ) from None
    if w.dtype.kind not in "iuf":
        raise SpectrumError(f"the matrix must be real, got dtype {w.dtype}")
    if w.ndim != 2:
        raise SpectrumError(f"expected a 2-D matrix, got shape {w.shape}")
    if min(w.shape) < 2:
        raise SpectrumError(f"the matrix must be at least 2 x 2, got {w.shape}")
    bad = int(w.size - np.count_nonzero(np.isfinite(w)))
    if bad:
        raise SpectrumError(f"the matrix contains {bad} NaN/inf entries")
    with np.errstate(over="ignore"):
        if (
            w.dtype.kind == "f"
            and w.dtype.itemsize > 8
            and not np.all(np.isfinite(w.astype(np.float64)))
        ):
            raise SpectrumError(f"the matrix's {w.dtype} entries overflow float64")
    absmax = max(abs(float(w.max())), abs(float(w.min())))
    if absmax == 0:
        raise SpectrumError("the matrix is all zeros")
    try:
        if jax.default_backend() == "gpu":
            sv = np.asarray(
                jnp.linalg.svd(jnp.asarray(w, jnp.float64), compute_uv=False)
            )
        else:
            tall = w if w.shape[0] >= w.shape[1] else w.T
            if tall.shape[0] > 2 * tall.shape[1]:
                tall = _blocked_r(tall)
            sv = np.linalg.svd(tall.astype(np.float64, copy=False), compute_uv=False)
    except np.linalg.LinAlgError as exc:
        raise SpectrumError(f"the SVD of the matrix failed ({exc})") from None
    if not np.all(np.isfinite(sv)):
        raise SpectrumError(
            f"the singular values of the matrix overflow float64 (largest entry "
            f"{absmax:.3g}); scale it down, the fit is scale-free"
        )
    tol = sv.max() * max(w.shape) * np.finfo(np.float64).eps
    kept = sv[sv > tol]
    if kept.size and kept.max() >= math.sqrt(np.finfo(np.float64).max):
        raise SpectrumError(
            f"the squared singular values of the matrix overflow float64 (largest "
            f"singular value {kept.max():.3g}); scale it down, the fit is scale-free"
        )
    if kept.size and kept.min() < math.sqrt(_TINY):
        raise SpectrumError(
            f"the squared singular values of the matrix underflow float64 (smallest "
            f"{kept.min():.3g}); scale it up, the fit is scale-free"
        )
    return np.sort(np.where(sv > tol, sv**2, 0.0))


def _blocked_r(w: NDArray[Any]) -> NDArray[np.float64]:
    r"""The :math:`c\times c` factor :math:`R` of a tall :math:`r\times c` matrix.

    :math:`R \leftarrow \mathrm{qr}\bigl([R;\ W_{\text{block}}]\bigr)` over blocks
    of :math:`4c` rows, each converted to float64 on its own: Householder QR is
    backward stable, so the singular values of the final :math:`R` are those of
    :math:`W` to float64 rounding, and no float64 copy of :math:`W` is made.
    """
    cols = w.shape[1]
    step = 4 * cols
    r = np.zeros((0, cols))
    for start in range(0, w.shape[0], step):
        block = np.asarray(w[start : start + step], dtype=np.float64)
        r = scipy.linalg.qr(
            np.vstack([r, block]), mode="r", overwrite_a=True, check_finite=False
        )[0][:cols]
    return np.asarray(r, dtype=np.float64)


@dataclass(frozen=True)
class Spectrum:
    r"""The positive eigenvalues of one matrix and its shape.

    Build it with :meth:`from_eigenvalues`, :meth:`from_matrix` or :meth:`load`.

    Attributes
    ----------
    eigenvalues : ndarray
        Sorted positive eigenvalues (float64), :math:`N` of them.
    n_cols : float
        The larger matrix dimension :math:`M`.
    n_zero : int
        Zero eigenvalues removed (rank deficiency), reported, never silent.
    name : str
        A label (file name, layer name).
    max_spikes : int or None
        The spike cap :math:`K` of the spiked models' likelihoods (``None``: the
        first cap, :func:`htmp_infer.mechanisms.spikes.default_max_spikes`). The
        evidence
        raises it when the posterior presses against it (:meth:`with_max_spikes`).
    """

    eigenvalues: NDArray[np.float64]
    n_cols: float
    n_zero: int = 0
    name: str = "spectrum"
    max_spikes: int | None = None

    def __post_init__(self) -> None:
        """Refuse fields that no constructor would produce."""
        problem = self._problem()
        if problem is not None:
            raise SpectrumError(f"Spectrum: {problem}; {_BUILD}")

    def _problem(self) -> str | None:
        lam = self.eigenvalues
        if not (
            isinstance(lam, np.ndarray) and lam.dtype == np.float64 and lam.ndim == 1
        ):
            return "eigenvalues must be a 1-D float64 numpy array"
        if lam.size < 2 or lam.size > MAX_EIGENVALUES:
            return f"needs 2 to {MAX_EIGENVALUES} eigenvalues, got {lam.size}"
        if not (np.all(np.isfinite(lam)) and lam[0] > 0 and np.all(np.diff(lam) > 0)):
            return "eigenvalues must be finite, positive, distinct and sorted"
        for what, value in (("n_zero", self.n_zero), ("max_spikes", self.max_spikes)):
            if value is None and what == "max_spikes":
                continue
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                return f"{what} must be an integer, got {type(value).__name__}"
            if value < 0:
                return f"{what} must be >= 0, got {value}"
        if not isinstance(self.name, str):
            return f"name must be a string, got {type(self.name).__name__}"
        try:
            resolve_shape(lam.size, n_cols=self.n_cols)
        except SpectrumError as exc:
            return str(exc)
        return _range_problem(lam)

    def with_max_spikes(self, max_spikes: int) -> Spectrum:
        """The same spectrum with spike cap ``max_spikes`` (cached sums kept)."""
        new = replace(self, max_spikes=int(max_spikes))
        for key in ("log_vandermonde", "stats"):
            if key in self.__dict__:
                new.__dict__[key] = self.__dict__[key]
        return new

    @property
    def n(self) -> int:
        """Number of positive eigenvalues :math:`N`."""
        return int(self.eigenvalues.size)

    @property
    def gamma(self) -> float:
        r"""Aspect ratio :math:`\gamma = N/M`."""
        return self.n / self.n_cols

    @classmethod
    def from_eigenvalues(
        cls,
        values: ArrayLike,
        *,
        gamma: float | None = None,
        n_cols: float | None = None,
        name: str = "spectrum",
    ) -> Spectrum:
        """Build a spectrum from eigenvalues.

        Parameters
        ----------
        values : array_like
            The eigenvalues of :math:`W^\\top W`: finite, non-negative, at least two
            distinct positive values. Exact zeros are removed and counted in
            ``n_zero`` (with a warning); ``N`` is the number of positive values.
        gamma : float, optional
            Aspect ratio ``N/M`` of the matrix (``N`` counts all given values,
            zeros included).
        n_cols : float, optional
            The larger dimension ``M``. One of ``gamma`` and ``n_cols`` is needed.
        name : str
            A label.
        """
        if not isinstance(name, str):
            raise SpectrumError(f"name must be a string, got {type(name).__name__}")
        arr = _check_eigenvalues(values)
        m = resolve_shape(arr.size, gamma=gamma, n_cols=n_cols)
        zero = arr == 0.0
        n_zero = int(zero.sum())
        if n_zero:
            warnings.warn(
                f"{name}: removed {n_zero} zero eigenvalue(s) of {arr.size} "
                "(rank-deficient matrix); N counts the positive ones",
                UserWarning,
                stacklevel=2,
            )
        pos = arr[~zero]
        if pos.size < 2:
            raise SpectrumError(f"need at least 2 positive eigenvalues, got {pos.size}")
        ties = int(np.sum(np.diff(pos) == 0.0))
        if ties:
            raise SpectrumError(
                f"the spectrum has {ties} tied eigenvalue(s) (exactly equal values); "
                "a Coulomb gas has distinct eigenvalues almost surely"
            )
        problem = _range_problem(pos)
        if problem is not None:
            raise SpectrumError(problem)
        if m > MAX_ASPECT * pos.size:
            raise SpectrumError(
                f"n_cols = {m:g} is more than {MAX_ASPECT:g} x N (N={pos.size} "
                f"positive eigenvalues of {arr.size}): float64 cannot resolve kappa "
                "at that aspect ratio"
            )
        return cls(pos, m, n_zero=n_zero, name=name)

    @classmethod
    def from_matrix(cls, matrix: ArrayLike, *, name: str = "matrix") -> Spectrum:
        r"""Build a spectrum from a matrix :math:`W` (any orientation).

        The eigenvalues come from :func:`matrix_eigenvalues`; its numerical zeros
        are removed and counted in ``n_zero``.
        """
        lam = matrix_eigenvalues(matrix)
        m = max(np.shape(matrix))
        if lam.size > MAX_EIGENVALUES:
            raise SpectrumError(
                f"matrix {np.shape(matrix)}: more than {MAX_EIGENVALUES} eigenvalues"
            )
        return cls.from_eigenvalues(lam, n_cols=m, name=name)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        gamma: float | None = None,
        n_cols: float | None = None,
        matrix: bool = False,
    ) -> Spectrum:
        """Read eigenvalues (or, with ``matrix=True``, a matrix) from a file.

        Supported: ``.npy``, ``.npz`` (key ``eigenvalues`` with optional ``n_cols``
        or ``gamma``, or a single array), ``.txt`` and ``.csv`` (whitespace or comma
        separated numbers). See :func:`htmp_infer.io.read_array`.
        """
        from htmp_infer.io import read_spectrum_file

        values, meta = read_spectrum_file(path, matrix=matrix)
        # a label that prints and goes into netCDF attributes whatever the file name
        name = os.fsencode(Path(path).stem).decode("utf-8", "backslashreplace")
        source = ""
        try:
            if matrix:
                return cls.from_matrix(values, name=name)
            if gamma is None and n_cols is None:
                n_cols = meta.get("n_cols")
                gamma = meta.get("gamma") if n_cols is None else None
                source = "n_cols" if n_cols is not None else ""
                source = "gamma" if gamma is not None else source
            if gamma is None and n_cols is None:
                raise SpectrumError(
                    "the matrix shape is unknown; pass gamma (N/M) or store n_cols "
                    "in the .npz"
                )
            return cls.from_eigenvalues(values, gamma=gamma, n_cols=n_cols, name=name)
        except SpectrumError as exc:
            where = (
                f" (field {source!r} of the file)"
                if source and source in str(exc)
                else ""
            )
            raise SpectrumError(f"{path}: {exc}{where}") from None

    @cached_property
    def log_vandermonde(self) -> float:
        r""":math:`\sum_{i<j}\log(\lambda_j-\lambda_i)`, computed once in float64."""
        return log_abs_vandermonde(self.eigenvalues)

    @cached_property
    def stats(self) -> SufficientStats:
        """Sufficient statistics for the β-Laguerre likelihoods (cached)."""
        lam = self.eigenvalues
        return SufficientStats(
            self.n,
            self.log_vandermonde,
            float(np.sum(np.log(lam))),
            float(np.sum(lam)),
        )

    def normalized(self) -> NDArray[np.float64]:
        r"""Eigenvalues divided by their mean, :math:`x = \lambda/\bar\lambda`."""
        return self.eigenvalues / float(np.mean(self.eigenvalues))

    def summary(self) -> dict[str, float]:
        """Shape and basic moments, for tables and DataTree attributes."""
        x = self.normalized()
        return {
            "n": self.n,
            "n_cols": self.n_cols,
            "gamma": self.gamma,
            "n_zero": self.n_zero,
            "mean": float(np.mean(self.eigenvalues)),
            "m2_ratio": float(np.mean(x**2)),
        }
