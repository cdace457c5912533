"""File input and atomic output."""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from htmp_infer.errors import OutputError, SpectrumError

__all__ = [
    "atomic_path",
    "check_distinct",
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


_ZIP_MAGIC = b"PK"
_NPY_MAGIC = b"\x93NUMPY"
_META = ("n_cols", "gamma")


def _load_text(path: Path, label: str) -> np.ndarray:
    text = path.read_text()
    if not any(line.split("#", 1)[0].strip() for line in text.splitlines()):
        raise SpectrumError(f"{label}: holds no numbers")
    delimiter = "," if "," in text else None
    try:
        arr = np.loadtxt(path, delimiter=delimiter, ndmin=1, comments="#")
    except ValueError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unparsable number"
        raise SpectrumError(f"{label}: not a table of numbers ({first})") from None
    return arr


def _npy_header(fh: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype from a ``.npy`` header, without reading the data."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(shape), dtype


def _check_header(
    label: str, shape: tuple[int, ...], dtype: np.dtype[Any], room: int, limit: int
) -> None:
    """Refuse pickled objects, data the file does not hold, absurd sizes."""
    if dtype.hasobject:
        raise SpectrumError(
            f"{label}: holds Python objects (dtype {dtype}), which would need "
            "unpickling; refused: save a float array"
        )
    count = math.prod(shape)
    if count * dtype.itemsize > room:
        raise SpectrumError(
            f"{label}: truncated: its header declares shape {shape} of {dtype} "
            f"({count * dtype.itemsize} bytes) but it holds {room} bytes of data"
        )
    if count > limit:
        raise SpectrumError(f"{label}: {count} values, at most {limit} eigenvalues")


def _read_npy(p: Path, label: str, limit: int) -> np.ndarray:
    with open(p, "rb") as fh:
        shape, dtype = _npy_header(fh)
        room = p.stat().st_size - fh.tell()
    _check_header(label, shape, dtype, room, limit)
    return np.asarray(np.load(p, allow_pickle=False))


def _check_meta(label: str, key: str, shape: tuple[int, ...], dtype: Any) -> None:
    if dtype.kind not in "iuf" or shape not in ((), (1,)):
        raise SpectrumError(
            f"{label}: field {key!r} must be a single real number, got shape "
            f"{shape} of dtype {dtype}"
        )


def _meta_value(npz: Any, key: str, label: str) -> float:
    value = np.asarray(npz[key])
    _check_meta(label, key, value.shape, value.dtype)
    number = float(value.reshape(()))
    if not math.isfinite(number):
        raise SpectrumError(f"{label}: field {key!r} must be finite, got {number}")
    return number


def _read_npz(
    p: Path, label: str, keys: tuple[str, ...], limit: int
) -> tuple[np.ndarray, dict[str, float]]:
    headers: dict[str, tuple[tuple[int, ...], np.dtype[Any]]] = {}
    with zipfile.ZipFile(p) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as fh:
                shape, dtype = _npy_header(fh)
                room = info.file_size - fh.tell()
            name = info.filename[: -len(".npy")]
            _check_header(f"{label} (array {name!r})", shape, dtype, room, 2**62)
            headers[name] = (shape, dtype)
    key = next((k for k in keys if k in headers), None)
    if key is None:
        arrays = [k for k, (shape, _) in headers.items() if len(shape) >= 1]
        if len(arrays) != 1:
            found = sorted(headers) or "no .npy arrays"
            raise SpectrumError(
                f"{label}: cannot tell which array to use among {found}; name it "
                f"one of {list(keys)}"
            )
        key = arrays[0]
    shape, dtype = headers[key]
    _check_header(f"{label} (array {key!r})", shape, dtype, 2**62, limit)
    for k in _META:
        if k in headers:
            _check_meta(label, k, *headers[k])
    with np.load(p, allow_pickle=False) as npz:
        values = np.asarray(npz[key])
        meta = {k: _meta_value(npz, k, label) for k in _META if k in headers}
    return values, meta


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
        ``n_cols`` and/or ``gamma`` when the ``.npz`` stores them (each a single
        finite real number, else refused naming the field).

    Raises
    ------
    SpectrumError
        Missing, unreadable or unsupported files, with a one-line message naming
        ``path`` as given. Pickled objects are never loaded; a header that
        declares more data than the file holds, or more than
        :data:`~htmp_infer.spectrum.MAX_EIGENVALUES` eigenvalues, is refused
        before anything is allocated.
    """
    from htmp_infer._spectrum_checks import MAX_EIGENVALUES

    p = Path(path)
    label = str(path)
    try:
        if not p.exists():
            raise SpectrumError(f"{label}: no such file")
        if p.is_dir():
            raise SpectrumError(f"{label}: is a directory, expected a file")
        if not p.is_file():
            raise SpectrumError(f"{label}: is not a regular file")
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EACCES from stat()
        raise SpectrumError(f"{label}: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    if suffix not in EIGENVALUE_SUFFIXES:
        raise SpectrumError(
            f"{label}: unsupported file type {suffix or '(none)'}; "
            f"use one of {', '.join(EIGENVALUE_SUFFIXES)}"
        )
    limit = 2**62 if matrix else MAX_EIGENVALUES
    meta: dict[str, float] = {}
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
        if not head:
            raise SpectrumError(f"{label}: the file is empty")
        if suffix == ".npy":
            if head.startswith(_ZIP_MAGIC):
                raise SpectrumError(f"{label}: is a .npz archive; name it .npz")
            values = _read_npy(p, label, limit)
        elif suffix == ".npz":
            if head.startswith(_NPY_MAGIC):
                raise SpectrumError(f"{label}: is a .npy array; name it .npy")
            values, meta = _read_npz(
                p, label, _MATRIX_KEYS if matrix else _EIG_KEYS, limit
            )
        else:
            values = _load_text(p, label)
    except SpectrumError:
        raise
    except (
        OSError,
        ValueError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,  # a zip member compressed by an unknown method
        RuntimeError,  # an encrypted zip member
        MemoryError,
    ) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            msg = exc.strerror
        raise SpectrumError(f"{label}: unreadable ({msg})") from None
    return np.asarray(values), meta


@contextlib.contextmanager
def reading(*paths: str | Path) -> Iterator[None]:
    """Declare the inputs of a command: no output written inside may replace them.

    While the block runs, :func:`atomic_path` (and so every writer of the
    package) refuses a target that is one of ``paths``, or an existing file
    inside one of them when it is a folder. Blocks nest.
    """
    resolved = tuple(_realpath(p) for p in paths)
    token = _INPUTS.set(_INPUTS.get() + resolved)
    try:
        yield
    finally:
        _INPUTS.reset(token)


def _realpath(path: str | Path) -> Path:
    """The absolute path with links followed; never raises (loops stay as they are)."""
    return Path(os.path.realpath(path))


def _refuse_input(target: Path) -> None:
    real = _realpath(target)
    for src in _INPUTS.get():
        inside = os.path.isdir(src) and os.path.isfile(real) and src in real.parents
        if real == src or inside:
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
    _probe(parent, path, what)
    try:
        name_max = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    new = [path, *path.parents][: len(path.relative_to(parent).parts)]
    for part in new:
        # atomic_path writes ".NAME.XXXXXXXX.tmpSUFFIX" next to the target
        extra = 14 + len(os.fsencode(part.suffix)) if part == path else 0
        if len(os.fsencode(part.name)) + extra > name_max:
            raise OutputError(
                f"{what} {path}: the name {part.name[:40]!r}... is too long for "
                f"this file system ({name_max} bytes at most)"
            )


def _probe(folder: Path, path: Path, what: str) -> None:
    """Create and remove a file in ``folder``, or raise :class:`OutputError`.

    Permission bits do not bind root, and read-only or virtual file systems
    (``/proc``, ``/sys``) only say so when one tries.
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=".htmp-infer-probe.", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"{what} {path}: cannot create a file in {folder} ({exc.strerror})"
        ) from None
    os.close(fd)
    os.unlink(probe)


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
    try:
        if p.is_dir():
            raise OutputError(f"{what} {p}: is a folder, expected a file name")
        _writable_parent(p, what)
        _refuse_input(p)
    except OSError as exc:  # ENAMETOOLONG, ELOOP... from stat()
        raise OutputError(f"{what} {p}: {exc.strerror or exc}") from None
    return p


def check_distinct(*paths: str | Path | None) -> None:
    """Refuse two outputs of one command that are the same file."""
    seen: dict[Path, Path] = {}
    for p in paths:
        if p is None:
            continue
        real = _realpath(p)
        if real in seen:
            raise OutputError(f"outputs {seen[real]} and {p} are the same file")
        seen[real] = Path(p)


def check_output_dir(path: str | Path, *, what: str = "output folder") -> Path:
    """Check, before any work, that ``path`` is (or can be made) a writable folder."""
    p = Path(path)
    _name_ok(p, what)
    try:
        if p.exists() and not p.is_dir():
            raise OutputError(f"{what} {p}: exists and is not a folder")
        if p.is_dir():
            if not os.access(p, os.W_OK | os.X_OK):
                raise OutputError(f"{what} {p}: is not writable")
            _probe(p, p, what)
        else:
            _writable_parent(p, what)
        _refuse_input(p)
    except OSError as exc:  # ENAMETOOLONG, ELOOP... from stat()
        raise OutputError(f"{what} {p}: {exc.strerror or exc}") from None
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
    except OSError as exc:  # a full disk, a folder that vanished
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        reason = exc.strerror or str(exc).splitlines()[0]
        raise OutputError(f"output {target}: cannot write ({reason})") from exc
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
