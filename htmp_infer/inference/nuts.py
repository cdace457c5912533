"""A compiled, reusable NUTS driver for many spectra of the same size N.

NumPyro's ``MCMC.run`` recompiles its sampling loop on every call (numpyro 0.22
wraps the cached loop body in a fresh ``jit`` each time, which changes the static
argument of the outer loop), costing seconds per fit. Fitting many spectra (layers,
calibration replicates) needs one compilation per model and shape. This module
builds NumPyro's own NUTS kernel (``numpyro.infer.hmc.hmc``) once per
(model, static arguments, chains, warm-up, draws), runs warm-up and sampling in one
``lax.scan`` vectorised over chains, and exposes the result to
``arviz_base.from_numpyro`` through ArviZ's ``NumPyroInferenceAdapter``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from arviz_base import from_numpyro
from arviz_base.io_numpyro import NumPyroInferenceAdapter
from numpyro.infer.hmc import hmc
from tqdm.auto import tqdm

from htmp_infer.inference._potential import deterministic_sites, latent_sites, potential

__all__ = ["NUTSRun", "run_nuts", "to_datatree"]

MAX_TREE_DEPTH = 10
_INIT_RADIUS = 2.0  # numpyro's init_to_uniform: U(-2, 2) in unconstrained space
_STATS = ("num_steps", "diverging", "energy", "accept_prob")


def to_datatree(run: NumPyroInferenceAdapter, **kwargs: Any) -> xr.DataTree:
    """``arviz_base.from_numpyro(run, **kwargs)``, safe against import order.

    arviz-base 1.3 loads numpyro lazily (``lazy_loader``). When ``arviz_base``
    or ``arviz_plots`` is imported before numpyro, the first ``import
    numpyro.infer`` executes that package twice, and the second copy lacks its
    submodules as attributes, so ``from_numpyro`` fails on
    ``numpyro.infer.initialization`` (``import arviz_plots; import numpyro.infer
    as ni; hasattr(ni, "initialization")`` is ``False``). The loaded submodules
    are put back as attributes first.
    """
    infer = sys.modules.get("numpyro.infer")
    if infer is not None:
        for name, module in list(sys.modules.items()):
            head, _, sub = name.rpartition(".")
            if head == "numpyro.infer" and not hasattr(infer, sub):
                setattr(infer, sub, module)
    return from_numpyro(run, **kwargs)


def _chunk_length(total: int) -> int:
    """Largest divisor of ``total`` that is at most a tenth of it (progress steps)."""
    target = max(1, total // 10)
    return max(d for d in range(1, target + 1) if total % d == 0)


class NUTSRun(NumPyroInferenceAdapter):
    """Samples of one NUTS run, readable by ``arviz_base.from_numpyro``."""

    def __init__(
        self,
        model: Callable[..., None],
        model_kwargs: dict[str, Any],
        samples: dict[str, np.ndarray],
        stats: dict[str, np.ndarray],
    ) -> None:
        first = next(iter(samples.values()))
        self.nchains, self.ndraws = int(first.shape[0]), int(first.shape[1])
        self._max_tree_depth = MAX_TREE_DEPTH
        self._samples = samples
        self._stats = stats
        super().__init__(
            None,
            model=model,
            model_args=(),
            model_kwargs=model_kwargs,
            sample_shape=(self.nchains, self.ndraws),  # type: ignore[arg-type]
        )

    @property
    def sample_dims(self) -> list[str]:
        """``["chain", "draw"]``."""
        return ["chain", "draw"]

    def get_samples(self, seed: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Posterior draws with leading ``(chain, draw)`` dims."""
        return self._samples

    def get_sample_stats(self, **kwargs: Any) -> dict[str, Any]:
        """NUTS statistics with leading ``(chain, draw)`` dims."""
        return self._stats


_CACHE: dict[Hashable, tuple[Callable[..., Any], ...]] = {}
_CACHE_SIZE = 32


def _compile(
    program: Callable[..., None],
    example: dict[str, Any],
    warmup: int,
    target_accept: float,
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    template = latent_sites(program, example)

    def potential_gen(**data: Any) -> Callable[[Any], Any]:
        return lambda z: potential(program, z, data)

    def postprocess_gen(**data: Any) -> Callable[[Any], Any]:
        return lambda z: deterministic_sites(program, z, data)

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def initial_point(key: jax.Array, data: dict[str, Any]) -> Any:
        potential = potential_gen(**data)

        def propose(k: jax.Array) -> tuple[Any, jax.Array]:
            leaves, tree = jax.tree.flatten(template)
            keys = jax.random.split(k, len(leaves))
            z = jax.tree.unflatten(
                tree,
                [
                    jax.random.uniform(
                        kk, jnp.shape(x), minval=-_INIT_RADIUS, maxval=_INIT_RADIUS
                    )
                    for kk, x in zip(keys, leaves, strict=True)
                ],
            )
            pe, grad = jax.value_and_grad(potential)(z)
            ok = jnp.isfinite(pe) & jnp.all(
                jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grad)])
            )
            return z, ok

        def cond(c: tuple[Any, ...]) -> jax.Array:
            return ~c[2] & (c[3] < 100)

        def body(c: tuple[Any, ...]) -> tuple[Any, ...]:
            k, sub = jax.random.split(c[0])
            z, ok = propose(sub)
            return k, z, ok, c[3] + 1

        z0, ok0 = propose(key)
        return jax.lax.while_loop(cond, body, (key, z0, ok0, 0))[1]

    def init_chain(key: jax.Array, data: dict[str, Any]) -> Any:
        k_init, k_run = jax.random.split(key)
        return init_kernel(
            initial_point(k_init, data),
            warmup,
            target_accept_prob=target_accept,
            max_tree_depth=MAX_TREE_DEPTH,
            model_kwargs=data,
            rng_key=k_run,
        )

    def advance(state: Any, data: dict[str, Any], length: int) -> Any:
        def step(s: Any, _: Any) -> tuple[Any, tuple[Any, ...]]:
            s = sample_kernel(s, model_kwargs=data)
            return s, (s.z, s.num_steps, s.diverging, s.energy, s.accept_prob)

        return jax.lax.scan(step, state, None, length=length)

    init = jax.jit(jax.vmap(init_chain, in_axes=(0, None)))
    run = jax.jit(jax.vmap(advance, in_axes=(0, None, None)), static_argnums=(2,))

    def constrain(z: Any, data: dict[str, Any]) -> Any:
        post = postprocess_gen(**data)
        return jax.vmap(jax.vmap(post))(z)

    return init, run, jax.jit(constrain)


def run_nuts(
    program: Callable[..., None],
    data: dict[str, Any],
    *,
    cache_key: Hashable,
    key: jax.Array,
    chains: int,
    warmup: int,
    draws: int,
    target_accept: float = 0.85,
    progress: bool = False,
    label: str = "sampling",
) -> NUTSRun:
    """Run NUTS (NumPyro's kernel, diagonal mass matrix, step-size adaptation).

    Parameters
    ----------
    program : callable
        A NumPyro model whose keyword arguments are exactly ``data`` (bind static
        arguments with ``functools.partial``).
    data : dict
        Traced keyword arguments (arrays).
    cache_key : hashable
        Identifies ``program`` (model name and static arguments); with the data
        shapes and run lengths it keys the cache of compiled samplers.
    key : jax.Array
        PRNG key; chain ``c`` uses ``split(key, chains)[c]``.
    chains, warmup, draws : int
        Run lengths.
    target_accept : float
        Target acceptance probability of the step-size adaptation.
    progress : bool
        Show a progress bar (the run advances in compiled chunks of about a tenth
        of the iterations, so the compiled programs hold no host callbacks and can
        live in JAX's persistent compilation cache).
    label : str
        Progress-bar description.
    """
    shapes = tuple(
        (str(path), tuple(jnp.shape(v)))
        for path, v in jax.tree_util.tree_leaves_with_path(data)
    )
    full_key = (cache_key, shapes, chains, warmup, target_accept)
    if full_key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[full_key] = _compile(program, data, warmup, target_accept)
    init, run, constrain = _CACHE[full_key]
    keys = jax.random.split(key, chains)
    total = warmup + draws
    chunk = _chunk_length(total)
    bar = tqdm(total=total, desc=f"{label} ({chains} chains)", disable=not progress)
    try:
        state = init(keys, data)
        pieces = []
        for _ in range(total // chunk):
            state, out = run(state, data, chunk)
            pieces.append(out)
            jax.block_until_ready(out)
            bar.update(chunk)
    finally:
        bar.close()
    z, num_steps, diverging, energy, accept = jax.tree.map(
        lambda *xs: jnp.concatenate(xs, axis=1)[:, warmup:], *pieces
    )
    samples = constrain(z, data)
    stats = {
        "num_steps": np.asarray(num_steps),
        "diverging": np.asarray(diverging),
        "energy": np.asarray(energy),
        "accept_prob": np.asarray(accept),
    }
    return NUTSRun(program, data, {k: np.asarray(v) for k, v in samples.items()}, stats)
