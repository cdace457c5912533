import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from htmp_infer.cli.app import main

FAST = ["--chains", "2", "--draws", "200", "--warmup", "200", "--no-progress"]


@pytest.mark.slow
def test_simulate_fit_summary_round_trip(tmp_path, capsys):
    eig = tmp_path / "eig.npz"
    assert (
        main(
            [
                "simulate",
                "--kappa",
                "2",
                "--gamma",
                "0.5",
                "--n",
                "150",
                "--seed",
                "3",
                "--out",
                str(eig),
            ]
        )
        == 0
    )
    with np.load(eig) as z:
        assert z["eigenvalues"].shape == (150,)
        assert int(z["n"]) == 150 and float(z["n_cols"]) == 300.0
    out, png = tmp_path / "fit.nc", tmp_path / "fit.png"
    code = main(
        [
            "fit",
            str(eig),
            "--out",
            str(out),
            "--plot",
            str(png),
            "--ppc-draws",
            "8",
            "--method",
            "nuts",
            *FAST,
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "kappa" in printed and "scale" in printed
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    dt = xr.open_datatree(out, engine="h5netcdf")
    assert {
        "posterior",
        "sample_stats",
        "log_likelihood",
        "observed_data",
        "constant_data",
        "posterior_predictive",
    } <= set(dt.children)
    kappa = dt["posterior"]["kappa"].values
    assert kappa.shape == (2, 200)
    # N = 150 carries real information about kappa: the posterior is within a
    # factor 3 of the truth (posterior sd of log kappa is about 0.15 here)
    assert 2 / 3 < np.median(kappa) < 6
    assert main(["summary", str(out)]) == 0
    assert "kappa" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "eig.npz",
        "fit.nc",
        "fit.png",
    ]


@pytest.mark.slow
def test_fit_a_matrix_file(tmp_path, capsys):
    w = np.random.default_rng(0).standard_normal((60, 90))
    path = tmp_path / "w.npy"
    np.save(path, w)
    out = tmp_path / "w.nc"
    assert (
        main(
            ["fit", str(path), "--matrix", "--out", str(out), "--ppc-draws", "0", *FAST]
        )
        == 0
    )
    dt = xr.open_datatree(out, engine="h5netcdf")
    assert float(dt["constant_data"]["gamma"]) == pytest.approx(60 / 90)


def _bad_inputs(tmp_path):
    cases = {}

    def save(name, arr):
        p = tmp_path / name
        np.save(p, np.asarray(arr))
        return p

    cases["nan"] = (save("nan.npy", [1.0, np.nan, 2.0]), "NaN")
    cases["inf"] = (save("inf.npy", [1.0, np.inf, 2.0]), "inf")
    cases["negative"] = (save("neg.npy", [1.0, -1.0, 2.0]), "negative")
    cases["empty"] = (save("empty.npy", np.array([])), "empty")
    cases["single"] = (save("one.npy", [1.0]), "at least 2")
    cases["ties"] = (save("ties.npy", [1.0, 2.0, 2.0, 3.0]), "tied")
    cases["wrong shape"] = (save("mat.npy", np.ones((3, 4))), "1-D")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x00\x01 definitely not numpy")
    cases["unreadable"] = (garbage, "unreadable")
    cases["missing"] = (tmp_path / "nope.npy", "no such file")
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "nan",
        "inf",
        "negative",
        "empty",
        "single",
        "ties",
        "wrong shape",
        "unreadable",
        "missing",
    ],
)
def test_bad_input_one_line_exit_2_no_output(tmp_path, capsys, case):
    path, message = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out" / "fit.nc"
    png = tmp_path / "out" / "fit.png"
    code = main(
        [
            "fit",
            str(path),
            "--gamma",
            "0.5",
            "--out",
            str(out),
            "--plot",
            str(png),
            *FAST,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err, err
    assert "Traceback" not in err
    assert not out.exists() and not png.exists()
    leftovers = (
        list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []
    )
    assert leftovers == []


def test_matrix_wrong_shape_and_missing_gamma(tmp_path, capsys):
    vec = tmp_path / "vec.npy"
    np.save(vec, np.arange(1.0, 5.0))
    assert main(["fit", str(vec), "--matrix", "--out", str(tmp_path / "a.nc")]) == 2
    assert "2-D" in capsys.readouterr().err
    assert main(["fit", str(vec), "--out", str(tmp_path / "b.nc")]) == 2
    assert "shape is unknown" in capsys.readouterr().err
    assert main(["summary", str(vec)]) == 2
    assert "not a fit file" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.nc"))


@pytest.mark.slow
def test_console_script_reports_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([1.0, np.nan]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "htmp_infer",
            "fit",
            str(bad),
            "--gamma",
            "0.5",
            "--out",
            str(tmp_path / "x.nc"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("htmp-infer: error:")
    assert "Traceback" not in proc.stderr
    usage = subprocess.run(
        [
            sys.executable,
            "-m",
            "htmp_infer",
            "simulate",
            "--kappa",
            "-1",
            "--gamma",
            "0.5",
            "--n",
            "10",
            "--out",
            str(tmp_path / "s.npz"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert not (tmp_path / "s.npz").exists()


@pytest.mark.slow
def test_fit_with_grid_draws_and_summary(tmp_path, capsys):
    """``fit --method grid``: independent draws, no sample_stats, summary works."""
    eig = tmp_path / "eig.npz"
    args = ["--kappa", "2", "--gamma", "0.5", "--n", "150", "--seed", "3"]
    assert main(["simulate", *args, "--out", str(eig)]) == 0
    out = tmp_path / "grid.nc"
    code = main(
        [
            "fit",
            str(eig),
            "--out",
            str(out),
            "--method",
            "grid",
            "--ppc-draws",
            "8",
            "--chains",
            "2",
            "--draws",
            "200",
            "--no-progress",
        ]
    )
    assert code == 0
    dt = xr.open_datatree(out, engine="h5netcdf")
    assert "sample_stats" not in dt.children
    assert dt.attrs["method"] == "grid"
    kappa = dt["posterior"]["kappa"].values
    assert kappa.shape == (2, 200)
    # same spectrum and tolerance as the NUTS round trip above
    assert 2 / 3 < np.median(kappa) < 6
    assert main(["summary", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kappa" in printed and "method=grid" in printed
