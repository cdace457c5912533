"""Property tests of the parsers: random input gives valid data or an HTMPError.

Safetensors files (random bytes, random JSON headers, damaged real files),
``.npz`` weights, shard indexes, spectra bundles (random dicts of arrays,
damaged real bundles) and selection patterns. Whatever the input, the reader
either returns data that keeps its promises (shapes as indexed, eigenvalue
counts as the shapes say) or raises an :class:`~htmp_infer.errors.HTMPError`:
never another exception.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from htmp_infer.errors import HTMPError
from htmp_infer.networks.bundle import FORMAT, LayerSpectrum, SpectraBundle, is_bundle
from htmp_infer.networks.layers import KINDS, compile_pattern, select_matrices
from htmp_infer.networks.safetensors_header import DTYPE_BITS
from htmp_infer.networks.weights import open_weights

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@contextmanager
def _folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _read_weights(path: Path) -> None:
    """Open, select and load everything; check what succeeds keeps its shape."""
    try:
        refs = open_weights(path)
    except HTMPError:
        return
    for ref in refs:
        try:
            arr = ref.load()
        except HTMPError:
            continue
        assert arr.shape == ref.shape
    matrices, _ = select_matrices(refs, min_dim=1)
    for m in matrices:
        try:
            w = m.load()
        except HTMPError:
            continue
        assert w.shape == m.shape and np.isfinite(w).all()


def _safetensors(header: object, data: bytes, n: int | None = None) -> bytes:
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(blob) if n is None else n) + blob + data


# --- safetensors ------------------------------------------------------------------
@FAST
@given(st.binary(max_size=300))
def test_random_bytes_as_safetensors(data):
    with _folder() as d:
        (d / "x.safetensors").write_bytes(data)
        _read_weights(d / "x.safetensors")


@FAST
@given(st.binary(max_size=200), st.integers(0, 2**64 - 1), st.binary(max_size=200))
def test_random_header_bytes_and_length(header, n, data):
    with _folder() as d:
        (d / "x.safetensors").write_bytes(_safetensors(header, data, n % 512))
        _read_weights(d / "x.safetensors")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4)
    ),
    max_leaves=20,
)
SMALL = st.integers(-3, 40)
ENTRY = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from([*DTYPE_BITS, "F128", "f32", ""]) | JSON,
        "shape": st.lists(SMALL, max_size=4) | JSON,
        "data_offsets": st.lists(st.integers(-8, 600), min_size=2, max_size=2) | JSON,
    }
)
HEADER = st.dictionaries(
    st.text(min_size=1, max_size=12) | st.just("__metadata__"),
    ENTRY | JSON,
    max_size=4,
)


@FAST
@given(HEADER | JSON, st.integers(0, 600))
def test_random_json_headers(header, size):
    with _folder() as d:
        data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        (d / "x.safetensors").write_bytes(_safetensors(header, data))
        _read_weights(d / "x.safetensors")


@FAST
@given(
    st.lists(
        st.tuples(st.sampled_from(["F32", "F16", "BF16", "F64", "I64"]), SMALL, SMALL),
        min_size=1,
        max_size=3,
    ),
    st.integers(-16, 16),
)
def test_nearly_valid_headers(tensors, shift):
    """Consistent headers whose last offset is moved by ``shift`` bytes."""
    header, at = {}, 0
    for i, (dtype, rows, cols) in enumerate(tensors):
        nbytes = max(rows, 0) * max(cols, 0) * DTYPE_BITS[dtype] // 8
        header[f"h.{i}.mlp.fc1.weight"] = {
            "dtype": dtype,
            "shape": [rows, cols],
            "data_offsets": [at, at + nbytes],
        }
        at += nbytes
    last = header[f"h.{len(tensors) - 1}.mlp.fc1.weight"]["data_offsets"]
    last[1] += shift
    data = np.random.default_rng(at).standard_normal(at // 8 + 1).tobytes()[:at]
    with _folder() as d:
        (d / "x.safetensors").write_bytes(_safetensors(header, data))
        _read_weights(d / "x.safetensors")
        if shift == 0 and all(min(r, c) >= 0 for _, r, c in tensors):
            refs = open_weights(d / "x.safetensors")  # valid: must be accepted
            assert [r.shape for r in refs] == [(r, c) for _, r, c in tensors]
            assert all(r.load().shape == r.shape for r in refs)


def _valid_safetensors() -> bytes:
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    return save(
        {
            "h.0.attn.q.weight": rng.standard_normal((8, 6)).astype(np.float32),
            "h.0.attn.q.bias": np.ones(8, np.float16),
        }
    )


VALID_ST = _valid_safetensors()


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID_ST) - 1), st.integers(0, 255)), max_size=6
    ),
    st.integers(0, len(VALID_ST)),
)
def test_damaged_real_safetensors(flips, cut):
    data = bytearray(VALID_ST)
    for at, value in flips:
        data[at] = value
    with _folder() as d:
        (d / "x.safetensors").write_bytes(bytes(data[: max(cut, 1)]))
        _read_weights(d / "x.safetensors")


# --- NumPy weights and shard indexes -----------------------------------------------
def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


VALID_NPZ = _npz({"w": np.arange(48.0).reshape(8, 6), "b": np.ones(3)})


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID_NPZ) - 1), st.integers(0, 255)), max_size=6
    ),
    st.integers(1, len(VALID_NPZ)),
)
def test_damaged_npz_weights(flips, cut):
    data = bytearray(VALID_NPZ)
    for at, value in flips:
        data[at] = value
    with _folder() as d:
        (d / "x.npz").write_bytes(bytes(data[:cut]))
        _read_weights(d / "x.npz")


NAMES = st.sampled_from(["w", "h.0.attn.q.weight", "ghost"]) | st.text(max_size=8)
SHARDS = (
    st.sampled_from(["a.safetensors", "../a.safetensors", "/a.safetensors", "", "."])
    | st.text(max_size=20)
    | JSON
)


@FAST
@given(st.dictionaries(NAMES, SHARDS, max_size=3) | JSON)
def test_random_shard_indexes(weight_map):
    with _folder() as d:
        ck = d / "ck"
        ck.mkdir()
        from safetensors.numpy import save_file

        save_file({"w": np.ones((4, 4), np.float32)}, str(ck / "a.safetensors"))
        save_file({"w": np.ones((4, 4), np.float32)}, str(d / "a.safetensors"))
        text = json.dumps({"weight_map": weight_map})
        (ck / "model.safetensors.index.json").write_text(text)
        try:
            refs = open_weights(ck)
        except HTMPError:
            return
        for ref in refs:  # whatever is read comes from inside ck
            assert Path(ref.source).resolve().is_relative_to(ck.resolve())


# --- spectra bundles ---------------------------------------------------------------
def _check_bundle(path: Path) -> None:
    assert isinstance(is_bundle(path), bool)
    try:
        bundle = SpectraBundle.load(path)
    except HTMPError:
        return
    names = [layer.name for layer in bundle]
    assert len(names) == len(set(names)) > 0
    for layer in bundle:
        assert layer.kind in KINDS and layer.depth >= -1 and min(layer.shape) >= 1
        assert layer.eigenvalues.size == min(layer.shape)
        assert np.isfinite(layer.eigenvalues).all() and (layer.eigenvalues >= 0).all()
    assert all(isinstance(v, str) for v in bundle.meta.values())


def _reference() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    layers = [
        LayerSpectrum(
            f"h.{i}.mlp.fc1.weight", "mlp_in", i, (5, 7), np.sort(rng.random(5))
        )
        for i in range(2)
    ]
    buf = Path(tempfile.mkdtemp()) / "b.npz"
    SpectraBundle(layers, [], "src", {"k": "v"}).save(buf)
    with np.load(buf) as z:
        return {k: z[k] for k in z.files}


REFERENCE = _reference()
FIELDS = sorted(k for k in REFERENCE if k != "format")
ANY_ARRAY = hnp.arrays(
    dtype=hnp.scalar_dtypes() | hnp.unicode_string_dtypes(max_len=6),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=8),
)
INT_ARRAY = hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, min_side=0, max_side=8))


@FAST
@given(st.dictionaries(st.sampled_from(FIELDS), ANY_ARRAY | INT_ARRAY, max_size=12))
def test_random_dicts_of_arrays_as_bundles(arrays):
    with _folder() as d:
        path = d / "b.npz"
        path.write_bytes(_npz({"format": np.asarray(FORMAT), **arrays}))
        _check_bundle(path)


@FAST
@given(st.sampled_from(FIELDS), ANY_ARRAY | INT_ARRAY)
def test_one_field_of_a_valid_bundle_replaced(field, value):
    with _folder() as d:
        path = d / "b.npz"
        path.write_bytes(_npz({**REFERENCE, field: value}))
        _check_bundle(path)


@FAST
@given(
    st.sampled_from(["offsets", "shapes", "depths"]),
    st.lists(st.integers(-(2**63), 2**63 - 1) | SMALL, min_size=0, max_size=6),
)
def test_integer_fields_of_a_valid_bundle_perturbed(field, values):
    ref = REFERENCE[field]
    arr = np.resize(np.asarray(values or [0], np.int64), ref.shape)
    with _folder() as d:
        path = d / "b.npz"
        path.write_bytes(_npz({**REFERENCE, field: arr}))
        _check_bundle(path)


VALID_BUNDLE = _npz(REFERENCE)


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID_BUNDLE) - 1), st.integers(0, 255)),
        max_size=6,
    ),
    st.integers(1, len(VALID_BUNDLE)),
)
def test_damaged_bundle_bytes(flips, cut):
    data = bytearray(VALID_BUNDLE)
    for at, value in flips:
        data[at] = value
    with _folder() as d:
        (d / "b.npz").write_bytes(bytes(data[:cut]))
        _check_bundle(d / "b.npz")


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_as_bundle(data):
    with _folder() as d:
        (d / "b.npz").write_bytes(data)
        _check_bundle(d / "b.npz")


# --- selection patterns ------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::FutureWarning")  # re: "possible set union"
@FAST
@given(st.text(alphabet="()[]{}*+?|\\^$.-,0123456789aA:=!<>P", max_size=12))
def test_random_patterns(pattern):
    try:
        compiled = compile_pattern(pattern, "--include")
    except HTMPError as exc:
        assert isinstance(exc, ValueError) and "--include" in str(exc)
        return
    assert compiled is not None and compiled.pattern == pattern
