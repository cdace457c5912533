"""The adaptive spike cap: the sum over spike counts is truncated only where it may be.

The prior P(k) ∝ 2^-k lives on 0..L = N//4; the likelihood sums k up to a cap K
chosen by :func:`htmp_infer.inference.evidence.spike_cap` and checked on the grid
draws. These
tests compare the truncated sum with the full one and show that a spectrum with
more outliers than the first cap gets them counted instead of censored.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from htmp_infer import Spectrum
from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.errors import EvidenceWarning
from htmp_infer.inference.evidence import _evidence_at_cap, evidence_and_grid
from htmp_infer.inference.fit import fit
from htmp_infer.inference.grid import grid_draws_tree
from htmp_infer.mechanisms.spikes import (
    CAP_MASS,
    add_spikes,
    default_max_spikes,
    next_cap,
    spike_limit,
    spike_log_prior,
)

N_BULK, N_SPIKES, GAMMA = 180, 20, 0.5


@pytest.fixture(scope="module")
def spiky() -> Spectrum:
    """An HTMP bulk (κ = 2) of 180 values plus 20 spikes from the spike model."""
    bulk = np.sort(sample_htmp(3, N_BULK, 2.0, gamma=GAMMA))
    values = add_spikes(np.random.default_rng(4), bulk, N_SPIKES)
    # the bulk is the model on a (N - k) x (M - k) matrix: M = 360 + 20
    return Spectrum.from_eigenvalues(values, n_cols=N_BULK / GAMMA + N_SPIKES)


def test_truncated_prior_keeps_the_full_normalisation() -> None:
    full = spike_log_prior(50)
    assert np.exp(full).sum() == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(spike_log_prior(8, 50), full[:9], rtol=0, atol=1e-15)


def test_caps_follow_a_fixed_sequence() -> None:
    seq = [default_max_spikes(384)]
    while seq[-1] < spike_limit(384):
        seq.append(next_cap(seq[-1], 384))
    assert seq == [8, 16, 32, 64, 96]
    seq = [default_max_spikes(100)]
    while seq[-1] < spike_limit(100):
        seq.append(next_cap(seq[-1], 100))
    assert seq == [5, 10, 20, 25]


@pytest.mark.slow
def test_many_spikes_raise_the_cap_and_match_the_full_sum(spiky: Spectrum) -> None:
    """The truncated evidence is the full one to within the dropped mass.

    The cap keeps all but at most ``CAP_MASS`` = 5% of the posterior, so the
    truncated log evidence is below the full sum (to k = L = 50) by at most
    -log(1 - 0.05) = 0.051 nats, plus the two grids' errors (reported, ~1e-3).
    Measured at this seed: cap 32, gap 2.5e-7 nats; at the first cap (8) the
    evidence is 23.9 nats below the full sum.
    """
    ev, grid = evidence_and_grid(spiky, "htmp")
    assert grid is not None
    assert ev.spike_cap > default_max_spikes(spiky.n)
    assert ev.cap_mass <= CAP_MASS
    everything = spiky.with_max_spikes(spike_limit(spiky.n))
    full, _ = _evidence_at_cap(everything, "htmp", 0, 1)
    gap = full.log_evidence - ev.log_evidence
    bound = -math.log1p(-CAP_MASS) + ev.error + full.error
    assert -(ev.error + full.error) <= gap <= bound, (gap, bound)


@pytest.mark.slow
def test_spike_count_is_counted_not_censored(spiky: Spectrum) -> None:
    """With the first cap (8) every draw would say 8; the posterior sees ~20.

    Measured at this seed: median 19, 90% interval [16, 22]. The bounds below
    allow for spikes that fall back into the bulk's top (a Pareto ratio near 1).
    """
    dt = fit(spiky, "htmp", method="grid", chains=2, draws=500, ppc_draws=0)
    k = dt["posterior"].dataset["n_spikes"].values.ravel()
    assert 15 <= np.median(k) <= 25
    assert np.quantile(k, 0.95) < spike_limit(spiky.n)


@pytest.mark.slow
def test_draws_from_a_grid_use_the_grid_s_cap(spiky: Spectrum) -> None:
    """A grid built at a raised cap, drawn with the spectrum's first cap (8).

    The draws' spike-count logits span the grid's cap (32), not the spectrum's;
    at cap 8 every count would be at most 8.
    """
    _, grid = evidence_and_grid(spiky, "htmp")
    assert grid is not None and spiky.max_spikes is None
    dt, _ = grid_draws_tree(
        spiky,
        "htmp",
        chains=1,
        draws=200,
        rng=np.random.default_rng(0),
        grid=grid,
        constant_data={},
    )
    logits = dt["posterior"].dataset["spike_logits"].values
    assert logits.shape[-1] == grid.evidence.spike_cap + 1 > default_max_spikes(spiky.n)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    mean_k = (p * np.arange(logits.shape[-1])).sum(axis=-1) / p.sum(axis=-1)
    assert 15 <= np.median(mean_k) <= 25


def test_a_cap_at_the_prior_limit_warns() -> None:
    """15 huge outliers on 25 bulk values: more than L = 10 spikes, censored."""
    bulk = np.sort(sample_htmp(5, 25, 50.0, gamma=0.5))
    values = np.concatenate([bulk, bulk[-1] * np.linspace(10.0, 30.0, 15)])
    spectrum = Spectrum.from_eigenvalues(values, gamma=0.5)
    with pytest.warns(EvidenceWarning, match="censored"):
        ev, _ = evidence_and_grid(spectrum, "mp")
    assert ev.spike_cap == spike_limit(spectrum.n) == 10
    assert ev.cap_mass > 0.99
