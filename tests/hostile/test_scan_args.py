"""Hostile arguments and outputs of ``htmp-infer scan`` and ``compare-layers``.

Every case is refused before any fitting: exit status 2, one
``htmp-infer: error:`` line naming the culprit, no traceback, and nothing under
the working folder created, changed or removed (folders included).
"""

from __future__ import annotations

import fcntl
import os
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_refused, run_cli

from htmp_infer.networks.bundle import LayerSpectrum, SpectraBundle

NON_UTF8 = os.fsdecode(b"out-\xff")
FAST = ["--models", "mp,htmp", "--ppc-draws", "0", "--no-plots", "--no-progress"]
Setup = Callable[[Path], None] | None


def _bundle() -> SpectraBundle:
    rng = np.random.default_rng(0)
    layers = []
    for i in range(3):
        w = rng.normal(size=(20, 40))
        lam = np.sort(np.linalg.eigvalsh(w @ w.T))
        name = f"encoder.layer.{i}.output.dense.weight"
        layers.append(LayerSpectrum(name, "mlp_out", i, (20, 40), lam))
    return SpectraBundle(layers, [], "hostile", {})


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder: ``b.npz`` (3 layers) and ``scanned/spectra.npz``."""
    bundle = _bundle()
    bundle.save(tmp_path / "b.npz")
    bundle.save(tmp_path / "scanned" / "spectra.npz")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _file(rel: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("not a folder\n")

    return make


def _folder(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).mkdir(parents=True)


def _paths(root: Path) -> set[str]:
    """Every file and folder under ``root`` (``unchanged`` sees files only)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _argv(text: str) -> list[str]:
    return [a.replace("NON_UTF8", NON_UTF8) for a in shlex.split(text)]


def _refused(root: Path, unchanged, setup: Setup, argv: list[str], match: str):
    if setup is not None:
        setup(root)
    before = _paths(root)
    unchanged.start()
    assert_refused(run_cli(argv), match=match)
    assert _paths(root) == before


# (id, arguments after "scan" (NON_UTF8: a name that is not UTF-8), setup, and a
# piece of the error line); FAST comes first, so a case's own --models wins
SCAN_CASES: list[tuple[str, str, Setup, str]] = [
    ("missing input", "nope.npz --out o", None, "no such file"),
    ("out is a file", "b.npz --out o", _file("o"), "not a folder"),
    ("out parent is a file", "b.npz --out f/o", _file("f"), "not a folder"),
    ("out not UTF-8", "b.npz --out NON_UTF8", None, "not valid UTF-8"),
    ("out/scan.csv is a folder", "b.npz --out o", _folder("o/scan.csv"), "scan.csv"),
    ("out/layers is a file", "b.npz --out o", _file("o/layers"), "layers"),
    (
        "out holds the bundle read, other selection",
        "scanned/spectra.npz --out scanned --include layer.0",
        None,
        "input",
    ),
    (
        "out is the scan folder read, other selection",
        "scanned --out scanned --exclude layer.1",
        None,
        "input",
    ),
    ("unknown model", "b.npz --out o --models mp,nope", None, "models"),
    ("models without htmp", "b.npz --out o --models mp", None, "htmp"),
    ("a model twice", "b.npz --out o --models htmp,htmp", None, "twice"),
    ("empty models", "b.npz --out o --models ''", None, "models"),
    ("jobs 0", "b.npz --out o --jobs 0", None, "--jobs"),
    ("jobs negative", "b.npz --out o --jobs -1", None, "--jobs"),
    ("jobs not a number", "b.npz --out o --jobs two", None, "--jobs"),
    ("jobs above the CPUs", "b.npz --out o --jobs 100000", None, "CPUs"),
    ("conv unknown", "b.npz --out o --conv flatten", None, "--conv"),
    ("include bad regex", "b.npz --out o --include '('", None, "--include"),
    ("exclude bad regex", "b.npz --out o --exclude '[a-'", None, "--exclude"),
    ("kinds unknown", "b.npz --out o --kinds lstm", None, "kind"),
    ("kinds empty name", "b.npz --out o --kinds mlp,,attention", None, "--kinds"),
    ("include matches nothing", "b.npz --out o --include ^decoder", None, "selection"),
    ("seed negative", "b.npz --out o --seed -1", None, "--seed"),
    ("seed too large", f"b.npz --out o --seed {2**32}", None, "--seed"),
    ("chains 0", "b.npz --out o --chains 0", None, "--chains"),
    ("draws not an integer", "b.npz --out o --draws 1e3", None, "--draws"),
    ("ppc-draws negative", "b.npz --out o --ppc-draws -1", None, "--ppc-draws"),
    ("min-dim negative", "b.npz --out o --min-dim -3", None, "--min-dim"),
    ("method unknown", "b.npz --out o --method mcmc", None, "--method"),
    ("no --out", "b.npz", None, "--out"),
]


@pytest.mark.parametrize(
    ("argv", "setup", "match"),
    [pytest.param(a, s, m, id=i) for i, a, s, m in SCAN_CASES],
)
def test_scan_refuses(root, unchanged, argv, setup, match):
    _refused(root, unchanged, setup, ["scan", *FAST, *_argv(argv)], match)


def test_scan_refuses_a_folder_another_scan_is_writing(root, unchanged):
    """The lock is held by another open file (as by another process): refused at
    once with the holder's pid, nothing fitted, nothing touched."""
    out = root / "o"
    out.mkdir()
    fd = os.open(out / ".scan.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242\n")
        before = _paths(root)
        unchanged.start()
        run = run_cli(["scan", *FAST, "b.npz", "--out", "o"])
    finally:
        os.close(fd)
    assert "pid 4242" in assert_refused(run, match="another scan")
    assert _paths(root) == before


def test_scan_refuses_a_truncated_bundle(root, unchanged):
    data = (root / "b.npz").read_bytes()
    (root / "cut.npz").write_bytes(data[: len(data) // 2])
    _refused(root, unchanged, None, ["scan", *FAST, "cut.npz", "--out", "o"], "")


def test_resume_on_the_bundle_it_wrote_keeps_it_byte_for_byte(root):
    """``scan out/spectra.npz --out out`` writes nothing over what it reads: with
    the same selection the bundle is the same, so it is kept, not refused."""
    from htmp_infer.networks.state import save_bundle

    path = root / "scanned" / "spectra.npz"
    before = path.read_bytes()
    assert not save_bundle(SpectraBundle.load(path), path)
    assert path.read_bytes() == before
    other = SpectraBundle.load(path).select(["encoder.layer.0.output.dense.weight"])
    assert save_bundle(other, root / "elsewhere.npz")


COMPARE_CASES: list[tuple[str, str, Setup, str]] = [
    ("missing input", "nope --out l.nc", None, "no such file"),
    ("out not .nc", "scanned --out l.txt", None, ".nc"),
    ("out is a folder", "scanned --out l.nc", _folder("l.nc"), "folder"),
    ("out parent is a file", "scanned --out f/l.nc", _file("f"), "not a folder"),
    ("out not UTF-8", "scanned --out NON_UTF8.nc", None, "UTF-8"),
    ("groups csv a folder", "scanned --out l.nc", _folder("l_groups.csv"), "groups"),
    ("kinds unknown", "scanned --out l.nc --kinds lstm", None, "kind"),
    ("include bad regex", "scanned --out l.nc --include '*x'", None, "--include"),
    ("seed negative", "scanned --out l.nc --seed -5", None, "--seed"),
    ("chains 0", "scanned --out l.nc --chains 0", None, "--chains"),
    ("conv unknown", "scanned --out l.nc --conv x", None, "--conv"),
]


@pytest.mark.parametrize(
    ("argv", "setup", "match"),
    [pytest.param(a, s, m, id=i) for i, a, s, m in COMPARE_CASES],
)
def test_compare_layers_refuses(root, unchanged, argv, setup, match):
    argv_ = ["compare-layers", *_argv(argv), "--no-progress"]
    _refused(root, unchanged, setup, argv_, match)


def test_compare_layers_never_writes_over_its_input(root, unchanged):
    """Weights in a folder, and ``--out`` whose ``_groups.csv`` is a file of it."""
    ckpt = root / "ckpt"
    ckpt.mkdir()
    rng = np.random.default_rng(1)
    np.savez(ckpt / "w.npz", **{"fc.weight": rng.normal(size=(20, 40))})
    (ckpt / "r_groups.csv").write_text("kept,byte,for,byte\n")
    argv = ["compare-layers", "ckpt", "--out", "ckpt/r.nc", "--no-progress"]
    _refused(root, unchanged, None, argv, "input")
