r"""Spectra bundles: the eigenvalues and shapes of every matrix of one network.

A bundle is what :func:`htmp_infer.networks.eigen.compute_bundle` makes from a
checkpoint,
what ``htmp-infer scan`` accepts instead of weights, and what the shipped real
default (``data/minilm_spectra.npz``) is.

File format (``.npz``, no pickles, ``format = "htmp-infer-spectra/1"``)
----------------------------------------------------------------------
``names``, ``kinds`` (str, one per layer), ``depths`` (int64, ``-1`` when the name
carries no block index), ``shapes`` (int64, ``L x 2``: the matrix shape the
spectrum was computed from), ``offsets`` (int64, ``L + 1``) and ``eigenvalues``
(float64, concatenated: layer ``l`` is ``eigenvalues[offsets[l]:offsets[l+1]]``,
all :math:`\min(\text{shape})` eigenvalues of :math:`W^\top W` in ascending order,
numerical zeros stored as ``0``), ``skipped_names``, ``skipped_shapes`` (str such
as ``"384"`` or ``"2x384"``), ``skipped_reasons``, ``source`` (str) and
``meta`` (a JSON object of strings: provenance, options).

Every field is required. :meth:`SpectraBundle.load` checks the file against this
schema before it builds anything (:func:`read_fields`): each field's dtype kind,
rank and byte count from its header (pickled object arrays refused), then that
the offsets tile the eigenvalues with ``min(shape)`` values per layer, the
eigenvalues are finite and non-negative, names are unique and kinds known, and
``meta`` is a JSON object of strings. A failure is one
:class:`~htmp_infer.errors.SpectrumError` line naming the path given and the
field.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from htmp_infer.errors import SpectrumError
from htmp_infer.io import write_atomic
from htmp_infer.networks.layers import KINDS, Skipped
from htmp_infer.spectrum import Spectrum

__all__ = ["FORMAT", "LayerSpectrum", "SpectraBundle", "is_bundle"]

FORMAT = "htmp-infer-spectra/1"


@dataclass(frozen=True)
class LayerSpectrum:
    """The spectrum of one weight matrix.

    Attributes
    ----------
    name : str
        Tensor name (with a ``[q]``/``[i,j]`` suffix for split matrices).
    kind : str
        Layer kind (:data:`htmp_infer.networks.layers.KINDS`).
    depth : int
        Block index parsed from the name, ``-1`` when there is none.
    shape : tuple of int
        Shape of the matrix the eigenvalues come from.
    eigenvalues : ndarray
        All :math:`\\min(\\text{shape})` eigenvalues of :math:`W^\\top W`, ascending,
        numerical zeros stored as 0.
    """

    name: str
    kind: str
    depth: int
    shape: tuple[int, int]
    eigenvalues: NDArray[np.float64]

    @property
    def gamma(self) -> float:
        r"""Aspect ratio :math:`\min/\max` of the matrix shape."""
        return min(self.shape) / max(self.shape)

    def spectrum(self) -> Spectrum:
        """The :class:`~htmp_infer.spectrum.Spectrum` (zeros removed and counted)."""
        return Spectrum.from_eigenvalues(
            self.eigenvalues, n_cols=max(self.shape), name=self.name
        )


@dataclass
class SpectraBundle:
    """The layer spectra of one network, and what was skipped and why.

    Attributes
    ----------
    layers : list of LayerSpectrum
    skipped : list of Skipped
        Every tensor that is not in ``layers``, with the reason.
    source : str
        Where the spectra come from (a path, a package).
    meta : dict of str to str
        Provenance and the options used.
    """

    layers: list[LayerSpectrum]
    skipped: list[Skipped] = field(default_factory=list)
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[LayerSpectrum]:
        return iter(self.layers)

    def select(self, names: Sequence[str]) -> SpectraBundle:
        """A bundle with the named layers only (in the given order)."""
        by_name = {layer.name: layer for layer in self.layers}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise SpectrumError(f"no layer named {', '.join(missing)} in the bundle")
        return SpectraBundle(
            [by_name[n] for n in names], list(self.skipped), self.source, self.meta
        )

    def save(self, path: str | Path) -> None:
        """Write the bundle atomically (format in the module docstring)."""
        sizes = [layer.eigenvalues.size for layer in self.layers]
        arrays: dict[str, NDArray[np.generic]] = {
            "format": np.asarray(FORMAT),
            "names": np.asarray([x.name for x in self.layers], dtype=str),
            "kinds": np.asarray([x.kind for x in self.layers], dtype=str),
            "depths": np.asarray([x.depth for x in self.layers], dtype=np.int64),
            "shapes": np.asarray(
                [x.shape for x in self.layers], dtype=np.int64
            ).reshape(-1, 2),
            "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "eigenvalues": np.concatenate(
                [np.asarray(x.eigenvalues, dtype=np.float64) for x in self.layers]
                or [np.empty(0)]
            ),
            "skipped_names": np.asarray([s.name for s in self.skipped], dtype=str),
            "skipped_shapes": np.asarray(
                ["x".join(map(str, s.shape)) for s in self.skipped], dtype=str
            ),
            "skipped_reasons": np.asarray([s.reason for s in self.skipped], dtype=str),
            "source": np.asarray(self.source),
            "meta": np.asarray(json.dumps(self.meta, sort_keys=True)),
        }

        def _write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]

        write_atomic(path, _write)

    @classmethod
    def load(cls, path: str | Path) -> SpectraBundle:
        """Read a bundle written by :meth:`save`, checking it against the format.

        Raises
        ------
        SpectrumError
            One line naming ``path`` (as given) and the field: not a zip, not a
            bundle, a missing field, a pickled (object) array, a wrong dtype or
            shape, offsets that do not tile the eigenvalues, a layer whose
            eigenvalue count is not ``min(shape)``, non-finite or negative
            eigenvalues, an unknown kind, duplicate names, no layer, or ``meta``
            that is not a JSON object of strings (:mod:`htmp_infer.bundle_schema`).
        """
        d = read_fields(Path(path), FORMAT)
        off = d["offsets"]
        eig = d["eigenvalues"].astype(np.float64)
        layers = [
            LayerSpectrum(
                str(name),
                str(kind),
                int(depth),
                (int(shape[0]), int(shape[1])),
                eig[off[i] : off[i + 1]].copy(),
            )
            for i, (name, kind, depth, shape) in enumerate(
                zip(d["names"], d["kinds"], d["depths"], d["shapes"], strict=True)
            )
        ]
        skipped = [
            Skipped(str(n), shape, str(r))
            for n, shape, r in zip(
                d["skipped_names"],
                d["skipped_shapes"],
                d["skipped_reasons"],
                strict=True,
            )
        ]
        return cls(layers, skipped, str(d["source"]), d["meta"])


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a spectra bundle (an ``.npz`` with the format tag).

    Only the tag is read; a damaged bundle with the tag is a bundle, and
    :meth:`SpectraBundle.load` says what is wrong with it.
    """
    p = Path(path)
    if p.suffix != ".npz" or not p.is_file():
        return False
    return format_tag(p) == FORMAT


# --- schema check at load ------------------------------------------------------
#: Every field of the format: (dtype kind, number of dimensions).
_FIELDS = {"format": ("U", 0), "names": ("U", 1), "kinds": ("U", 1)}
_FIELDS |= {"depths": ("i", 1), "shapes": ("i", 2), "offsets": ("i", 1)}
_FIELDS |= {"eigenvalues": ("f", 1), "skipped_names": ("U", 1)}
_FIELDS |= {"skipped_shapes": ("U", 1), "skipped_reasons": ("U", 1)}
_FIELDS |= {"source": ("U", 0), "meta": ("U", 0)}
_KIND_NAMES = {"U": "str", "i": "integer", "f": "float"}
_ZIP_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, EOFError, KeyError)
_ZIP_ERRORS += (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)
_ZIP_ERRORS += (struct.error, MemoryError, RecursionError)


def _bad(path: Path, key: str, what: str) -> SpectrumError:
    return SpectrumError(f"{path}: field {key!r}: {what}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _header(fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """Shape, dtype and header length of an ``.npy`` stream, data not read."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    return tuple(shape), dtype, fh.tell()


def _check_member(path: Path, zf: zipfile.ZipFile, key: str) -> None:
    """The header of one field: no pickle, right kind and rank, bytes all there."""
    kind, ndim = _FIELDS[key]
    try:
        info = zf.getinfo(f"{key}.npy")
    except KeyError:
        why = f"missing (not a spectra bundle, {FORMAT})" if key == "format" else ""
        raise _bad(path, key, why or "missing") from None
    try:
        with zf.open(info) as fh:
            shape, dtype, head = _header(fh)
    except _ZIP_ERRORS as exc:
        raise _bad(path, key, f"unreadable ({_first_line(exc)})") from None
    if dtype.hasobject:
        raise _bad(path, key, "refused: holds pickled Python objects")
    if dtype.kind != kind and not (kind == "i" and dtype.kind == "u"):
        raise _bad(path, key, f"dtype {dtype} is not {_KIND_NAMES[kind]}")
    if len(shape) != ndim:
        raise _bad(path, key, f"shape {shape} is not {ndim}-D")
    need = math.prod(shape) * dtype.itemsize
    if info.file_size - head != need:
        have = info.file_size - head
        raise _bad(path, key, f"holds {have} data bytes, its shape needs {need}")


def format_tag(path: Path) -> str | None:
    """The ``format`` field of an ``.npz``, or None when it has no readable one."""
    try:
        with zipfile.ZipFile(path) as zf:
            _check_member(path, zf, "format")
            with zf.open("format.npy") as fh:
                return str(np.lib.format.read_array(fh, allow_pickle=False))
    except SpectrumError:
        return None
    except _ZIP_ERRORS:
        return None


def read_fields(path: Path, tag: str) -> dict[str, Any]:
    """Every field of the bundle at ``path``, checked (see :meth:`SpectraBundle.load`).

    ``meta`` is returned parsed (a dict of str) and ``skipped_shapes`` as tuples.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            for key in _FIELDS:
                _check_member(path, zf, key)
            d: dict[str, Any] = {}
            for key in _FIELDS:
                try:
                    with zf.open(f"{key}.npy") as fh:
                        d[key] = np.lib.format.read_array(fh, allow_pickle=False)
                except _ZIP_ERRORS as exc:
                    raise _bad(path, key, f"unreadable ({_first_line(exc)})") from None
    except SpectrumError:
        raise
    except _ZIP_ERRORS as exc:
        raise SpectrumError(
            f"{path}: not a spectra bundle ({_first_line(exc)})"
        ) from None
    if str(d["format"]) != tag:
        raise _bad(path, "format", f"{str(d['format'])[:40]!r} is not {tag!r}")
    _check_layers(path, d)
    _check_skipped(path, d)
    d["meta"] = _meta(path, str(d["meta"]))
    return d


def _check_layers(path: Path, d: dict[str, Any]) -> None:
    names = d["names"]
    if d["shapes"].shape[1] != 2:
        raise _bad(path, "shapes", f"shape {d['shapes'].shape}, expected (layers, 2)")
    sizes = {"names": names.size, "kinds": d["kinds"].size}
    sizes |= {"depths": d["depths"].size, "shapes": d["shapes"].shape[0]}
    sizes["offsets"] = d["offsets"].size - 1
    n = max(sizes.values(), key=list(sizes.values()).count)  # what most agree on
    for key, size in sizes.items():
        if size != n:
            k = 1 if key == "offsets" else 0  # offsets has one entry more
            msg = f"{size + k} entries, expected {n + k} (the other fields give {n})"
            raise _bad(path, key, msg)
    if n == 0:
        raise _bad(path, "names", "no layer (empty bundle)")
    if "" in names:
        raise _bad(path, "names", "an empty name")
    if len(set(names.tolist())) != n:
        dup = next(x for x in names.tolist() if names.tolist().count(x) > 1)
        raise _bad(path, "names", f"{dup!r} appears twice")
    if unknown := sorted(set(d["kinds"].tolist()) - set(KINDS)):
        raise _bad(
            path, "kinds", f"unknown kind {unknown[0]!r}; valid: {', '.join(KINDS)}"
        )
    if (d["depths"] < -1).any():
        raise _bad(path, "depths", f"{int(d['depths'].min())} is below -1")
    shapes = d["shapes"].astype(np.int64)
    if (d["shapes"] < 1).any() or (shapes != d["shapes"]).any():
        raise _bad(path, "shapes", "a dimension is not a positive integer")
    eig, off = d["eigenvalues"], d["offsets"].astype(np.int64)
    if (off != d["offsets"]).any() or off[0] != 0 or off[-1] != eig.size:
        msg = f"must run from 0 to {eig.size} (the eigenvalue count)"
        raise _bad(path, "offsets", f"{msg}, got {int(off[0])} to {int(off[-1])}")
    counts, want = np.diff(off), shapes.min(axis=1)
    if (bad := np.flatnonzero(counts != want)).size:
        i = int(bad[0])
        raise _bad(
            path,
            "offsets",
            f"layer {str(names[i])!r} has {int(counts[i])} eigenvalues, its shape "
            f"{'x'.join(map(str, shapes[i]))} has {int(want[i])}",
        )
    if (n_bad := int(np.count_nonzero(~np.isfinite(eig)))) > 0:
        raise _bad(path, "eigenvalues", f"{n_bad} NaN/inf values")
    if (eig < 0).any():
        raise _bad(path, "eigenvalues", f"{int((eig < 0).sum())} negative values")


def _check_skipped(path: Path, d: dict[str, Any]) -> None:
    n = d["skipped_names"].size
    for key in ("skipped_shapes", "skipped_reasons"):
        if d[key].size != n:
            raise _bad(path, key, f"has {d[key].size} entries, skipped_names {n}")
    shapes = []
    for text in d["skipped_shapes"].tolist():
        parts = text.split("x") if text else []
        if not all(p.isascii() and p.isdigit() for p in parts):
            raise _bad(
                path, "skipped_shapes", f"{text[:40]!r} is not a shape like 2x384"
            )
        shapes.append(tuple(int(p) for p in parts))
    d["skipped_shapes"] = shapes


def _meta(path: Path, text: str) -> dict[str, str]:
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _bad(path, "meta", f"not JSON ({_first_line(exc)})") from None
    if not isinstance(meta, dict):
        raise _bad(path, "meta", f"a JSON {type(meta).__name__}, not an object")
    if bad := [k for k, v in meta.items() if not isinstance(v, str)]:
        raise _bad(path, "meta", f"the value of {bad[0]!r} is not a string")
    return meta
