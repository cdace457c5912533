r"""MCMC for β-ensembles (Coulomb gases) with any one-body weight.

For weights with no tridiagonal matrix model (e.g. a β-prime or Laguerre weight
times :math:`e^{-h/x}`), the sorted eigenvalues of

.. math::

    p(x) \propto \prod_{i<j}|x_i - x_j|^{\kappa/N}\prod_i w(x_i), \qquad x_i > 0,

are drawn by running many independent Markov chains (vectorised with
:func:`jax.vmap`) in the coordinates :math:`y = \log x`, each started from a
caller-supplied spectrum, and keeping the last state of each chain. The kernel is a
Metropolis-within-Gibbs sweep whose one-particle proposals are scaled by the first
two derivatives of the one-body weight (:func:`sample_gas_mcmc`, Notes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from numpy.typing import ArrayLike, NDArray

from htmp_infer.ensembles.sampling import KeyLike
from htmp_infer.errors import HTMPError

__all__ = ["gas_log_density", "log_vandermonde_y", "sample_gas_mcmc"]

LogWeight = Callable[[Array], Array]

_TARGET_ACCEPT = 0.44  # optimal one-dimensional random-walk acceptance rate
_LOG_SCALE0 = float(np.log(2.0))  # initial proposal scale factor c
_CURVATURE_FLOOR = 1e-4  # caps the proposal sd at 100 c where w is log-flat


def log_vandermonde_y(y: Array) -> Array:
    r"""Exact :math:`V(y) = \sum_{i<j}\log|e^{y_i}-e^{y_j}|`, any dynamic range.

    Parameters
    ----------
    y : Array
        Log-eigenvalues, shape ``(N,)``.

    Returns
    -------
    Array
        The scalar log-Vandermonde of :math:`x = e^y`.

    Notes
    -----
    With :math:`D_{ij} = y_i - y_j`,

    .. math::

        \log|x_i - x_j| = \tfrac12(y_i + y_j) + \log\bigl(2\sinh\tfrac{|D_{ij}|}2
        \bigr), \qquad \log(2\sinh t) = t + \log(-\mathrm{expm1}(-2t)),

    free of overflow and cancellation for spectra spanning any number of decades.
    """
    n = y.shape[-1]
    off = ~jnp.eye(n, dtype=bool)
    dist = jnp.where(off, jnp.abs(y[:, None] - y[None, :]), 1.0)
    log_sinh = 0.5 * dist + jnp.log(-jnp.expm1(-dist))
    return 0.5 * (n - 1.0) * jnp.sum(y) + 0.5 * jnp.sum(jnp.where(off, log_sinh, 0.0))


def gas_log_density(y: Array, beta: ArrayLike, log_weight: LogWeight) -> Array:
    r"""Unnormalised log-density of the gas in log coordinates :math:`y = \log x`.

    Parameters
    ----------
    y : Array
        Log-eigenvalues, shape ``(N,)``.
    beta : array_like
        Dyson index :math:`\beta = \kappa/N`.
    log_weight : callable
        JAX-traceable :math:`\log w(x)`, applied elementwise to :math:`x = e^y`.

    Returns
    -------
    Array
        :math:`\beta\sum_{i<j}\log|x_i-x_j| + \sum_i[\log w(x_i) + y_i]`.

    Notes
    -----
    The last term is the Jacobian :math:`dx_i = e^{y_i}dy_i`. The density is
    symmetric in the :math:`y_i`, so chains move on unordered configurations and
    the draws are sorted at the end.
    """
    return jnp.asarray(
        jnp.asarray(beta) * log_vandermonde_y(y) + _one_body(y, log_weight)
    )


def _one_body(y: Array, log_weight: LogWeight) -> Array:
    return jnp.sum(log_weight(jnp.exp(y))) + jnp.sum(y)


def _log_pair_row(a: Array, y: Array) -> Array:
    r""":math:`\log|e^a - e^{y_j}|` for every j (``-inf`` where :math:`y_j = a`)."""
    dist = jnp.abs(a - y)
    safe = jnp.where(dist > 0, dist, 1.0)
    return jnp.where(dist > 0, jnp.maximum(a, y) + jnp.log(-jnp.expm1(-safe)), -jnp.inf)


@functools.lru_cache(maxsize=32)
def _runner(
    log_weight: Callable[..., Array],
) -> Callable[..., tuple[Array, Array, Array]]:
    """Jitted, chain-vectorised sampler for one weight (cached: compiled once per
    weight object and array shape; β, steps, warmup and the weight's parameters
    are traced)."""

    def one_chain(
        y0: Array,
        key: Array,
        beta: Array,
        steps: Array,
        warmup: Array,
        params: tuple[Array, ...],
    ) -> tuple[Array, Array, Array]:
        return _chain(lambda x: log_weight(x, *params), y0, key, beta, steps, warmup)

    return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None, None, None)))


def _chain(
    log_weight: LogWeight,
    y0: Array,
    key: Array,
    beta: Array,
    steps: Array,
    warmup: Array,
) -> tuple[Array, Array, Array]:
    """One chain of Metropolis-within-Gibbs sweeps; returns (y, rate, scale)."""

    def phi(y: Array) -> Array:  # one-body log-density in y, Jacobian included
        return log_weight(jnp.exp(y)) + y

    dphi = jax.grad(phi)
    ddphi = jax.grad(dphi)

    def log_sd(y: Array, log_c: Array) -> Array:
        g, h = dphi(y), ddphi(y)
        return log_c - 0.5 * jnp.log(jnp.abs(h) + g * g + _CURVATURE_FLOOR)

    def update(i: Array, carry: tuple[Array, ...]) -> Any:
        y, accepted, log_c, noise, log_u, beta = carry
        a = y[i]
        lsa = log_sd(a, log_c)
        b = a + jnp.exp(lsa) * noise[i]
        lsb = log_sd(b, log_c)
        others = jnp.arange(y.shape[0]) != i
        pair = jnp.sum(
            jnp.where(others, _log_pair_row(b, y) - _log_pair_row(a, y), 0.0)
        )
        hastings = lsa - lsb - 0.5 * (noise[i] ** 2) * (jnp.exp(2 * (lsa - lsb)) - 1.0)
        log_ratio = beta * pair + phi(b) - phi(a) + hastings
        xb = jnp.exp(b)
        valid = jnp.isfinite(log_ratio) & (xb > 0) & jnp.isfinite(xb)
        ok = valid & (log_u[i] < log_ratio)
        y = y.at[i].set(jnp.where(ok, b, a))
        return y, accepted + ok, log_c, noise, log_u, beta

    def sweep(s: Array, carry: tuple[Array, ...]) -> Any:
        y, log_c, accept_sum, key, beta, warmup = carry
        n = y.shape[0]
        key, k_noise, k_u = jax.random.split(key, 3)
        noise = jax.random.normal(k_noise, (n,))
        log_u = jnp.log(jax.random.uniform(k_u, (n,)))
        zero = jnp.zeros((), dtype=jnp.int64)
        inner = (y, zero, log_c, noise, log_u, beta)
        y, acc, *_ = jax.lax.fori_loop(0, n, update, inner)
        rate = acc / n
        in_warmup = s < warmup
        # Robbins–Monro on log c towards the target rate, frozen after warmup.
        adapted = log_c + (rate - _TARGET_ACCEPT) / jnp.sqrt(s + 1.0)
        log_c = jnp.where(in_warmup, adapted, log_c)
        accept_sum = accept_sum + jnp.where(in_warmup, 0.0, rate)
        return y, log_c, accept_sum, key, beta, warmup

    init = (y0, jnp.asarray(_LOG_SCALE0), jnp.asarray(0.0))
    carry = (*init, jax.random.wrap_key_data(key), beta, warmup)
    y, log_c, accept_sum, *_ = jax.lax.fori_loop(0, steps, sweep, carry)
    return y, accept_sum / jnp.maximum(steps - warmup, 1), jnp.exp(log_c)


def _keys(key: KeyLike, count: int) -> Array:
    """``count`` raw JAX keys (uint32 data) determined by ``key``."""
    if isinstance(key, np.random.Generator):
        base = jax.random.key(int(key.integers(0, 2**63 - 1)))
    elif isinstance(key, int | np.integer) and not isinstance(key, bool):
        base = jax.random.key(int(key))
    elif isinstance(key, jax.Array):
        base = key
        if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            base = jax.random.wrap_key_data(jnp.asarray(key, dtype=jnp.uint32))
    else:
        raise TypeError(
            f"key must be an int seed, a numpy Generator or a JAX key, got "
            f"{type(key).__name__}"
        )
    return jax.random.key_data(jax.random.split(base, count))


def _check_init(init: ArrayLike, n: int, size: int | None) -> NDArray[np.float64]:
    x0 = np.asarray(init, dtype=np.float64)
    if x0.ndim == 1:
        x0 = np.broadcast_to(x0, (1 if size is None else int(size), x0.size))
    if x0.ndim != 2 or x0.shape[1] != n:
        raise HTMPError(f"init must have shape (size, {n}), got {np.shape(init)}")
    if size is not None and x0.shape[0] != size:
        raise HTMPError(f"init has {x0.shape[0]} rows but size={size}")
    if x0.shape[0] < 1:
        raise HTMPError("init must hold at least one spectrum")
    if not np.all(np.isfinite(x0) & (x0 > 0)):
        raise HTMPError("init must be finite and > 0")
    if np.any(np.diff(np.sort(x0, axis=1), axis=1) == 0):
        raise HTMPError("init rows must have pairwise distinct values")
    return x0


def sample_gas_mcmc(
    key: KeyLike,
    n: int,
    kappa: float,
    log_weight: Callable[..., Array],
    init: ArrayLike,
    *,
    steps: int = 100,
    warmup: int | None = None,
    size: int | None = None,
    chain_batch: int | None = None,
    return_info: bool = False,
    weight_params: tuple[ArrayLike, ...] | None = None,
) -> Any:
    r"""Draws of a Coulomb gas with any one-body weight, by MCMC in :math:`\log x`.

    Parameters
    ----------
    key : int, numpy.random.Generator or jax.Array
        Source of randomness (same key, same numbers).
    n : int
        Number of eigenvalues :math:`N \ge 2`.
    kappa : float
        Repulsion :math:`\kappa = \beta N > 0`.
    log_weight : callable
        JAX-traceable :math:`\log w(x)` of a scalar ``x > 0`` (it is
        differentiated twice).
    init : array_like
        Starting spectra, shape ``(size, n)`` (a 1-D ``(n,)`` is shared by all
        chains): positive and pairwise distinct, e.g. exact β-Laguerre draws with
        similar parameters.
    steps : int, default 100
        Sweeps per chain (each updates every eigenvalue once), warmup included.
    warmup : int, optional
        How many of the ``steps`` adapt the proposal scale; default ``steps // 2``.
    size : int, optional
        Number of chains (= draws); default ``init.shape[0]``. With a 1-D
        ``init`` and no ``size`` one draw of shape ``(n,)`` is returned.
    chain_batch : int, optional
        Chains evaluated together under ``vmap``; default all.
    return_info : bool, default False
        Also return a dict with the post-warmup acceptance rate
        (``"accept_rate"``) and the adapted scale factor (``"scale"``) per chain.
    weight_params : tuple of array_like, optional
        Parameters passed as ``log_weight(x, *weight_params)``. They are traced,
        so a module-level ``log_weight`` compiles once for all parameter values
        (a new closure per value would compile on every call).

    Returns
    -------
    ndarray or (ndarray, dict)
        Sorted eigenvalues, shape ``(size, n)`` (or ``(n,)``): the last state of
        each chain.

    Notes
    -----
    Target, in :math:`y = \log x` (:func:`gas_log_density`), :math:`\beta =
    \kappa/N`, :math:`\phi(y) = \log w(e^y) + y` (the Jacobian included):

    .. math::

        \log p(y) = \beta\sum_{i<j}\log|e^{y_i}-e^{y_j}| + \sum_i\phi(y_i)
        + \text{const}.

    *Kernel.* One sweep visits :math:`i = 1..N` in turn and proposes
    :math:`y_i' = y_i + \sigma(y_i)\,\xi`, :math:`\xi\sim N(0,1)`, with

    .. math::

        \sigma(y) = c\,\bigl(|\phi''(y)| + \phi'(y)^2 + 10^{-4}\bigr)^{-1/2},

    the local length scale of the one-body factor (:math:`1/\sqrt{\phi''}` near a
    mode, :math:`1/|\phi'|` on an exponential tail such as the :math:`e^{a y}` of
    :math:`x^{a-1}`), and accepts with probability :math:`\min(1, r)`,

    .. math::

        \log r = \beta\sum_{j\ne i}\bigl[\log|x_i'-x_j| - \log|x_i-x_j|\bigr]
        + \phi(y_i') - \phi(y_i) + \log\frac{q(y_i\mid y_i')}{q(y_i'\mid y_i)},

    an :math:`O(N)` evaluation, so a sweep costs :math:`O(N^2)`, like one gradient.
    Each update is a Metropolis–Hastings step for the conditional of :math:`y_i`,
    which leaves :math:`p` invariant, hence so does the sweep. During ``warmup``
    the factor :math:`c` of each chain follows a Robbins–Monro recursion towards a
    0.44 acceptance rate (optimal for one-dimensional random walks); it is then
    frozen, so the remaining sweeps form a time-homogeneous exact chain, and the
    last state is a draw from :math:`p` up to the mixing error that ``steps``
    controls (the tests measure it against the exact Laguerre sampler).

    *Why not HMC/NUTS or MALA.* At high temperature (:math:`\beta\ll1`) the factor
    :math:`|x_i-x_j|^\beta` barely repels, so near-collisions are common while the
    gradient :math:`\beta/(y_i-y_j)` and curvature :math:`\beta/(y_i-y_j)^2` of
    :math:`\log p` are unbounded: every gradient-based integrator is throttled to
    tiny steps. Measured at :math:`N = 100`, Laguerre weight (γ = 1/2), 100 chains
    started from a κ-mismatched exact draw: NumPyro's NUTS at :math:`\kappa =
    0.5` adapted a step of 0.007, hit its depth cap (62 gradients per iteration)
    with 557 divergences, and after 200 iterations (12 000 gradients) the law of
    :math:`\sum\log x` had not moved from the start (two-sample KS p = 2e-59
    against exact draws). HMC with a smoothed pair force and an exact Metropolis
    test fixed :math:`\kappa = 0.5` but at :math:`\kappa = 5` still needed steps
    of 0.008 and failed after 1 800 gradients (p = 5e-23). The one-particle
    updates above have no stiffness problem (a near-collision only costs
    :math:`\beta\log|x_i'-x_j|` in :math:`\log r`) and pass the same tests after
    32 sweeps (about 32 gradients' worth of work) at both :math:`\kappa`.

    Cost per chain: ``steps`` × :math:`N` sequential updates of :math:`O(N)` each
    (vectorised over the chains of a batch).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise HTMPError(f"n must be an integer >= 2, got {n!r}")
    if not (np.isfinite(kappa) and kappa > 0):
        raise HTMPError(f"kappa must be finite and > 0, got {kappa}")
    if steps < 1:
        raise HTMPError(f"steps must be >= 1, got {steps}")
    warm = steps // 2 if warmup is None else int(warmup)
    if not 0 <= warm < steps:
        raise HTMPError(f"warmup must lie in [0, steps), got {warmup}")
    single = np.ndim(init) == 1 and size is None
    x0 = _check_init(init, int(n), size)
    count = x0.shape[0]
    batch = count if chain_batch is None else max(1, min(int(chain_batch), count))

    run = _runner(log_weight)
    params = tuple(jnp.asarray(v, dtype=jnp.float64) for v in weight_params or ())
    fixed = (jnp.asarray(kappa / n), jnp.asarray(int(steps)), jnp.asarray(warm))
    keys = _keys(key, count)
    y0 = np.log(x0)
    parts: list[list[NDArray[Any]]] = [[], [], []]
    for start in range(0, count, batch):
        stop = min(start + batch, count)
        pad = batch - (stop - start)  # repeat the last row: one compiled shape
        yb = np.concatenate([y0[start:stop], np.repeat(y0[stop - 1 : stop], pad, 0)])
        kb = jnp.concatenate([keys[start:stop], jnp.repeat(keys[stop - 1 :], pad, 0)])
        for store, value in zip(
            parts, run(jnp.asarray(yb), kb, *fixed, params), strict=True
        ):
            store.append(np.asarray(value)[: stop - start])
    z, accept_rate, scale = (np.concatenate(v) for v in parts)
    draws = np.sort(np.exp(z), axis=1)
    result = draws[0] if single else draws
    if return_info:
        return result, {"accept_rate": accept_rate, "scale": scale}
    return result
