r"""Exact finite-N samplers: the Dumitriu–Edelman bidiagonal β-Laguerre model.

Every sampler takes its randomness explicitly, as an integer seed, a
:class:`numpy.random.Generator` or a JAX PRNG key. Same key, same numbers.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from numpy.typing import NDArray

from htmp_infer.ensembles._lapack import bidiagonal_singular_values
from htmp_infer.errors import ArgumentError
from htmp_infer.spectrum import MAX_EIGENVALUES, resolve_shape

__all__ = [
    "MAX_SEED",
    "as_generator",
    "check_seed",
    "sample_beta_laguerre",
    "sample_htmp",
]

KeyLike = int | np.random.Generator | jax.Array

#: Seeds are integers in ``[0, MAX_SEED)``: numpy refuses negative seeds, and a JAX
#: key without float64 mode keeps only the low 32 bits (two seeds, same numbers).
MAX_SEED = 2**32


def check_seed(seed: object, what: str = "seed") -> int:
    """Return ``seed`` as an ``int`` in ``[0, MAX_SEED)``.

    Raises
    ------
    ArgumentError
        For a bool, a non-integer or an integer out of range, naming ``what``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ArgumentError(f"{what} must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) < MAX_SEED:
        raise ArgumentError(f"{what} must be in [0, 2**32), got {seed}")
    return int(seed)


def as_generator(key: KeyLike) -> np.random.Generator:
    """Return a numpy ``Generator`` determined by ``key``.

    Parameters
    ----------
    key : int, numpy.random.Generator or jax.Array
        An integer seed, a generator (returned as is) or a JAX PRNG key (its key
        data seeds the generator).
    """
    if isinstance(key, np.random.Generator):
        return key
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return np.random.default_rng(check_seed(key, "key"))
    if not isinstance(key, jax.Array):
        raise TypeError(
            f"key must be an int seed, a numpy Generator or a JAX key, got "
            f"{type(key).__name__}"
        )
    arr = key
    if jax.dtypes.issubdtype(arr.dtype, jax.dtypes.prng_key):
        arr = jax.random.key_data(arr)
    return np.random.default_rng(np.asarray(arr, dtype=np.uint32).ravel().tolist())


def _check_n(n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ArgumentError(f"n must be an integer, got {type(n).__name__}")
    if not 1 <= n <= MAX_EIGENVALUES:
        raise ArgumentError(f"n must be in [1, {MAX_EIGENVALUES}], got {n}")


def _bidiagonal_eigvals(diag2: NDArray[Any], sub2: NDArray[Any]) -> NDArray[Any]:
    """Eigenvalues of ``B Bᵀ`` for the lower-bidiagonal ``B`` with squared entries."""
    sv = bidiagonal_singular_values(np.sqrt(diag2), np.sqrt(sub2))
    return np.asarray(sv**2, dtype=np.float64)


def sample_beta_laguerre(
    key: KeyLike,
    n: int,
    beta: float,
    shape: float,
    rate: float = 0.5,
    *,
    size: int | None = None,
) -> NDArray[np.float64]:
    r"""Draw exact β-Laguerre spectra for any :math:`\beta > 0`.

    Parameters
    ----------
    key : int, numpy.random.Generator or jax.Array
        Source of randomness.
    n : int
        Number of eigenvalues :math:`N \ge 1`.
    beta : float
        Dyson index :math:`\beta > 0`.
    shape : float
        One-body exponent :math:`\alpha > 0`.
    rate : float, default 0.5
        Rate :math:`\vartheta > 0` of the exponential confinement.
    size : int, optional
        Number of independent spectra; ``None`` returns one.

    Returns
    -------
    ndarray
        Sorted eigenvalues, shape ``(n,)`` or ``(size, n)``.

    Notes
    -----
    Dumitriu & Edelman (2002): with a lower-bidiagonal :math:`B` whose diagonal
    entries are :math:`\chi_{2\alpha + \beta(N-1-i)}` and sub-diagonal entries
    :math:`\chi_{\beta(N-1-i)}` (independent), the eigenvalues of :math:`BB^\top`
    have density :math:`\propto\prod_{i<j}|\lambda_i-\lambda_j|^\beta
    \prod_i\lambda_i^{\alpha-1}e^{-\lambda_i/2}`; dividing by :math:`2\vartheta`
    gives rate :math:`\vartheta`. Degrees of freedom need not be integers
    (:math:`\chi^2_k = 2\,\mathrm{Gamma}(k/2)`). The eigenvalues are the squared
    singular values of :math:`B`, computed by LAPACK's dqds (``dlasq1``) in
    :math:`O(N^2)` to high relative accuracy, so spectra spanning hundreds of
    decades (small κ) keep every digit of their smallest eigenvalues.

    For very small :math:`\alpha` some :math:`\chi^2` draws underflow float64, which
    yields exact zeros in the spectrum; they are returned as they are.
    """
    _check_n(n)
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1
    ):
        raise ArgumentError(f"size must be None or an integer >= 1, got {size!r}")
    if not all(math.isfinite(v) and v > 0 for v in (beta, shape, rate)):
        raise ArgumentError(
            f"beta, shape and rate must be finite and > 0, got {beta}, {shape}, {rate}"
        )
    rng = as_generator(key)
    i = np.arange(n, dtype=np.float64)
    df_diag = 2.0 * shape + beta * (n - 1 - i)
    df_sub = beta * (n - 1 - i[:-1])
    count = 1 if size is None else size
    out = np.empty((count, n))
    for k in range(count):
        d2 = rng.chisquare(df_diag)
        s2 = rng.chisquare(df_sub) if n > 1 else np.empty(0)
        out[k] = _bidiagonal_eigvals(d2, s2) / (2.0 * rate)
    return out[0] if size is None else out


def sample_htmp(
    key: KeyLike,
    n: int,
    kappa: float,
    *,
    gamma: float | None = None,
    n_cols: float | None = None,
    scale: float = 1.0,
    size: int | None = None,
) -> NDArray[np.float64]:
    r"""Draw exact finite-N HTMP spectra (β-Laguerre with :math:`\beta = \kappa/N`).

    Parameters
    ----------
    key : int, numpy.random.Generator or jax.Array
        Source of randomness.
    n : int
        Number of eigenvalues :math:`N` (the smaller matrix dimension).
    kappa : float
        Eigenvalue repulsion :math:`\kappa = \beta N > 0`.
    gamma, n_cols : float, optional
        Aspect ratio :math:`\gamma = N/M \in (0, 1]` or the larger dimension
        :math:`M`; exactly one is needed.
    scale : float, default 1.0
        Expected mean eigenvalue.
    size : int, optional
        Number of independent spectra.

    Returns
    -------
    ndarray
        Sorted eigenvalues with :math:`\mathbb{E}[\bar\lambda] = ` ``scale``.

    Notes
    -----
    :math:`\alpha = \beta(M-N+1)/2`, and the draw is normalised by
    :math:`x = \lambda_{DE}/(\beta M)`, i.e. rate :math:`\vartheta = \beta M/(2\,
    \mathrm{scale})`, for which :math:`\mathbb{E}[\frac1N\sum_i x_i] = 1` exactly
    and the empirical measure tends to the HTMP law :math:`\rho_{\gamma,\kappa}`.
    """
    _check_n(n)
    m = resolve_shape(n, gamma=gamma, n_cols=n_cols)
    for what, value in (("kappa", kappa), ("scale", scale)):
        if isinstance(value, bool) or not (
            isinstance(value, int | float | np.integer | np.floating)
            and math.isfinite(value)
        ):
            raise ArgumentError(f"{what} must be a finite number, got {value!r}")
        if not value > 0:
            raise ArgumentError(f"{what} must be > 0, got {value}")
    beta = kappa / n
    shape = beta * (m - n + 1) / 2.0
    rate = beta * m / (2.0 * scale)
    return sample_beta_laguerre(key, n, beta, shape, rate, size=size)
