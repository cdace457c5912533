"""Evidence by quadrature, model weights and the ``compare`` command."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy import integrate

import htmp_infer as hi
from htmp_infer import Spectrum
from htmp_infer.cli.app import main
from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.inference._programs import _made
from htmp_infer.inference.comparison import weights_of
from htmp_infer.inference.evidence import log_evidence, posterior_grid
from htmp_infer.mechanisms.bulk import as_table, laguerre_bulk, spiked_data
from htmp_infer.models import htmp as htmp_model
from htmp_infer.models import mp as mp_model

N, GAMMA = 120, 0.5


@pytest.fixture(scope="module")
def spectrum() -> Spectrum:
    x = sample_htmp(3, N, 2.0, gamma=GAMMA)
    return Spectrum.from_eigenvalues(x, gamma=GAMMA, name="synthetic")


@pytest.mark.slow
def test_htmp_evidence_matches_adaptive_quadrature(spectrum: Spectrum) -> None:
    """Grid evidence vs scipy.quad over log kappa of prior x marginal likelihood.

    The integrand is analytic and unimodal; quad reaches ~1e-10 relative. The grid
    rule (h = 1/2) must agree within its own error estimate (the h = 1 rule's
    difference, an upper bound) or 1e-5 nats, whichever is larger.
    """
    static, data = spiked_data(spectrum)
    tab = as_table(static["sizes"], data["table"])

    @jax.jit
    def log_joint(log_kappa: jax.Array) -> jax.Array:
        bulk = laguerre_bulk(tab, data["n_cols"], jnp.exp(log_kappa))
        lik = jax.scipy.special.logsumexp(bulk + tab.spike_log_density + tab.log_prior)
        prior = jax.scipy.stats.norm.logpdf(
            log_kappa, htmp_model.LOG_KAPPA_LOC, htmp_model.LOG_KAPPA_SCALE
        )
        return lik + prior

    ev = log_evidence(spectrum, "htmp")
    grid = np.linspace(-8, 10, 2001)
    vals = np.array([float(log_joint(v)) for v in grid[::50]])
    peak = grid[::50][np.argmax(vals)]
    shift = float(np.max(vals))
    value, _ = integrate.quad(
        lambda t: math.exp(float(log_joint(t)) - shift),
        peak - 4,
        peak + 4,
        epsabs=0,
        epsrel=1e-11,
        limit=200,
    )
    assert ev.dim == 1 and ev.method == "trapezoid grid"
    assert ev.error < 1e-3
    tol = max(1e-5, ev.error)
    assert ev.log_evidence == pytest.approx(math.log(value) + shift, abs=tol)


@pytest.mark.slow
def test_mp_evidence_is_the_exact_sum(spectrum: Spectrum) -> None:
    """``mp`` has no parameter: its spike sum runs to the prior's limit L = N/4."""
    ev = log_evidence(spectrum, "mp")
    assert ev.spike_cap == N // 4
    logits = mp_model.exact_logits(spectrum.with_max_spikes(N // 4))
    assert ev.dim == 0
    assert ev.log_evidence == pytest.approx(
        float(np.logaddexp.reduce(logits)), abs=1e-9
    )


@pytest.mark.slow
def test_power_law_grid_agrees_with_importance_sampling(spectrum: Spectrum) -> None:
    """3-D trapezoid grid vs an independent Student-t importance sampler."""
    from htmp_infer.inference import evidence

    ev = log_evidence(spectrum, "power_law")
    names, value_grad, batch = evidence._potential_fns("power_law", spectrum)
    mode = evidence._mode(value_grad, batch, len(names), 0, 2)
    chol = evidence._whitening(value_grad, mode)
    is_ev, _ = evidence._importance("power_law", batch, mode, chol, seed=1)
    assert ev.dim == 3
    # 4 IS standard errors plus the grid error estimate: false failure < 1e-4.
    assert abs(ev.log_evidence - is_ev.log_evidence) < 4 * is_ev.error + ev.error


@pytest.mark.slow
def test_flood_filled_grid_equals_the_whole_box(spectrum: Spectrum, monkeypatch):  # type: ignore[no-untyped-def]
    """The pruned rule skips only nodes below e^{-20} of the peak.

    With both thresholds at infinity every node of the same boxes is evaluated.
    The skipped nodes each weigh < e^{-20} ~ 2e-9 of the peak, and there are
    fewer than 10^5 of them, so the log evidence may move by < 2e-4 relative
    mass; it must agree to 1e-6 nats (measured: ~1e-7 on MiniLM layers), with
    fewer nodes evaluated.
    """
    from htmp_infer.inference import _grid_rule

    pruned = log_evidence(spectrum, "power_law")
    monkeypatch.setattr(_grid_rule, "FLOOD", math.inf)
    monkeypatch.setattr(_grid_rule, "PRUNE", math.inf)
    whole = log_evidence(spectrum, "power_law")
    assert abs(pruned.log_evidence - whole.log_evidence) < 1e-6
    assert abs(pruned.error - whole.error) < 1e-6
    assert pruned.evaluations < 0.7 * whole.evaluations


def test_posterior_grid_is_a_distribution(spectrum: Spectrum) -> None:
    grid = posterior_grid(spectrum, "htmp")
    assert grid.names == ["log_kappa"]
    assert grid.weights.sum() == pytest.approx(1.0, abs=1e-12)
    lo, hi = grid.points[:, 0].min(), grid.points[:, 0].max()
    assert grid.cdf("log_kappa", lo - 5) < 1e-12
    assert grid.cdf("log_kappa", hi + 5) == pytest.approx(1.0, abs=1e-12)


def test_weights_are_posterior_model_probabilities() -> None:
    w = weights_of([0.0, math.log(3.0)])
    assert np.allclose(w, [0.25, 0.75])


@pytest.mark.slow
def test_spectra_prefer_their_own_mechanism(spectrum: Spectrum) -> None:
    """An HTMP spectrum prefers htmp to mp; its reciprocal prefers inverse_htmp."""
    lz = {m: log_evidence(spectrum, m).log_evidence for m in ("mp", "htmp")}
    assert lz["htmp"] > lz["mp"] + 10
    inv = Spectrum.from_eigenvalues(
        1.0 / spectrum.eigenvalues, gamma=GAMMA, name="inverse"
    )
    li = {m: log_evidence(inv, m).log_evidence for m in ("htmp", "inverse_htmp")}
    assert li["inverse_htmp"] > li["htmp"] + 10


@pytest.mark.slow
def test_cli_compare_writes_tables_and_fits(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    x = sample_htmp(4, N, 1.9, gamma=GAMMA)
    src = tmp_path / "spec.npy"
    np.save(src, x)
    out = tmp_path / "cmp.nc"
    rc = main(
        [
            "compare",
            str(src),
            "--gamma",
            str(GAMMA),
            "--out",
            str(out),
            "--chains",
            "2",
            "--draws",
            "200",
            "--warmup",
            "200",
            "--ppc-draws",
            "0",
            "--no-progress",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "most probable model: htmp" in text
    import pandas as pd
    import xarray as xr

    table = pd.read_csv(tmp_path / "cmp_comparison.csv", index_col=0)
    assert set(table.index) == {
        "mp",
        "htmp",
        "hard_edge",
        "inverse_htmp",
        "power_law",
    }
    assert table["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    phases = pd.read_csv(tmp_path / "cmp_phases.csv", index_col=0)
    assert phases["probability"].sum() == pytest.approx(1.0, abs=1e-12)
    tree = xr.open_datatree(out, engine="h5netcdf")
    # every model of weight >= 0.01 is fitted and checked, and no other
    fitted = {m for m in table.index if table.loc[m, "weight"] >= 0.01}
    assert {c[4:] for c in tree.children if c.startswith("fit_")} == fitted
    assert table.loc[list(fitted), "ppc_p"].isna().all()  # --ppc-draws 0
    assert "comparison" in tree.children
    ident = pd.read_csv(tmp_path / "cmp_identification.csv")
    rows = set(zip(ident["model"], ident["parameter"], strict=True))
    assert rows >= {("htmp", "log_kappa"), ("power_law", "log_tail")}
    assert "log_relative_scale" not in set(ident["parameter"])
    assert "contraction" in text and "verdict" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "htmp,nope"], "unknown model"),
        (["--fits", "nope"], "unknown model"),
        (["--models", ","], "empty model list"),
    ],
)
def test_cli_compare_rejects_bad_models(tmp_path, capsys, args, message) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "spec.npy"
    np.save(src, sample_htmp(4, 50, 2.0, gamma=GAMMA))
    out = tmp_path / "cmp.nc"
    rc = main(["compare", str(src), "--gamma", "0.5", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_grid_draws_match_the_grid_cdf(spectrum: Spectrum) -> None:
    """Grid draws have the smoothed grid CDF: KS test, false failure 1e-3."""
    from scipy.stats import kstest

    grid = posterior_grid(spectrum, "htmp")
    draws = grid.draw(np.random.default_rng(3), 4000)[:, 0]
    cdf = np.vectorize(lambda v: grid.cdf("log_kappa", v))
    assert kstest(draws, cdf).pvalue > 1e-3


@pytest.mark.slow
def test_grid_fit_agrees_with_nuts(spectrum: Spectrum) -> None:
    """The grid posterior of htmp and a NUTS fit give the same κ quantiles.

    Tolerance: NUTS with 4 x 500 draws has a Monte Carlo error of the 5% / 50% /
    95% quantiles of about 0.05 posterior sd (ESS ~ 1000); the grid's smoothing
    kernel inflates the sd by < 4%. 0.25 sd is over 4 Monte Carlo errors.
    """
    from htmp_infer import fit

    grid_dt = fit(spectrum, "htmp", method="grid", draws=500, ppc_draws=0)
    nuts_dt = fit(
        spectrum,
        "htmp",
        method="nuts",
        draws=500,
        warmup=500,
        progress=False,
        ppc_draws=0,
    )
    g = grid_dt["posterior"].dataset["log_kappa"].values.ravel()
    m = nuts_dt["posterior"].dataset["log_kappa"].values.ravel()
    sd = np.std(m)
    for q in (0.05, 0.5, 0.95):
        assert abs(np.quantile(g, q) - np.quantile(m, q)) < 0.25 * sd
    assert grid_dt.attrs["method"] == "grid"
    assert np.isnan(grid_dt.attrs["diag_r_hat_max"])
    assert grid_dt.attrs["diag_ess_bulk_min"] == 2000
    assert set(grid_dt["posterior"].dataset["n_spikes"].values.ravel()) <= set(
        range(spectrum.n)
    )
    ll = grid_dt["log_likelihood"].dataset["eigenvalues"]
    assert ll.dims == ("chain", "draw") and np.all(np.isfinite(ll.values))


@pytest.mark.slow
def test_a_model_whose_evidence_fails_gets_weight_zero_and_a_warning(monkeypatch):
    """One model that cannot be integrated must not stop (or NaN) a comparison."""
    import htmp_infer.inference.comparison as cmp
    from htmp_infer.errors import EvidenceWarning, HTMPError

    real = cmp.evidence_and_grid

    def failing(spectrum, model, **kwargs):
        if model == "inverse_htmp":
            raise HTMPError("evidence of 'inverse_htmp': boom")
        return real(spectrum, model, **kwargs)

    monkeypatch.setattr(cmp, "evidence_and_grid", failing)
    spec = Spectrum.from_eigenvalues(
        sample_htmp(np.random.default_rng(3), 60, 2.0, gamma=0.5), gamma=0.5
    )
    with pytest.warns(EvidenceWarning, match="boom"):
        res = cmp.compare(
            spec, ["mp", "htmp", "inverse_htmp"], progress=False, ppc_draws=0
        )
    w = res.table["weight"]
    assert w["inverse_htmp"] == 0.0
    assert res.table.loc["inverse_htmp", "method"].startswith("failed: ")
    assert np.all(np.isfinite(w)) and w.sum() == pytest.approx(1.0)


def test_one_compiled_program_serves_every_aspect_ratio() -> None:
    """M is traced: spectra with the same N and spike cap share one compiled
    potential, and each is scored with its own M (as the eager density is)."""
    a = Spectrum.from_eigenvalues(sample_htmp(1, N, 2.0, gamma=0.5), gamma=0.5)
    b = Spectrum.from_eigenvalues(sample_htmp(2, N, 2.0, gamma=0.25), gamma=0.25)
    (fns_a, _, data_a), (fns_b, _, data_b) = _made("htmp", a), _made("htmp", b)
    assert fns_a is fns_b  # the same jitted functions
    value_grad = fns_a[1]
    for spectrum, data in ((a, data_a), (b, data_b)):
        program = functools.partial(
            htmp_model.model, **htmp_model.static_kwargs(spectrum)
        )
        eager = -log_density(program, (), data, {"log_kappa": 0.3})[0]
        jitted = value_grad(jnp.array([0.3]), data)[0]
        np.testing.assert_allclose(float(jitted), float(eager), rtol=1e-12)
    # and M matters: b scored with a's M differs by many nats
    wrong = dict(data_b, n_cols=data_a["n_cols"])
    x = jnp.array([0.3])
    assert abs(float(value_grad(x, wrong)[0] - value_grad(x, data_b)[0])) > 10.0


def test_the_old_model_name_says_the_new_one() -> None:
    """``temperature`` was renamed ``power_law`` (named after its shape): asking
    for it is a one-line ArgumentError that names the new key, before any work."""
    from htmp_infer.errors import ArgumentError

    spectrum = hi.simulate(4.0, gamma=0.5, n=30, seed=0)
    with pytest.raises(ArgumentError, match="now called 'power_law'"):
        hi.compare(spectrum, ["htmp", "temperature"])
    with pytest.raises(ArgumentError, match="now called 'power_law'"):
        hi.fit(spectrum, "temperature")
