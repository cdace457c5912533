r"""Bulk log-likelihoods of the mechanism models, one per spike count.

Each function returns, for a parameter value, the vector over
:math:`k = 0,\dots,K` of the exact log-density of the :math:`N-k` smallest
eigenvalues under one mechanism (the bulk), with the scale parameter integrated
out under :math:`d\log(\text{scale})` where that is analytic. The spike
component (:mod:`htmp_infer.mechanisms.spikes`) turns the vector into the likelihood by
:func:`~htmp_infer.mechanisms.spikes.mix_spike_counts`.

The bulk of :math:`N-k` eigenvalues is the model on a matrix of shape
:math:`(N-k)\times(M-k)`, so :math:`\beta = \kappa/(N-k)` and the hard-edge
exponent is :math:`\alpha = \beta(M-N+1)/2` for every :math:`k` (the matrix
shape's value; ``hard_edge`` passes a free :math:`\alpha` to :func:`laguerre_bulk`
instead, the same for every :math:`k`).

Scale measure
-------------
Every model carries exactly one scale parameter with the improper prior
:math:`d\log(\text{scale})` (the Laguerre rate, the inverse-Laguerre rate, the
β-prime scale :math:`c`). Under :math:`\lambda\to t\lambda` all marginal
likelihoods change by the same Jacobian :math:`t^{-N}`, so evidence ratios between
models are well defined and unit-free.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.scipy.special import gammaln
from jax.typing import ArrayLike
from numpyro.distributions import Distribution, constraints

from htmp_infer.ensembles.selberg import (
    laguerre_shape_log_normalizer_sizes,
    lngamma_sum,
)
from htmp_infer.mechanisms.spikes import SpikeTable, spike_table
from htmp_infer.spectrum import Spectrum

__all__ = [
    "JointLogDensity",
    "as_table",
    "betaprime_bulk",
    "data_edge_bulk",
    "inverse_laguerre_bulk",
    "laguerre_bulk",
    "spiked_data",
]


class JointLogDensity(Distribution):
    """An observed spectrum whose joint log-density was computed by the model.

    The mechanism models compute :math:`\\log p(\\lambda\\mid\\theta)` from cached
    statistics (the spike count summed out); this wrapper lets that number be the
    log-likelihood of the observed ``eigenvalues`` site, so that ArviZ records it
    in the ``log_likelihood`` group. It cannot be sampled: replicated spectra come
    from each model's exact ``simulate``.
    """

    support = constraints.positive
    arg_constraints: dict[str, Any] = {}

    def __init__(self, log_density: ArrayLike, n: int) -> None:
        self.log_density = jnp.asarray(log_density)
        super().__init__(batch_shape=(), event_shape=(n,))

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        raise NotImplementedError("use the model's exact simulate() for replicates")

    def log_prob(self, value: ArrayLike) -> Array:
        return self.log_density


def spiked_data(
    spectrum: Spectrum, max_spikes: int | None = None, limit: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Static and traced keyword arguments shared by the mechanism models.

    ``max_spikes`` and ``limit`` are passed to
    :func:`~htmp_infer.mechanisms.spikes.spike_table`.

    Returns
    -------
    static : dict
        ``sizes`` (bulk sizes per spike count): the shapes, fixed by :math:`N`
        and the spike cap.
    data : dict
        ``eigenvalues``, ``table`` (the per-count statistics) and ``n_cols``
        (:math:`M`), all traced: one compiled program serves every matrix shape
        with the same :math:`N` and cap.
    """
    table = spike_table(spectrum, max_spikes, limit)
    static = {"sizes": table.n}
    data = {
        "eigenvalues": jnp.asarray(spectrum.eigenvalues),
        "table": {
            k: jnp.asarray(getattr(table, k))
            for k in table._fields
            if k != "n"  # static
        },
        "n_cols": jnp.asarray(float(spectrum.n_cols)),
    }
    return static, data


def as_table(sizes: tuple[int, ...], table: dict[str, Any]) -> SpikeTable:
    """Rebuild a :class:`SpikeTable` from the static sizes and traced arrays."""
    return SpikeTable(n=sizes, **table)


def _shape(
    kappa: ArrayLike | None,
    table: SpikeTable,
    n_cols: ArrayLike,
    beta: Any = None,
    exponent: Any = None,
) -> tuple[Array, Array, Array]:
    """Bulk sizes, Dyson indices and hard-edge exponents for every spike count.

    The exponent is the matrix shape's :math:`\beta(M-N+1)/2` unless
    ``exponent`` (a free :math:`\alpha`, broadcast like ``kappa``) is given.
    """
    n = jnp.asarray(table.n, dtype=float)
    k = jnp.arange(len(table.n), dtype=float)
    if beta is None:
        b = jnp.asarray(kappa)[..., None] / n
    else:
        b = jnp.broadcast_to(jnp.asarray(beta, dtype=float), n.shape)
    if exponent is None:
        return n, b, b * (n_cols - k - n + 1.0) / 2.0
    a = jnp.asarray(exponent, dtype=float)[..., None] + jnp.zeros_like(b)
    return n, b, a


def _laguerre_scale_free(
    table: SpikeTable, b: Array, a: Array, n: Array
) -> tuple[Array, Array]:
    """Everything of the rate-integrated Laguerre marginal except the data terms."""
    energy = n * a + b * n * (n - 1.0) / 2.0
    return (
        gammaln(energy)
        - laguerre_shape_log_normalizer_sizes(table.n, b, a)
        + gammaln(n + 1.0)
    ), energy


def laguerre_bulk(
    table: SpikeTable,
    n_cols: ArrayLike,
    kappa: ArrayLike | None = None,
    *,
    beta: Any = None,
    exponent: Any = None,
) -> Array:
    r"""HTMP (or fixed-β, or free-exponent) Laguerre bulk, rate integrated, per count.

    Parameters
    ----------
    table : SpikeTable
        Per-count statistics.
    n_cols : float or Array
        :math:`M` of the full matrix (unused when ``exponent`` is given).
    kappa : array_like, optional
        Repulsion :math:`\kappa`; :math:`\beta = \kappa/(N-k)`.
    beta : float, optional
        A fixed Dyson index instead (``mp``: :math:`\beta = 1`).
    exponent : array_like, optional
        A free one-body exponent :math:`\alpha > 0` (weight
        :math:`\lambda^{\alpha-1}`), the same for every spike count
        (``hard_edge``), instead of the shape's :math:`\beta(M-N+1)/2`. Broadcast
        like ``kappa`` (a batch of draws has the spike-count axis appended).

    Notes
    -----
    :func:`htmp_infer.ensembles.likelihood.laguerre_log_marginal` per bulk:
    :math:`\beta V + (\alpha-1)L - \log Z^{\rm shape} + \log\Gamma(E) - E\log S
    + \log n!`, all spike counts in one vectorised expression.
    """
    n, b, a = _shape(kappa, table, n_cols, beta, exponent)
    const, energy = _laguerre_scale_free(table, b, a, n)
    return (
        b * table.log_vandermonde
        + (a - 1.0) * table.sum_log
        - energy * jnp.log(table.total)
        + const
    )


def inverse_laguerre_bulk(
    table: SpikeTable, n_cols: ArrayLike, kappa: ArrayLike
) -> Array:
    r"""Inverse-HTMP bulk (:math:`1/\mu` is HTMP), rate integrated, per spike count.

    Notes
    -----
    From :func:`htmp_infer.ensembles.jacobi.inverse_laguerre_log_likelihood` with the
    rate
    :math:`\vartheta` (which multiplies :math:`T = \sum 1/\mu`) integrated under
    :math:`d\vartheta/\vartheta`: :math:`\beta V_\mu - (\alpha+1+\beta(n-1))L_\mu
    - \log Z^{\rm shape} + \log\Gamma(E) - E\log T + \log n!`.
    """
    n, b, a = _shape(kappa, table, n_cols)
    const, energy = _laguerre_scale_free(table, b, a, n)
    return (
        b * table.log_vandermonde
        - (a + 1.0 + b * (n - 1.0)) * table.sum_log
        - energy * jnp.log(table.sum_inv)
        + const
    )


def _jacobi_sizes(sizes: tuple[int, ...], b: Array, a: Array, tail: Array) -> Array:
    r""":func:`htmp_infer.ensembles.jacobi.jacobi_log_normalizer` for every size at
    once.

    :math:`\log S_n = \Sigma(a) + \Sigma(b') + \Sigma(1+g) - \Sigma(a+b'+(n-1)g)
    - n\ln\Gamma(1+g)` with :math:`\Sigma(c) = \sum_{j<n}\ln\Gamma(c+gj)`, each
    :math:`O(1)` by Euler–Maclaurin (:func:`~htmp_infer.ensembles.selberg.lngamma_sum`)
    once
    every size exceeds 64; smaller sizes use the direct sum.
    """
    g = b / 2.0
    n = jnp.asarray(sizes, dtype=float)
    if min(sizes) > 64:
        c = jnp.stack([a, tail + 0.0 * g, 1.0 + g, a + tail + (n - 1.0) * g])
        sums = lngamma_sum(c, g, n)
        return sums[0] + sums[1] + sums[2] - sums[3] - n * gammaln(1.0 + g)
    j = jnp.arange(max(sizes), dtype=float)[:, None]
    mask = j < n
    terms = (
        gammaln(a + j * g)
        + gammaln(tail + j * g)
        + gammaln(1.0 + (j + 1.0) * g)
        - gammaln(a + tail + (n - 1.0 + j) * g)
    )
    return jnp.sum(jnp.where(mask, terms, 0.0), axis=0) - n * gammaln(1.0 + g)


def betaprime_bulk(
    table: SpikeTable,
    eigenvalues: ArrayLike,
    n_cols: ArrayLike,
    kappa: ArrayLike,
    tail: ArrayLike,
    scale: ArrayLike,
) -> Array:
    r"""β-prime (power-law confinement) bulk for each spike count.

    Parameters
    ----------
    table : SpikeTable
        Per-count statistics.
    eigenvalues : array_like
        The sorted spectrum (the :math:`\sum\log(1+\lambda/c)` term depends on
        :math:`c`).
    n_cols : float or Array
        :math:`M`.
    kappa, tail, scale : array_like
        :math:`\kappa`, the upper-tail index :math:`b' > 0` (limit density
        :math:`\sim\lambda^{-b'-1}`) and the scale :math:`c`.

    Notes
    -----
    One-body weight :math:`\lambda^{a-1}(1+\lambda/c)^{-(a+b')-\beta(n-1)}`, exact
    Selberg–Jacobi normaliser
    (:func:`htmp_infer.ensembles.jacobi.betaprime_log_normalizer`:
    :math:`\log Z = E\log c + \log S_n(a, b', \beta/2)`). Cost :math:`O(KN)`
    ``gammaln`` terms per evaluation, in one vectorised expression.
    """
    lam = jnp.asarray(eigenvalues)
    tail = jnp.asarray(tail)
    cum = jnp.concatenate([jnp.zeros(1), jnp.cumsum(jnp.log1p(lam / scale))])
    n, b, a = _shape(kappa, table, n_cols)
    energy = n * a + b * n * (n - 1.0) / 2.0
    power = a + tail + b * (n - 1.0)
    return (
        b * table.log_vandermonde
        + (a - 1.0) * table.sum_log
        - power * cum[np.asarray(table.n)]
        - energy * jnp.log(scale)
        - _jacobi_sizes(table.n, b, a, tail)
        + gammaln(n + 1.0)
    )


def data_edge_bulk(
    table: SpikeTable,
    n_cols: ArrayLike,
    kappa: ArrayLike,
    edge: ArrayLike,
    rate: ArrayLike,
    correction: ArrayLike,
) -> Array:
    r"""Data-structure (generalised inverse Gaussian) bulk for each spike count.

    Parameters
    ----------
    table : SpikeTable
        Per-count statistics.
    n_cols : float or Array
        :math:`M`.
    kappa, edge, rate : array_like
        :math:`\kappa`, the data edge :math:`h'` (eigenvalue units) and the rate
        :math:`\vartheta`.
    correction : array_like
        :math:`D(\kappa, a_k, h'\vartheta)` per spike count
        (:func:`htmp_infer.meanfield.data_edge.edge_correction`).

    Notes
    -----
    Weight :math:`\lambda^{a-1}e^{-h'/\lambda}e^{-\vartheta\lambda}`:
    :math:`\beta V + (a-1)L - h'T - \vartheta S + E\log\vartheta
    - \log Z^{\rm shape} - nD + \log n!`, the Laguerre normaliser exact and the
    edge's share of it by the mean-field control variate
    (:mod:`htmp_infer.meanfield.data_edge`). :math:`O(K)` per evaluation.
    """
    n, b, a = _shape(kappa, table, n_cols)
    energy = n * a + b * n * (n - 1.0) / 2.0
    rate = jnp.asarray(rate)
    return (
        b * table.log_vandermonde
        + (a - 1.0) * table.sum_log
        - jnp.asarray(edge) * table.sum_inv
        - rate * table.total
        + energy * jnp.log(rate)
        - laguerre_shape_log_normalizer_sizes(table.n, b, a)
        - n * jnp.asarray(correction)
        + gammaln(n + 1.0)
    )
