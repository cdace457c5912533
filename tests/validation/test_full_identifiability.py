"""The score behind ``benchmarks/full_identifiability.py`` (``docs/model.md`` §2).

Its Fisher information is the covariance of the score of the unnormalised density,
so the score formulas carry the whole table. At h = 0 the gas is the exact β-prime
ensemble: the mean score must equal the gradient of the exact Selberg–Jacobi
log-normaliser in (log κ, log b', log c).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from htmp_infer.ensembles.sampling_jacobi import sample_betaprime

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "full_identifiability.py"


def _benchmark():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("full_identifiability", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("kappa", "tail", "c"), [(1.0, 2.0, 1.5), (5.0, 8.0, 0.4)])
def test_mean_score_is_the_gradient_of_the_exact_log_normaliser(
    kappa: float, tail: float, c: float
) -> None:
    """z-scores of the three mean-score components over 400 exact spectra.

    |z| < 4 per component: false-failure rate 6e-5 each, 4e-4 for the test. A
    wrong factor in any component (e.g. p/c instead of p in the log c score, which
    c ≠ 1 exposes) moves its z by far more than 4 here.
    """
    bench = _benchmark()
    n, m, r = 60, 120, 400
    beta = kappa / n
    a = beta * (m - n + 1.0) / 2.0
    lam = sample_betaprime(np.random.default_rng(8), n, beta, a, tail, c, size=r)
    s = bench.scores(lam, m, kappa, tail, 0.0, c)[:, [0, 1, 3]]
    want = bench.exact_mean_score(n, m, kappa, tail, c)
    z = (s.mean(0) - want) / (s.std(0, ddof=1) / np.sqrt(r))
    assert np.all(np.abs(z) < 4.0), z


def test_bounds_of_a_known_information_matrix() -> None:
    """Cramér–Rao sds and the factors' correlation from a hand-made information."""
    bench = _benchmark()
    cov = np.array(
        [
            [0.25, 0.0, 0.0, 0.0],
            [0.0, 1.0, -0.5, 0.0],
            [0.0, -0.5, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    b = bench.bounds(np.linalg.inv(cov))
    assert b["sd_log_kappa"] == pytest.approx(0.5, rel=1e-12)
    assert b["sd_log_tail"] == pytest.approx(1.0, rel=1e-12)
    # log(h/c) = log h − log c: variance 1 + 1; covariance with log b' −0.5
    assert b["sd_log_rel_edge"] == pytest.approx(np.sqrt(2.0), rel=1e-12)
    assert b["corr_tail_edge"] == pytest.approx(-0.5 / np.sqrt(2.0), rel=1e-12)
    # the tail with the edge known: conditional variance 1 − 0.25
    assert b["sd_log_tail_edge_known"] == pytest.approx(np.sqrt(0.75), rel=1e-12)
