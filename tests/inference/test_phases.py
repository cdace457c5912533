"""Phases from measured spectral features (docs/model.md §6)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from htmp_infer import Spectrum, fit
from htmp_infer.ensembles.sampling import sample_beta_laguerre, sample_htmp
from htmp_infer.inference.features import tied_edge_exponent, top_exponent
from htmp_infer.inference.phases import (
    PHASES,
    UNDETERMINED,
    averaged_phases,
    classify,
    decide,
    phase_posterior,
)

G = 0.3255  # Figure 2's aspect ratio (MiniAlexNet FC1, 1000 x 3072)
INF = np.inf


def _phase(kappa: float, edge: float, alpha: float, k: int = 0, r: float = 1.0):
    idx = classify(
        np.array([kappa]),
        np.array([edge]),
        np.array([alpha]),
        np.array([k]),
        np.array([r]),
    )
    return PHASES[int(idx[0])]


@pytest.mark.parametrize(
    ("kappa", "edge", "alpha", "k", "ratio", "phase"),
    [
        (1e3, 0.5, INF, 0, 1.0, "random-like"),  # a real Gaussian square matrix
        (1e3, 0.5, INF, 2, 1.1, "bleeding-out"),
        (1e3, 0.5, INF, 2, 3.0, "bulk+spikes"),
        (5.0, 0.4, INF, 0, 1.0, "bulk-decay"),
        (5.0, 0.4, 3.0, 0, 1.0, "heavy-tailed"),
        (1e3, 0.5, 3.99, 2, 3.0, "heavy-tailed"),  # alpha < 4 before spikes
        (1e3, 0.5, 4.0, 0, 1.0, "random-like"),  # the boundary itself is not heavy
        (1e3, 0.249, INF, 0, 1.0, "rank-collapse"),
        (1e3, 0.25, INF, 0, 1.0, "random-like"),
        (5.0, 0.01, 2.0, 3, 5.0, "rank-collapse"),  # the collapsed edge first
        (19.99, 0.5, INF, 0, 1.0, "bulk-decay"),
        (20.0, 0.5, INF, 0, 1.0, "random-like"),
    ],
)
def test_classify_boundaries(
    kappa: float, edge: float, alpha: float, k: int, ratio: float, phase: str
) -> None:
    assert _phase(kappa, edge, alpha, k, ratio) == phase


@pytest.mark.parametrize("gamma", [0.05, 0.3255, 0.75, 1.0])
def test_no_phase_is_impossible_at_any_gamma(gamma: float) -> None:
    """Every phase has feature values that the default models can reach at this
    gamma: the edge exponent is free in hard_edge, alpha in power_law, kappa in
    all gas models; the features themselves do not involve gamma."""
    n = 384
    n_cols = n / gamma
    reached = {
        _phase(1e3, 0.5, INF),
        _phase(1e3, 0.5, INF, 2, 1.1),
        _phase(1e3, 0.5, INF, 2, 3.0),
        _phase(5.0, 1.0, INF),
        _phase(5.0, 1.0, 3.0),
        # htmp's own tie reaches a collapsed edge at every gamma (small kappa)
        _phase(1e-3, float(tied_edge_exponent(1e-3, 0, n, n_cols)), INF),
    }
    assert reached == set(PHASES)


def test_tied_edge_exponent() -> None:
    # a = kappa (M - N + 1) / (2 (N - k)): kappa / (2N) on a square matrix
    assert tied_edge_exponent(4.0, 0, 384, 384.0) == pytest.approx(4 / 768)
    assert tied_edge_exponent(2.0, 4, 100, 300.0) == pytest.approx(2 * 201 / 192)


def test_top_exponent_is_the_spikes_pareto_index() -> None:
    """Draws with k spikes: nu ~ Gamma(2 + k, 1 + T_k) exactly (conjugacy), so
    the mean of alpha_top - 1 over many draws is (2 + k) / (1 + T_k) within its
    Monte Carlo error (4 standard errors: false failure ~6e-5)."""
    lam = np.sort(np.concatenate([np.linspace(1.0, 2.0, 50), [3.0, 5.0, 9.0]]))
    k = np.full(40000, 3)
    t = np.log(3.0 / 2.0) + np.log(5.0 / 2.0) + np.log(9.0 / 2.0)
    nu = top_exponent(lam, k, np.full(k.size, INF), seed=1) - 1.0
    mean, sd = (2 + 3) / (1 + t), np.sqrt(5) / (1 + t)
    assert abs(nu.mean() - mean) < 4 * sd / np.sqrt(k.size)
    # draws without spikes keep the bulk's exponent
    assert np.all(top_exponent(lam, np.zeros(3, int), np.full(3, 7.0), 1) == 7.0)


def test_decide_and_average() -> None:
    p = xr.DataArray(
        [0.8, 0.1, 0.1, 0, 0, 0], dims=["phase"], coords={"phase": list(PHASES)}
    )
    assert decide(p, fits=True) == "random-like"
    assert decide(p, fits=False) == UNDETERMINED
    assert decide(p * 0 + p.where(p < 0.5, 0.7), fits=True) == UNDETERMINED
    with pytest.raises(ValueError):
        averaged_phases({}, {})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kappa", "phase"),
    [
        (None, "random-like"),
        (5.5, "bulk-decay"),  # a = kappa (M - N + 1) / 2N = 5.70, no power-law tail
        (1.9, "bulk-decay"),  # a = 1.97: HTMP's upper edge is exponential
        (1e-3, "rank-collapse"),  # a = 0.001
    ],
)
def test_figure2_spectra_get_their_phase(kappa: float | None, phase: str) -> None:
    """N = 1000, gamma = 0.3255, one ``htmp`` fit per spectrum.

    The expected phases follow from the rules of docs/model.md §6 (written
    before this test was run): under ``htmp`` the features are kappa and the
    tied edge exponent, and alpha is infinite. At kappa = 1e-3 most eigenvalues
    underflow float64 and are counted as zeros (subnormals flushed to zero, as
    Spectrum refuses them).
    """
    n, m = 1000, 1000 / G
    if kappa is None:
        lam = sample_beta_laguerre(7, n, 1.0, (m - n + 1) / 2)
    else:
        lam = sample_htmp(7, n, kappa, n_cols=m)
        lam = np.where(lam < np.finfo(np.float64).tiny, 0.0, lam)
    with pytest.warns(UserWarning) if kappa == 1e-3 else _nothing():
        spectrum = Spectrum.from_eigenvalues(lam, n_cols=m)
    dt = fit(spectrum, progress=False, ppc_draws=0)
    prob = phase_posterior(dt)
    print(f"\nkappa={kappa}: {prob.to_series().round(3).to_dict()}")
    assert float(prob.sel(phase=phase)) >= 0.9, prob.to_series().to_dict()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
