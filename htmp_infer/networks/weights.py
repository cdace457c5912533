"""Lazy checkpoint readers: index every tensor, read one at a time.

:func:`open_weights` lists the tensors of a checkpoint (name, shape, dtype) from
the file headers only; each :class:`TensorRef` carries a ``load`` that reads that
one tensor when called, so a model larger than memory is scanned layer by layer.

Formats
-------
``.safetensors``
    Indexed with :func:`safetensors.safe_open`. NumPy has no bfloat16, so BF16
    tensors are read from the raw bytes and widened (exactly) to float32.
directory (Hugging Face layout)
    ``model.safetensors.index.json``, else every ``*.safetensors`` (sorted), else
    ``pytorch_model.bin.index.json``, ``pytorch_model.bin``, ``*.pt``/``*.pth``/
    ``*.bin`` (trainer state such as ``optimizer.pt`` ignored), else ``*.npz``.
``.pt``, ``.pth``, ``.bin``
    ``torch.load(weights_only=True, mmap=True)``, from the optional ``torch``
    extra: a state dict, or a dict holding one under ``"state_dict"``/``"model"``.
    Pickles that would execute code are refused. Legacy (pre-zip) files cannot
    be memory-mapped and are read whole.
``.npz``, ``.npy``
    ``allow_pickle=False``; an ``.npy`` is one tensor named after the file stem.

``load()`` returns the stored dtype, except that bfloat16 (and the float8 types)
become float32. Every failure, at open or at load (including a file changed
since it was indexed), is a one-line :class:`WeightsError` naming the file as
the user gave it. A directory is untrusted input: a shard or file that resolves,
links followed, outside it is refused (:func:`_confined`); safetensors headers
are checked field by field (:mod:`htmp_infer.networks.safetensors_header`) and ``.npy``
members must hold exactly the bytes their shape and dtype need.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
from safetensors import SafetensorError, safe_open

from htmp_infer.errors import WeightsError
from htmp_infer.io import write_atomic
from htmp_infer.networks.safetensors_header import read_header

__all__ = [
    "TensorRef",
    "flatten_pytree",
    "open_weights",
    "pytree_tensors",
    "save_pytree_npz",
]


class TensorRef(NamedTuple):
    """One tensor of a checkpoint, not yet read.

    Attributes
    ----------
    name : str
        Tensor name as stored (``"encoder.layer.0.attention.self.query.weight"``).
    shape : tuple of int
    dtype : str
        NumPy-style name: ``"float32"``, ``"bfloat16"``, ``"int64"``, ...
    load : callable
        Reads this tensor only; returns an ndarray (bfloat16 as float32).
    source : str
        The file it comes from (``"<pytree>"`` for in-memory trees).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    load: Callable[[], np.ndarray]
    source: str


_ST_SPECIAL = {"BF16": "bfloat16", "BOOL": "bool", "F8_E4M3": "float8_e4m3fn"}
_ST_SPECIAL["F8_E5M2"] = "float8_e5m2"
_TORCH_SUFFIXES = (".pt", ".pth", ".bin")
_SUFFIXES = (".safetensors", *_TORCH_SUFFIXES, ".npz", ".npy")
_TRAINER_FILES = re.compile(r"(training_args|optimizer|scheduler|scaler|rng_state)")
_READ_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, TypeError, KeyError)
_READ_ERRORS += (EOFError, RuntimeError, zipfile.BadZipFile, SafetensorError)


def _err(path: Path, msg: str, exc: BaseException | None = None) -> WeightsError:
    """``"<path>: msg (first line of exc)"``, the path as the user gave it."""
    if exc is not None:
        lines = str(exc).strip().splitlines()
        msg += f" ({lines[0] if lines else type(exc).__name__})"
    return WeightsError(f"{path}: {msg}")


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _ref(
    path: Path, name: str, shape: tuple[int, ...], dtype: str, read: Any
) -> TensorRef:
    """A TensorRef whose ``load`` calls ``read``, refusing a changed file."""
    stamp = _stamp(path)

    def load() -> np.ndarray:
        try:
            if _stamp(path) != stamp:
                raise _err(path, "changed since it was opened; open it again")
            arr = np.asarray(read())
        except WeightsError:
            raise
        except _READ_ERRORS as exc:
            raise _err(path, f"cannot read tensor {name!r}", exc) from None
        if arr.shape != shape:
            raise _err(path, f"tensor {name!r} is {arr.shape}, indexed as {shape}")
        return arr

    return TensorRef(name, shape, dtype, load, str(path))


# --- safetensors -------------------------------------------------------------
def _read_bf16(path: Path, offset: int, shape: tuple[int, ...]) -> np.ndarray:
    count = math.prod(shape)
    u16 = np.fromfile(path, dtype="<u2", count=count, offset=offset)
    if u16.size != count:
        raise ValueError(f"file ends after {u16.size} of {count} values")
    return (u16.astype(np.uint32) << 16).view(np.float32).reshape(shape)


def _read_safetensor(path: Path, name: str) -> np.ndarray:
    with safe_open(str(path), framework="numpy") as f:
        return np.asarray(f.get_tensor(name))


def _st_dtype(code: str) -> str:
    """safetensors dtype code ("F32", "I64", "BF16") -> NumPy-style name."""
    kind = {"F": "float", "I": "int", "U": "uint"}.get(code[:1])
    if kind and code[1:].isdigit():
        return kind + code[1:]
    return _ST_SPECIAL.get(code, code.lower())


def _open_safetensors(path: Path) -> list[TensorRef]:
    header, base = read_header(path, str(path))
    with safe_open(str(path), framework="numpy") as f:
        slices = [(k, f.get_slice(k)) for k in f.keys()]
        index = [(k, tuple(s.get_shape()), str(s.get_dtype())) for k, s in slices]
    refs = []
    for name, shape, code in index:
        offset = base + int(header[name]["data_offsets"][0])
        read = partial(_read_safetensor, path, name)
        if code == "BF16":
            read = partial(_read_bf16, path, offset, shape)
        refs.append(_ref(path, name, shape, _st_dtype(code), read))
    return refs


# --- PyTorch -----------------------------------------------------------------
def _torch_numpy(tensor: Any, torch: Any) -> np.ndarray:
    t = tensor.detach().cpu()
    if t.is_floating_point() and t.dtype not in (torch.float16, torch.float64):
        t = t.to(torch.float32)  # bfloat16, float8: NumPy has no such dtype
    return np.asarray(t.numpy())


def _torch_load(path: Path, torch: Any) -> Any:
    load = partial(torch.load, path, map_location="cpu", weights_only=True)
    try:
        try:
            return load(mmap=True)
        except RuntimeError:  # legacy (pre-zip) files cannot be memory-mapped
            return load(mmap=False)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found is None and not re.search(
            r"global|reduce|allowlist|build", text, re.I
        ):
            raise _err(path, "not a PyTorch checkpoint (unpickling failed)") from None
        needs = f" (it needs {found.group(1)})" if found else ""
        msg = f"refused: loading it would execute code{needs}; save a state_dict"
        raise _err(path, msg + " or use safetensors") from None


def _open_torch(path: Path) -> list[TensorRef]:
    try:
        import torch
    except ImportError:
        msg = "reading PyTorch checkpoints needs torch; install the extra: "
        raise _err(path, msg + "pip install 'htmp-infer[torch]'") from None
    obj = _torch_load(path, torch)
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise _err(path, f"holds a {type(obj).__name__}, not a state dict")
    refs = []
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            dtype = str(value.dtype).removeprefix("torch.")
            read = partial(_torch_numpy, value, torch)
            refs.append(_ref(path, str(key), tuple(value.shape), dtype, read))
    return refs


# --- NumPy -------------------------------------------------------------------
def _npy_header(
    fh: IO[bytes], path: Path, name: str
) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype name of an ``.npy`` stream; checks ``fh`` holds the data."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    if dtype.hasobject:
        raise _err(path, f"{name}: refused: holds pickled Python objects")
    if any(d < 0 for d in shape):
        raise _err(path, f"{name}: shape {shape} has a negative dimension")
    return tuple(shape), dtype


def _check_size(
    path: Path, name: str, shape: tuple[int, ...], dtype: np.dtype[Any], data: int
) -> None:
    """The data bytes of an ``.npy`` are exactly what its shape and dtype need."""
    need = math.prod(shape) * dtype.itemsize
    if data != need:
        what = "truncated: " if data < need else ""
        msg = f"{name}: {what}holds {data} data bytes, its shape {shape} of {dtype}"
        raise _err(path, f"{msg} needs {need}")


def _read_npz(path: Path, name: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        return np.asarray(npz[name])


def _open_npz(path: Path) -> list[TensorRef]:
    refs = []
    with zipfile.ZipFile(path) as zf:
        seen: set[str] = set()
        for info in (i for i in zf.infolist() if i.filename.endswith(".npy")):
            name = info.filename.removesuffix(".npy")
            if name in seen:
                raise _err(path, f"{name}: two members of that name")
            seen.add(name)
            with zf.open(info) as fh:
                shape, dtype = _npy_header(fh, path, name)
                _check_size(path, name, shape, dtype, info.file_size - fh.tell())
            read = partial(_read_npz, path, name)
            refs.append(_ref(path, name, shape, dtype.name, read))
    return refs


def _open_npy(path: Path) -> list[TensorRef]:
    with open(path, "rb") as fh:
        shape, dtype = _npy_header(fh, path, path.stem)
        _check_size(path, path.stem, shape, dtype, path.stat().st_size - fh.tell())
    read = partial(np.load, path, allow_pickle=False)
    return [_ref(path, path.stem, shape, dtype.name, read)]


# --- files and directories ---------------------------------------------------
def _open_file(path: Path) -> list[TensorRef]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise _err(path, "no such file")
    if suffix not in _SUFFIXES:
        kinds = ", ".join(_SUFFIXES)
        raise _err(path, f"unsupported file type {suffix or '(none)'}; use {kinds}")
    try:
        if suffix == ".safetensors":
            return _open_safetensors(path)
        if suffix in _TORCH_SUFFIXES:
            return _open_torch(path)
        return _open_npz(path) if suffix == ".npz" else _open_npy(path)
    except WeightsError:
        raise
    except _READ_ERRORS as exc:
        raise _err(path, "unreadable", exc) from None


def _confined(directory: Path, file: Path) -> Path:
    """``file``, refused when it resolves (links followed) outside ``directory``.

    A checkpoint directory is untrusted input: its index and links must not make
    the reader open files elsewhere. One exception: in a Hugging Face hub cache
    snapshot (``models--x/snapshots/<rev>/``) the files are links into the
    repository's own ``blobs/`` folder, which is allowed.
    """
    root = directory.resolve()
    allowed = [root]
    if root.parent.name == "snapshots" and (root.parent.parent / "blobs").is_dir():
        allowed.append(root.parent.parent / "blobs")
    try:
        real = file.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # link loops, NUL bytes
        raise _err(file, "cannot be resolved", exc) from None
    if not any(real.is_relative_to(a) for a in allowed):
        msg = f"resolves to {real}, outside the checkpoint directory {directory}"
        raise _err(file, f"{msg}; refused")
    return file


def _shard_map(index: Path) -> dict[str, str]:
    """``weight_map`` of an ``*.index.json``: tensor name -> shard file name."""
    _confined(index.parent, index)
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        names = dict(weight_map.items())
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _err(index, "not a shard index", exc) from None
    except RecursionError:
        raise _err(index, "not a shard index (nested too deeply)") from None
    for name, shard in names.items():
        where = f"weight_map[{name!r}]"
        if not isinstance(shard, str) or not shard or "\0" in shard:
            raise _err(index, f"{where} is {shard!r}, not a file name")
        rel = Path(shard)
        if rel.is_absolute() or ".." in rel.parts:
            msg = f"{where}: shard {shard!r} is outside the checkpoint directory"
            raise _err(index, f"{msg}; refused")
    for shard in dict.fromkeys(names.values()):
        _confined(index.parent, index.parent / shard)
        if not (index.parent / shard).is_file():
            raise _err(index, f"names shard {shard}, which is missing")
    return names


def _found_files(path: Path) -> tuple[list[Path], Path | None]:
    """The files of a directory's checkpoint, and its shard index if any."""
    st_index = path / "model.safetensors.index.json"
    pt_index = path / "pytorch_model.bin.index.json"
    if st_index.is_file() or st_index.is_symlink():
        return [
            path / s for s in dict.fromkeys(_shard_map(st_index).values())
        ], st_index
    if found := sorted(path.glob("*.safetensors")):
        return found, None
    if pt_index.is_file() or pt_index.is_symlink():
        return [
            path / s for s in dict.fromkeys(_shard_map(pt_index).values())
        ], pt_index
    if (path / "pytorch_model.bin").is_file():
        return [path / "pytorch_model.bin"], None
    torch_files = [
        p for p in sorted(path.iterdir())
        if p.suffix.lower() in _TORCH_SUFFIXES and not _TRAINER_FILES.match(p.name)
    ]  # fmt: skip
    if found := torch_files or sorted(path.glob("*.npz")):
        return found, None
    raise _err(path, "no checkpoint in directory (*.safetensors, *.pt, *.bin, *.npz)")


def _checkpoint_files(path: Path) -> tuple[list[Path], Path | None]:
    """:func:`_found_files`, each checked to lie inside the directory."""
    files, index = _found_files(path)
    return [_confined(path, f) for f in files], index


def open_weights(path: str | Path) -> list[TensorRef]:
    """Index every tensor of a checkpoint without reading the data.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors``, ``.pt``/``.pth``/``.bin``, ``.npz`` or ``.npy`` file,
        or a (Hugging Face style) directory; see the module docstring.

    Returns
    -------
    list of TensorRef
        In file order (shards in index order); ``load()`` reads one tensor.

    Raises
    ------
    WeightsError
        Missing path, unknown type, corrupt or truncated file, an index naming a
        missing shard or tensor, one name in two files, or no tensor at all.
    """
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"{p}: no such file or directory")
    files, index = _checkpoint_files(p) if p.is_dir() else ([p], None)
    refs: list[TensorRef] = []
    where: dict[str, str] = {}
    for file in files:
        for ref in _open_file(file):
            if ref.name in where:
                other = Path(where[ref.name]).name
                raise _err(file, f"tensor {ref.name!r} is also in {other}")
            where[ref.name] = Path(ref.source).name
            refs.append(ref)
    if index is not None:
        for name, shard in _shard_map(index).items():
            if where.get(name) != Path(shard).name:
                raise _err(index, f"tensor {name!r} is not in {shard}")
    if not refs:
        raise _err(p, "no tensors")
    return refs


# --- JAX / Flax pytrees -------------------------------------------------------
_LEAF_TYPES = (bool, int, float, np.generic, np.ndarray)


def _is_leaf(node: Any) -> bool:
    return isinstance(node, _LEAF_TYPES) or hasattr(node, "__jax_array__") or (
        hasattr(node, "shape") and hasattr(node, "dtype")
    )  # fmt: skip


def _children(node: Any, sep: str) -> list[tuple[str, Any]]:
    if isinstance(node, Mapping):  # dict, flax FrozenDict
        return [(str(k), v) for k, v in node.items()]
    if isinstance(node, list | tuple):  # NamedTuples by field name
        return list(
            zip(map(str, getattr(node, "_fields", range(len(node)))), node, strict=True)
        )
    import jax  # other registered pytree nodes: dataclasses, flax structs

    flat = jax.tree_util.tree_flatten_with_path(node)[0]
    if len(flat) == 1 and flat[0][1] is node:
        raise WeightsError(f"<pytree>: a {type(node).__name__} leaf is not an array")
    keys = [sep.join(str(getattr(e, "key", getattr(e, "name", getattr(e, "idx", e))))
                     for e in path) for path, _ in flat]  # fmt: skip
    return list(zip(keys, (leaf for _, leaf in flat), strict=True))


def _leaves(node: Any, prefix: str, sep: str, out: dict[str, Any]) -> dict[str, Any]:
    if node is None:
        return out
    if _is_leaf(node):
        if prefix in out:
            raise WeightsError(f"<pytree>: two leaves flatten to {prefix!r}")
        out[prefix] = node
        return out
    for key, child in _children(node, sep):
        _leaves(child, f"{prefix}{sep}{key}" if prefix else key, sep, out)
    return out


def _as_numpy(leaf: Any) -> np.ndarray:
    arr = np.asarray(leaf)
    if arr.dtype.kind == "V":  # ml_dtypes bfloat16 / float8 (JAX arrays)
        arr = arr.astype(np.float32)
    return arr


def flatten_pytree(tree: Any, sep: str = "/") -> dict[str, np.ndarray]:
    """Flatten a JAX/Flax parameter pytree to ``{"Dense_0/kernel": array}``.

    Mappings (``dict``, ``FrozenDict``), lists and tuples (NamedTuples by field
    name) and other registered pytree nodes are walked; ``None`` is dropped;
    bfloat16 and float8 leaves become float32 (``.npy`` cannot store them).
    """
    return {k: _as_numpy(v) for k, v in _leaves(tree, "", sep, {}).items()}


def save_pytree_npz(tree: Any, path: str | Path) -> None:
    """Write :func:`flatten_pytree` of ``tree`` to an ``.npz``, atomically."""
    flat = flatten_pytree(tree)

    def _write(tmp: Path) -> None:  # np.savez without its reserved keyword names
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, arr in flat.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, arr, allow_pickle=False)

    write_atomic(os.fspath(path), _write)


def pytree_tensors(tree: Any) -> list[TensorRef]:
    """An in-memory pytree as TensorRefs (source ``"<pytree>"``, ``/`` separated).

    Leaves (JAX arrays included) are converted to NumPy only when loaded.
    """
    refs = []
    for key, leaf in _leaves(tree, "", "/", {}).items():
        dtype = str(leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype)
        refs.append(
            TensorRef(key, np.shape(leaf), dtype, partial(_as_numpy, leaf), "<pytree>")
        )
    return refs
