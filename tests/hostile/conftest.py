"""Harness of the hostile-input suite: run an entry point, check how it failed.

Every case asserts the same contract, whatever the entry point:

* the exit status is the one expected (2 for bad input, 130 for an interruption);
* stderr holds exactly one ``htmp-infer: error: ...`` line and no traceback;
* the files under the working folder are byte for byte what they were before,
  apart from the outputs a successful run is allowed to write.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Map every file under ``root`` to (size, sha256); symlinks by their target."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink() and not p.exists():
                out[rel] = (-1, os.readlink(p))
                continue
            try:
                data = p.read_bytes()
            except OSError:
                out[rel] = (-2, "unreadable")
                continue
            out[rel] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def run_cli(argv: Sequence[str]) -> Run:
    """Run ``htmp-infer ARGV`` in this process; an escaping exception fails the test."""
    from htmp_infer.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 1
    return Run(int(code), out.getvalue(), err.getvalue())


def run_subprocess(
    argv: Sequence[str], *, cwd: Path, timeout: float = 120, env: dict | None = None
) -> Run:
    """Run ``python -m htmp_infer ARGV`` as a real process (signals, exit codes)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "htmp_infer", *map(str, argv)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def assert_refused(run: Run, *, code: int = 2, match: str | None = None) -> str:
    """One ``htmp-infer: error:`` line, no traceback, exit ``code``; return the line."""
    assert "Traceback" not in run.err, run.err
    assert run.code == code, (run.code, run.err)
    lines = [ln for ln in run.err.splitlines() if ln.startswith("htmp-infer: error:")]
    assert len(lines) == 1, run.err
    if match is not None:
        assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture
def hostile_cwd(tmp_path, monkeypatch):
    """A scratch folder that is the working directory of the case."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def unchanged(tmp_path):
    """Assert at the end of the case that nothing under tmp_path changed.

    Use ``unchanged.allow(path)`` for outputs a successful run may write.
    """

    class _Guard:
        def __init__(self) -> None:
            self.before: dict[str, tuple[int, str]] | None = None
            self.allowed: set[str] = set()

        def start(self) -> None:
            self.before = snapshot(tmp_path)

        def allow(self, *paths: Path | str) -> None:
            for p in paths:
                self.allowed.add(str(Path(p).resolve().relative_to(tmp_path.resolve())))

    guard = _Guard()
    yield guard
    if guard.before is not None:
        after = snapshot(tmp_path)
        changed = {
            k
            for k in set(guard.before) | set(after)
            if guard.before.get(k) != after.get(k) and k not in guard.allowed
        }
        assert not changed, f"files changed, created or removed: {sorted(changed)}"
