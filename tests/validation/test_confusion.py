"""The confusion-matrix machinery: per-row seed streams, records, reliability."""

from __future__ import annotations

import numpy as np
import pytest

from htmp_infer.validation.calibration import confusion_matrix, weight_reliability

MODELS = ("mp", "htmp")


@pytest.fixture(scope="module")
def both_rows():
    return confusion_matrix(MODELS, n=60, gamma=0.5, replicates=3, seed=11)


@pytest.mark.slow
def test_records_hold_the_truth_and_weights_that_sum_to_one(both_rows):
    res = both_rows
    assert res.models == MODELS
    assert len(res.records) == 6
    for r in res.records:
        w = np.array([r["w_mp"], r["w_htmp"]])
        assert np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-12
        assert "true_n_spikes" in r
    # the mean-weight matrix is the row mean of the records
    for i, t in enumerate(MODELS):
        rows = [r for r in res.records if r["truth"] == t]
        mean = np.mean([[r["w_mp"], r["w_htmp"]] for r in rows], axis=0)
        np.testing.assert_allclose(res.weights[i], mean, rtol=1e-12)
        hits = np.mean([r[f"w_{t}"] > 0.5 for r in rows])
        assert res.hits[i] == pytest.approx(hits, abs=1e-12)


@pytest.mark.slow
def test_one_row_alone_repeats_the_same_replicates(both_rows):
    alone = confusion_matrix(
        MODELS, n=60, gamma=0.5, replicates=3, seed=11, truths=("htmp",)
    )
    row = [r for r in both_rows.records if r["truth"] == "htmp"]
    assert alone.records == row


def test_unknown_truth_is_refused():
    with pytest.raises(ValueError, match="not among the candidates"):
        confusion_matrix(MODELS, n=60, gamma=0.5, replicates=1, truths=("data",))


def test_reliability_of_calibrated_weights():
    # weights drawn so that P(truth = m | w_m) = w_m exactly (two candidates)
    rng = np.random.default_rng(3)
    records = []
    for _ in range(4000):
        w = rng.uniform()
        truth = "a" if rng.uniform() < w else "b"
        records.append({"truth": truth, "w_a": w, "w_b": 1 - w})
    bins = weight_reliability(records, ("a", "b"))
    assert sum(c for _, _, c, _ in bins) == 8000
    for mean, frac, _, sd in bins:
        # 4 binomial sd: a false failure in about 6e-5 of the bins
        assert abs(frac - mean) < 4 * sd
