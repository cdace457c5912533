r"""Exact (Selberg) normalisers of the β-Laguerre Coulomb gas.

All functions work in log space with ``gammaln`` and accept JAX tracers, so the
likelihoods built on them are differentiable in every continuous parameter.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
from jax.scipy.special import gammaln
from jax.typing import ArrayLike

__all__ = [
    "laguerre_energy",
    "laguerre_log_normalizer",
    "laguerre_shape_log_normalizer",
]


def laguerre_shape_log_normalizer(n: int, beta: ArrayLike, shape: ArrayLike) -> Array:
    r"""Rate-free part of the Laguerre Selberg integral.

    Parameters
    ----------
    n : int
        Number of eigenvalues :math:`N` (static).
    beta : array_like
        Dyson index :math:`\beta > 0`.
    shape : array_like
        One-body exponent :math:`\alpha > 0` (the weight is :math:`\lambda^{\alpha-1}`).

    Returns
    -------
    Array
        :math:`\sum_{j=0}^{N-1}\bigl[\ln\Gamma(\alpha + j\beta/2)
        + \ln\Gamma(1 + (j+1)\beta/2) - \ln\Gamma(1+\beta/2)\bigr]`.

    Notes
    -----
    With :func:`laguerre_energy` :math:`E = N\alpha + \beta N(N-1)/2` this gives the
    Selberg (Laguerre) normaliser of unordered eigenvalues,

    .. math::

        Z_N = \int_{(0,\infty)^N} \prod_{i<j}|\lambda_i-\lambda_j|^\beta
              \prod_i \lambda_i^{\alpha-1} e^{-\vartheta\lambda_i}\,d\lambda
            = \vartheta^{-E} \prod_{j=0}^{N-1}
              \frac{\Gamma(\alpha+j\beta/2)\,\Gamma(1+(j+1)\beta/2)}{\Gamma(1+\beta/2)}.

    The sum costs :math:`O(N)` ``gammaln`` evaluations.
    """
    g = jnp.asarray(beta) / 2.0
    a = jnp.asarray(shape)
    j = jnp.arange(n, dtype=jnp.result_type(float))
    jj = j.reshape((n,) + (1,) * jnp.ndim(g + a))
    terms = gammaln(a + jj * g) + gammaln(1.0 + (jj + 1.0) * g)
    return jnp.sum(terms, axis=0) - n * gammaln(1.0 + g)


def laguerre_energy(n: int, beta: ArrayLike, shape: ArrayLike) -> Array:
    r"""Return :math:`E = N\alpha + \beta N (N-1)/2`, the power of the rate in :math:`Z_N`.

    It is also :math:`\vartheta\,\mathbb{E}[\sum_i \lambda_i]`, the expected total
    "energy" of the gas in units of the rate.
    """
    return n * jnp.asarray(shape) + jnp.asarray(beta) * n * (n - 1) / 2.0


def laguerre_log_normalizer(
    n: int, beta: ArrayLike, shape: ArrayLike, rate: ArrayLike
) -> Array:
    r"""Log of the Selberg normaliser :math:`Z_N(\beta, \alpha, \vartheta)`.

    See :func:`laguerre_shape_log_normalizer` for the formula. Unordered
    eigenvalues; add :math:`\log N!` for the density of the sorted vector.
    """
    return laguerre_shape_log_normalizer(n, beta, shape) - laguerre_energy(
        n, beta, shape
    ) * jnp.log(rate)
