"""Pieces shared by the mechanism models: the spike sum and the observed site."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpyro
from jax import Array

from htmp_infer.mechanisms import JointLogDensity
from htmp_infer.spikes import (
    SpikeTable,
    draw_spike_counts,
    mix_spike_counts,
    spike_logits,
)

__all__ = ["observe", "spike_counts"]


def observe(eigenvalues: Array | None, bulk: Array, table: SpikeTable) -> None:
    """Sum the spike count out and score the observed spectrum."""
    numpyro.deterministic("spike_logits", spike_logits(bulk, table))
    numpyro.sample(
        "eigenvalues",
        JointLogDensity(mix_spike_counts(bulk, table), sum(table.n[:1])),
        obs=eigenvalues,
    )


def spike_counts(rng: np.random.Generator, samples: dict[str, Any]) -> np.ndarray:
    """Draw the spike count of every posterior draw from its exact conditional."""
    return draw_spike_counts(rng, np.asarray(samples["spike_logits"]))
