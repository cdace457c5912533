r"""Exact β-Laguerre log-likelihoods on sufficient statistics.

Every function here is :math:`O(N)` per evaluation (the ``gammaln`` sum of the
Selberg normaliser); the :math:`O(N^2)` log-Vandermonde sum enters only through the
precomputed :class:`~htmp_infer.spectrum.SufficientStats`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
from jax.scipy.special import gammaln
from jax.typing import ArrayLike

from htmp_infer.ensembles.selberg import laguerre_energy, laguerre_shape_log_normalizer
from htmp_infer.spectrum import SufficientStats

__all__ = [
    "htmp_beta_shape",
    "laguerre_log_likelihood",
    "laguerre_log_marginal",
]


def htmp_beta_shape(kappa: ArrayLike, n: int, n_cols: float) -> tuple[Array, Array]:
    r"""Map the HTMP parameters to the Laguerre ones.

    Returns :math:`\beta = \kappa/N` and :math:`\alpha = \beta(M-N+1)/2`.
    """
    beta = jnp.asarray(kappa) / n
    return beta, beta * (n_cols - n + 1.0) / 2.0


def laguerre_log_likelihood(
    stats: SufficientStats, beta: ArrayLike, shape: ArrayLike, rate: ArrayLike
) -> Array:
    r"""Exact log-density of the sorted eigenvalues of a β-Laguerre gas.

    Parameters
    ----------
    stats : SufficientStats
        :math:`(N, V, L, S)` of the observed spectrum.
    beta, shape, rate : array_like
        Dyson index :math:`\beta`, one-body exponent :math:`\alpha`, rate
        :math:`\vartheta`.

    Returns
    -------
    Array
        :math:`\beta V + (\alpha-1)L - \vartheta S - \log Z_N + \log N!`.

    Notes
    -----
    :math:`Z_N` is the Selberg integral (:mod:`htmp_infer.ensembles.selberg`); the
    :math:`\log N!` makes it the density of the *sorted* vector.
    """
    n = stats.n
    return jnp.asarray(
        beta * stats.log_vandermonde
        + (shape - 1.0) * stats.sum_log
        - rate * stats.total
        - laguerre_shape_log_normalizer(n, beta, shape)
        + laguerre_energy(n, beta, shape) * jnp.log(rate)
        + gammaln(n + 1.0)
    )


def laguerre_log_marginal(
    stats: SufficientStats, beta: ArrayLike, shape: ArrayLike
) -> Array:
    r"""Log-density with the rate integrated out under the prior 1/rate.

    Notes
    -----
    The rate enters the likelihood as :math:`\vartheta^{E}e^{-\vartheta S}` with
    :math:`E = N\alpha + \beta N(N-1)/2`, so under the scale-invariant (Jeffreys)
    prior

    .. math::

        \int_0^\infty p(\lambda\mid\beta,\alpha,\vartheta)\,\frac{d\vartheta}{\vartheta}
        = e^{\beta V + (\alpha-1)L}\,
          \frac{\Gamma(E)\,S^{-E}\,N!}{\prod_j \Gamma(\alpha+j\beta/2)
          \Gamma(1+(j+1)\beta/2)/\Gamma(1+\beta/2)} .

    It is invariant in form under :math:`\lambda\to c\lambda` (it changes by the
    Jacobian :math:`c^{-N}` only), so inference on :math:`(\beta,\alpha)` does not
    depend on the units of the eigenvalues. Given :math:`(\beta,\alpha)` the rate's
    posterior is exactly :math:`\mathrm{Gamma}(E, S)`.
    """
    n = stats.n
    energy = laguerre_energy(n, beta, shape)
    return jnp.asarray(
        beta * stats.log_vandermonde
        + (shape - 1.0) * stats.sum_log
        - laguerre_shape_log_normalizer(n, beta, shape)
        + gammaln(energy)
        - energy * jnp.log(stats.total)
        + gammaln(n + 1.0)
    )
