r"""The spike cap of a model for one spectrum, and the posterior profile of the count.

The sum over spike counts is truncated at a cap :math:`K`
(:mod:`htmp_infer.mechanisms.spikes`). :func:`spike_cap` chooses the first cap at
the posterior mode; :func:`spike_profile` measures :math:`p(k\mid\theta,\lambda)`,
:math:`k = 0..L`, on posterior points, which the evidence grid
(:mod:`htmp_infer.inference.evidence`) and NUTS (:mod:`htmp_infer.inference.fit`)
use to raise the cap while it binds. All three run the one loop
:func:`~htmp_infer.mechanisms.spikes.adapt_cap`.
"""

from __future__ import annotations

import numpy as np

from htmp_infer.inference._programs import _mode, potential_of, site_values
from htmp_infer.inference.registry import load_model
from htmp_infer.mechanisms.spikes import adapt_cap, default_max_spikes, spike_limit
from htmp_infer.spectrum import Spectrum

__all__ = ["PROFILE_DRAWS", "spike_cap", "spike_profile"]

#: Posterior draws on which the mass above the spike cap is measured. It is a mean
#: of conditional probabilities (each in [0, 1]), so 32 draws resolve the 5% level.
PROFILE_DRAWS = 32


def spike_cap(spectrum: Spectrum, model: str, *, seed: int = 0, starts: int = 1) -> int:
    r"""The spike cap :math:`K` for a model and spectrum, chosen at the mode.

    Starting from ``spectrum.max_spikes`` (default
    :func:`~htmp_infer.mechanisms.spikes.default_max_spikes`): find the mode at cap
    :math:`K`, compute :math:`p(k\mid\hat\theta, \lambda)` for every
    :math:`k \le L` there, and while more than
    :data:`~htmp_infer.mechanisms.spikes.CAP_MASS` of it lies above :math:`K`,
    raise :math:`K` to the first cap of the
    :func:`~htmp_infer.mechanisms.spikes.next_cap` sequence that holds all but
    that much and start again. Models with ``SPIKES_ADAPTIVE = False`` keep the
    first cap; ``mp`` (no parameter) is summed to :math:`L`, exactly.
    """
    return choose_cap(spectrum, model, seed, starts)[0]


def choose_cap(
    spectrum: Spectrum, model: str, seed: int, starts: int
) -> tuple[int, np.ndarray | None]:
    """:func:`spike_cap`, and the mode at that cap when it was computed."""
    n = spectrum.n
    cap = default_max_spikes(n) if spectrum.max_spikes is None else spectrum.max_spikes
    limit = spike_limit(n)
    module = load_model(model)
    if module.EXACT_POSTERIOR:
        return limit, None  # no parameter: the exact sum to the limit costs nothing
    if not module.SPIKES_ADAPTIVE:
        return cap, None
    modes: dict[int, np.ndarray] = {}

    def at(cap: int) -> np.ndarray | None:
        if cap >= limit:
            return None  # nothing above the limit: the mode is found later
        capped = spectrum.with_max_spikes(cap)
        fns = potential_of(model, capped)
        modes[cap] = _mode(fns.value_grad, fns.batch, len(fns.names), seed, starts)
        return spike_profile(capped, model, modes[cap][None, :])

    cap = adapt_cap(at, cap, n, limit)
    return cap, modes.get(cap)


def is_adaptive(model: str) -> bool:
    """Whether the model's spike cap is raised while it binds (``SPIKES_ADAPTIVE``)."""
    return load_model(model).SPIKES_ADAPTIVE


def spike_profile(spectrum: Spectrum, model: str, points: np.ndarray) -> np.ndarray:
    r"""Mean over ``points`` of :math:`p(k\mid\theta,\lambda)`, :math:`k = 0..L`."""
    full = spectrum.with_max_spikes(spike_limit(spectrum.n))
    logits = site_values(full, model, points, PROFILE_DRAWS)[0]["spike_logits"]
    z = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return np.asarray(np.mean(z / z.sum(axis=-1, keepdims=True), axis=0))
