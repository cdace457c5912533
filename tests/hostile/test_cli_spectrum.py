"""Hostile inputs and arguments of ``htmp-infer simulate | fit | compare | summary``.

Every case is refused before any fitting: exit status 2, one
``htmp-infer: error:`` line naming the cause, no traceback, and nothing under the
working folder created, changed or removed (folders included).
"""

from __future__ import annotations

import io
import os
import pickle
import shlex
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import assert_refused, run_cli, run_subprocess

from htmp_infer.ensembles.sampling import sample_htmp

N = 40
LAM = sample_htmp(0, N, 2.0, gamma=0.5)
TINY = np.finfo(np.float64).tiny
# grid draws: a case that is not refused fails in seconds, not a NUTS fit
FAST = ["--method", "grid", "--chains", "1", "--draws", "20", "--ppc-draws", "0"]
FAST += ["--no-progress"]
Maker = Callable[[Path], None]


def _npy(arr: object, **kw: object) -> Maker:
    return lambda p: np.save(p, np.asarray(arr), **kw)  # type: ignore[arg-type]


def _npz(**arrays: object) -> Maker:
    return lambda p: np.savez(p, **arrays)  # type: ignore[arg-type]


def _bytes(data: bytes) -> Maker:
    return lambda p: p.write_bytes(data)


def _text(text: str) -> Maker:
    return lambda p: p.write_text(text)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _lying_header(count: int) -> bytes:
    """A .npy whose header declares ``count`` float64 values, holding 3."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f8", "fortran_order": False, "shape": (count,)}
    )
    return head.getvalue() + np.ones(3).tobytes()


def _object_npz(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("eigenvalues.npy", _npy_bytes(np.array([1.0, "x"], dtype=object)))


def _symlink(target: str) -> Maker:
    return lambda p: p.symlink_to(target)


def _folder(p: Path) -> None:
    p.mkdir()


# name -> how to write it; the cases name their input file
MAKERS: dict[str, Maker] = {
    "nan.npy": _npy([1.0, np.nan, 2.0]),
    "inf.npy": _npy([1.0, np.inf, 2.0]),
    "neg.npy": _npy([1.0, -1.0, 2.0]),
    "empty_array.npy": _npy(np.array([])),
    "single.npy": _npy([1.0]),
    "zeros_but_one.npy": _npy([0.0, 0.0, 1.0]),
    "ties.npy": _npy([1.0, 2.0, 2.0, 3.0]),
    "int_ties.npy": _npy(np.array([2**60, 2**60 + 1, 3], dtype=np.int64)),
    "matrix.npy": _npy(np.ones((3, 4))),
    "cube.npy": _npy(np.ones((2, 2, 2))),
    "scalar.npy": _npy(np.float64(3.0)),
    "subnormal.npy": _npy(LAM * 1e-310),
    "some_subnormal.npy": _npy(np.r_[LAM, 1e-315]),
    "sum_overflow.npy": _npy(LAM * 1e307),
    "inverse_overflow.npy": _npy(np.linspace(1e-307, 2e-307, N)),
    "too_wide.npy": _npy([3e-308, 1e-307, 1e308, 1.5e308]),
    "longdouble_inf.npy": _npy(np.array([1, 2, np.longdouble("1e400")])),
    "complex.npy": _npy(LAM + 1j),
    "bool.npy": _npy(np.array([True, False])),
    "strings.npy": _npy(np.array(["1.0", "2.0"])),
    "object.npy": _npy(np.array([1.0, None], dtype=object), allow_pickle=True),
    "pickle.npy": _bytes(pickle.dumps([1.0, 2.0])),
    "truncated.npy": _bytes(_npy_bytes(LAM)[:-100]),
    "lying_header.npy": _bytes(_lying_header(10**12)),
    "too_many.npy": _npy(np.arange(1, 1_000_002, dtype=np.float16)),
    "garbage.npy": _bytes(b"\x00\x01 definitely not numpy"),
    "zero_bytes.npy": _bytes(b""),
    "zip_named.npy": _bytes(_npz_bytes(eigenvalues=LAM)),
    "npy_named.npz": _bytes(_npy_bytes(LAM)),
    "garbage.npz": _bytes(b"PK\x03\x04 not really a zip archive"),
    "two_arrays.npz": _npz(a=LAM, b=LAM * 2, n_cols=80.0),
    "no_arrays.npz": _npz(n_cols=80.0),
    "gamma_vector.npz": _npz(eigenvalues=LAM, gamma=np.array([0.5, 0.5])),
    "n_cols_string.npz": _npz(eigenvalues=LAM, n_cols=np.array("eighty")),
    "n_cols_nan.npz": _npz(eigenvalues=LAM, n_cols=np.nan),
    "n_cols_small.npz": _npz(eigenvalues=LAM, n_cols=10.0),
    "n_cols_huge.npz": _npz(eigenvalues=LAM, n_cols=1e300),
    "gamma_big.npz": _npz(eigenvalues=LAM, gamma=1.5),
    "gamma_bool.npz": _npz(eigenvalues=LAM, gamma=np.array(True)),
    "object_member.npz": _object_npz,
    "letters.txt": _text("1.0\nabc\n"),
    "binary.txt": _bytes(b"\xff\xfe\x00\x01garbage"),
    "empty.txt": _bytes(b""),
    "comments.txt": _text("# no numbers here\n\n"),
    "ragged.csv": _text("1,2,3\n4,5\n"),
    "text_inf.txt": _text("1.0\ninf\n2.0\n"),
    "eig.json": _text("[1, 2]"),
    "eig": _bytes(_npy_bytes(LAM)),
    "folder.npy": _folder,
    "dangling.npy": _symlink("nowhere.npy"),
}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder, with a good spectrum ``eig.npz`` (N = 40, M = 80)."""
    np.savez(tmp_path / "eig.npz", eigenvalues=LAM, n_cols=80.0)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _paths(root: Path) -> set[str]:
    """Every file and folder under ``root`` (``unchanged`` sees files only)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _refused(root: Path, unchanged, argv: list[str], match: str) -> str:
    for arg in argv:
        if arg in MAKERS and not os.path.lexists(root / arg):
            MAKERS[arg](root / arg)
    before = _paths(root)
    unchanged.start()
    line = assert_refused(run_cli(argv), match=match)
    assert _paths(root) == before
    return line


# (id, input file, extra arguments, a piece of the error line)
INPUT_CASES: list[tuple[str, str, str, str]] = [
    ("NaN", "nan.npy", "--gamma 0.5", "NaN"),
    ("inf", "inf.npy", "--gamma 0.5", "inf"),
    ("negative", "neg.npy", "--gamma 0.5", "negative"),
    ("empty array", "empty_array.npy", "--gamma 0.5", "empty"),
    ("single value", "single.npy", "--gamma 0.5", "at least 2"),
    ("one positive among zeros", "zeros_but_one.npy", "--gamma 0.5", "at least 2"),
    ("ties", "ties.npy", "--gamma 0.5", "tied"),
    ("int64 tied in float64", "int_ties.npy", "--gamma 0.5", "tied"),
    ("matrix without --matrix", "matrix.npy", "--gamma 0.5", "1-D"),
    ("3-D array", "cube.npy", "--gamma 0.5", "1-D"),
    ("0-D array", "scalar.npy", "--gamma 0.5", "1-D"),
    ("all subnormal", "subnormal.npy", "--gamma 0.5", "subnormal"),
    ("one subnormal", "some_subnormal.npy", "--n-cols 90", "subnormal"),
    ("sum overflows", "sum_overflow.npy", "--gamma 0.5", "sum of the eigenvalues"),
    ("sum of inverses overflows", "inverse_overflow.npy", "--gamma 0.5", "1/eig"),
    ("spread wider than float64", "too_wide.npy", "--gamma 0.5", "spread"),
    ("float128 beyond float64", "longdouble_inf.npy", "--gamma 0.5", "inf"),
    ("complex dtype", "complex.npy", "--gamma 0.5", "real numbers"),
    ("bool dtype", "bool.npy", "--gamma 0.5", "real numbers"),
    ("string dtype", "strings.npy", "--gamma 0.5", "real numbers"),
    ("object dtype (pickle)", "object.npy", "--gamma 0.5", "objects"),
    ("a pickle named .npy", "pickle.npy", "--gamma 0.5", "unreadable"),
    ("truncated .npy", "truncated.npy", "--gamma 0.5", "truncated"),
    ("header declares 1e12 values", "lying_header.npy", "--gamma 0.5", "truncated"),
    ("more than 1e6 values", "too_many.npy", "--gamma 0.5", "at most 1000000"),
    ("garbage .npy", "garbage.npy", "--gamma 0.5", "unreadable"),
    ("zero-byte file", "zero_bytes.npy", "--gamma 0.5", "empty"),
    ("npz named .npy", "zip_named.npy", "--gamma 0.5", ".npz archive"),
    ("npy named .npz", "npy_named.npz", "", ".npy array"),
    ("garbage .npz", "garbage.npz", "", "unreadable"),
    ("two candidate arrays", "two_arrays.npz", "", "which array"),
    ("no array in npz", "no_arrays.npz", "", "which array"),
    ("gamma stored as a vector", "gamma_vector.npz", "", "field 'gamma'"),
    ("n_cols stored as a string", "n_cols_string.npz", "", "field 'n_cols'"),
    ("n_cols stored as NaN", "n_cols_nan.npz", "", "field 'n_cols'"),
    ("n_cols stored below N", "n_cols_small.npz", "", "field 'n_cols'"),
    ("n_cols stored astronomical", "n_cols_huge.npz", "", "1e+08"),
    ("gamma stored above 1", "gamma_big.npz", "", "(0, 1]"),
    ("gamma stored as a bool", "gamma_bool.npz", "", "field 'gamma'"),
    ("pickled npz member", "object_member.npz", "", "objects"),
    ("text with letters", "letters.txt", "--gamma 0.5", "not a table"),
    ("binary text file", "binary.txt", "--gamma 0.5", "unreadable"),
    ("empty text file", "empty.txt", "--gamma 0.5", "empty"),
    ("comments only", "comments.txt", "--gamma 0.5", "no numbers"),
    ("ragged csv", "ragged.csv", "--gamma 0.5", "not a table"),
    ("inf in text", "text_inf.txt", "--gamma 0.5", "inf"),
    ("wrong suffix", "eig.json", "--gamma 0.5", "unsupported file type .json"),
    ("no suffix", "eig", "--gamma 0.5", "unsupported file type (none)"),
    ("missing file", "nope.npy", "--gamma 0.5", "no such file"),
    ("a folder", "folder.npy", "--gamma 0.5", "directory"),
    ("dangling link", "dangling.npy", "--gamma 0.5", "no such file"),
    ("a device", "/dev/null", "--gamma 0.5", "not a regular file"),
    ("shape unknown", "neg.npy", "", "shape is unknown"),
]


@pytest.mark.parametrize(
    ("name", "extra", "match"),
    [pytest.param(f, a, m, id=i) for i, f, a, m in INPUT_CASES],
)
def test_fit_refuses_bad_input(root, unchanged, name, extra, match):
    argv = ["fit", name, *shlex.split(extra), "--out", "o.nc", "--plot", "o.png"]
    line = _refused(root, unchanged, [*argv, *FAST], match)
    if not name.startswith("/"):
        assert name in line  # the message names the file as given


@pytest.mark.parametrize(
    ("name", "extra", "match"),
    [
        pytest.param("nan.npy", "--gamma 0.5", "NaN", id="NaN"),
        pytest.param("subnormal.npy", "--gamma 0.5", "2**", id="subnormal"),
        pytest.param("gamma_vector.npz", "", "gamma", id="gamma vector"),
        pytest.param("object.npy", "--gamma 0.5", "objects", id="pickle"),
        pytest.param("folder.npy", "--gamma 0.5", "directory", id="folder"),
    ],
)
def test_compare_refuses_bad_input(root, unchanged, name, extra, match):
    argv = ["compare", name, *shlex.split(extra), "--out", "c.nc", *FAST]
    _refused(root, unchanged, argv, match)


def test_matrix_input_that_is_a_vector(root, unchanged):
    _refused(root, unchanged, ["fit", "neg.npy", "--matrix", "--out", "o.nc"], "2-D")


def test_matrix_input_with_overflowing_singular_values(root, unchanged):
    np.save(root / "w.npy", np.full((4, 6), 1e300) + np.eye(4, 6) * 1e299)
    _refused(root, unchanged, ["fit", "w.npy", "--matrix", "--out", "o.nc"], "overflow")


# (id, arguments after "fit eig.npz --out o.nc", a piece of the error line)
FIT_ARG_CASES: list[tuple[str, str, str]] = [
    ("gamma above 1", "--gamma 1.5", "(0, 1]"),
    ("gamma 0", "--gamma 0", "--gamma"),
    ("gamma NaN", "--gamma nan", "--gamma"),
    ("gamma denormal", "--gamma 1e-320", "below 1e-08"),
    ("gamma absurd", "--gamma 1e-12", "below 1e-08"),
    ("n-cols below N", "--n-cols 10", "n_cols must be >= N"),
    ("n-cols astronomical", "--n-cols 1e300", "1e+08"),
    ("n-cols inf", "--n-cols inf", "--n-cols"),
    ("gamma and n-cols disagree", "--gamma 0.5 --n-cols 100", "disagree"),
    ("matrix with gamma", "--matrix --gamma 0.5", "--matrix"),
    ("chains 0", "--chains 0", "--chains"),
    ("chains absurd", "--chains 5000", "--chains must be <= 1024"),
    ("chains not a number", "--chains four", "--chains"),
    ("draws absurd", "--draws 100000000", "iterations"),
    ("draws float", "--draws 1e3", "--draws"),
    ("warmup negative", "--warmup -1", "--warmup"),
    ("ppc-draws absurd", "--ppc-draws 1000000", "--ppc-draws must be <="),
    ("seed negative", "--seed -1", "--seed"),
    ("seed 2**32", f"--seed {2**32}", "--seed"),
    ("seed float", "--seed 1.5", "--seed"),
    ("model unknown", "--model nope", "--model"),
    ("method unknown", "--method hmc", "--method"),
    ("out not .nc", "--out o.txt", ".nc"),
    ("plot not .png", "--plot o.jpg", ".png"),
    ("unknown flag", "--bogus", "unrecognized"),
]


@pytest.mark.parametrize(
    ("extra", "match"), [pytest.param(a, m, id=i) for i, a, m in FIT_ARG_CASES]
)
def test_fit_refuses_bad_arguments(root, unchanged, extra, match):
    argv = ["fit", "eig.npz", "--out", "o.nc", *FAST, *shlex.split(extra)]
    _refused(root, unchanged, argv, match)


COMPARE_ARG_CASES: list[tuple[str, str, str]] = [
    ("models empty", "--models ,", "empty model list"),
    ("models unknown", "--models mp,nope", "nope"),
    ("models twice", "--models htmp,htmp", "more than once"),
    ("fits unknown", "--fits nope", "--fits"),
    ("seed negative", "--seed -3", "--seed"),
    ("chains absurd", "--chains 100000", "--chains"),
    ("out not .nc", "--out c.csv", ".nc"),
]


@pytest.mark.parametrize(
    ("extra", "match"), [pytest.param(a, m, id=i) for i, a, m in COMPARE_ARG_CASES]
)
def test_compare_refuses_bad_arguments(root, unchanged, extra, match):
    argv = ["compare", "eig.npz", "--out", "c.nc", *FAST, *shlex.split(extra)]
    _refused(root, unchanged, argv, match)


@pytest.mark.parametrize(
    "table", ["c_comparison.csv", "c_phases.csv", "c_identification.csv"]
)
def test_compare_never_writes_its_tables_over_its_input(root, unchanged, table):
    """``compare c_comparison.csv --out c.nc`` would write c_comparison.csv."""
    (root / table).write_text("\n".join(map(repr, LAM)) + "\n")
    argv = ["compare", table, "--gamma", "0.5", "--out", "c.nc", *FAST]
    _refused(root, unchanged, argv, "input")


SIMULATE = "--kappa 2 --gamma 0.5 --n 40 --out s.npz"
# (id, arguments replacing or following SIMULATE's, a piece of the error line)
SIMULATE_CASES: list[tuple[str, str, str]] = [
    ("seed negative", "--seed -1", "--seed"),
    ("seed 2**32", f"--seed {2**32}", "--seed"),
    ("n a billion", "--n 1000000000", "--n"),
    ("n 1", "--n 1", "--n"),
    ("n not an integer", "--n 40.5", "--n"),
    ("kappa 0", "--kappa 0", "--kappa"),
    ("kappa NaN", "--kappa nan", "--kappa"),
    ("kappa below 1e-5", "--kappa 1e-9", "--kappa"),
    ("kappa above 1e6", "--kappa 1e300", "--kappa"),
    ("scale denormal", "--scale 1e-320", "--scale"),
    ("scale inf", "--scale inf", "--scale"),
    ("scale negative", "--scale -1", "--scale"),
    ("gamma above 1", "--gamma 1.5", "--gamma"),
    ("gamma absurd", "--gamma 1e-12", "--gamma"),
    ("draw underflows", "--kappa 1e-5 --n 300", "underflow"),
    ("out not .npz", "--out s.npy", ".npz"),
    ("no out", "--out", "--out"),
]


@pytest.mark.parametrize(
    ("extra", "match"), [pytest.param(a, m, id=i) for i, a, m in SIMULATE_CASES]
)
def test_simulate_refuses(root, unchanged, extra, match):
    base = shlex.split(SIMULATE)
    given = shlex.split(extra)
    keep = []
    for flag, value in zip(base[::2], base[1::2], strict=True):
        if flag not in given:
            keep += [flag, value]
    _refused(root, unchanged, ["simulate", *keep, *given], match)


def _tree(path: Path, groups: dict[str, xr.Dataset]) -> None:
    xr.DataTree.from_dict(groups).to_netcdf(path, engine="h5netcdf")


SUMMARY_MAKERS: dict[str, Maker] = {
    "no_chain.nc": lambda p: _tree(
        p, {"posterior": xr.Dataset({"kappa": (("x",), [1.0, 2.0])})}
    ),
    "string_kappa.nc": lambda p: _tree(
        p, {"posterior": xr.Dataset({"kappa": (("chain", "draw"), [["a", "b"]])})}
    ),
    "no_kappa.nc": lambda p: _tree(
        p, {"posterior": xr.Dataset({"beta": (("chain", "draw"), [[1.0, 2.0]])})}
    ),
    "scan.nc": lambda p: _tree(
        p,
        {
            "posterior": xr.Dataset(
                {"kappa": (("layer", "chain", "draw"), np.ones((3, 2, 5)))}
            )
        },
    ),
    "cmp.nc": lambda p: _tree(
        p,
        {
            "comparison": xr.Dataset({"weight": (("model",), [1.0])}),
            "fit_htmp": xr.Dataset({"x": (("y",), [1.0])}),
        },
    ),
    "strings.nc": lambda p: xr.Dataset({"a": (("x",), ["s", "t"])}).to_netcdf(
        p, engine="h5netcdf"
    ),
    "text.nc": _text("not netCDF\n"),
    "empty.nc": _bytes(b""),
    "folder.nc": _folder,
}


# (id, file, a piece of the error line)
SUMMARY_CASES: list[tuple[str, str, str]] = [
    ("missing", "nope.nc", "no such file"),
    ("a folder", "folder.nc", "directory"),
    ("empty file", "empty.nc", "not a fit file"),
    ("text file", "text.nc", "not a fit file"),
    ("an npz", "eig.npz", "not a fit file"),
    ("no posterior", "strings.nc", "no posterior"),
    ("posterior without chain, draw", "no_chain.nc", "('chain', 'draw')"),
    ("kappa of strings", "string_kappa.nc", "real numbers"),
    ("no kappa", "no_kappa.nc", "kappa"),
    ("a scan's scan.nc", "scan.nc", "scan.csv"),
    ("a comparison", "cmp.nc", "fit_htmp"),
    ("a device", "/dev/null", "not a regular file"),
]


@pytest.mark.parametrize(
    ("name", "match"), [pytest.param(f, m, id=i) for i, f, m in SUMMARY_CASES]
)
def test_summary_refuses(root, unchanged, name, match):
    if name in SUMMARY_MAKERS:
        SUMMARY_MAKERS[name](root / name)
    _refused(root, unchanged, ["summary", name], match)


def test_summary_refuses_a_truncated_fit(root, unchanged):
    _tree(
        root / "fit.nc",
        {"posterior": xr.Dataset({"kappa": (("chain", "draw"), np.ones((2, 50)))})},
    )
    data = (root / "fit.nc").read_bytes()
    (root / "cut.nc").write_bytes(data[: len(data) // 2])
    _refused(root, unchanged, ["summary", "cut.nc"], "not a fit file")


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="no command"),
        pytest.param(["fit"], id="fit without input"),
        pytest.param(["frobnicate"], id="unknown command"),
        pytest.param(["scan", "x", "--out", "y", "--chains", "0"], id="scan chains 0"),
        pytest.param(["scan", "--jobs"], id="scan without values"),
    ],
)
def test_argparse_errors_are_one_line(root, unchanged, argv):
    before = _paths(root)
    unchanged.start()
    run = run_cli(argv)
    assert_refused(run)
    assert "usage:" not in run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert _paths(root) == before


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        pytest.param(["fit", "nan.npy", "--gamma", "0.5", "--out", "o.nc"], "NaN"),
        pytest.param(["simulate", *SIMULATE.split(), "--seed", "-1"], "--seed"),
        pytest.param(["summary", "folder.nc"], "directory"),
        pytest.param(["fit", "eig.npz", "--out", "o.nc", "--chains"], "--chains"),
    ],
    ids=["bad input", "bad seed", "summary folder", "argparse"],
)
def test_real_process_exit_status(root, unchanged, argv, match):
    MAKERS["nan.npy"](root / "nan.npy")
    SUMMARY_MAKERS["folder.nc"](root / "folder.nc")
    before = _paths(root)
    unchanged.start()
    run = run_subprocess(argv, cwd=root)
    assert_refused(run, match=match)
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert _paths(root) == before
