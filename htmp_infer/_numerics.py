"""Numerical kernels shared by the likelihoods: the log-Vandermonde sum."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array
from numpy.typing import ArrayLike, NDArray

import htmp_infer._x64  # noqa: F401  (float64 before any array)

__all__ = ["log_abs_vandermonde", "log_abs_vandermonde_jax"]

_CHUNK = 1024


def log_abs_vandermonde(values: ArrayLike) -> float:
    r"""Return :math:`\sum_{i<j} \log|\lambda_i - \lambda_j|` in float64.

    Parameters
    ----------
    values : array_like
        One-dimensional array of distinct real numbers.

    Returns
    -------
    float
        The log of the absolute Vandermonde determinant. ``-inf`` when two
        values coincide.

    Notes
    -----
    This is the only :math:`O(N^2)` term of a Coulomb-gas likelihood, so it is
    computed once per spectrum, in float64, with the values sorted so that every
    difference :math:`\lambda_j - \lambda_i` (:math:`j > i`) is non-negative and no
    absolute value or cancellation of signs is involved. Rows are processed in
    blocks of 1024 to bound memory at :math:`O(N)` per block row. In float32 the
    sum loses several digits for :math:`N \gtrsim 10^3`, hence float64 throughout.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = x.size
    total = 0.0
    for start in range(0, n - 1, _CHUNK):
        stop = min(start + _CHUNK, n - 1)
        rows = x[start:stop, None]
        diff = x[None, start + 1 :] - rows  # (block, n - start - 1)
        cols = np.arange(start + 1, n)[None, :]
        upper = cols > np.arange(start, stop)[:, None]
        with np.errstate(divide="ignore"):
            total += float(np.sum(np.log(diff, where=upper, out=np.zeros_like(diff))))
        if np.any((diff == 0.0) & upper):
            return float("-inf")
    return total


def log_abs_vandermonde_jax(values: Array) -> Array:
    r"""Differentiable :math:`\sum_{i<j}\log|\lambda_i-\lambda_j|` in JAX, O(N²) memory.

    Used only when no precomputed sum is available (for example when scoring fresh
    samples); the likelihoods use the cached float64 value of
    :func:`log_abs_vandermonde`.
    """
    x = jnp.asarray(values)
    n = x.shape[-1]
    diff = jnp.abs(x[..., :, None] - x[..., None, :])
    upper = jnp.triu(jnp.ones((n, n), dtype=bool), k=1)
    safe = jnp.where(upper, diff, 1.0)
    return jnp.sum(jnp.where(upper, jnp.log(safe), 0.0), axis=(-2, -1))


def as_float64(values: ArrayLike) -> NDArray[np.float64]:
    """Return ``values`` as a contiguous float64 numpy array."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64))
