"""Validation of a safetensors header, before the library sees the file.

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes
of UTF-8 JSON (an object: tensor name -> ``{"dtype", "shape", "data_offsets"}``,
plus an optional ``"__metadata__"`` object of strings), then the data. Offsets
are relative to the end of the header; the tensors tile the data exactly, in
any order, with no gap, overlap or trailing byte.

:func:`read_header` checks all of that, so that a hostile or damaged file is
refused with a one-line :class:`~htmp_infer.errors.WeightsError` saying what is
wrong (which field of which tensor) instead of a library message or a wrong
"truncated".
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from htmp_infer.errors import WeightsError

__all__ = ["DTYPE_BITS", "MAX_HEADER", "read_header"]

#: Bits per element of every safetensors dtype code.
DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8}
DTYPE_BITS |= {"F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16}
DTYPE_BITS |= {"I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64}
DTYPE_BITS |= {"C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}

#: Largest header the safetensors library accepts (bytes).
MAX_HEADER = 100_000_000


def _fail(shown: str, msg: str) -> WeightsError:
    return WeightsError(f"{shown}: {msg}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"name {key!r} appears twice")
        out[key] = value
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tensor(shown: str, name: str, info: Any) -> tuple[int, int, int]:
    """Check one entry; return (start, end, expected byte count)."""
    where = f"tensor {name!r}"
    if not isinstance(info, dict):
        raise _fail(shown, f"{where}: entry is a {type(info).__name__}, not an object")
    if missing := [k for k in ("dtype", "shape", "data_offsets") if k not in info]:
        raise _fail(shown, f"{where}: missing field {', '.join(missing)}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _fail(shown, f"{where}: dtype {dtype!r} is unknown")
    if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
        raise _fail(shown, f"{where}: shape {shape!r} is not a list of integers")
    if any(d < 0 for d in shape):
        raise _fail(shown, f"{where}: shape {shape} has a negative dimension")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(v) for v in offsets)
    ):
        raise _fail(shown, f"{where}: data_offsets {offsets!r} is not [begin, end]")
    start, end = offsets
    if start < 0 or end < 0:
        raise _fail(shown, f"{where}: data_offsets {offsets} are negative")
    if start > end:
        raise _fail(shown, f"{where}: data_offsets {offsets} are reversed")
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8:
        raise _fail(shown, f"{where}: shape {shape} of {dtype} is not whole bytes")
    return start, end, bits // 8


def read_header(path: Path, shown: str) -> tuple[dict[str, Any], int]:
    """Parse and check the header of ``path``; return it and the data offset.

    Parameters
    ----------
    path : Path
        The file to read.
    shown : str
        How the file is named in messages (the path the user gave).

    Returns
    -------
    header : dict
        Tensor name -> ``{"dtype", "shape", "data_offsets"}`` (and
        ``"__metadata__"`` when present).
    base : int
        Byte offset of the data (``8 + n``).

    Raises
    ------
    WeightsError
        Header length absurd or past the end of the file; header not UTF-8 JSON,
        not an object, or with a duplicate name; metadata not an object of
        strings; a tensor with an unknown dtype, a bad shape, negative, reversed
        or out-of-file offsets, a byte count that disagrees with its shape and
        dtype; tensors that overlap, leave a gap, or leave trailing bytes.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise _fail(shown, f"not a safetensors file (only {size} bytes)")
        n = struct.unpack("<Q", head)[0]
        if n > MAX_HEADER:
            raise _fail(shown, f"header length {n} is absurd (limit {MAX_HEADER})")
        if n > size - 8:
            raise _fail(
                shown, f"header length {n} runs past the end of the file ({size} bytes)"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise _fail(shown, "header is not UTF-8 (not a safetensors file?)") from None
    except (ValueError, RecursionError) as exc:  # also duplicates, deep nesting
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(shown, f"header is not valid JSON ({msg})") from None
    if not isinstance(header, dict):
        raise _fail(shown, f"header is a JSON {type(header).__name__}, not an object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _fail(shown, "__metadata__ is not an object of strings")
    base, data = 8 + n, size - 8 - n
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end, nbytes = _tensor(shown, name, info)
        if end > data:
            raise _fail(
                shown,
                f"tensor {name!r}: data_offsets [{start}, {end}] run past the end "
                f"of the file ({data} data bytes; truncated?)",
            )
        if end - start != nbytes:
            raise _fail(
                shown,
                f"tensor {name!r}: data_offsets [{start}, {end}] hold {end - start} "
                f"bytes, its shape {info['shape']} of {info['dtype']} needs {nbytes}",
            )
        spans.append((start, end, name))
    spans.sort()
    at, prev = 0, ""
    for start, end, name in spans:
        if start < at:
            raise _fail(shown, f"tensors {prev!r} and {name!r} overlap")
        if start > at:
            raise _fail(shown, f"gap of {start - at} bytes before tensor {name!r}")
        at, prev = end, name
    if at != data:
        raise _fail(shown, f"{data - at} trailing bytes after the last tensor")
    return header, base
