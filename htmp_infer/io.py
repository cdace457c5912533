"""File input and atomic output."""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from htmp_infer.errors import OutputError, SpectrumError

__all__ = [
    "atomic_path",
    "check_output_dir",
    "check_output_file",
    "read_spectrum_file",
    "reading",
    "write_atomic",
    "write_spectrum_npz",
]

#: Files and folders the running command reads: no output may replace them.
_INPUTS: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar(
    "htmp_infer_inputs", default=()
)

EIGENVALUE_SUFFIXES = (".npy", ".npz", ".txt", ".csv")
_EIG_KEYS = ("eigenvalues", "eigvals", "evals", "lambda")
_MATRIX_KEYS = ("matrix", "weight", "W", "w")


def _load_text(path: Path) -> np.ndarray:
    text = path.read_text()
    delimiter = "," if "," in text else None
    try:
        arr = np.loadtxt(path, delimiter=delimiter, ndmin=1, comments="#")
    except ValueError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unparsable number"
        raise SpectrumError(f"{path.name}: not a table of numbers ({first})") from None
    return arr


def _pick(npz: Any, keys: tuple[str, ...], path: Path) -> np.ndarray:
    for key in keys:
        if key in npz.files:
            return np.asarray(npz[key])
    arrays = [k for k in npz.files if np.asarray(npz[k]).ndim >= 1]
    if len(arrays) == 1:
        return np.asarray(npz[arrays[0]])
    raise SpectrumError(
        f"{path.name}: cannot tell which array to use among {sorted(npz.files)}; "
        f"name it one of {list(keys)}"
    )


def read_spectrum_file(
    path: str | Path, *, matrix: bool = False
) -> tuple[np.ndarray, dict[str, float]]:
    """Read an eigenvalue or matrix file.

    Parameters
    ----------
    path : str or Path
        ``.npy``, ``.npz``, ``.txt`` or ``.csv``.
    matrix : bool
        Read a 2-D matrix instead of a 1-D eigenvalue array.

    Returns
    -------
    values : ndarray
        The array as stored.
    meta : dict
        ``n_cols`` and/or ``gamma`` when the ``.npz`` stores them.

    Raises
    ------
    SpectrumError
        Missing, unreadable or unsupported files, with a one-line message.
    """
    p = Path(path)
    if not p.exists():
        raise SpectrumError(f"{p}: no such file")
    if p.is_dir():
        raise SpectrumError(f"{p}: is a directory, expected a file")
    suffix = p.suffix.lower()
    if suffix not in EIGENVALUE_SUFFIXES:
        raise SpectrumError(
            f"{p.name}: unsupported file type {suffix or '(none)'}; "
            f"use one of {', '.join(EIGENVALUE_SUFFIXES)}"
        )
    meta: dict[str, float] = {}
    try:
        if suffix == ".npy":
            values = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as npz:
                values = _pick(npz, _MATRIX_KEYS if matrix else _EIG_KEYS, p)
                for key in ("n_cols", "gamma"):
                    if key in npz.files:
                        meta[key] = float(np.asarray(npz[key]))
        else:
            values = _load_text(p)
    except SpectrumError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpectrumError(f"{p.name}: unreadable ({msg})") from None
    return np.asarray(values), meta


@contextlib.contextmanager
def reading(*paths: str | Path) -> Iterator[None]:
    """Declare the inputs of a command: no output written inside may replace them.

    While the block runs, :func:`atomic_path` (and so every writer of the
    package) refuses a target that is one of ``paths``, or an existing file
    inside one of them when it is a folder. Blocks nest.
    """
    resolved = tuple(Path(p).resolve() for p in paths)
    token = _INPUTS.set(_INPUTS.get() + resolved)
    try:
        yield
    finally:
        _INPUTS.reset(token)


def _refuse_input(target: Path) -> None:
    real = target.resolve()
    for src in _INPUTS.get():
        if real == src or (src.is_dir() and real.is_file() and src in real.parents):
            raise OutputError(
                f"{target}: refusing to write over an input of this command ({src})"
            )


def _name_ok(path: Path, what: str) -> None:
    try:
        os.fsdecode(os.fsencode(path)).encode("utf-8")
    except UnicodeError:
        raise OutputError(
            f"{what} {os.fsencode(path)!r}: the name is not valid UTF-8"
        ) from None


def _writable_parent(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` is a folder we can write in."""
    parent = path.parent
    while not parent.exists():
        if parent.is_symlink():
            raise OutputError(f"{what} {path}: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: {parent} is not writable")


def check_output_file(path: str | Path, *, what: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written as a file.

    Raises
    ------
    OutputError
        The path is a folder, its parent is a file or not writable, its name is
        not UTF-8, or it is an input of the running command (see :func:`reading`).
    """
    p = Path(path)
    _name_ok(p, what)
    if p.is_dir():
        raise OutputError(f"{what} {p}: is a folder, expected a file name")
    _writable_parent(p, what)
    _refuse_input(p)
    return p


def check_output_dir(path: str | Path, *, what: str = "output folder") -> Path:
    """Check, before any work, that ``path`` is (or can be made) a writable folder."""
    p = Path(path)
    _name_ok(p, what)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{what} {p}: exists and is not a folder")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise OutputError(f"{what} {p}: is not writable")
    else:
        _writable_parent(p, what)
    _refuse_input(p)
    return p


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place on success.

    Nothing is left at ``path`` (nor a temporary file) when the block raises, so a
    reader never sees a half-written output. A target that is an input of the
    running command (:func:`reading`) is refused, and a place that cannot be
    written is reported as :class:`~htmp_infer.errors.OutputError`.
    """
    target = Path(path)
    check_output_file(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent
        )
    except OSError as exc:
        raise OutputError(f"output {target}: cannot write ({exc.strerror})") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and atomically rename the result to ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)


def write_spectrum_npz(
    path: str | Path, eigenvalues: np.ndarray, *, n_cols: float, **extra: float
) -> None:
    """Write eigenvalues with their shape (``n``, ``n_cols``, ``gamma``) atomically."""
    values = np.asarray(eigenvalues, dtype=np.float64)

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            arrays = {
                "eigenvalues": values,
                "n": np.asarray(values.size),
                "n_cols": np.asarray(float(n_cols)),
                "gamma": np.asarray(values.size / float(n_cols)),
                **{k: np.asarray(v) for k, v in extra.items()},
            }
            np.savez(fh, **arrays)  # type: ignore[arg-type]

    write_atomic(path, _write)
