"""Real interruptions of ``htmp-infer scan``: signals, kills, damage, two scans.

Each case runs the CLI as a real process on a bundle of four small layers of two
sizes (each size compiles once per process, so a layer takes seconds and a
signal sent when the first layer is saved lands mid-scan), waits until a layer
file exists, and then signals it as a terminal (``SIGINT`` to the process
group), ``timeout`` or a batch scheduler (``SIGTERM`` to the scan) or the OOM
killer (``SIGKILL``) would. The contract:

* exit status 128 + the signal (130, 143), one ``htmp-infer: error:`` line
  saying how many layers were saved, every other line an
  ``htmp-infer: warning:`` (worker warnings included), no traceback;
* within a couple of seconds with ``--jobs 2``, and no process of the scan left
  alive (workers included, ``SIGKILL`` included);
* every saved layer kept, and the same command completes the scan with the table
  of an uninterrupted run (fit times aside), repairing stale temporaries and
  damaged layer files with one warning per damaged layer.

The processes run without the user's caches; the resumes share a compilation
cache of the module's own, filled by the reference run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.networks.bundle import LayerSpectrum, SpectraBundle

pytestmark = [
    pytest.mark.slow,  # each case runs the CLI in a subprocess and compiles
    pytest.mark.skipif(
        not Path("/proc/self/stat").exists(), reason="reads the process table in /proc"
    ),
]

ENV = {"HTMP_INFER_JAX_CACHE": "", "HTMP_INFER_CACHE": "", "OPENBLAS_NUM_THREADS": "1"}
FAST = ["--models", "mp,htmp", "--ppc-draws", "0", "--no-plots", "--no-progress"]
FAST += ["--chains", "1", "--draws", "100"]
SIZES = (30, 36, 30, 36)


def _bundle() -> SpectraBundle:
    layers = []
    for i, n in enumerate(SIZES):
        lam = np.sort(sample_htmp(i, n, 2.0 + i, n_cols=2 * n, scale=1.0))
        name = f"encoder.layer.{i}.output.dense.weight"
        layers.append(LayerSpectrum(name, "mlp_out", i, (n, 2 * n), lam))
    return SpectraBundle(layers, [], "interruptions", {})


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(
    cwd: Path, out: str, *extra: str, warm: bool = False
) -> subprocess.Popen[str]:
    """``htmp-infer scan b.npz --out OUT`` in its own session (process group).

    ``warm``: with the module's own JAX compilation cache, which the reference
    run fills (a fast resume); else compiling afresh (seconds per layer size,
    so a signal sent when the first layer is saved lands mid-scan).
    """
    cache = str(cwd / "jax-cache") if warm else ""
    argv = ["scan", "b.npz", "--out", out, *FAST, *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "htmp_infer", *argv],
        cwd=cwd,
        env={**os.environ, **ENV, "HTMP_INFER_JAX_CACHE": cache},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as launched from a shell: SIGINT at its default, even when this test
        # process inherited it ignored (an in-process pool elsewhere in the
        # session, or xdist); `handling` rightly leaves an ignored SIGINT alone
        preexec_fn=_default_sigint,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, err


def _saved(layers: Path) -> list[str]:
    return sorted(p.name for p in layers.glob("*.json")) if layers.is_dir() else []


def _wait_for_a_layer(proc: subprocess.Popen[str], layers: Path) -> None:
    deadline = time.monotonic() + 150
    while not _saved(layers):
        assert proc.poll() is None, _finish(proc)
        assert time.monotonic() < deadline, "no layer saved in 150 s"
        time.sleep(0.05)


def _children(pid: int) -> dict[int, bytes]:
    """Live processes whose parent is ``pid``, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def _alive(procs: dict[int, bytes]) -> list[int]:
    live = []
    for pid, cmdline in procs.items():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            same = Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline
        except OSError:
            continue
        if same and state != "Z":
            live.append(pid)
    return live


def _assert_no_orphans(procs: dict[int, bytes], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(procs), f"processes of the scan still alive: {_alive(procs)}"


def _assert_one_line(err: str) -> str:
    """One error line, every other line a routed warning, no traceback."""
    assert "Traceback" not in err and "Exception ignored" not in err, err
    lines = err.splitlines()
    errors = [ln for ln in lines if ln.startswith("htmp-infer: error:")]
    assert len(errors) == 1, err
    others = [ln for ln in lines if ln not in errors]
    assert all(ln.startswith("htmp-infer: warning:") for ln in others), err
    return errors[0]


def _table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "scan.csv").drop(columns="fit_seconds")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle, and ``ref/``: the uninterrupted reference scan.

    A second scan into ``ref/``, started while the first holds its lock, is
    refused at once naming the first one's pid (it used to fit every layer
    again); the first fits every layer once.
    """
    root = tmp_path_factory.mktemp("interruptions")
    _bundle().save(root / "b.npz")
    first = _start(root, "ref", warm=True)
    deadline = time.monotonic() + 60
    while not (root / "ref" / ".scan.lock").exists():
        assert first.poll() is None and time.monotonic() < deadline, _finish(first)
        time.sleep(0.05)
    code, err = _finish(_start(root, "ref", warm=True))
    assert code == 2, err
    assert f"another scan (pid {first.pid})" in _assert_one_line(err)
    code, err = _finish(first)
    assert code == 0 and "Traceback" not in err, err
    assert len(_saved(root / "ref" / "layers")) == len(SIZES)
    assert not (root / "ref" / ".scan.lock").exists()
    return root


def _resume_equals_reference(work: Path, out: str, *extra: str) -> str:
    code, err = _finish(_start(work, out, *extra, warm=True))
    assert code == 0 and "Traceback" not in err, err
    assert all(ln.startswith("htmp-infer: warning:") for ln in err.splitlines()), err
    pd.testing.assert_frame_equal(_table(work / out), _table(work / "ref"))
    return err


def test_ctrl_c_on_a_serial_scan_says_what_was_saved_and_resumes(work):
    proc = _start(work, "int")
    _wait_for_a_layer(proc, work / "int" / "layers")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    code, err = _finish(proc, timeout=60)
    line = _assert_one_line(err)
    assert code == 130, err
    saved = _saved(work / "int" / "layers")
    assert f"interrupted by SIGINT: {len(saved)} of {len(SIZES)} layers" in line
    assert "run the same command" in line
    assert 0 < len(saved) < len(SIZES)
    assert not (work / "int" / ".scan.lock").exists()
    err = _resume_equals_reference(work, "int")
    assert "cannot be read back" not in err


@pytest.mark.slow  # two worker processes compile: 30-50 s
def test_sigterm_on_jobs_2_stops_its_workers_at_once(work):
    proc = _start(work, "term", "--jobs", "2")
    _wait_for_a_layer(proc, work / "term" / "layers")
    workers = _children(proc.pid)
    assert len(workers) >= 2  # two workers (and multiprocessing's tracker)
    sent = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)  # what timeout(1) or a scheduler sends
    code, err = _finish(proc, timeout=60)
    assert time.monotonic() - sent < 5, "slow to stop"
    line = _assert_one_line(err)
    assert code == 143, err
    assert "interrupted by SIGTERM" in line
    _assert_no_orphans(workers)
    assert f"{len(_saved(work / 'term' / 'layers'))} of {len(SIZES)}" in line
    assert not (work / "term" / ".scan.lock").exists()
    _resume_equals_reference(work, "term", "--jobs", "2")


@pytest.mark.slow  # two worker processes compile: 30-50 s
def test_ctrl_c_on_jobs_2_keeps_every_layer_received(work):
    proc = _start(work, "intj", "--jobs", "2")
    layers = work / "intj" / "layers"
    _wait_for_a_layer(proc, layers)
    workers = _children(proc.pid)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # parent and workers, as from a terminal
    code, err = _finish(proc, timeout=60)
    assert time.monotonic() - sent < 5, "slow to stop"
    line = _assert_one_line(err)
    assert code == 130, err
    _assert_no_orphans(workers)
    saved = _saved(layers)
    assert len(saved) >= 1 and f"{len(saved)} of {len(SIZES)} layers saved" in line
    _resume_equals_reference(work, "intj")


@pytest.mark.slow  # two worker processes compile: 30-50 s
def test_sigkill_leaves_no_worker_and_a_resume_repairs_the_folder(work):
    proc = _start(work, "kill", "--jobs", "2")
    layers = work / "kill" / "layers"
    _wait_for_a_layer(proc, layers)
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    _finish(proc, timeout=60)
    _assert_no_orphans(workers)  # they die with their parent
    # what a kill at a worse moment leaves: a writer's temporary, a truncated
    # layer file; and a file of someone else's that only looks like a temporary
    saved = sorted(layers.glob("*.nc"))
    stale = layers / f".{saved[0].name}.k9x2_abc.tmp.nc"
    stale.write_bytes(saved[0].read_bytes()[:500])
    with open(saved[0], "r+b") as fh:
        fh.truncate(700)
    foreign = layers / ".notes.txt.abcdefgh.tmp.txt"
    foreign.write_text("not the scan's\n")
    err = _resume_equals_reference(work, "kill")
    damaged = [ln for ln in err.splitlines() if "cannot be read back" in ln]
    assert len(damaged) == 1 and saved[0].name in damaged[0], err
    assert not stale.exists() and foreign.exists()
