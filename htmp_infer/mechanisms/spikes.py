r"""Outliers above the bulk: the spike component shared by every mechanism model.

Generative story
----------------
A spectrum of :math:`N` eigenvalues is a *bulk* of :math:`N-k` eigenvalues drawn
from a mechanism model (on a matrix of shape :math:`(N-k)\times(M-k)`) plus
:math:`k` *spikes*, the "fingers" that break power-law fits. Given the bulk
maximum :math:`m`, the spikes are independent with Pareto ratios

.. math::

    \lambda_s = m\,u_s, \qquad u_s \sim \mathrm{Pareto}(\nu) \text{ on } (1,\infty),
    \qquad \nu \sim \mathrm{Gamma}(2, 1), \qquad
    P(k) \propto 2^{-k},\ k = 0,\dots,L = \lfloor N/4\rfloor .

By construction the spikes are the :math:`k` largest eigenvalues, so the density of
the sorted spectrum given :math:`k` factorises *exactly* into the bulk density of
the :math:`N-k` smallest values and

.. math::

    p(\text{spikes}\mid m, k) = k!\,\frac{\Gamma(2+k)}{\Gamma(2)}
    \frac{1}{(1+T_k)^{2+k}}\prod_{s}\frac{1}{\lambda_s},
    \qquad T_k = \sum_s\log(\lambda_s/m),

with :math:`\nu` integrated out (Gamma–Pareto conjugacy; :math:`k!` orders the
i.i.d. spikes). The number of spikes is then summed out exactly inside the model,
:math:`p(\lambda\mid\theta) = \sum_k P(k)\,p_{\rm bulk}(\lambda_{1..N-k}\mid\theta)
\,p(\text{spikes}\mid k)`, and drawn from its conditional posterior per draw
(:func:`draw_spike_counts`). Nothing is clipped: every eigenvalue is explained by
either the bulk or a spike in every term.

The sum over :math:`k` is computed up to a *cap* :math:`K \le L` (the terms above
it are dropped, a truncation of the prior, never of the data). The cap starts at
:func:`default_max_spikes` and is raised (:func:`cap_for`) while the posterior,
evaluated for every :math:`k \le L`, puts more than :data:`CAP_MASS` above it
(:func:`adapt_cap`: one loop, run by the mode search, the evidence grid and NUTS
alike; :func:`htmp_infer.inference.evidence.evidence_and_grid`), so a spectrum
with tens of outliers gets tens of spikes. Looking at every :math:`k`, not only at
:math:`k = K`, also catches a spike-count profile that dips below the cap and
rises again above it. A cap that still binds at :math:`L` is reported.

Every per-:math:`k` quantity of the bulk (size, log-Vandermonde sum, :math:`\sum\log`,
:math:`\sum\lambda`, :math:`\sum 1/\lambda`) is precomputed once in
:math:`O(KN)` from the full spectrum (:class:`SpikeTable`), so each likelihood
evaluation stays :math:`O(K)` for the Laguerre models.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.scipy.special import logsumexp
from numpy.typing import NDArray
from scipy.special import gammaln

from htmp_infer.errors import ArgumentError
from htmp_infer.spectrum import Spectrum

ArrayLikeF = NDArray[np.float64] | Array

__all__ = [
    "CAP_MASS",
    "NU_RATE",
    "NU_SHAPE",
    "SpikeTable",
    "adapt_cap",
    "add_spikes",
    "cap_for",
    "cap_mass",
    "default_max_spikes",
    "draw_spike_counts",
    "mix_spike_counts",
    "next_cap",
    "spike_limit",
    "spike_log_prior",
    "spike_logits",
    "spike_table",
]

NU_SHAPE = 2.0
"""Shape of the Gamma prior on the Pareto index of the spike ratios."""
NU_RATE = 1.0
"""Rate of the Gamma prior on the Pareto index of the spike ratios."""
CAP_MASS = 0.05
"""Posterior mass on :math:`k = K` above which the spike cap :math:`K` is raised."""


class SpikeTable(NamedTuple):
    r"""Bulk statistics and spike log-densities for :math:`k = 0, \dots, K`.

    Attributes
    ----------
    n : tuple of int
        Bulk sizes :math:`N-k`.
    log_vandermonde : ndarray
        :math:`\sum_{i<j\le N-k}\log|\lambda_i-\lambda_j|`.
    sum_log, total, sum_inv : ndarray
        :math:`\sum\log\lambda`, :math:`\sum\lambda`, :math:`\sum 1/\lambda` over the
        bulk.
    spike_log_density : ndarray
        :math:`\log p(\text{spikes}\mid k)` (``0`` for :math:`k = 0`).
    log_prior : ndarray
        :math:`\log P(k)`, normalised over the prior's support :math:`0..L`.
    """

    n: tuple[int, ...]
    log_vandermonde: NDArray[np.float64]
    sum_log: NDArray[np.float64]
    total: NDArray[np.float64]
    sum_inv: NDArray[np.float64]
    spike_log_density: NDArray[np.float64]
    log_prior: NDArray[np.float64]

    @property
    def max_spikes(self) -> int:
        """:math:`K`."""
        return len(self.n) - 1


def default_max_spikes(n: int) -> int:
    """The first spike cap :math:`K` tried: ``min(8, n // 20)``, at least 4.

    At least 4 because the prior alone puts :math:`2^{-(K+1)}` above :math:`K`
    (3% at :math:`K = 4`, under :data:`CAP_MASS`), at most :func:`spike_limit`.
    """
    return int(min(spike_limit(n), max(4, min(8, n // 20))))


def spike_limit(n: int) -> int:
    """:math:`L = \\lfloor n/4 \\rfloor`: the largest spike count of the prior."""
    return int(n // 4)


def next_cap(max_spikes: int, n: int) -> int:
    """The cap after ``max_spikes``: doubled (at least 8), at most :func:`spike_limit`.

    Caps follow a fixed sequence per ``n`` (8, 16, 32, ...), so the compiled
    likelihoods they need are few and cached.
    """
    return int(min(spike_limit(n), max(8, 2 * max_spikes)))


def cap_for(profile: NDArray[np.float64], cap: int, n: int) -> int:
    """The first cap from ``cap`` on that leaves at most :data:`CAP_MASS` above it.

    ``profile`` is :math:`p(k)` for :math:`k = 0..L` (e.g. at the mode). The
    result is ``cap`` itself when it holds enough, else a later cap of the
    :func:`next_cap` sequence (at most :func:`spike_limit`).
    """
    while cap < spike_limit(n) and profile[cap + 1 :].sum() > CAP_MASS:
        cap = next_cap(cap, n)
    return cap


def adapt_cap(
    run: Callable[[int], NDArray[np.float64] | None],
    cap: int,
    n: int,
    limit: int | None = None,
) -> int:
    """Run at a spike cap, and raise the cap while the posterior presses against it.

    ``run(cap)`` does the work at one cap (a mode search, an evidence grid, a
    NUTS run) and returns the posterior profile :math:`p(k)`, :math:`k = 0..L`,
    it measured there, or ``None`` when there is nothing to measure (the work
    is final). While ``cap`` is below ``limit`` (default :func:`spike_limit`; a
    model with a fixed cap passes its cap) and the profile leaves more than
    :data:`CAP_MASS` above it, the cap is raised to :func:`cap_for` and ``run``
    called again.

    Returns
    -------
    int
        The last cap ``run`` was called with.
    """
    limit = spike_limit(n) if limit is None else int(limit)
    while True:
        profile = run(cap)
        if profile is None or cap >= limit:
            return cap
        needed = cap_for(profile, cap, n)
        if needed == cap:
            return cap
        cap = needed


def cap_mass(logits: ArrayLikeF) -> float:
    """Mean posterior probability of the largest spike count (last axis)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=-1, keepdims=True)
    p = np.exp(z[..., -1]) / np.exp(z).sum(axis=-1)
    return float(np.mean(p))


def spike_log_prior(max_spikes: int, limit: int | None = None) -> NDArray[np.float64]:
    r""":math:`\log P(k)`, k = 0..K, for :math:`P(k) \propto 2^{-k}` on 0..L.

    ``limit`` is :math:`L` (default :math:`K`): the prior is normalised over its
    whole support, so a cap :math:`K < L` drops terms without changing the others.
    """
    limit = max_spikes if limit is None else int(limit)
    k = np.arange(limit + 1)
    logp = -k * math.log(2.0)
    return np.asarray((logp - np.logaddexp.reduce(logp))[: max_spikes + 1])


def spike_table(
    spectrum: Spectrum, max_spikes: int | None = None, limit: int | None = None
) -> SpikeTable:
    """Precompute the per-spike-count statistics of a spectrum.

    Parameters
    ----------
    spectrum : Spectrum
        The observed spectrum (sorted ascending).
    max_spikes : int, optional
        :math:`K`; default ``spectrum.max_spikes``, else :func:`default_max_spikes`.
    limit : int, optional
        :math:`L`, the prior's support; default :func:`spike_limit`.

    Returns
    -------
    SpikeTable
    """
    lam = np.asarray(spectrum.eigenvalues, dtype=np.float64)
    n = lam.size
    if max_spikes is None:
        max_spikes = spectrum.max_spikes
    k_max = default_max_spikes(n) if max_spikes is None else int(max_spikes)
    limit = spike_limit(n) if limit is None else max(int(limit), k_max)
    if k_max < 0 or k_max > n - 2:
        raise ArgumentError(f"max_spikes must be in [0, {n - 2}], got {k_max}")
    ks = np.arange(k_max + 1)
    # Row sums r_i = sum_{j<i} log|l_i - l_j| for the K largest values.
    top = lam[n - k_max :] if k_max else lam[:0]
    rows = np.array(
        [np.sum(np.log(v - lam[: n - k_max + t])) for t, v in enumerate(top)]
    )
    removed = np.concatenate([[0.0], np.cumsum(rows[::-1])]) if k_max else np.zeros(1)
    log_v = spectrum.log_vandermonde - removed
    cs_log = np.concatenate([[0.0], np.cumsum(np.log(lam))])
    cs_sum = np.concatenate([[0.0], np.cumsum(lam)])
    cs_inv = np.concatenate([[0.0], np.cumsum(1.0 / lam)])
    bulk = n - ks
    spike_ld = np.zeros(k_max + 1)
    for k in ks[1:]:
        m = lam[n - k - 1]
        spikes = lam[n - k :]
        t = float(np.sum(np.log(spikes / m)))
        spike_ld[k] = (
            gammaln(k + 1.0)
            + gammaln(NU_SHAPE + k)
            - gammaln(NU_SHAPE)
            + NU_SHAPE * math.log(NU_RATE)
            - (NU_SHAPE + k) * math.log(NU_RATE + t)
            - float(np.sum(np.log(spikes)))
        )
    return SpikeTable(
        n=tuple(int(b) for b in bulk),
        log_vandermonde=np.asarray(log_v, dtype=np.float64),
        sum_log=cs_log[bulk],
        total=cs_sum[bulk],
        sum_inv=cs_inv[bulk],
        spike_log_density=spike_ld,
        log_prior=spike_log_prior(k_max, limit),
    )


def mix_spike_counts(bulk_log_likelihoods: Array, table: SpikeTable) -> Array:
    r"""Return :math:`\log\sum_k P(k)\,p_{\rm bulk}(k)\,p(\text{spikes}\mid k)`."""
    return logsumexp(spike_logits(bulk_log_likelihoods, table), axis=-1)


def spike_logits(bulk_log_likelihoods: Array, table: SpikeTable) -> Array:
    """Unnormalised log posterior weights of each spike count (last axis)."""
    return (
        jnp.asarray(bulk_log_likelihoods)
        + jnp.asarray(table.spike_log_density)
        + jnp.asarray(table.log_prior)
    )


def draw_spike_counts(rng: np.random.Generator, logits: ArrayLikeF) -> np.ndarray:
    """Draw one spike count per row of ``logits`` (shape ``(..., K+1)``)."""
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - np.max(z, axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    u = rng.random(z.shape[:-1])[..., None]
    return np.asarray(np.sum(np.cumsum(p, axis=-1) < u, axis=-1), dtype=np.int64)


def add_spikes(
    rng: np.random.Generator, bulk: NDArray[np.float64], k: int
) -> NDArray[np.float64]:
    r"""Append :math:`k` spikes to a sorted bulk by the generative story above."""
    if k == 0:
        return bulk
    nu = rng.gamma(NU_SHAPE) / NU_RATE
    ratios = np.exp(rng.exponential(1.0 / nu, size=k))  # Pareto(nu) on (1, inf)
    return np.concatenate([bulk, np.sort(bulk[-1] * ratios)])
