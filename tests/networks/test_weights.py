"""Lazy checkpoint readers: formats, round trips, laziness and one-line errors."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import struct
import sys
import types
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

import htmp_infer.networks.weights as weights
from htmp_infer.errors import HTMPError, WeightsError
from htmp_infer.networks.weights import (
    TensorRef,
    flatten_pytree,
    open_weights,
    pytree_tensors,
    save_pytree_npz,
)

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(
    not HAS_TORCH, reason="torch is an optional extra, not installed"
)
RNG = np.random.default_rng(0)


def _arrays() -> dict[str, np.ndarray]:
    return {
        "encoder.layer.0.attention.self.query.weight": RNG.standard_normal(
            (32, 16)
        ).astype(np.float32),
        "encoder.layer.0.attention.self.query.bias": np.arange(16, dtype=np.float32),
        "embeddings.position_ids": np.arange(8, dtype=np.int64)[None, :],
        "half": RNG.standard_normal((4, 5)).astype(np.float16),
        "double": RNG.standard_normal((3, 3)),
    }


def _by_name(refs: list[TensorRef]) -> dict[str, TensorRef]:
    return {r.name: r for r in refs}


def _bf16(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """bfloat16 bytes of float32 ``values`` (truncated) and their float32 value."""
    u16 = (values.astype(np.float32).view(np.uint32) >> 16).astype("<u2")
    return u16.tobytes(), (u16.astype(np.uint32) << 16).view(np.float32)


def _write_safetensors(
    path: Path, tensors: dict[str, tuple[str, tuple, bytes]]
) -> None:
    """Hand-written safetensors file: {name: (dtype code, shape, raw bytes)}."""
    header: dict[str, Any] = {}
    offset = 0
    for name, (code, shape, raw) in tensors.items():
        header[name] = {
            "dtype": code,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        offset += len(raw)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)) + blob)
        for _, _, raw in tensors.values():
            fh.write(raw)


def _assert_one_line(exc: pytest.ExceptionInfo[BaseException], name: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    head = msg.split(": ", 1)[0]  # the path as given, ending in the file name
    assert head == name or head.endswith(f"/{name}"), msg
    return msg


# --- safetensors -------------------------------------------------------------
def test_safetensors_round_trip(tmp_path: Path) -> None:
    arrays = _arrays()
    path = tmp_path / "model.safetensors"
    save_file(arrays, str(path))
    refs = _by_name(open_weights(path))
    assert set(refs) == set(arrays)
    dtypes = {
        "half": "float16",
        "double": "float64",
        "embeddings.position_ids": "int64",
    }
    for name, arr in arrays.items():
        ref = refs[name]
        assert ref.shape == arr.shape
        assert ref.dtype == dtypes.get(name, "float32")
        assert ref.source == str(path)
        loaded = ref.load()
        assert loaded.dtype == arr.dtype
        np.testing.assert_array_equal(loaded, arr)


def test_bf16_read_from_raw_bytes(tmp_path: Path) -> None:
    values = RNG.standard_normal((6, 5)).astype(np.float32) * 100
    raw, expected = _bf16(values)
    first = np.arange(3, dtype="<f4")
    path = tmp_path / "bf.safetensors"
    _write_safetensors(
        path, {"first": ("F32", (3,), first.tobytes()), "w": ("BF16", (6, 5), raw)}
    )
    refs = _by_name(open_weights(path))
    assert refs["w"].dtype == "bfloat16"
    assert refs["w"].shape == (6, 5)
    loaded = refs["w"].load()
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, expected.reshape(6, 5))
    assert not np.array_equal(loaded, values)  # the truncation is real
    np.testing.assert_allclose(loaded, values, rtol=2**-7)
    np.testing.assert_array_equal(refs["first"].load(), first)


def test_open_reads_no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def spy(real: Any) -> Any:
        return lambda *a: calls.append(real.__name__) or real(*a)

    for reader in ("_read_safetensor", "_read_bf16", "_read_npz"):
        monkeypatch.setattr(weights, reader, spy(getattr(weights, reader)))
    save_file(_arrays(), str(tmp_path / "a.safetensors"))
    _write_safetensors(tmp_path / "b.safetensors", {"w": ("BF16", (2,), b"\0" * 4)})
    np.savez(tmp_path / "c.npz", x=np.ones(3), y=np.zeros((2, 2)))
    refs = [
        ref
        for name in ("a.safetensors", "b.safetensors", "c.npz")
        for ref in open_weights(tmp_path / name)
    ]
    assert calls == []
    _by_name(refs)["double"].load()
    _by_name(refs)["w"].load()
    _by_name(refs)["y"].load()
    assert calls == ["_read_safetensor", "_read_bf16", "_read_npz"]


# --- directories ---------------------------------------------------------------
def _sharded(tmp_path: Path, index: bool = True) -> dict[str, np.ndarray]:
    arrays = _arrays()
    names = list(arrays)
    shards = {"model-00001-of-00002.safetensors": names[:2]}
    shards["model-00002-of-00002.safetensors"] = names[2:]
    for shard, keys in shards.items():
        save_file({k: arrays[k] for k in keys}, str(tmp_path / shard))
    if index:
        weight_map = {k: shard for shard, keys in shards.items() for k in keys}
        (tmp_path / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map})
        )
    (tmp_path / "config.json").write_text("{}")
    return arrays


@pytest.mark.parametrize("index", [True, False])
def test_sharded_directory(tmp_path: Path, index: bool) -> None:
    arrays = _sharded(tmp_path, index)
    refs = open_weights(tmp_path)
    assert sorted(r.name for r in refs) == sorted(arrays)
    names = [r.name for r in refs]
    assert set(names[:2]) == set(list(arrays)[:2])  # first shard first
    for ref in refs:
        assert Path(ref.source).name.startswith("model-0000")
        np.testing.assert_array_equal(ref.load(), arrays[ref.name])


def test_index_naming_missing_shard(tmp_path: Path) -> None:
    _sharded(tmp_path)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path)
    msg = _assert_one_line(exc, "model.safetensors.index.json")
    assert "model-00002-of-00002.safetensors" in msg and "missing" in msg


def test_index_naming_absent_tensor(tmp_path: Path) -> None:
    _sharded(tmp_path)
    index = tmp_path / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["ghost.weight"] = "model-00001-of-00002.safetensors"
    index.write_text(json.dumps(data))
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path)
    assert "ghost.weight" in _assert_one_line(exc, "model.safetensors.index.json")


def test_directory_of_npz_and_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path / "sub")
    _assert_one_line(exc, "sub")
    np.savez(tmp_path / "sub" / "a.npz", w=np.ones((2, 3)))
    np.savez(tmp_path / "sub" / "b.npz", v=np.ones(4))
    assert [r.name for r in open_weights(tmp_path / "sub")] == ["w", "v"]


def test_same_name_in_two_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", w=np.ones(2))
    np.savez(tmp_path / "b.npz", w=np.ones(2))
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path)
    assert "a.npz" in _assert_one_line(exc, "b.npz")


# --- NumPy files ----------------------------------------------------------------
def test_npz_and_npy(tmp_path: Path) -> None:
    arrays = _arrays()
    np.savez_compressed(tmp_path / "w.npz", **arrays)
    refs = _by_name(open_weights(tmp_path / "w.npz"))
    assert set(refs) == set(arrays)
    for name, arr in arrays.items():
        assert refs[name].shape == arr.shape
        assert refs[name].dtype == arr.dtype.name
        np.testing.assert_array_equal(refs[name].load(), arr)
    np.save(tmp_path / "layer3.npy", arrays["double"])
    (ref,) = open_weights(tmp_path / "layer3.npy")
    assert (ref.name, ref.shape, ref.dtype) == ("layer3", (3, 3), "float64")
    np.testing.assert_array_equal(ref.load(), arrays["double"])


def test_pickled_objects_refused(tmp_path: Path) -> None:
    obj = np.array([{"a": 1}, None], dtype=object)
    np.savez(tmp_path / "obj.npz", w=np.ones(2), bad=obj)
    np.save(tmp_path / "obj.npy", obj, allow_pickle=True)
    for name in ("obj.npz", "obj.npy"):
        with pytest.raises(WeightsError) as exc:
            open_weights(tmp_path / name)
        assert "pickled" in _assert_one_line(exc, name)


# --- errors ---------------------------------------------------------------------
def test_missing_and_unknown(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path / "nope.safetensors")
    assert "no such file" in str(exc.value) and "\n" not in str(exc.value)
    assert isinstance(exc.value, HTMPError) and isinstance(exc.value, ValueError)
    (tmp_path / "w.txt").write_text("1 2 3")
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path / "w.txt")
    assert ".txt" in _assert_one_line(exc, "w.txt")


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.safetensors", b""),
        ("junk.safetensors", b"this is not a safetensors file at all"),
        ("badjson.safetensors", struct.pack("<Q", 4) + b"{no}"),
        ("notdict.safetensors", struct.pack("<Q", 2) + b"[]"),
        ("junk.npz", b"PK not really a zip"),
        ("junk.npy", b"\x93NUMPY garbage"),
    ],
)
def test_corrupt_files(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path / name)
    _assert_one_line(exc, name)


def test_truncated_files_fail_at_open(tmp_path: Path) -> None:
    save_file(_arrays(), str(tmp_path / "full.safetensors"))
    np.savez(tmp_path / "full.npz", **_arrays())
    for name in ("full.safetensors", "full.npz"):
        data = (tmp_path / name).read_bytes()
        cut = tmp_path / f"cut{Path(name).suffix}"
        cut.write_bytes(data[: len(data) - 40])
        with pytest.raises(WeightsError) as exc:
            open_weights(cut)
        _assert_one_line(exc, cut.name)


def test_header_claiming_more_bytes_than_the_file(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    _write_safetensors(path, {"w": ("F32", (4, 4), b"\0" * 64)})
    data = path.read_bytes()
    path.write_bytes(data[:-8])  # header still says 64 bytes
    with pytest.raises(WeightsError) as exc:
        open_weights(path)
    assert "truncated" in _assert_one_line(exc, "short.safetensors")


def test_zero_tensors(tmp_path: Path) -> None:
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path / "empty.npz")
    assert "no tensors" in _assert_one_line(exc, "empty.npz")


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".npy"])
def test_load_after_file_changed(tmp_path: Path, suffix: str) -> None:
    arr = np.ones((4, 4), dtype=np.float32)
    path = tmp_path / f"w{suffix}"

    def write(a: np.ndarray) -> None:
        if suffix == ".safetensors":
            save_file({"w": a}, str(path))
        elif suffix == ".npz":
            np.savez(path, w=a)
        else:
            np.save(path, a)

    write(arr)
    (ref,) = open_weights(path)
    write(np.zeros((2, 2), dtype=np.float32))
    os.utime(path, ns=(1, 1))
    with pytest.raises(WeightsError) as exc:
        ref.load()
    assert "changed" in _assert_one_line(exc, path.name)
    path.unlink()
    with pytest.raises(WeightsError) as exc:
        ref.load()
    _assert_one_line(exc, path.name)


def test_short_read_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the change check is defeated, a short bf16 read is caught."""
    monkeypatch.setattr(weights, "_stamp", lambda path: (0, 0))
    path = tmp_path / "bf.safetensors"
    _write_safetensors(path, {"w": ("BF16", (8,), _bf16(np.ones(8))[0])})
    (ref,) = open_weights(path)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(WeightsError) as exc:
        ref.load()
    assert "cannot read tensor 'w'" in _assert_one_line(exc, "bf.safetensors")


# --- PyTorch --------------------------------------------------------------------
def test_torch_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    (tmp_path / "model.pt").write_bytes(b"irrelevant")
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path / "model.pt")
    msg = _assert_one_line(exc, "model.pt")
    assert "needs torch" in msg and "pip install 'htmp-infer[torch]'" in msg
    (tmp_path / "model.pt").unlink()
    (tmp_path / "pytorch_model.bin").write_bytes(b"irrelevant")
    (tmp_path / "training_args.bin").write_bytes(b"irrelevant")
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path)
    _assert_one_line(exc, "pytorch_model.bin")


class _FakeTensor:
    """Just enough of torch.Tensor for weights._open_torch."""

    def __init__(self, arr: np.ndarray, dtype: str | None = None) -> None:
        self.arr, self.dtype = arr, dtype or f"torch.{arr.dtype.name}"
        self.shape = arr.shape

    def detach(self) -> _FakeTensor:
        return self

    cpu = detach

    def is_floating_point(self) -> bool:
        return "float" in self.dtype

    def to(self, dtype: str) -> _FakeTensor:
        return _FakeTensor(self.arr.astype(np.float32), dtype)

    def numpy(self) -> np.ndarray:
        return self.arr


def _fake_torch(monkeypatch: pytest.MonkeyPatch, load: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake_load(path: Path, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return load(kwargs)

    torch = types.ModuleType("torch")
    torch.Tensor = _FakeTensor  # type: ignore[attr-defined]
    for dt in ("float16", "float32", "float64", "bfloat16"):
        setattr(torch, dt, f"torch.{dt}")
    torch.load = fake_load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    return calls


def test_torch_logic_with_a_fake_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = RNG.standard_normal((4, 3)).astype(np.float32)
    state = {
        "fc.weight": _FakeTensor(w),
        "fc.bf": _FakeTensor(w, "torch.bfloat16"),
        "fc.w64": _FakeTensor(w.astype(np.float64)),
        "step": 3,
    }

    def load(kwargs: dict[str, Any]) -> Any:
        if kwargs["mmap"]:
            raise RuntimeError("mmap can only be used with files saved with zipfile")
        return {"state_dict": state, "optimizer": {}}

    calls = _fake_torch(monkeypatch, load)
    path = tmp_path / "ckpt.pth"
    path.write_bytes(b"x")
    refs = _by_name(open_weights(path))
    assert [c["mmap"] for c in calls] == [True, False]
    assert all(c["weights_only"] and c["map_location"] == "cpu" for c in calls)
    assert set(refs) == {"fc.weight", "fc.bf", "fc.w64"}
    assert (
        refs["fc.bf"].dtype == "bfloat16" and refs["fc.bf"].load().dtype == np.float32
    )
    assert refs["fc.w64"].load().dtype == np.float64
    np.testing.assert_array_equal(refs["fc.weight"].load(), w)


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            pickle.UnpicklingError(
                "Weights only load failed. Re-running `torch.load` ...\n"
                "Unsupported global: GLOBAL __main__.Net was not an allowed global"
            ),
            "refused: loading it would execute code (it needs __main__.Net)",
        ),
        (pickle.UnpicklingError("Unsupported operand 104"), "not a PyTorch checkpoint"),
        (RuntimeError("PytorchStreamReader failed reading zip archive"), "unreadable"),
    ],
)
def test_torch_refusals_with_a_fake_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, expected: str
) -> None:
    def load(kwargs: dict[str, Any]) -> Any:
        raise error

    _fake_torch(monkeypatch, load)
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path / "m.pt")
    assert expected in _assert_one_line(exc, "m.pt")


def test_torch_non_state_dict_with_a_fake_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_torch(monkeypatch, lambda kwargs: [1, 2, 3])
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path / "m.pt")
    assert "not a state dict" in _assert_one_line(exc, "m.pt")


@needs_torch
def test_torch_round_trip(tmp_path: Path) -> None:
    import torch

    w = torch.randn(6, 4)
    state = {"a.weight": w, "b.weight": w.to(torch.bfloat16), "ids": torch.arange(5)}
    torch.save(state, tmp_path / "new.pt")
    torch.save(
        {"model": state}, tmp_path / "old.pth", _use_new_zipfile_serialization=False
    )
    for name in ("new.pt", "old.pth"):
        refs = _by_name(open_weights(tmp_path / name))
        assert refs["b.weight"].dtype == "bfloat16" and refs["ids"].dtype == "int64"
        np.testing.assert_array_equal(refs["a.weight"].load(), w.numpy())
        bf = refs["b.weight"].load()
        assert bf.dtype == np.float32
        np.testing.assert_array_equal(bf, w.to(torch.bfloat16).float().numpy())
        np.testing.assert_array_equal(refs["ids"].load(), np.arange(5))


class _Net:  # a pickled instance needs code to load
    def __init__(self) -> None:
        self.w = np.ones(3)


@needs_torch
def test_torch_refuses_code(tmp_path: Path) -> None:
    import torch

    torch.save(_Net(), tmp_path / "net.pt")
    with pytest.raises(WeightsError) as exc:
        open_weights(tmp_path / "net.pt")
    assert "execute code" in _assert_one_line(exc, "net.pt")


# --- pytrees --------------------------------------------------------------------
class _Scale(NamedTuple):
    scale: Any
    offset: Any


def _flax_tree() -> dict[str, Any]:
    return {
        "params": {
            "Dense_0": {"kernel": RNG.standard_normal((8, 4)), "bias": np.zeros(4)},
            "Embed_0": {"embedding": jnp.asarray(RNG.standard_normal((10, 8)))},
            "blocks": [
                {"kernel": np.eye(3, dtype=np.float32)},
                _Scale(np.ones(2), None),
            ],
            "half": jnp.ones((2, 2), dtype=jnp.bfloat16),
            "file": np.ones(1),  # np.savez keyword names are ordinary keys here
            "allow_pickle": np.zeros(1),
        },
        "step": None,
    }


def test_flatten_pytree() -> None:
    flat = flatten_pytree(_flax_tree())
    assert sorted(flat) == sorted(
        [
            "params/Dense_0/kernel",
            "params/Dense_0/bias",
            "params/Embed_0/embedding",
            "params/blocks/0/kernel",
            "params/blocks/1/scale",
            "params/half",
            "params/file",
            "params/allow_pickle",
        ]
    )
    assert all(isinstance(v, np.ndarray) for v in flat.values())
    assert flat["params/half"].dtype == np.float32
    assert list(flatten_pytree({"a": {"b": np.ones(1)}}, sep=".")) == ["a.b"]
    with pytest.raises(WeightsError, match="not an array"):
        flatten_pytree({"name": "dense"})
    with pytest.raises(WeightsError, match="two leaves"):
        flatten_pytree({"a/b": np.ones(1), "a": {"b": np.ones(1)}})


def test_save_pytree_npz_round_trip(tmp_path: Path) -> None:
    tree = _flax_tree()
    flat = flatten_pytree(tree)
    path = tmp_path / "out" / "params.npz"
    save_pytree_npz(tree, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["params.npz"]
    refs = _by_name(open_weights(path))
    assert set(refs) == set(flat)
    for name, arr in flat.items():
        assert refs[name].shape == arr.shape
        np.testing.assert_array_equal(refs[name].load(), arr)


def test_save_pytree_npz_is_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "params.npz"
    save_pytree_npz({"w": np.ones(2)}, path)
    before = path.read_bytes()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    # a failed write is an OSError, or the one-line OutputError that io reports
    with pytest.raises((OSError, HTMPError), match="disk full"):
        save_pytree_npz({"w": np.zeros(2)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["params.npz"]


def test_pytree_tensors_are_lazy() -> None:
    class Leaf:
        shape, dtype, reads = (2, 3), np.dtype("float32"), 0

        def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
            Leaf.reads += 1
            return np.ones(self.shape, dtype=np.float32)

    refs = pytree_tensors({"enc": {"w": Leaf(), "b": np.zeros(3)}, "h": jnp.ones(2)})
    assert Leaf.reads == 0
    by_name = _by_name(refs)
    assert set(by_name) == {"enc/w", "enc/b", "h"}
    assert by_name["enc/w"].shape == (2, 3) and by_name["enc/w"].dtype == "float32"
    assert all(r.source == "<pytree>" for r in refs)
    np.testing.assert_array_equal(by_name["enc/w"].load(), np.ones((2, 3)))
    assert Leaf.reads == 1


def test_zip_of_npz_member_names(tmp_path: Path) -> None:
    """Names with '/' (flattened pytrees) survive np.savez and open_weights."""
    np.savez(tmp_path / "p.npz", **{"Dense_0/kernel": np.ones((2, 2))})
    with zipfile.ZipFile(tmp_path / "p.npz") as zf:
        assert zf.namelist() == ["Dense_0/kernel.npy"]
    assert [r.name for r in open_weights(tmp_path / "p.npz")] == ["Dense_0/kernel"]
