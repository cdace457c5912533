"""What one spectrum identifies: verdicts, free sides and combinations."""

from __future__ import annotations

import numpy as np
import pytest

from htmp_infer import Spectrum, compare
from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.inference.identification import _combinations, _free, verdict


def test_verdicts() -> None:
    assert verdict(0.9, False, False) == "identified"
    assert verdict(0.5, False, False) == "weakly identified"
    assert verdict(0.9, True, False) == "upper bound only"  # the low side is free
    assert verdict(0.9, False, True) == "lower bound only"
    assert verdict(0.1, True, True) == "prior-dominated"


def test_a_side_is_free_only_if_the_likelihood_is_near_its_maximum() -> None:
    assert _free(np.array([-5.0, -1.0, -9.0]))
    assert not _free(np.array([-5.0, -2.5, -9.0]))
    assert not _free(np.empty(0))  # the grid never got that far: bounded


def test_a_product_is_reported_when_the_factors_are_not() -> None:
    """x and y each echo their N(0, 1) priors, x + y is pinned to 0.1 sd."""
    cov = np.array([[0.505, -0.495], [-0.495, 0.505]])  # var(x + y) = 0.02
    rows = _combinations("m", ["x", "y"], np.array([0.3, -0.1]), cov, np.ones(2))
    assert len(rows) == 1
    row = rows[0]
    assert row["parameter"] == "x + y"
    assert row["mean"] == pytest.approx(0.2)
    assert row["sd"] == pytest.approx(np.sqrt(0.02))
    assert row["contraction"] == pytest.approx(1 - 0.02 / 2)
    # independent, well-identified coordinates give no combination row
    tight = 0.01 * np.eye(2)
    assert _combinations("m", ["x", "y"], np.zeros(2), tight, np.ones(2)) == []


@pytest.mark.slow
def test_htmp_and_temperature_on_an_htmp_spectrum() -> None:
    """κ is identified; the temperature tail index has a lower bound only.

    An HTMP spectrum is `power_law`'s limit b' → ∞: its likelihood is flat
    there, so only the prior ends the grid on that side.
    """
    lam = np.sort(sample_htmp(1, 200, 6.0, gamma=0.5))
    spec = Spectrum.from_eigenvalues(lam, gamma=0.5)
    result = compare(spec, ["htmp", "power_law"], draws=100, ppc_draws=0)
    ident = result.identification.set_index(["model", "parameter"])
    assert ident.loc[("htmp", "log_kappa"), "verdict"] == "identified"
    assert ident.loc[("htmp", "log_kappa"), "contraction"] > 0.99
    assert ident.loc[("power_law", "log_kappa"), "verdict"] == "identified"
    assert ident.loc[("power_law", "log_tail"), "verdict"] == "lower bound only"
    # the improper scale prior is never listed
    assert "log_relative_scale" not in ident.index.get_level_values("parameter")


def test_quantiles_of_weighted_draws_without_cell_width() -> None:
    """Importance-sampling grids carry bandwidth 1e-300: an empirical quantile."""
    from htmp_infer.inference.evidence import Evidence, GridPosterior
    from htmp_infer.inference.identification import _quantile

    pts = np.array([[0.0], [1.0], [2.0], [3.0]])
    w = np.array([0.3, 0.2, 0.4, 0.1])
    ev = Evidence("m", 0.0, 0.0, 1, "importance sampling", 4)
    grid = GridPosterior(["x"], pts, w, np.full(1, 1e-300), ev)
    assert _quantile(grid, "x", 0.05) == 0.0
    assert _quantile(grid, "x", 0.6) == 2.0
    assert _quantile(grid, "x", 0.95) == 3.0
    smooth = GridPosterior(["x"], pts, w, np.full(1, 0.3), ev)
    assert smooth.cdf("x", _quantile(smooth, "x", 0.6)) == pytest.approx(0.6, abs=1e-9)


def test_identification_reports_a_product_the_factors_cannot_give() -> None:
    """A `power_law` posterior pinned on log κ + log b' = 3 (sd 0.05), flat
    along the line: each coordinate is only bounded by its prior, the sum is
    identified and reported as a row."""
    from htmp_infer.inference.evidence import Evidence, GridPosterior
    from htmp_infer.inference.identification import identification

    spec = Spectrum.from_eigenvalues(sample_htmp(0, 60, 2.0, gamma=0.5), gamma=0.5)
    a = np.arange(-15.0, 18.0, 0.05)
    d = np.arange(-0.3, 0.3001, 0.02)
    aa, dd = (g.ravel() for g in np.meshgrid(a, d))
    bb = 3.0 - aa + dd
    pts = np.column_stack([aa, bb, np.zeros_like(aa)])
    logw = (
        -0.5 * ((aa - np.log(4.0)) / 3.0) ** 2
        - 0.5 * ((bb - np.log(3.0)) / 1.5) ** 2
        - 0.5 * (dd / 0.05) ** 2
    )
    w = np.exp(logw - logw.max())
    ev = Evidence("power_law", 0.0, 0.0, 3, "trapezoid grid", len(w))
    names = ["log_kappa", "log_tail", "log_relative_scale"]
    grid = GridPosterior(names, pts, w / w.sum(), np.array([0.02, 0.02, 0.01]), ev)
    ident = identification(spec, {"power_law": grid}).set_index("parameter")
    assert ident.loc["log_kappa", "verdict"] == "prior-dominated"
    assert ident.loc["log_tail", "verdict"] == "prior-dominated"
    combo = ident.loc["log_kappa + log_tail"]
    assert combo["verdict"] == "identified combination"
    assert combo["mean"] == pytest.approx(3.0, abs=0.01)
    # 0.05 plus each node's cell variance (bandwidth 0.02 on both coordinates)
    assert combo["sd"] == pytest.approx(np.sqrt(0.05**2 + 2 * 0.02**2), rel=0.02)


def test_no_combination_rows_between_identified_coordinates() -> None:
    """A correlated (ρ = 0.9) but tight posterior: both coordinates identified,
    and its narrow eigen-direction is not reported as a combination."""
    from htmp_infer.inference.evidence import Evidence, GridPosterior
    from htmp_infer.inference.identification import identification

    spec = Spectrum.from_eigenvalues(sample_htmp(0, 60, 2.0, gamma=0.5), gamma=0.5)
    g = np.arange(-1.0, 1.0001, 0.02)
    aa, bb = (x.ravel() for x in np.meshgrid(g, g))
    rho, sd = 0.9, 0.1
    quad = (aa**2 - 2 * rho * aa * bb + bb**2) / (sd**2 * (1 - rho**2))
    w = np.exp(-0.5 * quad)
    pts = np.column_stack([aa + 1.5, bb + 1.0, np.zeros_like(aa)])
    ev = Evidence("power_law", 0.0, 0.0, 3, "trapezoid grid", len(w))
    names = ["log_kappa", "log_tail", "log_relative_scale"]
    grid = GridPosterior(names, pts, w / w.sum(), np.array([0.006, 0.006, 0.01]), ev)
    ident = identification(spec, {"power_law": grid})
    assert list(ident["verdict"]) == ["identified", "identified"]
