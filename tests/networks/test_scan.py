"""The scan of a whole network: spectra bundle, cache, resume, outputs, CLI.

One small BERT-like safetensors directory (sharded, with an index) is scanned
once per module; the layers are real Gaussian matrices (β = 1, i.e. κ = N, the
random-like phase) plus one exact low-κ HTMP layer, so the table has known
answers: the Gaussian layers get a large κ and the HTMP layer a κ near its truth.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from safetensors.numpy import save_file

from htmp_infer.cli.app import main
from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.errors import HTMPError
from htmp_infer.networks import eigen as spectra
from htmp_infer.networks.bundle import SpectraBundle, is_bundle
from htmp_infer.networks.scan import COLUMNS, ScanOptions, scan

N, M = 40, 80
KAPPA = 2.0
PLANTED = "encoder.layer.1.output.dense.weight"
# One matrix shape and two models: each program compiles once for the module.
OPTIONS = ScanOptions(
    models=("mp", "htmp"), chains=2, draws=200, warmup=200, ppc_draws=20
)


def _htmp_matrix(seed: int, kappa: float) -> np.ndarray:
    """A matrix whose singular values squared are an exact HTMP spectrum."""
    rng = np.random.default_rng(seed)
    lam = sample_htmp(seed, N, kappa, n_cols=M, scale=1.0)
    u, _ = np.linalg.qr(rng.normal(size=(M, N)))
    v, _ = np.linalg.qr(rng.normal(size=(N, N)))
    return (u * np.sqrt(lam)) @ v.T


def _dtype(name: str) -> type:
    return np.float64 if name == PLANTED else np.float32


def _checkpoint(root: Path) -> Path:
    rng = np.random.default_rng(0)
    d = root / "tiny-bert"
    d.mkdir()
    shard1 = {
        "encoder.layer.0.attention.self.query.weight": rng.normal(size=(N, M)),
        "encoder.layer.0.attention.self.query.bias": rng.normal(size=N),
        "encoder.layer.0.attention.output.LayerNorm.weight": np.ones(N),
        "embeddings.token_type_embeddings.weight": rng.normal(size=(2, N)),
    }
    shard2 = {
        "encoder.layer.0.intermediate.dense.weight": rng.normal(size=(M, N)),
        "encoder.layer.1.output.dense.weight": _htmp_matrix(1, KAPPA).T,
        "encoder.layer.1.intermediate.dense.weight": np.full((M, N), np.nan),
    }
    index: dict[str, str] = {}
    for i, shard in enumerate((shard1, shard2), start=1):
        fname = f"model-0000{i}-of-00002.safetensors"
        # float32 like real checkpoints; the planted HTMP layer in float64 (F64),
        # whose smallest singular values float32 rounding would perturb
        # (C order: safetensors.numpy writes the raw buffer of what it is given)
        tensors = {k: np.ascontiguousarray(v, _dtype(k)) for k, v in shard.items()}
        save_file(tensors, d / fname)
        index.update(dict.fromkeys(shard, fname))
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": index}))
    return d


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("scan")
    ckpt = _checkpoint(root)
    out = root / "out"
    result = scan(ckpt, out, options=OPTIONS, cache_dir=root / "cache", progress=False)
    return ckpt, out, result, root


def test_table_has_every_matrix_and_lists_every_skip(scanned):
    _, out, result, _ = scanned
    table = result.table
    assert list(table.columns) == [*COLUMNS, "w_mp", "w_htmp"]
    assert set(table["layer"]) == {
        "encoder.layer.0.attention.self.query.weight",
        "encoder.layer.0.intermediate.dense.weight",
        "encoder.layer.1.output.dense.weight",
    }
    kinds = dict(zip(table["layer"], table["kind"], strict=True))
    assert kinds["encoder.layer.0.attention.self.query.weight"] == "attention_q"
    assert kinds["encoder.layer.1.output.dense.weight"] == "mlp_out"
    reasons = dict(zip(result.skipped["name"], result.skipped["reason"], strict=True))
    # 4 tensors skipped (bias, norm, 2-row embedding, NaN matrix), each with a reason
    assert len(reasons) == 4
    assert "NaN" in reasons["encoder.layer.1.intermediate.dense.weight"]
    assert "too small" in reasons["embeddings.token_type_embeddings.weight"]
    on_disk = pd.read_csv(out / "skipped.csv")
    assert set(on_disk["name"]) == set(reasons)
    # mechanism weights are probabilities
    w = table[["w_mp", "w_htmp"]].to_numpy()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)


def test_answers_are_the_known_ones(scanned):
    _, _, result, _ = scanned
    t = result.table.set_index("layer")
    # Gaussian layers are beta = 1, kappa = N (= 40); the planted layer is an exact
    # HTMP draw with kappa = 2. At N = 40 the posterior sd of log kappa is ~0.3, so
    # the Gaussian 90% lower bound sits far above 2 and the planted interval covers
    # its truth (a 10% event for one calibrated interval; fixed seed).
    gauss = t.loc["encoder.layer.0.intermediate.dense.weight"]
    planted = t.loc[PLANTED]
    assert gauss["kappa_q05"] > 8.0
    assert planted["kappa_q05"] < KAPPA < planted["kappa_q95"]
    assert planted["gamma"] == pytest.approx(0.5)
    # grid draws are independent: no r-hat, ESS = number of draws
    assert t["r_hat"].isna().all()
    assert (t["ess_bulk"] == 2 * 200).all()
    assert ((t["ppc_p"] >= 0) & (t["ppc_p"] <= 1)).all()


def test_outputs_are_complete_and_consistent(scanned):
    _, out, result, _ = scanned
    for name in ("scan.csv", "scan.parquet", "scan.nc", "spectra.npz", "forest.png",
                 "mechanisms.png", "esd_grid.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    pq = pd.read_parquet(out / "scan.parquet")
    pd.testing.assert_frame_equal(pq, result.table, check_dtype=False)
    tree = xr.open_datatree(out / "scan.nc", engine="h5netcdf")
    kappa = tree["reading"].dataset["kappa"]
    assert kappa.dims == ("layer", "sample")
    assert kappa.sizes == {"layer": 3, "sample": 2 * 200}
    np.testing.assert_allclose(
        kappa.median("sample").values, result.table["kappa_median"].values
    )
    for v in ("edge_exponent", "alpha_tail", "n_spikes"):
        assert tree["reading"].dataset[v].sizes == kappa.sizes
    w = tree["comparison"].dataset["weight"]
    assert set(w.dims) == {"layer", "model"}
    p = tree["phases"].dataset["probability"]
    np.testing.assert_allclose(p.sum("phase").values, 1.0, atol=1e-9)
    assert is_bundle(out / "spectra.npz")


def test_spectra_are_exact_and_cached(scanned, monkeypatch):
    ckpt, _, _, root = scanned
    bundle = SpectraBundle.load(scanned[1] / "spectra.npz")
    layer = next(x for x in bundle if x.name == PLANTED)
    ref = np.sort(np.linalg.svd(_htmp_matrix(1, KAPPA), compute_uv=False) ** 2)
    np.testing.assert_allclose(layer.eigenvalues, ref, rtol=1e-10)
    assert layer.shape == (N, M)  # as stored (out x in)
    # second pass over the same weights: every spectrum from the cache, no SVD
    calls = []
    monkeypatch.setattr(
        spectra, "matrix_eigenvalues", lambda w: calls.append(w) or np.zeros(1)
    )
    again = spectra.compute_bundle(ckpt, cache_dir=root / "cache", progress=False)
    assert calls == [] and again.meta["cache_hits"] == "3"
    for a, b in zip(again, bundle, strict=True):
        np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)


def test_resume_skips_finished_layers_and_redoes_others(scanned):
    _, out, first, _ = scanned
    layer_files = sorted((out / "layers").glob("*.json"))
    assert len(layer_files) == 3
    os.remove(layer_files[0])  # as if killed while the first layer was being saved
    again = scan(out / "spectra.npz", out, options=OPTIONS, progress=False)
    assert len(again.resumed) == 2
    pd.testing.assert_frame_equal(
        again.table.drop(columns="fit_seconds"),
        first.table.drop(columns="fit_seconds"),
    )  # same seed, same numbers, whether resumed or refitted
    other = ScanOptions(**{**OPTIONS.__dict__, "seed": 1})
    assert other.key() != OPTIONS.key()


def test_cli_scan_on_a_bundle_and_bad_inputs(scanned, tmp_path, capsys):
    _, out, _, _ = scanned
    rc = main(["scan", str(out / "spectra.npz"), "--out", str(tmp_path / "s"),
               "--models", "mp,htmp", "--chains", "2", "--draws", "200",
               "--warmup", "200", "--ppc-draws", "20", "--no-progress",
               "--no-plots", "--include", "query"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0 and "attention.self.query.weight" in text
    assert len(pd.read_csv(tmp_path / "s" / "scan.csv")) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = {
        "missing": ["scan", str(tmp_path / "nope"), "--out", str(tmp_path / "o1")],
        "no matrices": ["scan", str(empty), "--out", str(tmp_path / "o2")],
        "no match": [
            "scan",
            str(out / "spectra.npz"),
            "--out",
            str(tmp_path / "o3"),
            "--include",
            "does-not-exist",
        ],
        "bad model": [
            "scan",
            str(out / "spectra.npz"),
            "--out",
            str(tmp_path / "o4"),
            "--models",
            "mp,nope",
        ],
    }
    for label, argv in bad.items():
        assert main(argv) == 2, label
        err = capsys.readouterr().err.strip()
        assert err.startswith("htmp-infer: error:") and "\n" not in err, (label, err)
        assert not Path(argv[3]).exists(), label


def test_scan_fails_when_no_layer_can_be_fitted(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "w.npz"
    np.savez(
        path, **{"fc.weight": np.full((20, 30), np.inf), "fc.bias": rng.normal(size=20)}
    )
    with pytest.raises(HTMPError, match="no weight matrix"):
        scan(path, tmp_path / "out", options=OPTIONS, cache_dir=None, progress=False)
    assert not (tmp_path / "out" / "scan.csv").exists()


@pytest.mark.slow
def test_cli_compare_layers_on_a_scan_directory(scanned, tmp_path, capsys):
    _, out, _, _ = scanned
    target = tmp_path / "layers.nc"
    argv = ["compare-layers", str(out), "--out", str(target), "--chains", "2",
            "--draws", "200", "--warmup", "200", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "group posteriors" in text and "attention_q" in text
    tree = xr.open_datatree(target, engine="h5netcdf")
    assert tree["posterior"].dataset["kappa"].sizes["layer"] == 3
    groups = pd.read_csv(tmp_path / "layers_groups.csv", index_col=0)
    assert set(groups.index) == {"attention_q", "mlp_in", "mlp_out"}
    layers = pd.read_csv(tmp_path / "layers_layers.csv", index_col=0)
    assert len(layers) == 3 and layers["stands_out"].dtype == bool
    assert main(["compare-layers", str(out), "--out", str(tmp_path / "x.txt")]) == 2
    assert "--out must end in .nc" in capsys.readouterr().err


def test_unknown_method_is_refused():
    with pytest.raises(HTMPError, match="method must be"):
        ScanOptions(method="mcmc")  # type: ignore[arg-type]


@pytest.mark.slow
def test_parallel_jobs_give_the_same_table(scanned):
    """Two spawned worker processes reproduce the serial scan exactly (same seed)."""
    _, out, result, _ = scanned
    bundle = SpectraBundle.load(out / "spectra.npz")
    parallel = scan(bundle, None, options=OPTIONS, progress=False, plots=False, jobs=2)
    cols = ["layer", "kappa_median", "kappa_q05", "kappa_q95", "w_htmp", "ppc_p"]
    pd.testing.assert_frame_equal(parallel.table[cols], result.table[cols])
    with pytest.raises(HTMPError, match="jobs must be"):
        scan(bundle, None, options=OPTIONS, progress=False, plots=False, jobs=0)


def test_cli_lists_the_layers_whose_best_model_is_not_identified() -> None:
    import pandas as pd

    from htmp_infer.cli.network import unidentified_lines

    table = pd.DataFrame(
        {
            "layer": ["a", "b", "c"],
            "best_model": ["power_law", "htmp", "data"],
            "best_not_identified": ["log_tail: lower bound only", None, ""],
        }
    )
    assert unidentified_lines(table) == [
        "not identified in a (power_law): log_tail: lower bound only"
    ]
    # read back from scan.csv, an all-empty column is all NaN
    empty = table.assign(best_not_identified=float("nan"))
    assert unidentified_lines(empty) == []


def test_best_not_identified_lists_only_the_best_model_s_open_parameters() -> None:
    import pandas as pd

    from htmp_infer.networks.scan import _not_identified

    ident = pd.DataFrame(
        {
            "model": ["htmp", "power_law", "power_law", "power_law"],
            "parameter": ["log_kappa", "log_kappa", "log_tail", "log_kappa + log_tail"],
            "verdict": [
                "upper bound only",
                "identified",
                "lower bound only",
                "identified combination",
            ],
        }
    )
    assert _not_identified(ident, "power_law") == "log_tail: lower bound only"
    assert _not_identified(ident, "htmp") == "log_kappa: upper bound only"
    assert _not_identified(ident, "mp") == ""


def test_sweep_removes_the_scan_s_own_temporaries_only(tmp_path):
    from htmp_infer.networks.state import sweep_temporaries

    layers = tmp_path / "layers"
    layers.mkdir()
    ours = [
        layers / ".0001-a.weight.nc.k9x2abc_.tmp.nc",
        layers / ".0001-a.weight.json.abcdefgh.tmp.json",
        tmp_path / ".scan.csv.abcdefgh.tmp.csv",
        tmp_path / ".spectra.npz.z0z0z0z0.tmp.npz",
    ]
    theirs = [
        layers / "0001-a.weight.nc",  # a finished layer
        layers / ".notes.txt.abcdefgh.tmp.txt",  # not a name the scan writes
        tmp_path / ".report.csv.abcdefgh.tmp.csv",
        tmp_path / ".scan.csv.abcdefgh.tmp.nc",  # suffix does not match
        tmp_path / "layers.nc.abcdefgh.tmp.nc",  # not hidden
    ]
    for p in ours + theirs:
        p.write_text("x")
    assert sorted(sweep_temporaries(tmp_path)) == sorted(ours)
    assert all(p.exists() for p in theirs) and not any(p.exists() for p in ours)


def test_the_lock_admits_one_scan_and_leaves_no_file(tmp_path):
    from htmp_infer.errors import OutputError
    from htmp_infer.networks.state import LOCK, ScanLock

    with ScanLock(tmp_path) as lock:
        assert lock.held
        assert (tmp_path / LOCK).read_text().strip() == str(os.getpid())
        with pytest.raises(OutputError, match=f"another scan \\(pid {os.getpid()}\\)"):
            ScanLock(tmp_path).__enter__()
    assert not (tmp_path / LOCK).exists()
    with ScanLock(tmp_path):  # free again
        pass


def test_a_signal_waits_for_the_end_of_a_save():
    import signal

    from htmp_infer.networks.signals import Interrupted, deferred, handling

    done = []
    with handling(signal.SIGTERM), pytest.raises(Interrupted) as info:
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("saved")
        done.append("not reached")
    assert done == ["saved"]
    assert info.value.signum == signal.SIGTERM and info.value.exit_status == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


@pytest.mark.slow
def test_a_damaged_layer_file_is_refitted_with_one_warning(scanned, tmp_path):
    import shutil

    from htmp_infer.networks.state import DamagedLayerWarning

    _, out, first, _ = scanned
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    nc = sorted((copy / "layers").glob("*.nc"))[1]
    nc.write_bytes(nc.read_bytes()[:300])
    with pytest.warns(DamagedLayerWarning, match="cannot be read back") as caught:
        again = scan(copy / "spectra.npz", copy, options=OPTIONS, progress=False)
    assert len([w for w in caught if w.category is DamagedLayerWarning]) == 1
    assert len(again.resumed) == 2
    pd.testing.assert_frame_equal(
        again.table.drop(columns="fit_seconds"),
        first.table.drop(columns="fit_seconds"),
    )
