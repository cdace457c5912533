"""Hostile checkpoints: safetensors headers, shard indexes, NumPy and PyTorch files.

Every case goes through ``htmp-infer scan`` (or ``compare-layers``) or through
:func:`htmp_infer.networks.weights.open_weights` and must end in one line naming the
path
the user gave, exit 2, nothing written: never a traceback, never a file read
from outside the checkpoint directory, never a wrong success.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_refused, run_cli
from safetensors.numpy import save_file

from htmp_infer.errors import HTMPError, WeightsError
from htmp_infer.networks.eigen import compute_bundle
from htmp_infer.networks.layers import SelectionError, select_matrices
from htmp_infer.networks.weights import open_weights

RNG = np.random.default_rng(0)
GOOD = RNG.standard_normal((24, 40)).astype(np.float32)
NAME = "encoder.layer.0.attention.self.query.weight"


@pytest.fixture(autouse=True)
def _no_caches(monkeypatch):
    monkeypatch.setenv("HTMP_INFER_CACHE", "")
    monkeypatch.setenv("HTMP_INFER_JAX_CACHE", "")


def _scan(path: str | Path, *extra: str):
    return run_cli(
        ["scan", path, "--out", "out", "--no-progress", "--no-plots", *extra]
    )


def _raw(path: Path, header: bytes | object, data: bytes = b"", n: int | None = None):
    """A safetensors file written by hand: length, header, data."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    size = len(blob) if n is None else n
    path.write_bytes(struct.pack("<Q", size) + blob + data)
    return path


def _entry(dtype="F32", shape=(4, 4), offsets=(0, 64)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


DATA = b"\0" * 64

# name -> (header, data, header length override or None, expected words)
SAFETENSORS: dict[str, tuple[object, bytes, int | None, str]] = {
    "negative offset": ({"w": _entry(offsets=(-4, 60))}, DATA, None, "negative"),
    "negative end": ({"w": _entry(offsets=(0, -64))}, DATA, None, "negative"),
    "reversed offsets": ({"w": _entry(offsets=(64, 0))}, DATA, None, "reversed"),
    "offsets past eof": (
        {"w": _entry(shape=(40, 40), offsets=(0, 6400))},
        DATA,
        None,
        "past the end",
    ),
    "huge offsets": (
        {"w": _entry(offsets=(0, 10**30))},
        DATA,
        None,
        "past the end",
    ),
    "header length absurd": ({"w": _entry()}, DATA, 2**62, "absurd"),
    "header length past eof": ({"w": _entry()}, DATA, 5000, "past the end"),
    "header not json": (b"{not json at all", DATA, None, "not valid json"),
    "header not utf-8": (b'{"\xff\xfe": 1}', DATA, None, "not utf-8"),
    "header a list": ([1, 2, 3], b"", None, "not an object"),
    "header a string": ("model", b"", None, "not an object"),
    "header a number": (12, b"", None, "not an object"),
    "dtype unknown": ({"w": _entry(dtype="F128")}, DATA, None, "dtype 'F128'"),
    "dtype not a string": ({"w": _entry(dtype=7)}, DATA, None, "dtype 7"),
    "byte count mismatch": (
        {"w": _entry(shape=(4, 5), offsets=(0, 64))},
        DATA,
        None,
        "needs 80",
    ),
    "negative dimension": (
        {"w": _entry(shape=(-4, -4), offsets=(0, 64))},
        DATA,
        None,
        "negative dimension",
    ),
    "shape not a list": (
        {"w": {"dtype": "F32", "shape": "4x4", "data_offsets": [0, 64]}},
        DATA,
        None,
        "shape",
    ),
    "shape of floats": ({"w": _entry(shape=(4.0, 4.0))}, DATA, None, "shape"),
    "shape of booleans": ({"w": _entry(shape=(True, 64))}, DATA, None, "shape"),
    "offsets not a pair": (
        {"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 32, 64]}},
        DATA,
        None,
        "data_offsets",
    ),
    "missing data_offsets": (
        {"w": {"dtype": "F32", "shape": [4, 4]}},
        DATA,
        None,
        "missing field data_offsets",
    ),
    "entry not an object": ({"w": [0, 64]}, DATA, None, "not an object"),
    "overlapping tensors": (
        {"a": _entry(shape=(4, 2), offsets=(0, 32)), "b": _entry(offsets=(16, 80))},
        b"\0" * 80,
        None,
        "overlap",
    ),
    "gap between tensors": (
        {"a": _entry(shape=(2, 2), offsets=(16, 32))},
        b"\0" * 32,
        None,
        "gap",
    ),
    "trailing bytes": ({"w": _entry()}, DATA + b"\0" * 8, None, "trailing"),
    "metadata not strings": (
        {"__metadata__": {"n": 3}, "w": _entry()},
        DATA,
        None,
        "__metadata__",
    ),
    "duplicate names": (
        b'{"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}, '
        b'"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}',
        DATA,
        None,
        "appears twice",
    ),
    "deeply nested header": (b"[" * 50_000 + b"]" * 50_000, b"", None, "json"),
    "5000-digit integer": (
        b'{"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, '
        + b"9" * 5000
        + b"]}}",
        DATA,
        None,
        "json",
    ),
    "metadata only": ({"__metadata__": {"a": "b"}}, b"", None, "no tensors"),
}


@pytest.mark.parametrize("case", SAFETENSORS, ids=list(SAFETENSORS))
def test_scan_refuses_a_hostile_safetensors_file(case, hostile_cwd, unchanged):
    header, data, n, words = SAFETENSORS[case]
    _raw(hostile_cwd / "ck" / "bad.safetensors", header, data, n)
    unchanged.start()
    line = assert_refused(_scan("ck/bad.safetensors"), match=words)
    assert "ck/bad.safetensors:" in line  # the path as the user gave it


@pytest.mark.parametrize("size", [0, 3, 7])
def test_too_short_for_a_header(size, hostile_cwd, unchanged):
    (hostile_cwd / "short.safetensors").write_bytes(b"\1" * size)
    unchanged.start()
    assert_refused(_scan("short.safetensors"), match="not a safetensors file")


def test_a_truncated_real_file_says_past_the_end(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({NAME: GOOD}, str(path))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(WeightsError, match="past the end of the file"):
        open_weights(path)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, "bf16"])
def test_the_float_dtypes_still_read(tmp_path, dtype):
    """The header check accepts what real checkpoints hold (bf16 by hand)."""
    path = tmp_path / "ok.safetensors"
    if dtype == "bf16":
        bits = (GOOD.view(np.uint32) >> 16).astype("<u2")
        _raw(path, {NAME: _entry("BF16", GOOD.shape, (0, bits.nbytes))}, bits.tobytes())
        want = (bits.astype(np.uint32) << 16).view(np.float32)
    else:
        want = GOOD.astype(dtype)
        save_file({NAME: want, "bias": np.zeros(24, dtype)}, str(path))
    refs = {r.name: r for r in open_weights(path)}
    np.testing.assert_array_equal(refs[NAME].load(), want)


# --- directories: nothing outside may be read ------------------------------------
def _outside(tmp: Path) -> Path:
    """A valid safetensors file outside the checkpoint directory."""
    (tmp / "elsewhere").mkdir(exist_ok=True)
    path = tmp / "elsewhere" / "secret.safetensors"
    save_file({NAME: GOOD}, str(path))
    return path


def _index(ck: Path, weight_map: object, name="model.safetensors.index.json"):
    ck.mkdir(exist_ok=True)
    (ck / name).write_text(json.dumps({"weight_map": weight_map}))


def _dotdot(tmp: Path, ck: Path) -> None:
    _outside(tmp)
    _index(ck, {NAME: "../elsewhere/secret.safetensors"})


def _absolute(tmp: Path, ck: Path) -> None:
    _index(ck, {NAME: str(_outside(tmp))})


def _dotdot_inside_a_name(tmp: Path, ck: Path) -> None:
    _outside(tmp)
    (ck / "sub").mkdir(parents=True)
    _index(ck, {NAME: "sub/../../elsewhere/secret.safetensors"})


def _linked_shard(tmp: Path, ck: Path) -> None:
    _index(ck, {NAME: "model-00001-of-00001.safetensors"})
    (ck / "model-00001-of-00001.safetensors").symlink_to(_outside(tmp))


def _linked_folder(tmp: Path, ck: Path) -> None:
    _index(ck, {NAME: "shards/secret.safetensors"})
    (ck / "shards").symlink_to(_outside(tmp).parent, target_is_directory=True)


def _linked_file_no_index(tmp: Path, ck: Path) -> None:
    ck.mkdir()
    (ck / "model.safetensors").symlink_to(_outside(tmp))


def _linked_index(tmp: Path, ck: Path) -> None:
    ck.mkdir()
    outside = _outside(tmp)
    index = outside.parent / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {NAME: "secret.safetensors"}}))
    (ck / "model.safetensors.index.json").symlink_to(index)


def _linked_npz(tmp: Path, ck: Path) -> None:
    ck.mkdir()
    (tmp / "elsewhere").mkdir()
    np.savez(tmp / "elsewhere" / "w.npz", w=GOOD)
    (ck / "w.npz").symlink_to(tmp / "elsewhere" / "w.npz")


def _linked_pt_index(tmp: Path, ck: Path) -> None:
    _index(ck, {NAME: "../elsewhere/w.bin"}, "pytorch_model.bin.index.json")
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "w.bin").write_bytes(b"\0" * 16)


ESCAPES: dict[str, Callable[[Path, Path], None]] = {
    "index names ../": _dotdot,
    "index names an absolute path": _absolute,
    "index name climbs through a subfolder": _dotdot_inside_a_name,
    "shard is a link outside": _linked_shard,
    "shard folder is a link outside": _linked_folder,
    "lone file is a link outside": _linked_file_no_index,
    "index is a link outside": _linked_index,
    "npz is a link outside": _linked_npz,
    "pytorch index names ../": _linked_pt_index,
}


@pytest.mark.parametrize("case", ESCAPES, ids=list(ESCAPES))
def test_scan_never_reads_outside_the_checkpoint_directory(
    case, hostile_cwd, unchanged
):
    ESCAPES[case](hostile_cwd, hostile_cwd / "ck")
    unchanged.start()
    line = assert_refused(_scan("ck"), match="outside the checkpoint directory")
    assert "ck/" in line


@pytest.mark.parametrize("case", ["index names ../", "shard is a link outside"])
def test_compare_layers_never_reads_outside_either(case, hostile_cwd, unchanged):
    ESCAPES[case](hostile_cwd, hostile_cwd / "ck")
    unchanged.start()
    run = run_cli(["compare-layers", "ck", "--out", "cl.nc", "--no-progress"])
    assert_refused(run, match="outside the checkpoint directory")


@pytest.mark.parametrize("indexed", [True, False])
def test_a_link_loop_is_refused(indexed, hostile_cwd, unchanged):
    ck = hostile_cwd / "ck"
    ck.mkdir()
    (ck / "loop.safetensors").symlink_to("loop.safetensors")
    if indexed:
        _index(ck, {NAME: "loop.safetensors"})
    unchanged.start()
    assert "ck/loop.safetensors" in assert_refused(_scan("ck"))


def test_links_inside_the_directory_are_fine(tmp_path):
    ck = tmp_path / "ck"
    (ck / "blobs").mkdir(parents=True)
    save_file({NAME: GOOD}, str(ck / "blobs" / "abc"))
    _index(ck, {NAME: "model.safetensors"})
    (ck / "model.safetensors").symlink_to("blobs/abc")
    (ref,) = open_weights(ck)
    np.testing.assert_array_equal(ref.load(), GOOD)


def test_a_hugging_face_cache_snapshot_reads_its_blobs(tmp_path):
    """``models--x/snapshots/<rev>/`` links into ``models--x/blobs/``: allowed."""
    repo = tmp_path / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / "0123abc"
    snap.mkdir(parents=True)
    save_file({NAME: GOOD}, str(repo / "blobs" / "deadbeef"))
    (snap / "model.safetensors").symlink_to("../../blobs/deadbeef")
    (ref,) = open_weights(snap)
    np.testing.assert_array_equal(ref.load(), GOOD)
    (snap / "extra.safetensors").symlink_to(_outside(tmp_path))
    with pytest.raises(WeightsError, match="outside the checkpoint directory"):
        open_weights(snap)


INDEXES: dict[str, tuple[str, str]] = {
    "not json": ("{weight_map: ", "not a shard index"),
    "weight_map a list": ('{"weight_map": ["a.safetensors"]}', "not a shard index"),
    "no weight_map": ('{"metadata": {}}', "not a shard index"),
    "shard a number": (json.dumps({"weight_map": {NAME: 5}}), "not a file name"),
    "shard empty": (json.dumps({"weight_map": {NAME: ""}}), "not a file name"),
    "shard missing": (
        json.dumps({"weight_map": {NAME: "model-2.safetensors"}}),
        "missing",
    ),
    "deeply nested": ("[" * 50_000 + "]" * 50_000, "not a shard index"),
    "shard with a nul byte": (
        json.dumps({"weight_map": {NAME: "a\u0000.safetensors"}}),
        "not a file name",
    ),
}


@pytest.mark.parametrize("case", INDEXES, ids=list(INDEXES))
def test_scan_refuses_a_broken_shard_index(case, hostile_cwd, unchanged):
    text, words = INDEXES[case]
    (hostile_cwd / "ck").mkdir()
    (hostile_cwd / "ck" / "model.safetensors.index.json").write_text(text)
    unchanged.start()
    line = assert_refused(_scan("ck"), match=words)
    assert "ck/model.safetensors.index.json" in line


def test_index_naming_a_tensor_its_shard_lacks(hostile_cwd, unchanged):
    ck = hostile_cwd / "ck"
    ck.mkdir()
    save_file({NAME: GOOD}, str(ck / "a.safetensors"))
    _index(ck, {NAME: "a.safetensors", "ghost.weight": "a.safetensors"})
    unchanged.start()
    assert_refused(_scan("ck"), match="'ghost.weight' is not in a.safetensors")


# --- NumPy and PyTorch files --------------------------------------------------------
def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npz_lying_header(path: Path) -> None:
    """A member whose header claims a 1e6 x 1e6 matrix over 16 data bytes."""
    head = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    buf = bytearray(b"\x93NUMPY\x01\x00")
    text = repr(head).encode().ljust(118) + b"\n"
    buf += struct.pack("<H", len(text)) + text + b"\0" * 16
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", bytes(buf))


def _npz_twice(path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(_npz_bytes(w=GOOD))) as src:
        data = src.read("w.npy")
    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        zf.writestr("w.npy", data)
        zf.writestr("w.npy", data)


def _npz_object(path: Path) -> None:
    np.savez(path, w=np.array([{"a": 1}, None], dtype=object))


def _npy_object(path: Path) -> None:
    np.save(path, np.array([[1, "x"], [None, 2.0]], dtype=object), allow_pickle=True)


NUMPY: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "npz truncated": (
        "w.npz",
        lambda p: p.write_bytes(_npz_bytes(w=GOOD)[:-40]),
        "",
    ),
    "npz not a zip": (
        "w.npz",
        lambda p: p.write_bytes(b"PK\3\4 not a zip"),
        "unreadable",
    ),
    "npz empty file": ("w.npz", lambda p: p.write_bytes(b""), "unreadable"),
    "npz pickled objects": ("w.npz", _npz_object, "pickled"),
    "npy pickled objects": ("w.npy", _npy_object, "pickled"),
    "npz header lies about its size": ("w.npz", _npz_lying_header, "truncated"),
    "npz member twice": ("w.npz", _npz_twice, "two members"),
    "npy truncated": (
        "w.npy",
        lambda p: (np.save(p, GOOD), p.write_bytes(p.read_bytes()[:-7])),
        "truncated",
    ),
    "npy garbage": ("w.npy", lambda p: p.write_bytes(b"\x93NUMPY\x01\x00zz"), ""),
    "npz with no matrix": (
        "w.npz",
        lambda p: np.savez(p, s=np.float32(1), v=np.ones(40), i=np.ones((40, 40), int)),
        "no weight matrix",
    ),
}


@pytest.mark.parametrize("case", NUMPY, ids=list(NUMPY))
def test_scan_refuses_a_hostile_numpy_file(case, hostile_cwd, unchanged):
    name, build, words = NUMPY[case]
    build(hostile_cwd / name)
    unchanged.start()
    line = assert_refused(_scan(name), match=words or None)
    assert f"{name}" in line


def test_arrays_that_are_not_matrices_are_skipped_with_a_reason(tmp_path):
    path = tmp_path / "mixed.npz"
    np.savez(
        path,
        scalar=np.float32(2),
        bias=np.ones(40, np.float32),
        conv=np.ones((24, 20, 3), np.float32),
        six=np.ones((2,) * 6, np.float32),
        text=np.array([["a", "b"], ["c", "d"]]),
        cplx=np.ones((30, 30), complex),
        mask=np.ones((30, 30), bool),
        w=GOOD,
    )
    matrices, skipped = select_matrices(open_weights(path))
    reasons = {s.name: s.reason for s in skipped}
    assert [m.name for m in matrices] == ["conv", "w"]
    assert reasons["scalar"] == "scalar" and reasons["bias"].startswith("vector")
    assert "6-D" in reasons["six"] and "complex128" in reasons["cplx"]
    assert "unsupported dtype" in reasons["text"] and "bool" in reasons["mask"]


class _Trap:
    """Unpickling this would create a file next to the checkpoint."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".pth"])
def test_a_pickle_that_runs_code_is_refused(suffix, hostile_cwd, unchanged):
    """With torch: refused as code; without: torch is needed. Never executed."""
    path = hostile_cwd / f"model{suffix}"
    path.write_bytes(pickle.dumps({"w": _Trap(hostile_cwd / "PWNED")}))
    unchanged.start()
    line = assert_refused(_scan(path.name))
    assert "refused" in line or "needs torch" in line
    assert not (hostile_cwd / "PWNED").exists()


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"PK\3\4" + b"\0" * 30])
def test_a_broken_torch_file_is_refused(content, hostile_cwd, unchanged):
    (hostile_cwd / "model.pt").write_bytes(content)
    unchanged.start()
    assert "model.pt" in assert_refused(_scan("model.pt"))


# --- matrix values ------------------------------------------------------------------
@pytest.mark.parametrize(
    "scale, words",
    [(1e200, "overflow float64"), (1e-200, "underflow float64")],
)
def test_entries_whose_squares_leave_float64(scale, words, hostile_cwd, unchanged):
    save_file({NAME: GOOD.astype(np.float64) * scale}, "big.safetensors")
    unchanged.start()
    line = assert_refused(_scan("big.safetensors"), match=words)
    assert "inf value" not in line


def test_nan_entries_are_named(hostile_cwd, unchanged):
    bad = GOOD.copy()
    bad[3, 4] = np.nan
    save_file({NAME: bad}, "nan.safetensors")
    unchanged.start()
    assert_refused(_scan("nan.safetensors"), match="1 NaN/inf entries")


def test_an_overflowing_layer_is_listed_and_the_others_kept(tmp_path):
    path = tmp_path / "mixed.safetensors"
    big = GOOD.astype(np.float64)
    save_file({NAME: big, "big.weight": big * 1e300}, str(path))
    bundle = compute_bundle(path, cache_dir=None, progress=False)
    assert [layer.name for layer in bundle] == [NAME]
    (skip,) = bundle.skipped
    assert skip.name == "big.weight" and "overflow float64" in skip.reason


# --- selection options --------------------------------------------------------------
@pytest.mark.parametrize(
    "option, pattern",
    [
        ("--include", "("),
        ("--exclude", "[a-"),
        ("--include", "*x"),
        ("--exclude", "a{2,1}"),
    ],
)
def test_a_bad_regex_names_the_option_and_pattern(
    option, pattern, hostile_cwd, unchanged
):
    save_file({NAME: GOOD}, "w.safetensors")
    unchanged.start()
    line = assert_refused(_scan("w.safetensors", option, pattern))
    assert option in line and repr(pattern) in line


def test_a_bad_regex_through_compare_layers(hostile_cwd, unchanged):
    save_file({NAME: GOOD}, "w.safetensors")
    unchanged.start()
    run = run_cli(
        ["compare-layers", "w.safetensors", "--exclude", "(?<", "--no-progress"]
    )
    assert "--exclude" in assert_refused(run)


def test_selection_errors_are_value_errors(tmp_path):
    save_file({NAME: GOOD}, str(tmp_path / "w.safetensors"))
    refs = open_weights(tmp_path / "w.safetensors")
    for kwargs in ({"include": "("}, {"kinds": ["ffn"]}, {"conv": "fold"}):
        with pytest.raises(SelectionError) as exc:
            select_matrices(refs, **kwargs)
        assert isinstance(exc.value, HTMPError) and isinstance(exc.value, ValueError)


def test_missing_path_and_unknown_suffix(hostile_cwd, unchanged):
    (hostile_cwd / "w.txt").write_text("1 2 3")
    unchanged.start()
    assert_refused(_scan("nope.safetensors"), match="nope.safetensors")
    assert_refused(_scan("w.txt"), match=".txt")


@pytest.mark.skipif(os.name != "posix", reason="FIFOs")
def test_a_fifo_named_like_a_checkpoint_is_not_opened(hostile_cwd):
    """Opening it would block forever (no ``unchanged``: a snapshot would too)."""
    (hostile_cwd / "ck").mkdir()
    os.mkfifo(hostile_cwd / "ck" / "model.safetensors")
    assert_refused(_scan("ck"), match="no such file")


# --- spectrum cache -----------------------------------------------------------------
def _three_matrices(tmp: Path) -> Path:
    path = tmp / "three.safetensors"
    save_file({f"h.{i}.mlp.fc1.weight": GOOD * (i + 1) for i in range(3)}, str(path))
    return path


def _file_in_the_way(tmp: Path) -> Path:
    (tmp / "cachefile").write_text("not a folder")
    return tmp / "cachefile"


def _spectra_is_a_file(tmp: Path) -> Path:
    (tmp / "cache").mkdir()
    (tmp / "cache" / "spectra").write_text("not a folder")
    return tmp / "cache"


def _under_a_file(tmp: Path) -> Path:
    (tmp / "cachefile").write_text("not a folder")
    return tmp / "cachefile" / "deeper"


def _read_only(tmp: Path) -> Path:
    """A cache under /proc: nothing can be created there, root included (the
    permission bits of a chmod-ed folder do not bind root)."""
    return Path("/proc") / "htmp-infer-cache"


def _entries_are_folders(tmp: Path) -> Path:
    """Every entry the scan would write is already a (non-empty) folder."""
    from htmp_infer.networks.eigen import _digest

    matrices, _ = select_matrices(open_weights(_three_matrices(tmp)))
    for m in matrices:
        entry = tmp / "cache" / "spectra" / f"{_digest(m.load())}.npy"
        (entry / "x").mkdir(parents=True)
    return tmp / "cache"


CACHES = {
    "a file": _file_in_the_way,
    "spectra is a file": _spectra_is_a_file,
    "under a file": _under_a_file,
    "read-only folder": _read_only,
    "entries are folders": _entries_are_folders,
}


@pytest.mark.parametrize("case", CACHES, ids=list(CACHES))
def test_an_unwritable_cache_warns_once_and_is_not_used(
    case, tmp_path, monkeypatch, unchanged
):
    root = CACHES[case](tmp_path)
    path = _three_matrices(tmp_path)
    want = compute_bundle(path, cache_dir=None, progress=False)
    monkeypatch.setenv("HTMP_INFER_CACHE", str(root))
    unchanged.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compute_bundle(path, progress=False)
    msgs = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(msgs) == 1 and "spectrum cache" in msgs[0], msgs
    assert str(root) in msgs[0]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)


def test_damaged_cache_entries_are_recomputed(tmp_path):
    from htmp_infer.networks.eigen import _digest, cached_eigenvalues

    cache = tmp_path / "cache"
    cache.mkdir()
    m = GOOD.astype(np.float64)
    entry = cache / f"{_digest(m)}.npy"
    want = cached_eigenvalues(m, None)[0]
    for damage in (b"garbage", -np.ones(24), np.full(24, np.nan), np.ones(5)):
        if isinstance(damage, bytes):
            entry.write_bytes(damage)
        else:
            np.save(entry, damage)
        lam, hit = cached_eigenvalues(m, cache)
        assert not hit
        np.testing.assert_array_equal(lam, want)
        np.testing.assert_array_equal(np.load(entry), want)  # replaced
    assert cached_eigenvalues(m, cache)[1]


def test_scan_with_an_unwritable_cache_succeeds_with_one_warning(
    hostile_cwd, monkeypatch, unchanged
):
    """The one success case of this file: the cache must only degrade."""
    (hostile_cwd / "cachefile").write_text("x")
    monkeypatch.setenv("HTMP_INFER_CACHE", str(hostile_cwd / "cachefile"))
    save_file({NAME: GOOD}, "w.safetensors")
    unchanged.start()
    run = _scan("w.safetensors", "--models", "mp,htmp", "--ppc-draws", "1")
    assert run.code == 0 and "Traceback" not in run.err, run.err
    unchanged.allow(*(p for p in (hostile_cwd / "out").rglob("*") if p.is_file()))
    lines = [ln for ln in run.err.splitlines() if "spectrum cache" in ln]
    assert len(lines) == 1 and lines[0].startswith("htmp-infer: warning:"), run.err
    assert (hostile_cwd / "out" / "scan.csv").is_file()
    assert (hostile_cwd / "cachefile").read_text() == "x"
