"""The ``data`` model: its mean-field normaliser table, likelihood and fit.

Simulation-based calibration of the model against MCMC draws of the gas is in
``tests/models/test_model_sbc.py`` (same shape, so the table is built once per run).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from htmp_infer import Spectrum, fit
from htmp_infer.ensembles.likelihood import laguerre_log_likelihood
from htmp_infer.meanfield.data_edge import (
    EDGE_RANGE,
    KAPPA_RANGE,
    RATIO_NODES,
    edge_correction,
    edge_free_energy,
    edge_table,
    hard_edge_ratios,
    laguerre_phi,
)
from htmp_infer.meanfield.free_energy import equilibrium
from htmp_infer.mechanisms.bulk import data_edge_bulk
from htmp_infer.mechanisms.spikes import spike_limit, spike_table

N, M, K = 100, 200, 5  # the SBC suite's shape (γ = 0.5, K = N // 20)
L = spike_limit(N)  # the table spans every spike count the prior allows


@pytest.fixture(scope="module")
def table():
    return edge_table(N, float(M), L)


@pytest.mark.parametrize(
    ("kappa", "a"),
    [(1.0, 0.5), (5.0, 2.5), pytest.param(30.0, 0.2, marks=pytest.mark.slow)],
)
def test_laguerre_phi_closed_form_matches_the_solver(kappa: float, a: float) -> None:
    # the solver's own accuracy is ~1e-13 relative (tests/meanfield/test_meanfield.py)
    assert laguerre_phi(kappa, a) == pytest.approx(equilibrium(kappa, a).phi, abs=1e-10)


@pytest.mark.slow
def test_table_matches_direct_solves(table) -> None:
    """Chebyshev × Hermite interpolation against fresh mean-field solves.

    Over the whole table: κ in [0.01, 100], v in [1e-12, 10], every spike count
    to L. The likelihood uses n·D, so an error ε per particle costs nε nats; 2e-5
    keeps it below 2e-3 nats at N = 100 and 0.03 at N = 1536 (measured: see
    ``benchmarks/data_cost.py --accuracy``).
    """
    rng = np.random.default_rng(5)
    r0, r_top = table.ratios[0], table.ratios[-1]
    for _ in range(10):
        lk = rng.uniform(*np.log(KAPPA_RANGE))
        lv = rng.uniform(*np.log(EDGE_RANGE))
        r = r0 + (r_top - r0) * rng.uniform()
        kappa = math.exp(lk)
        u = math.exp(lv) * kappa * (r0 + 0.5)
        direct, _ = edge_free_energy(kappa, kappa * r, u)
        got = float(edge_correction(table.coef, table.ratios, lk, lv, np.array([r]))[0])
        assert abs(got - direct) < 2e-5, (kappa, math.exp(lv), r, got, direct)


def test_ratios_follow_the_shape() -> None:
    """Even in log r from no spike to L spikes (the prior's limit)."""
    r = hard_edge_ratios(N, float(M), L)
    assert r.size == RATIO_NODES
    assert r[0] == pytest.approx((M - N + 1) / (2 * N), rel=1e-14)
    assert r[-1] == pytest.approx((M - N + 1) / (2 * (N - L)), rel=1e-14)
    np.testing.assert_allclose(np.diff(np.log(r)), np.log(r[1] / r[0]), rtol=1e-12)


def test_bulk_reduces_to_the_exact_laguerre_density() -> None:
    """With no edge and no correction the bulk is the β-Laguerre density (rate ϑ)."""
    rng = np.random.default_rng(0)
    lam = np.sort(rng.gamma(2.0, size=N))
    spec = Spectrum.from_eigenvalues(lam, n_cols=M)
    tab = spike_table(spec, K)
    kappa, rate = 3.0, 0.7
    got = np.asarray(data_edge_bulk(tab, float(M), kappa, 0.0, rate, np.zeros(K + 1)))
    for k in (0, 3):
        n = N - k
        beta = kappa / n
        a = beta * (M - N + 1) / 2.0
        stats = Spectrum.from_eigenvalues(lam[:n], n_cols=M - k).stats
        want = float(laguerre_log_likelihood(stats, beta, a, rate))
        assert got[k] == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.slow
def test_edge_term_enters_with_the_table_correction(table) -> None:
    """Adding h' changes the bulk by -h'Σ1/λ - n(D(u) - D(0)) exactly."""
    rng = np.random.default_rng(1)
    lam = np.sort(rng.gamma(2.0, size=N)) + 0.05
    spec = Spectrum.from_eigenvalues(lam, n_cols=M)
    tab = spike_table(spec, K)
    kappa, rate, v = 3.0, 0.7, 0.01
    r = (M - N + 1) / (2.0 * np.asarray(tab.n, dtype=float))
    corr = np.asarray(
        edge_correction(table.coef, table.ratios, math.log(kappa), math.log(v), r)
    )
    u = v * kappa * (r[0] + 0.5)
    base = np.asarray(data_edge_bulk(tab, float(M), kappa, 0.0, rate, np.zeros(K + 1)))
    got = np.asarray(data_edge_bulk(tab, float(M), kappa, u / rate, rate, corr))
    n = np.asarray(tab.n, dtype=float)
    want = base - u / rate * np.asarray(tab.sum_inv) - n * corr
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.all(corr < 0)  # the edge removes mass: log Z falls


@pytest.mark.slow
def test_grid_fit_reports_the_identified_edge() -> None:
    from htmp_infer.models.data import sample_prior, simulate

    rng = np.random.default_rng(2)
    shape = Spectrum.from_eigenvalues(np.arange(1.0, N + 1.0), n_cols=M)
    params = {**sample_prior(rng, N), "kappa": 2.0, "relative_edge": 0.5}
    params["n_spikes"] = 0.0
    spec = Spectrum.from_eigenvalues(simulate(rng, params, shape), n_cols=M)
    tree = fit(spec, "data", method="grid", draws=400, seed=0, ppc_draws=0)
    post = tree["posterior"]
    for name in ("kappa", "relative_edge", "edge", "rate", "n_spikes"):
        assert name in post, name
    # the priors are latent sites, not observed factors: LOO sees the data only
    assert list(tree["log_likelihood"].data_vars) == ["eigenvalues"]
    kappa = np.asarray(post["kappa"]).ravel()
    v = np.asarray(post["relative_edge"]).ravel()
    # the truth inside the central 98% (a miss has probability 2% per coordinate
    # for a calibrated posterior; fixed seed)
    assert np.quantile(kappa, 0.01) < 2.0 < np.quantile(kappa, 0.99)
    assert np.quantile(v, 0.01) < 0.5 < np.quantile(v, 0.99)


def test_prior_puts_its_box_at_three_sd_inside_the_table() -> None:
    from htmp_infer.models.data import LOG_EDGE, LOG_KAPPA, box_prior

    assert LOG_KAPPA == pytest.approx(np.log(KAPPA_RANGE), rel=1e-12)
    assert np.log(EDGE_RANGE[0]) <= LOG_EDGE[0] < LOG_EDGE[1] <= np.log(EDGE_RANGE[1])
    # issue 18: the edge prior reaches 1e-8 of the mean at 3 sd
    assert LOG_EDGE[0] == pytest.approx(math.log(1e-8), rel=1e-12)
    for bounds in (LOG_KAPPA, LOG_EDGE):
        d = box_prior(bounds)
        assert float(d.loc - 3 * d.scale) == pytest.approx(bounds[0], rel=1e-12)
        assert float(d.loc + 3 * d.scale) == pytest.approx(bounds[1], rel=1e-12)


def test_table_is_held_above_the_box(table) -> None:
    """Above the box in κ and v the correction is the edge value."""
    r = np.array([table.ratios[0]])
    lk_hi, lv_hi = np.log(KAPPA_RANGE[1]), np.log(EDGE_RANGE[1])
    at_edge = edge_correction(table.coef, table.ratios, lk_hi, lv_hi, r)
    beyond = edge_correction(table.coef, table.ratios, lk_hi + 2.0, lv_hi + 3.0, r)
    np.testing.assert_array_equal(np.asarray(beyond), np.asarray(at_edge))


@pytest.mark.slow
@pytest.mark.parametrize("kappa", [0.01, 0.1])
def test_correction_below_the_box_decays_to_the_htmp(table, kappa: float) -> None:
    """Below v = 1e-12 D is continued to 0 (the HTMP), matching the solver.

    Held at its edge value instead, D would stay at about -1.6 per particle at
    κ = 0.01 (160 nats at N = 100) however small the edge. The continuation
    matches fresh solves to 1% at 1e-13 and 1e-14 (measured: within 0.3% down to
    1e-16 over κ in [0.01, 100] and four shapes), is continuous with the table
    at the box's edge, value and slope, and tends to 0.
    """
    import jax

    r = np.array([table.ratios[0]])
    lk = math.log(kappa)
    lv0 = float(np.log(EDGE_RANGE[0]))

    def corr(lv: float) -> float:
        return float(edge_correction(table.coef, table.ratios, lk, lv, r)[0])

    assert corr(lv0 - 1e-9) == pytest.approx(corr(lv0), abs=1e-9)
    for v in (1e-13, 1e-14):
        u = v * kappa * (r[0] + 0.5)
        direct, _ = edge_free_energy(kappa, kappa * r[0], u)
        assert corr(math.log(v)) == pytest.approx(direct, rel=0.01)
    deep = [corr(lv) for lv in (-100.0, -1000.0, -1e4)]
    assert deep[0] < deep[1] < deep[2] < 0.0
    assert abs(deep[2]) < 0.05 * abs(corr(lv0))
    grad = jax.grad(lambda lv: edge_correction(table.coef, table.ratios, lk, lv, r)[0])
    below, above = float(grad(lv0 - 1e-7)), float(grad(lv0 + 1e-7))
    assert below == pytest.approx(above, rel=1e-4)  # slope continuous too


@pytest.mark.slow
def test_a_random_matrix_gets_a_finite_evidence_far_below_htmp() -> None:
    """κ = N = 100 sits on the table box's edge.

    The evidence must come back finite (with an EvidenceWarning when its error
    exceeds 0.1 nats) instead of failing the whole comparison, and the exact
    nested model must explain a Gaussian matrix better.
    """
    import warnings

    from htmp_infer.errors import EvidenceWarning
    from htmp_infer.inference.evidence import log_evidence

    rng = np.random.default_rng(4)
    spec = Spectrum.from_matrix(rng.standard_normal((M, N)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = log_evidence(spec, "data")
    flagged = [w for w in caught if issubclass(w.category, EvidenceWarning)]
    assert math.isfinite(ev.log_evidence)
    assert (ev.error > 0.1) == bool(flagged)
    assert log_evidence(spec, "htmp").log_evidence > ev.log_evidence + 2.0


@pytest.mark.slow
def test_identification_of_the_edge_on_an_htmp_spectrum(table) -> None:
    """An HTMP spectrum is the `data` model's limit v → 0: an upper bound only.

    The likelihood at v → 0 is the HTMP's; the low side is bounded only if the
    best edge beats it by more than 2 nats, which a likelihood-ratio test puts
    at P(χ²₁ > 4)/2 ≈ 2% for an HTMP spectrum (fixed seed here).
    """
    from htmp_infer import compare
    from htmp_infer.ensembles.sampling import sample_htmp

    lam = np.sort(sample_htmp(2, N, 6.0, n_cols=M))
    spec = Spectrum.from_eigenvalues(lam, n_cols=M)
    result = compare(spec, ["htmp", "data"], draws=100, ppc_draws=0)
    ident = result.identification.set_index(["model", "parameter"])
    assert ident.loc[("data", "log_kappa"), "verdict"] == "identified"
    assert ident.loc[("data", "log_relative_edge"), "verdict"] == "upper bound only"


@pytest.mark.slow
def test_an_edge_beyond_the_validated_range_is_a_failure_not_a_number(table) -> None:
    """κ = 0.08: the smallest eigenvalue is ~1e-52 of the median, Σ 1/λ ~ 1e52.

    The edge's posterior would lie below 1e-52 of the mean, ~33 prior sd below
    the box, far beyond where the correction is measured (1e-20) and where the
    mode search can go (gradients ~1e44). Evaluated anyway, the importance
    sampler's proposal collapsed on a wrong point and returned log evidence
    -1.3e44 with an error of 0.1 nats. So the model refuses such spectra with
    the reason, and ``compare`` gives it weight 0. At κ = 0.2 (smallest value
    6.5e-16 of the mean) the model is evaluated: the edge's posterior sits at
    v ≈ 1e-15, in the continuation below the table.
    """
    from htmp_infer import compare
    from htmp_infer.ensembles.sampling import sample_htmp
    from htmp_infer.errors import HTMPError
    from htmp_infer.inference.evidence import evidence_and_grid

    lam = np.sort(sample_htmp(0, N, 0.08, n_cols=M))
    spec = Spectrum.from_eigenvalues(lam, n_cols=M)
    assert lam.min() < 1e-40
    with pytest.raises(HTMPError, match=r"smallest eigenvalue is .* below 1e-20"):
        evidence_and_grid(spec, "data")
    with pytest.warns(UserWarning, match="weight 0"):
        result = compare(spec, ["htmp", "data"], draws=50, ppc_draws=0)
    assert result.table.loc["data", "weight"] == 0.0
    assert result.table.loc["data", "method"].startswith("failed: ")
    assert list(result.identification["model"]) == ["htmp"]


@pytest.mark.slow
def test_spikes_holding_most_of_the_trace_do_not_break_the_mode_search(table) -> None:
    """The rate is anchored on the bulk without the K largest values.

    Anchored on the whole trace, three spikes 1e29–1e30 times the median put
    the posterior of ``log_relative_scale`` near −65, far outside the mode
    search's screening box [−4, 4], and the evidence failed (degenerate
    importance sampling; measured, with spikes 1e30 and 1e100 times the median).
    So did a `data` replicate of the confusion benchmark whose largest spike was
    1e10 times the median. The anchor is a translation of a flat coordinate, so
    it changes neither the posterior nor the evidence.
    """
    from htmp_infer.ensembles.sampling import sample_htmp
    from htmp_infer.inference.evidence import evidence_and_grid

    bulk = np.sort(sample_htmp(3, N - 3, 2.0, n_cols=M - 3))
    spikes = np.median(bulk) * np.array([1e29, 3e29, 1e30])
    spec = Spectrum.from_eigenvalues(np.concatenate([bulk, spikes]), n_cols=M)
    ev, _ = evidence_and_grid(spec, "data")
    assert math.isfinite(ev.log_evidence)
    assert ev.method == "trapezoid grid" and ev.error < 0.1


def test_the_spike_cap_adapts_and_the_prior_spans_every_count() -> None:
    """``data`` raises its cap like every model: P(k) ∝ 2^-k on 0..L, one table."""
    from htmp_infer.inference.spike_caps import is_adaptive
    from htmp_infer.mechanisms.spikes import default_max_spikes, spike_log_prior
    from htmp_infer.models import data as data_model

    assert is_adaptive("data")
    spec = Spectrum.from_eigenvalues(np.arange(1.0, N + 1.0), n_cols=M)
    for cap in (default_max_spikes(N), 20, L):
        kw = data_model.data_kwargs(spec.with_max_spikes(cap))
        assert kw["table"]["log_prior"].shape == (cap + 1,)
        np.testing.assert_allclose(
            kw["table"]["log_prior"], spike_log_prior(cap, L), rtol=0, atol=1e-15
        )
        # the same table (every count to L) and the same anchor at every cap
        assert kw["edge"]["ratios"][-1] == pytest.approx((M - N + 1) / (2 * (N - L)))
        assert float(kw["anchor"]) == pytest.approx(float(np.sum(np.arange(1, 96))))
    draws = [data_model.sample_prior(np.random.default_rng(i), N) for i in range(400)]
    assert max(d["n_spikes"] for d in draws) > default_max_spikes(N)


@pytest.mark.slow
def test_many_spikes_raise_the_cap_and_match_the_full_sum() -> None:
    """15 spikes on an 85-value bulk: the cap rises past 10 and the evidence is
    the full sum to k = L within the dropped mass (-log(1 - 0.05) = 0.051 nats)
    plus the grids' errors. With the cap fixed at 5 (before issue 18) the count
    was censored at 5."""
    from htmp_infer.ensembles.sampling import sample_htmp
    from htmp_infer.inference.evidence import _evidence_at_cap, evidence_and_grid
    from htmp_infer.mechanisms.spikes import CAP_MASS, add_spikes

    k = 15
    bulk = np.sort(sample_htmp(3, N - k, 2.0, n_cols=M - k))
    values = add_spikes(np.random.default_rng(4), bulk, k)
    spec = Spectrum.from_eigenvalues(values, n_cols=M)
    ev, grid = evidence_and_grid(spec, "data")
    assert grid is not None
    assert ev.spike_cap >= 20
    assert ev.cap_mass <= CAP_MASS
    full, _ = _evidence_at_cap(spec.with_max_spikes(L), "data", 0, 1)
    gap = full.log_evidence - ev.log_evidence
    bound = -math.log1p(-CAP_MASS) + ev.error + full.error
    assert -(ev.error + full.error) <= gap <= bound, (gap, bound)
