"""Pieces shared by the mechanism models: the spike sum and the observed site."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpyro
from jax import Array

from htmp_infer.mechanisms.bulk import JointLogDensity, spiked_data
from htmp_infer.mechanisms.spikes import (
    SpikeTable,
    draw_spike_counts,
    mix_spike_counts,
    spike_logits,
)
from htmp_infer.spectrum import Spectrum

__all__ = ["data_kwargs", "observe", "spike_counts", "static_kwargs"]


def static_kwargs(spectrum: Spectrum) -> dict[str, Any]:
    """Arguments fixed at compile time (shapes), shared by the spiked models."""
    return spiked_data(spectrum)[0]


def data_kwargs(spectrum: Spectrum, limit: int | None = None) -> dict[str, Any]:
    """Traced arguments: the data and its cached per-spike-count statistics.

    ``limit`` is the spike prior's support (default
    :func:`~htmp_infer.mechanisms.spikes.spike_limit`).
    """
    return spiked_data(spectrum, limit=limit)[1]


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
