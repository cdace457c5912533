"""Hostile output paths of ``htmp-infer simulate | fit | compare`` and the API.

Every output (``--out``, ``--plot``, the ``<stem>_*.csv`` tables of ``compare``)
is checked before any work: a folder, a parent that is a file, a place where no
file can be created (``/proc``, ``/sys``: as root, permission bits do not bind),
a name that is not UTF-8 or too long, an input of the same command, or two
outputs that are one file. Refused in one line, exit status 2, nothing under the
working folder created, changed or removed. A few runs that must succeed check
that the guard lets ordinary outputs through and keeps the inputs byte for byte.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import assert_refused, run_cli, snapshot

from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.errors import HTMPError, OutputError

N = 30
LAM = sample_htmp(0, N, 2.0, gamma=0.5)
NON_UTF8 = os.fsdecode(b"\xff")
LONG = "a" * 250  # a file name: with atomic_path's ".NAME.XXXXXXXX.tmp.nc", > 255
LONGER = "b" * 300  # a folder name
# grid draws: a case that is not refused fails in seconds, not a NUTS fit
FAST = ["--method", "grid", "--chains", "1", "--draws", "20", "--ppc-draws", "0"]
FAST += ["--no-progress"]
Setup = Callable[[Path], None] | None


def _file(rel: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("not a folder\n")

    return make


def _folder(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).mkdir(parents=True)


def _link(rel: str, target: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).symlink_to(target)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder, with a good spectrum ``eig.npz`` (N = 30, M = 60)."""
    np.savez(tmp_path / "eig.npz", eigenvalues=LAM, n_cols=60.0)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _paths(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _argv(text: str) -> list[str]:
    return [
        a.replace("NON_UTF8", NON_UTF8).replace("LONGER", LONGER).replace("LONG", LONG)
        for a in shlex.split(text)
    ]


def _refused(root: Path, unchanged, setup: Setup, argv: list[str], match: str) -> None:
    if setup is not None:
        setup(root)
    before = _paths(root)
    unchanged.start()
    assert_refused(run_cli(argv), match=match)
    assert _paths(root) == before


# (id, arguments after "fit eig.npz", setup, a piece of the error line)
FIT_CASES: list[tuple[str, str, Setup, str]] = [
    ("out is a folder", "--out o.nc", _folder("o.nc"), "is a folder"),
    ("out parent is a file", "--out f/o.nc", _file("f"), "not a folder"),
    ("out grandparent is a file", "--out f/g/o.nc", _file("f"), "not a folder"),
    ("out under the input", "--out eig.npz/o.nc", None, "not a folder"),
    ("out in /proc", "--out /proc/o.nc", None, "cannot create"),
    ("out in /sys", "--out /sys/o.nc", None, "cannot create"),
    ("out in /proc/self", "--out /proc/self/o.nc", None, "/proc/self"),
    ("out not UTF-8", "--out NON_UTF8.nc", None, "UTF-8"),
    ("out not UTF-8 folder", "--out NON_UTF8/o.nc", None, "UTF-8"),
    ("out name too long", "--out LONG.nc", None, "too long"),
    ("out folder name too long", "--out LONGER/o.nc", None, "too long"),
    ("out a link to the input", "--out o.nc", _link("o.nc", "eig.npz"), "input"),
    ("out broken link in parents", "--out d/o.nc", _link("d", "gone"), "broken"),
    ("plot is a folder", "--out o.nc --plot p.png", _folder("p.png"), "--plot"),
    ("plot parent is a file", "--out o.nc --plot f/p.png", _file("f"), "--plot"),
    ("plot in /proc", "--out o.nc --plot /proc/p.png", None, "--plot"),
    ("plot in /sys", "--out o.nc --plot /sys/p.png", None, "--plot"),
    ("plot not UTF-8", "--out o.nc --plot NON_UTF8.png", None, "UTF-8"),
    ("plot a link to out", "--out o.nc --plot p.png", _link("p.png", "o.nc"), "same"),
    (
        "plot a link to the input",
        "--out o.nc --plot p.png",
        _link("p.png", "eig.npz"),
        "input",
    ),
]


@pytest.mark.parametrize(
    ("argv", "setup", "match"),
    [pytest.param(a, s, m, id=i) for i, a, s, m in FIT_CASES],
)
def test_fit_refuses_bad_outputs(root, unchanged, argv, setup, match):
    _refused(root, unchanged, setup, ["fit", "eig.npz", *FAST, *_argv(argv)], match)


# (id, arguments after "compare eig.npz", setup, a piece of the error line)
COMPARE_CASES: list[tuple[str, str, Setup, str]] = [
    ("out is a folder", "--out c.nc", _folder("c.nc"), "is a folder"),
    ("table csv is a folder", "--out c.nc", _folder("c_comparison.csv"), "c_comp"),
    ("phase csv is a folder", "--out c.nc", _folder("c_phases.csv"), "c_phases"),
    ("ident csv is a folder", "--out c.nc", _folder("c_identification.csv"), "c_ident"),
    (
        "table csv links to the input",
        "--out c.nc",
        _link("c_phases.csv", "eig.npz"),
        "input",
    ),
    ("out in /proc", "--out /proc/c.nc", None, "cannot create"),
    ("out not UTF-8", "--out NON_UTF8.nc", None, "UTF-8"),
    ("out name too long", "--out LONG.nc", None, "too long"),
    (
        "two tables one file",
        "--out c.nc",
        _link("c_phases.csv", "c_comparison.csv"),
        "same",
    ),
]


@pytest.mark.parametrize(
    ("argv", "setup", "match"),
    [pytest.param(a, s, m, id=i) for i, a, s, m in COMPARE_CASES],
)
def test_compare_refuses_bad_outputs(root, unchanged, argv, setup, match):
    argv_ = ["compare", "eig.npz", *FAST, *_argv(argv)]
    _refused(root, unchanged, setup, argv_, match)


SIMULATE = ["simulate", "--kappa", "2", "--gamma", "0.5", "--n", "30"]
SIMULATE_CASES: list[tuple[str, str, Setup, str]] = [
    ("out is a folder", "--out s.npz", _folder("s.npz"), "is a folder"),
    ("out parent is a file", "--out f/s.npz", _file("f"), "not a folder"),
    ("out in /sys", "--out /sys/s.npz", None, "cannot create"),
    ("out not UTF-8", "--out NON_UTF8.npz", None, "UTF-8"),
    ("out name too long", "--out LONG.npz", None, "too long"),
]


@pytest.mark.parametrize(
    ("argv", "setup", "match"),
    [pytest.param(a, s, m, id=i) for i, a, s, m in SIMULATE_CASES],
)
def test_simulate_refuses_bad_outputs(root, unchanged, argv, setup, match):
    _refused(root, unchanged, setup, [*SIMULATE, *_argv(argv)], match)


def test_plot_esd_checks_its_path_before_drawing(root, unchanged):
    from htmp_infer.plotting.esd import plot_esd

    (root / "p.png").mkdir()
    unchanged.start()
    not_a_fit = xr.DataTree()  # the path is refused before the tree is read
    for path in [root / "p.png", Path("/proc/p.png"), root / f"{NON_UTF8}.png"]:
        with pytest.raises(OutputError):
            plot_esd(not_a_fit, path=path)
    with pytest.raises(OutputError, match=r"cannot write \.nc"):
        plot_esd(not_a_fit, path=root / "p.nc")


def test_write_atomic_refuses_an_input_of_the_command(root, unchanged):
    from htmp_infer.io import reading, write_atomic

    unchanged.start()
    with reading(root / "eig.npz"), pytest.raises(OutputError, match="input"):
        write_atomic(root / "eig.npz", lambda p: p.write_text("clobbered"))
    assert isinstance(OutputError("x"), HTMPError | ValueError)


def test_ordinary_outputs_pass_and_inputs_stay_byte_for_byte(root, unchanged):
    """simulate into a new folder, fit with a plot, compare, summary: all exit 0,
    write exactly their outputs, and leave the input as it was."""
    before = snapshot(root)
    unchanged.start()
    made = ["new/s.npz", "fit.nc", "fit.png", "c.nc"]
    made += [f"c_{t}.csv" for t in ("comparison", "phases", "identification")]
    unchanged.allow(*(root / m for m in made))
    assert run_cli([*SIMULATE, "--out", "new/s.npz"]).code == 0
    run = run_cli(["fit", "eig.npz", "--out", "fit.nc", "--plot", "fit.png", *FAST])
    assert run.code == 0, run.err
    run = run_cli(["compare", "eig.npz", "--out", "c.nc", "--models", "mp,htmp", *FAST])
    assert run.code == 0, run.err
    run = run_cli(["summary", "fit.nc"])
    assert run.code == 0 and "kappa" in run.out, run.err
    after = snapshot(root)
    assert after["eig.npz"] == before["eig.npz"]
    assert sorted(set(after) - set(before)) == sorted(made)
    assert not [p for p in root.rglob(".*")], "a temporary or probe file was left"
