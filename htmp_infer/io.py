"""File input and atomic output."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from htmp_infer.errors import SpectrumError

__all__ = ["atomic_path", "read_spectrum_file", "write_spectrum_npz"]

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
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place on success.

    Nothing is left at ``path`` (nor a temporary file) when the block raises, so a
    reader never sees a half-written output.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
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
