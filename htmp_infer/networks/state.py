"""The resumable output folder of a scan: layer files, lock, stale temporaries.

:func:`htmp_infer.networks.scan.scan` writes into ``out_dir`` (layout in
:mod:`htmp_infer.networks.scan`). This module keeps that folder sound across kills,
interruptions and concurrent runs:

* :class:`ScanLock` -- one scan at a time per folder: an ``fcntl.flock`` on
  ``out_dir/.scan.lock`` (which holds the holder's pid). The kernel releases it
  when the holder dies, so a killed scan never leaves a stale lock; a second scan
  is refused with the holder's pid.
* :func:`sweep_temporaries` -- a killed writer leaves its temporary
  (``.<name>.XXXXXXXX.tmp<suffix>``, :func:`htmp_infer.io.atomic_path`); once
  the lock is held no other scan can be writing one, so the scan's own are
  removed. They are never opened.
* :func:`load_layer` / :func:`save_layer` -- a layer's ``.nc`` then its ``.json``
  (written last, with the options' hash, so it marks the layer done). A layer
  whose files cannot be read back is refitted with one
  :class:`DamagedLayerWarning`; a save is never cut by an interruption
  (:func:`htmp_infer.networks.signals.deferred`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from htmp_infer.errors import OutputError
from htmp_infer.io import check_output_dir, check_output_file, write_atomic
from htmp_infer.networks.signals import deferred

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from htmp_infer.networks.bundle import LayerSpectrum, SpectraBundle

__all__ = [
    "BUNDLE",
    "LOCK",
    "DamagedLayerWarning",
    "ScanLock",
    "check_outputs",
    "layer_stem",
    "load_layer",
    "save_bundle",
    "save_layer",
    "sweep_temporaries",
]

#: The bundle of what was fitted (what ``compare-layers`` reads).
BUNDLE = "spectra.npz"
#: The lock file (:class:`ScanLock`).
LOCK = ".scan.lock"
#: The tables and the combined DataTree, written when every layer is done.
TABLES = ("scan.csv", "scan.parquet", "scan.nc", "skipped.csv")
#: The figures (:mod:`htmp_infer.plotting.scan`).
PLOTS = ("forest.png", "mechanisms.png", "esd_grid.png")
#: Every variable a saved layer's DataTree must have to be resumed.
_LAYER_VARS = {
    "reading": ("kappa", "edge_exponent", "alpha_tail", "n_spikes"),
    "comparison": ("weight", "log_evidence", "error", "ppc_p", "phase_probability"),
}
#: A temporary of :func:`htmp_infer.io.atomic_path`: ``.<name>.<8 chars>.tmp<sfx>``.
_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>(?:\.[^.]*)?)")
_LAYER_NAME = re.compile(r"\d{4}-.*\.(?:nc|json)")


class DamagedLayerWarning(UserWarning):
    """A saved layer could not be read back; the scan fits it again."""


def layer_stem(out: Path, i: int, name: str) -> Path:
    """``out/layers/<i>-<name>``: the layer's files are this with .nc and .json."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
    return out / "layers" / f"{i:04d}-{slug}"


def check_outputs(out: Path, *, plots: bool) -> None:
    """Check, before any work, that every output of a scan into ``out`` can be
    written and none of them is an input of the command (:func:`~htmp_infer.io.
    reading`); the bundle is checked by :func:`save_bundle`.

    Raises
    ------
    OutputError
    """
    check_output_dir(out, what="--out")
    check_output_dir(out / "layers", what="--out")
    for name in (*TABLES, *(PLOTS if plots else ())):
        check_output_file(out / name, what="--out")


def save_bundle(bundle: SpectraBundle, path: Path) -> bool:
    """Write ``bundle`` at ``path`` unless ``path`` already holds the same spectra.

    A resume (``htmp-infer scan out/spectra.npz --out out``) then leaves the
    bundle it reads byte for byte as it was; a different bundle over the input is
    refused (:func:`htmp_infer.io.atomic_path`). Returns whether it wrote.
    """
    if _same_bundle(path, bundle):
        return False
    check_output_file(path, what="--out")
    bundle.save(path)
    return True


def _same_bundle(path: Path, bundle: SpectraBundle) -> bool:
    from htmp_infer.errors import HTMPError
    from htmp_infer.networks.bundle import SpectraBundle, is_bundle

    if not is_bundle(path):
        return False
    try:
        old = SpectraBundle.load(path)
    except HTMPError:
        return False
    if (old.source, old.meta, len(old.layers)) != (
        bundle.source,
        bundle.meta,
        len(bundle.layers),
    ):
        return False
    if [tuple(s) for s in old.skipped] != [tuple(s) for s in bundle.skipped]:
        return False
    return all(
        (a.name, a.kind, a.depth, a.shape) == (b.name, b.kind, b.depth, b.shape)
        and np.array_equal(a.eigenvalues, b.eigenvalues)
        for a, b in zip(old.layers, bundle.layers, strict=True)
    )


def load_layer(
    stem: Path, layer: LayerSpectrum, key: str
) -> tuple[dict[str, Any], xr.DataTree] | None:
    """The saved ``(row, tree)`` of a layer done with options ``key``, else None.

    None without a word when the layer was not finished (no ``.json``) or was
    fitted with other options; None with a :class:`DamagedLayerWarning` when its
    files exist but cannot be read back (truncated, corrupted, edited).
    """
    meta, nc = stem.with_suffix(".json"), stem.with_suffix(".nc")
    if not meta.exists():
        return None
    try:
        done = json.loads(meta.read_text())
        if not isinstance(done, dict) or not isinstance(done.get("row"), dict):
            raise ValueError("not a layer record")
    except (OSError, ValueError) as exc:
        _damaged(layer, meta, exc)
        return None
    if done.get("options") != key or done["row"].get("layer") != layer.name:
        return None
    try:
        with xr.open_datatree(nc, engine="h5netcdf") as opened:
            tree = opened.load()
        for group, names in _LAYER_VARS.items():
            missing = [v for v in names if v not in tree[group].dataset]
            if missing:
                raise ValueError(f"no {', '.join(missing)} in {group}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _damaged(layer, nc, exc)
        return None
    row: dict[str, Any] = done["row"]
    return row, tree


def _damaged(layer: LayerSpectrum, path: Path, exc: BaseException) -> None:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        text = "missing"
    warnings.warn(
        f"{path}: saved layer {layer.name} cannot be read back ({text}); "
        "fitting it again",
        DamagedLayerWarning,
        stacklevel=3,
    )


def save_layer(stem: Path, row: dict[str, Any], tree: xr.DataTree, key: str) -> None:
    """Write the layer's ``.nc`` then its ``.json`` (which marks it done), each
    atomically, without letting a signal cut between them."""
    text = json.dumps({"options": key, "row": row}, indent=1, default=float)

    def _json(path: Path) -> None:
        path.write_text(text)

    with deferred():
        write_atomic(
            stem.with_suffix(".nc"), lambda p: tree.to_netcdf(p, engine="h5netcdf")
        )
        write_atomic(stem.with_suffix(".json"), _json)


def sweep_temporaries(out: Path) -> list[Path]:
    """Remove the scan's temporaries left in ``out`` and ``out/layers`` by a
    killed run; call it only while holding :class:`ScanLock`. Returns them."""
    ours = {BUNDLE, *TABLES, *PLOTS}
    removed = []
    for folder, layers in ((out, False), (out / "layers", True)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            m = _TEMP.fullmatch(name)
            if m is None or not m["name"].endswith(m["suffix"]):
                continue
            target = m["name"]
            if not (_LAYER_NAME.fullmatch(target) if layers else target in ours):
                continue
            path = folder / name
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and not path.is_symlink():
                    path.unlink()
                    removed.append(path)
    return removed


class ScanLock:
    """Hold ``out/.scan.lock`` (``fcntl.flock``) while a scan writes into ``out``.

    Raises
    ------
    OutputError
        On entry, when another process holds the lock (its pid in the message).
    """

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self.fd: int | None = None

    def __enter__(self) -> ScanLock:
        if fcntl is None:  # pragma: no cover - not POSIX: run unlocked
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(
                    f"--out {self.path.parent}: cannot create its lock file "
                    f"({exc.strerror})"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    who = f"pid {holder}" if holder else "another process"
                    raise OutputError(
                        f"--out {self.path.parent}: another scan ({who}) is writing "
                        "there; wait for it to end or choose another --out"
                    ) from None
                warnings.warn(  # a file system without locks: run unlocked
                    f"--out {self.path.parent}: cannot lock ({exc.strerror}); "
                    "make sure no other scan writes there",
                    stacklevel=2,
                )
                return self
            if _same_file(fd, self.path):
                break
            os.close(fd)  # its holder removed it as we opened it: take the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    @property
    def held(self) -> bool:
        """Whether this process holds the lock (False when running unlocked)."""
        return self.fd is not None

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # while still held: no one can take a stale copy
            os.close(self.fd)
            self.fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def locked(out: Path) -> Iterator[ScanLock]:
    """Create ``out``, take its lock and sweep stale temporaries (lock held)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot create ({exc.strerror})") from None
    with ScanLock(out) as lock:
        if lock.held:
            sweep_temporaries(out)
        yield lock
