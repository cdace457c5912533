"""Compiled programs of a model for one spectrum shape, and its mode search.

:func:`_potential_fns` builds (once per model and static arguments, then cached)
the jitted potential, its gradient and a vmapped batch of it (a :class:`Potential`),
or, for a model without continuous coordinates, its exact log evidence (an
:class:`ExactSum`); :func:`site_values`
evaluates a model's sites at many points; :func:`_mode` finds the posterior mode.
Shared by :mod:`htmp_infer.inference.evidence` and its spike-cap choice.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import log_density
from scipy.optimize import minimize

from htmp_infer.errors import ArgumentError, HTMPError
from htmp_infer.inference._grid_rule import BATCH, evaluate, pad
from htmp_infer.inference._potential import (
    deterministic_sites,
    latent_priors,
    latent_sites,
    observed_log_likelihood,
    potential,
)
from htmp_infer.inference.registry import load_model
from htmp_infer.spectrum import Spectrum

__all__ = [
    "ExactSum",
    "Potential",
    "latent_names",
    "potential_of",
    "prior_distributions",
    "site_values",
]


class Potential(NamedTuple):
    """The compiled potential of a model with continuous coordinates, on one spectrum.

    Attributes
    ----------
    names : list of str
        The latent coordinates, in the order of the flat vectors below.
    value_grad : callable
        ``x -> (U(x), grad U(x))`` at one point ``x`` (shape ``(d,)``).
    batch : callable
        ``xs -> U(xs)`` at ``BATCH`` points (shape ``(BATCH, d)``).
    """

    names: list[str]
    value_grad: Callable[[Any], Any]
    batch: Callable[[Any], Any]


class ExactSum(NamedTuple):
    """A model without continuous coordinates: its log evidence, summed exactly."""

    log_evidence: float


@functools.lru_cache(maxsize=64)
def _compiled(model: str, static_items: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    """Jitted potential (value+gradient, batch) of a model, per static arguments."""
    module = load_model(model)
    program = functools.partial(module.model, **dict(static_items))

    def exact(data: dict[str, Any]) -> jax.Array:
        return log_density(program, (), data, {})[0]

    def make(data: dict[str, Any]) -> tuple[Any, ...]:
        template = latent_sites(program, data)
        if any(jnp.shape(v) for v in template.values()):
            raise HTMPError(f"model {model!r}: evidence needs scalar latent sites")
        _, unravel = ravel_pytree(template)

        def u_flat(x: jax.Array, data: dict[str, Any]) -> jax.Array:
            return potential(program, unravel(x), data)

        def sites_flat(x: jax.Array, data: dict[str, Any]) -> tuple[Any, Any]:
            z = unravel(x)
            return (
                deterministic_sites(program, z, data),
                observed_log_likelihood(program, z, data),
            )

        return (
            sorted(template),
            jax.jit(jax.value_and_grad(u_flat)),
            jax.jit(jax.vmap(u_flat, in_axes=(0, None))),
            jax.jit(jax.vmap(sites_flat, in_axes=(0, None))),
        )

    return program, jax.jit(exact), make


_MADE: dict[Any, tuple[Any, ...]] = {}


def _made(model: str, spectrum: Spectrum) -> tuple[tuple[Any, ...], Any, Any]:
    """The compiled functions, the exact density and the traced data, built once."""
    module = load_model(model)
    static = module.static_kwargs(spectrum)
    data = module.data_kwargs(spectrum)
    key = (model, tuple(sorted(static.items())))
    _, exact, make = _compiled(*key)
    if key not in _MADE:
        if len(_MADE) > 64:  # a few spike caps per model and shape
            _MADE.pop(next(iter(_MADE)))
        _MADE[key] = make(data)
    return _MADE[key], exact, data


def _potential_fns(model: str, spectrum: Spectrum) -> Potential | ExactSum:
    """The compiled potential of ``model`` on ``spectrum``, or its exact evidence."""
    (names, value_grad, batch, _), exact, data = _made(model, spectrum)
    if not names:
        return ExactSum(float(exact(data)))
    return Potential(
        list(names),
        lambda x: value_grad(x, data),
        lambda xs: batch(xs, data),
    )


def potential_of(model: str, spectrum: Spectrum) -> Potential:
    """:func:`_potential_fns` of a model that has continuous coordinates.

    Raises
    ------
    ArgumentError
        For a model without any (``mp``).
    """
    fns = _potential_fns(model, spectrum)
    if isinstance(fns, ExactSum):
        raise ArgumentError(f"model {model!r}: no continuous parameter")
    return fns


def latent_names(model: str, spectrum: Spectrum) -> list[str]:
    """The latent coordinates of a model, in the order of :func:`site_values`."""
    fns = _potential_fns(model, spectrum)
    return fns.names if isinstance(fns, Potential) else []


def prior_distributions(model: str, spectrum: Spectrum) -> dict[str, Any]:
    """The prior distribution (a NumPyro object) of each latent coordinate."""
    (names, *_), _, data = _made(model, spectrum)
    module = load_model(model)
    program = functools.partial(module.model, **module.static_kwargs(spectrum))
    return latent_priors(program, data, list(names))


def site_values(
    spectrum: Spectrum, model: str, points: np.ndarray, batch: int = BATCH
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Latent and deterministic sites, and observed log-likelihoods, at many points.

    Parameters
    ----------
    spectrum : Spectrum
    model : str
    points : ndarray, shape (S, d)
        Values of the latent coordinates (in the order of the grid's ``names``).
    batch : int
        Points per compiled call (each size is compiled once).

    Returns
    -------
    sites : dict of str to ndarray
        Every latent and deterministic site, leading axis ``S``.
    log_likelihood : dict of str to ndarray
        Every observed site's log-likelihood, shape ``(S,)``.
    """
    (_, _, _, sites_fn), _, data = _made(model, spectrum)
    outs: list[tuple[Any, Any]] = []
    for i in range(0, len(points), batch):
        chunk = points[i : i + batch]
        sites, loglik = sites_fn(jnp.asarray(pad(chunk, batch)), data)
        outs.append(
            (
                {k: np.asarray(v)[: len(chunk)] for k, v in sites.items()},
                {k: np.asarray(v)[: len(chunk)] for k, v in loglik.items()},
            )
        )
    return (
        {k: np.concatenate([o[0][k] for o in outs]) for k in outs[0][0]},
        {k: np.concatenate([o[1][k] for o in outs]) for k in outs[0][1]},
    )


def _mode(
    value_grad: Callable[[Any], Any],
    batch: Callable[[Any], Any],
    d: int,
    seed: int,
    starts: int,
) -> np.ndarray:
    """The posterior mode: BFGS from the best points of a screening batch.

    One compiled batch evaluates the potential at ``BATCH`` points (the origin
    and uniform draws on :math:`[-4, 4]^d`, which covers every prior's central
    region in the unconstrained coordinates); BFGS then starts from the best
    ``starts`` of them that lie at least one unit apart.
    """
    rng = np.random.default_rng(seed)
    screen = np.vstack([np.zeros((1, d)), rng.uniform(-4.0, 4.0, (BATCH - 1, d))])
    logf = evaluate(batch, screen)
    chosen: list[np.ndarray] = []
    for i in np.argsort(-logf):
        if not np.isfinite(logf[i]) or len(chosen) == starts:
            break
        if all(np.max(np.abs(screen[i] - c)) >= 1.0 for c in chosen):
            chosen.append(screen[i])
    return _polish(value_grad, chosen)


def _polish(value_grad: Callable[[Any], Any], starts: list[np.ndarray]) -> np.ndarray:
    """BFGS from each start; the best finite end point."""
    best: tuple[float, np.ndarray] | None = None

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, g = value_grad(jnp.asarray(x))
        v = float(value)
        if not math.isfinite(v):
            return 1e300, np.zeros(x.size)
        return v, np.asarray(g, dtype=np.float64)

    for x0 in starts:
        res = minimize(fun, x0, jac=True, method="BFGS", options={"gtol": 1e-6})
        if math.isfinite(res.fun) and (best is None or res.fun < best[0]):
            best = (float(res.fun), np.asarray(res.x))
    if best is None:
        raise HTMPError("evidence: no finite starting point for the mode search")
    return best[1]
