"""Potential energy and deterministic sites of a NumPyro program, traced under jit.

``numpyro.infer.util.initialize_model`` runs the model eagerly, op by op, to find
its sites; with the Selberg normaliser that costs seconds per model and shape.
Every htmp-infer model has real-valued latent sites only (log-parameters with
Normal or improper flat priors), so the unconstrained space is the latent space
itself and the sites can be found by abstract tracing (``jax.eval_shape``), which
costs milliseconds. A program with a constrained latent site is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpyro
from jax import Array
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.infer.util import log_density

from htmp_infer.errors import HTMPError

__all__ = [
    "deterministic_sites",
    "latent_priors",
    "latent_sites",
    "observed_log_likelihood",
    "potential",
]


def _zeros(site: dict[str, Any]) -> Array | None:
    if site["type"] != "sample" or site.get("is_observed"):
        return None
    return jnp.zeros(site["fn"].shape())


def _is_real(support: Any) -> bool:
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    return support is constraints.real


def latent_sites(program: Callable[..., None], data: dict[str, Any]) -> dict[str, Any]:
    """Names and shapes of the latent sample sites (all real-valued)."""
    found: dict[str, tuple[int, ...]] = {}

    def trace(d: dict[str, Any]) -> Array:
        model = handlers.substitute(program, substitute_fn=_zeros)
        tr = handlers.trace(model).get_trace(**d)
        for name, site in tr.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            if not _is_real(site["fn"].support):
                raise HTMPError(f"latent site {name!r} is not real-valued")
            found[name] = tuple(jnp.shape(site["value"]))
        return jnp.zeros(())

    jax.eval_shape(trace, data)
    return {name: jnp.zeros(shape) for name, shape in found.items()}


class _AllLatentsSeen(Exception):
    """Raised by :class:`_PriorCollector` once every latent site was visited."""


class _PriorCollector(numpyro.primitives.Messenger):
    """Record the distribution of each named latent site, then stop the program."""

    def __init__(self, fn: Callable[..., None], names: set[str]) -> None:
        self.names = names
        self.found: dict[str, Any] = {}
        super().__init__(fn)

    def process_message(self, msg: dict[str, Any]) -> None:
        latent = msg["type"] == "sample" and not msg["is_observed"]
        if not latent or msg["name"] not in self.names:
            return
        self.found[msg["name"]] = msg["fn"]
        msg["value"] = jnp.zeros(msg["fn"].shape())
        if len(self.found) == len(self.names):
            raise _AllLatentsSeen


def latent_priors(
    program: Callable[..., None], data: dict[str, Any], names: list[str]
) -> dict[str, Any]:
    """The prior distribution object of each latent site in ``names``.

    The program runs eagerly only up to its last latent site (the priors come
    first in every htmp-infer model), so the likelihood is never evaluated.
    """
    collector = _PriorCollector(program, set(names))
    try:
        collector(**data)
    except _AllLatentsSeen:
        pass
    missing = set(names) - set(collector.found)
    if missing:
        raise HTMPError(f"latent sites {sorted(missing)} were not found")
    return collector.found


def potential(
    program: Callable[..., None], z: dict[str, Array], data: dict[str, Any]
) -> Array:
    """Negative log joint density at latent values ``z`` (no Jacobians needed)."""
    return -log_density(program, (), data, z)[0]


def deterministic_sites(
    program: Callable[..., None], z: dict[str, Array], data: dict[str, Any]
) -> dict[str, Array]:
    """Latent and deterministic site values at ``z``."""
    tr = handlers.trace(handlers.substitute(program, data=z)).get_trace(**data)
    return {
        name: site["value"]
        for name, site in tr.items()
        if site["type"] == "deterministic"
        or (site["type"] == "sample" and not site["is_observed"])
    }


def observed_log_likelihood(
    program: Callable[..., None], z: dict[str, Array], data: dict[str, Any]
) -> dict[str, Array]:
    """Log-likelihood of every observed site at ``z`` (summed over its event)."""
    tr = handlers.trace(handlers.substitute(program, data=z)).get_trace(**data)
    return {
        name: jnp.sum(site["fn"].log_prob(site["value"]))
        for name, site in tr.items()
        if site["type"] == "sample" and site["is_observed"]
    }
