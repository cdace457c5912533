r"""NumPyro distributions over the :math:`N` positive eigenvalues of a Coulomb gas.

``BetaLaguerre`` is the general β-Laguerre ensemble (shape free); ``HTMP`` ties the
shape to the aspect ratio with :math:`\beta = \kappa/N`; ``ScaleFreeHTMP`` is HTMP
with its rate integrated out under the scale-invariant prior, the likelihood the
``htmp`` model uses. Their ``log_prob`` is exact (Selberg normaliser) and
:math:`O(N)` when the log-Vandermonde sum of the scored value is passed in
``log_vandermonde`` (the cached :attr:`Spectrum.log_vandermonde`); otherwise it is
computed in :math:`O(N^2)`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike
from numpyro.distributions import Distribution, constraints

from htmp_infer._numerics import log_abs_vandermonde_jax
from htmp_infer.ensembles.likelihood import (
    htmp_beta_shape,
    laguerre_log_likelihood,
    laguerre_log_marginal,
)
from htmp_infer.ensembles.sampling import sample_beta_laguerre
from htmp_infer.spectrum import SufficientStats

__all__ = ["HTMP", "BetaLaguerre", "ScaleFreeHTMP"]


def _stats(value: Array, n: int, log_vandermonde: ArrayLike | None) -> SufficientStats:
    if jnp.shape(value)[-1:] != (n,):
        raise ValueError(f"expected {n} eigenvalues, got shape {jnp.shape(value)}")
    v = log_abs_vandermonde_jax(value) if log_vandermonde is None else log_vandermonde
    safe = jnp.where(value > 0, value, 1.0)
    return SufficientStats(n, v, jnp.sum(jnp.log(safe), -1), jnp.sum(value, -1))  # type: ignore[arg-type]


def _callback_sample(
    key: Array, sample_shape: tuple[int, ...], n: int, params: tuple[Array, ...]
) -> Array:
    """Run the numpy bidiagonal sampler from JAX, seeded by ``key``."""
    count = int(np.prod(sample_shape)) if sample_shape else 1
    seed = jax.random.bits(key, (4,), dtype=jnp.uint32)

    def _draw(seed_: Any, beta: Any, shape: Any, rate: Any) -> np.ndarray:
        rng = np.random.default_rng(np.asarray(seed_).tolist())
        return sample_beta_laguerre(
            rng, n, float(beta), float(shape), float(rate), size=count
        )

    out = jax.ShapeDtypeStruct((count, n), jnp.result_type(float))
    draws = jax.pure_callback(_draw, out, seed, *params, vmap_method="sequential")
    return draws.reshape((*sample_shape, n))


class BetaLaguerre(Distribution):
    r"""β-Laguerre (β-Wishart) ensemble of :math:`N` sorted positive eigenvalues.

    .. math::

        p(\lambda) = \frac{N!}{Z_N}\prod_{i<j}|\lambda_i-\lambda_j|^\beta
        \prod_i\lambda_i^{\alpha-1}e^{-\vartheta\lambda_i}

    Parameters
    ----------
    beta : array_like
        Dyson index :math:`\beta > 0`.
    alpha : array_like
        One-body exponent :math:`\alpha > 0`.
    rate : array_like
        Rate :math:`\vartheta > 0`.
    n : int
        Number of eigenvalues (static).
    log_vandermonde : float, optional
        Precomputed :math:`\sum_{i<j}\log|\lambda_i-\lambda_j|` of the value that
        will be scored; makes ``log_prob`` :math:`O(N)`.
    """

    arg_constraints = {
        "beta": constraints.positive,
        "alpha": constraints.positive,
        "rate": constraints.positive,
    }
    support = constraints.positive_ordered_vector
    pytree_data_fields: tuple[str, ...] = ("beta", "alpha", "rate", "log_vandermonde")
    pytree_aux_fields: tuple[str, ...] = ("n",)

    def __init__(
        self,
        beta: ArrayLike,
        alpha: ArrayLike,
        rate: ArrayLike,
        *,
        n: int,
        log_vandermonde: ArrayLike | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.beta = jnp.asarray(beta)
        self.alpha = jnp.asarray(alpha)
        self.rate = jnp.asarray(rate)
        self.n = int(n)
        self.log_vandermonde = log_vandermonde
        batch = jnp.broadcast_shapes(
            jnp.shape(self.beta), jnp.shape(self.alpha), jnp.shape(self.rate)
        )
        super().__init__(
            batch_shape=batch, event_shape=(self.n,), validate_args=validate_args
        )

    def _laguerre_params(self) -> tuple[Array, Array, Array]:
        return self.beta, self.alpha, self.rate

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        """Exact draws (Dumitriu–Edelman), seeded by the JAX ``key``."""
        if self.batch_shape:
            raise NotImplementedError("sampling needs scalar parameters")
        return _callback_sample(key, sample_shape, self.n, self._laguerre_params())

    def log_prob(self, value: ArrayLike) -> Array:
        """Exact log-density of the sorted eigenvalues; ``-inf`` off the support."""
        x = jnp.asarray(value)
        beta, shape, rate = self._laguerre_params()
        lp = laguerre_log_likelihood(
            _stats(x, self.n, self.log_vandermonde), beta, shape, rate
        )
        return jnp.where(jnp.all(x > 0, axis=-1), lp, -jnp.inf)


class HTMP(BetaLaguerre):
    r"""Finite-N high-temperature Marchenko–Pastur ensemble.

    β-Laguerre with :math:`\beta = \kappa/N` and :math:`\alpha = \beta(M-N+1)/2`,
    where :math:`M = N/\gamma`; its empirical measure in units of
    :math:`x = 2\vartheta\lambda/(\beta M)` tends to the HTMP law
    :math:`\rho_{\gamma,\kappa}` (:mod:`htmp_infer.limit`).

    Parameters
    ----------
    kappa : array_like
        Eigenvalue repulsion :math:`\kappa > 0`.
    rate : array_like
        Rate :math:`\vartheta > 0`; the mean eigenvalue is
        :math:`\kappa/(2\gamma\vartheta)`.
    n : int
        Number of eigenvalues :math:`N`.
    n_cols : float
        The larger dimension :math:`M \ge N`.
    log_vandermonde : float, optional
        See :class:`BetaLaguerre`.
    """

    arg_constraints = {"kappa": constraints.positive, "rate": constraints.positive}
    pytree_data_fields: tuple[str, ...] = ("kappa", "rate", "log_vandermonde")
    pytree_aux_fields: tuple[str, ...] = ("n", "n_cols")

    def __init__(
        self,
        kappa: ArrayLike,
        rate: ArrayLike,
        *,
        n: int,
        n_cols: float,
        log_vandermonde: ArrayLike | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if not n_cols >= n:
            raise ValueError(f"n_cols must be >= n={n}, got {n_cols}")
        self.kappa = jnp.asarray(kappa)
        self.n_cols = float(n_cols)
        beta, shape = htmp_beta_shape(self.kappa, int(n), self.n_cols)
        super().__init__(
            beta,
            shape,
            rate,
            n=n,
            log_vandermonde=log_vandermonde,
            validate_args=validate_args,
        )

    @property
    def gamma(self) -> float:
        r"""Aspect ratio :math:`\gamma = N/M`."""
        return self.n / self.n_cols

    def _laguerre_params(self) -> tuple[Array, Array, Array]:
        beta, shape = htmp_beta_shape(self.kappa, self.n, self.n_cols)
        return beta, shape, self.rate

    @property
    def mean(self) -> Array:
        """Expected mean eigenvalue :math:`\\kappa/(2\\gamma\\vartheta)`."""
        return self.kappa / (2.0 * self.gamma * self.rate)


class ScaleFreeHTMP(HTMP):
    r"""HTMP with the rate integrated out under :math:`p(\vartheta)\propto1/\vartheta`.

    ``log_prob`` is :func:`~htmp_infer.ensembles.likelihood.laguerre_log_marginal`: it
    depends
    on the eigenvalues only through their shape (units drop out). ``sample`` draws
    at the reference rate :math:`\vartheta = \beta M/2` (mean eigenvalue one); any
    other scale is equally likely under the scale-invariant prior.

    Parameters
    ----------
    kappa : array_like
        Eigenvalue repulsion :math:`\kappa > 0`.
    n, n_cols, log_vandermonde
        See :class:`HTMP`.
    """

    arg_constraints = {"kappa": constraints.positive}
    pytree_data_fields = ("kappa", "log_vandermonde")

    def __init__(
        self,
        kappa: ArrayLike,
        *,
        n: int,
        n_cols: float,
        log_vandermonde: ArrayLike | None = None,
        validate_args: bool | None = None,
    ) -> None:
        kappa = jnp.asarray(kappa)
        rate = kappa * float(n_cols) / (2.0 * int(n))
        super().__init__(
            kappa,
            rate,
            n=n,
            n_cols=n_cols,
            log_vandermonde=log_vandermonde,
            validate_args=validate_args,
        )

    def _laguerre_params(self) -> tuple[Array, Array, Array]:
        beta, shape = htmp_beta_shape(self.kappa, self.n, self.n_cols)
        return beta, shape, beta * self.n_cols / 2.0

    def log_prob(self, value: ArrayLike) -> Array:
        """Scale-marginal log-density of the sorted eigenvalues."""
        x = jnp.asarray(value)
        beta, shape = htmp_beta_shape(self.kappa, self.n, self.n_cols)
        lp = laguerre_log_marginal(_stats(x, self.n, self.log_vandermonde), beta, shape)
        return jnp.where(jnp.all(x > 0, axis=-1), lp, -jnp.inf)
