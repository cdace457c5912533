r"""β-Jacobi (Selberg) normaliser, the β-prime ensemble and the inverse β-Laguerre.

Three exact Coulomb-gas likelihoods that share the Selberg machinery of
:mod:`htmp_infer.ensembles.selberg` (docs/maths.md §4.1–§4.2, §9 item 13):

* :func:`jacobi_log_normalizer`: the Selberg integral :math:`S_N(a, b, \beta/2)`
  of the β-Jacobi gas on :math:`[0, 1]^N`;
* :func:`betaprime_log_normalizer`, :func:`betaprime_log_likelihood`: the
  β-prime (power-law-confined, F-type) gas on :math:`(0, \infty)^N` with a scale;
* :func:`inverse_laguerre_log_likelihood`: :math:`\mu = 1/\lambda` for a
  β-Laguerre gas :math:`\lambda`.

Everything is written with ``jnp`` and ``gammaln``: differentiable in every
continuous parameter and jit-able with :math:`N` static and the parameters traced.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
from jax.scipy.special import gammaln
from jax.typing import ArrayLike

from htmp_infer.ensembles.selberg import laguerre_energy, laguerre_log_normalizer

__all__ = [
    "betaprime_log_likelihood",
    "betaprime_log_normalizer",
    "inverse_laguerre_log_likelihood",
    "jacobi_log_normalizer",
]


def jacobi_log_normalizer(n: int, beta: ArrayLike, a: ArrayLike, b: ArrayLike) -> Array:
    r"""Log of the Selberg integral :math:`S_N(a, b, \beta/2)`.

    Parameters
    ----------
    n : int
        Number of variables :math:`N` (static).
    beta : array_like
        Dyson index :math:`\beta \ge 0`; :math:`g = \beta/2`.
    a, b : array_like
        One-body exponents :math:`a, b > 0` (weight :math:`x^{a-1}(1-x)^{b-1}`).

    Returns
    -------
    Array
        :math:`\log S_N`, broadcast over the shapes of ``beta``, ``a``, ``b``.

    Notes
    -----
    For unordered variables (add :math:`\log N!` for the sorted vector),

    .. math::

        S_N(a,b,g) = \int_{[0,1]^N}\prod_i x_i^{a-1}(1-x_i)^{b-1}
                     \prod_{i<j}|x_i-x_j|^{2g}\,dx
                   = \prod_{j=0}^{N-1}
                     \frac{\Gamma(a+jg)\,\Gamma(b+jg)\,\Gamma(1+(j+1)g)}
                          {\Gamma(a+b+(N+j-1)g)\,\Gamma(1+g)} .

    :math:`N = 1` is the Beta function :math:`B(a, b)`. The cost is the direct
    :math:`O(N)` sum of :math:`4N + 1` ``gammaln`` terms (no Euler–Maclaurin
    acceleration as in
    :func:`~htmp_infer.ensembles.selberg.laguerre_shape_log_normalizer`);
    float64 rounding is :math:`\sim 10^{-16}\sum_j|\text{terms}|`.
    """
    g = jnp.asarray(beta) / 2.0
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    j = jnp.arange(n, dtype=jnp.result_type(float))
    jj = j.reshape((n,) + (1,) * jnp.ndim(g + a + b))
    terms = (
        gammaln(a + jj * g)
        + gammaln(b + jj * g)
        + gammaln(1.0 + (jj + 1.0) * g)
        - gammaln(a + b + (n - 1.0 + jj) * g)
    )
    return jnp.sum(terms, axis=0) - n * gammaln(1.0 + g)


def betaprime_log_normalizer(
    n: int, beta: ArrayLike, a: ArrayLike, b: ArrayLike, scale: ArrayLike
) -> Array:
    r"""Log-normaliser of the β-prime gas with scale :math:`c`.

    Parameters
    ----------
    n : int
        Number of eigenvalues :math:`N` (static).
    beta : array_like
        Dyson index :math:`\beta \ge 0`.
    a, b : array_like
        Exponents :math:`a, b > 0`. At :math:`\beta = 0` the :math:`\lambda_i/c`
        are independent BetaPrime(a, b): :math:`\lambda^{a-1}` near 0,
        :math:`\lambda^{-b-1}` at infinity.
    scale : array_like
        Scale :math:`c > 0`.

    Returns
    -------
    Array
        :math:`\log Z_N = E\log c + \log S_N(a, b, \beta/2)`,
        :math:`E = Na + \beta N(N-1)/2`.

    Notes
    -----
    Unordered eigenvalues:

    .. math::

        Z_N = \int_{(0,\infty)^N}\prod_{i<j}|\lambda_i-\lambda_j|^\beta
              \prod_i\lambda_i^{a-1}(1+\lambda_i/c)^{-(a+b)-\beta(N-1)}\,d\lambda .

    With :math:`x = \lambda/(c+\lambda)`: :math:`\lambda = cx/(1-x)`,
    :math:`d\lambda = c\,(1-x)^{-2}dx`, :math:`1+\lambda/c = (1-x)^{-1}` and
    :math:`\lambda_i-\lambda_j = c\,(x_i-x_j)/[(1-x_i)(1-x_j)]`. The powers of
    :math:`1-x_i` add up to :math:`-\beta(N-1) - (a-1) + (a+b) + \beta(N-1) - 2
    = b-1` and those of :math:`c` to :math:`\beta N(N-1)/2 + N(a-1) + N = E`, so
    :math:`Z_N = c^{E}\,S_N(a,b,\beta/2)`. :math:`E` is the Laguerre "energy"
    (:func:`~htmp_infer.ensembles.selberg.laguerre_energy`). Cost :math:`O(N)`.
    """
    energy = laguerre_energy(n, beta, a)
    return jacobi_log_normalizer(n, beta, a, b) + energy * jnp.log(scale)


def betaprime_log_likelihood(
    eigenvalues: ArrayLike,
    log_vandermonde: ArrayLike,
    beta: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    scale: ArrayLike,
) -> Array:
    r"""Exact log-density of the sorted eigenvalues of a β-prime gas.

    Parameters
    ----------
    eigenvalues : array_like
        The :math:`N` positive eigenvalues, shape ``(N,)`` (:math:`N` is static).
    log_vandermonde : array_like
        :math:`V = \sum_{i<j}\log|\lambda_i-\lambda_j|`, precomputed (it is the
        only :math:`O(N^2)` term; see :func:`htmp_infer._numerics.log_abs_vandermonde`).
    beta, a, b, scale : array_like
        Scalars :math:`\beta, a, b, c` of :func:`betaprime_log_normalizer`.

    Returns
    -------
    Array
        :math:`\beta V + (a-1)\sum_i\log\lambda_i
        - (a+b+\beta(N-1))\sum_i\log(1+\lambda_i/c) - \log Z_N + \log N!`.

    Notes
    -----
    :math:`\sum_i\log(1+\lambda_i/c)` depends on the parameter :math:`c`, so the
    eigenvalues themselves enter (no fixed sufficient statistic); each evaluation
    is :math:`O(N)`. The :math:`\log N!` makes it the density of the *sorted*
    vector, as in :func:`~htmp_infer.ensembles.likelihood.laguerre_log_likelihood`.
    """
    lam = jnp.asarray(eigenvalues)
    n = lam.shape[0]
    beta = jnp.asarray(beta)
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    power = a + b + beta * (n - 1.0)
    return jnp.asarray(
        beta * log_vandermonde
        + (a - 1.0) * jnp.sum(jnp.log(lam))
        - power * jnp.sum(jnp.log1p(lam / scale))
        - betaprime_log_normalizer(n, beta, a, b, scale)
        + gammaln(n + 1.0)
    )


def inverse_laguerre_log_likelihood(
    n: int,
    log_vandermonde_mu: ArrayLike,
    sum_log_mu: ArrayLike,
    sum_inv_mu: ArrayLike,
    beta: ArrayLike,
    alpha: ArrayLike,
    rate: ArrayLike,
) -> Array:
    r"""Exact log-density of sorted :math:`\mu = 1/\lambda`, :math:`\lambda` β-Laguerre.

    Parameters
    ----------
    n : int
        Number of eigenvalues :math:`N` (static).
    log_vandermonde_mu : array_like
        :math:`V_\mu = \sum_{i<j}\log|\mu_i-\mu_j|`.
    sum_log_mu : array_like
        :math:`L_\mu = \sum_i\log\mu_i`.
    sum_inv_mu : array_like
        :math:`T_\mu = \sum_i 1/\mu_i`.
    beta, alpha, rate : array_like
        Parameters :math:`\beta, \alpha, \vartheta` of the β-Laguerre gas of
        :math:`\lambda = 1/\mu`.

    Returns
    -------
    Array
        :math:`\beta V_\mu - (\alpha+1+\beta(N-1))L_\mu - \vartheta T_\mu
        - \log Z_N(\beta,\alpha,\vartheta) + \log N!`.

    Notes
    -----
    :math:`\lambda_i-\lambda_j = (\mu_j-\mu_i)/(\mu_i\mu_j)` gives
    :math:`|\Delta(\lambda)|^\beta = |\Delta(\mu)|^\beta\prod_i\mu_i^{-\beta(N-1)}`,
    and :math:`d\lambda = \prod_i\mu_i^{-2}\,d\mu`, so (docs/maths.md §4.1)

    .. math::

        p(\mu) = \frac{N!}{Z_N}\,|\Delta(\mu)|^\beta
                 \prod_i\mu_i^{-\alpha-1-\beta(N-1)}e^{-\vartheta/\mu_i}

    with the Laguerre normaliser :math:`Z_N` of
    :func:`~htmp_infer.ensembles.selberg.laguerre_log_normalizer` (:math:`O(1)` in
    :math:`N`). It equals the Laguerre log-likelihood of :math:`1/\mu` plus the
    Jacobian :math:`-2L_\mu`. :math:`T_\mu` is not among the Laguerre sufficient
    statistics, hence the explicit arguments.
    """
    beta = jnp.asarray(beta)
    alpha = jnp.asarray(alpha)
    return jnp.asarray(
        beta * log_vandermonde_mu
        - (alpha + 1.0 + beta * (n - 1.0)) * sum_log_mu
        - rate * sum_inv_mu
        - laguerre_log_normalizer(n, beta, alpha, rate)
        + gammaln(n + 1.0)
    )
