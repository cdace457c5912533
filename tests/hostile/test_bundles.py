"""Hostile spectra bundles (the ``.npz`` of ``SpectraBundle.save``).

A bundle is what ``scan`` writes and what ``scan``/``compare-layers`` read back.
Each malformed one is written by ``SpectraBundle.save`` and then edited with
NumPy; the reader must refuse it with one line naming the path given and the
field, before any fitting, and leave every file as it was.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import assert_refused, run_cli

from htmp_infer.errors import HTMPError, SpectrumError
from htmp_infer.networks.bundle import FORMAT, LayerSpectrum, SpectraBundle, is_bundle
from htmp_infer.networks.layers import Skipped

SOURCE = "INTERNAL-SOURCE-STRING"
DROP = object()


def _eig(seed: int, n: int, m: int) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal((n, m))
    return np.sort(np.linalg.svd(w, compute_uv=False) ** 2)


def _bundle() -> SpectraBundle:
    layers = [
        LayerSpectrum("h.0.attn.q.weight", "attention_q", 0, (30, 40), _eig(0, 30, 40)),
        LayerSpectrum("h.1.mlp.fc1.weight", "mlp_in", 1, (40, 32), _eig(1, 40, 32)),
    ]
    skipped = [Skipped("h.0.ln.weight", (30,), "normalisation layer")]
    return SpectraBundle(layers, skipped, SOURCE, {"conv": "reshape"})


def _write(path: Path, **changes: Any) -> Path:
    """Save the reference bundle, then replace (or DROP) fields with NumPy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _bundle().save(path)
    if changes:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        for key, value in changes.items():
            if value is DROP:
                d.pop(key)
            else:
                d[key] = value
        with open(path, "wb") as fh:
            np.savez(fh, **d)  # object arrays are pickled here, as an attacker would
    return path


def _ref(key: str) -> np.ndarray:
    b = _bundle()
    eig = np.concatenate([x.eigenvalues for x in b.layers])
    return {
        "names": np.array([x.name for x in b.layers]),
        "shapes": np.array([x.shape for x in b.layers]),
        "offsets": np.array([0, 30, 62]),
        "eigenvalues": eig,
    }[key]


def _with(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return fn(_ref(key).copy())


def _set(arr: np.ndarray, index: Any, value: Any) -> np.ndarray:
    arr[index] = value
    return arr


FIELDS = [
    "names",
    "kinds",
    "depths",
    "shapes",
    "offsets",
    "eigenvalues",
    "skipped_names",
    "skipped_shapes",
    "skipped_reasons",
    "source",
    "meta",
]

# name -> (changes, field, words)
MALFORMED: dict[str, tuple[dict[str, Any], str, str]] = {
    **{f"missing {f}": ({f: DROP}, f, "missing") for f in FIELDS},
    "meta not json": ({"meta": np.asarray("{conv: reshape")}, "meta", "not json"),
    "meta a list": ({"meta": np.asarray("[1, 2]")}, "meta", "not an object"),
    "meta values not strings": (
        {"meta": np.asarray('{"min_dim": 16}')},
        "meta",
        "not a string",
    ),
    "meta deeply nested": (
        {"meta": np.asarray("[" * 100_000 + "]" * 100_000)},
        "meta",
        "not json",
    ),
    "names shorter than offsets": (
        {"names": np.array(["h.0.attn.q.weight"])},
        "names",
        "1 entries, expected 2",
    ),
    "shapes 1-d": ({"shapes": np.array([30, 40])}, "shapes", "not 2-d"),
    "shapes 3 columns": ({"shapes": np.ones((2, 3), int)}, "shapes", "(layers, 2)"),
    "offsets past the end": (
        {"offsets": np.array([0, 30, 70])},
        "offsets",
        "from 0 to 62",
    ),
    "offsets not from zero": (
        {"offsets": np.array([2, 32, 62])},
        "offsets",
        "from 0 to 62",
    ),
    "offsets decreasing": (
        {"offsets": np.array([0, 70, 62])},
        "offsets",
        "has 70 eigenvalues",
    ),
    "offsets one short": (
        {"offsets": np.array([0, 62])},
        "offsets",
        "2 entries, expected 3",
    ),
    "kinds one long": (
        {"kinds": np.array(["mlp_in"] * 3)},
        "kinds",
        "3 entries, expected 2",
    ),
    "offsets 2-d": ({"offsets": np.array([[0, 30, 62]])}, "offsets", "not 1-d"),
    "offsets float": (
        {"offsets": np.array([0.0, 30.0, 62.0])},
        "offsets",
        "not integer",
    ),
    "counts disagree with shapes": (
        {"offsets": np.array([0, 31, 62])},
        "offsets",
        "has 31 eigenvalues, its shape 30x40 has 30",
    ),
    "n larger than the shape": (
        {"shapes": np.array([[20, 40], [40, 32]]), "offsets": np.array([0, 30, 62])},
        "offsets",
        "shape 20x40 has 20",
    ),
    "too few eigenvalues": (
        {"eigenvalues": _ref("eigenvalues")[:40], "offsets": np.array([0, 30, 40])},
        "offsets",
        "has 10 eigenvalues",
    ),
    "eigenvalue nan": (
        {"eigenvalues": _with("eigenvalues", lambda a: _set(a, 3, np.nan))},
        "eigenvalues",
        "1 nan/inf",
    ),
    "eigenvalue inf": (
        {"eigenvalues": _with("eigenvalues", lambda a: _set(a, 40, np.inf))},
        "eigenvalues",
        "nan/inf",
    ),
    "eigenvalue negative": (
        {"eigenvalues": _with("eigenvalues", lambda a: _set(a, 0, -1.0))},
        "eigenvalues",
        "1 negative",
    ),
    "eigenvalues strings": (
        {"eigenvalues": _ref("eigenvalues").astype(str)},
        "eigenvalues",
        "not float",
    ),
    "eigenvalues complex": (
        {"eigenvalues": _ref("eigenvalues").astype(complex)},
        "eigenvalues",
        "not float",
    ),
    "eigenvalues 2-d": (
        {"eigenvalues": _ref("eigenvalues").reshape(2, 31)},
        "eigenvalues",
        "not 1-d",
    ),
    "eigenvalues pickled": (
        {"eigenvalues": _ref("eigenvalues").astype(object)},
        "eigenvalues",
        "pickled",
    ),
    "names pickled": (
        {"names": np.array(["a", {"b": 1}], dtype=object)},
        "names",
        "pickled",
    ),
    "meta pickled": ({"meta": np.array({"a": "b"}, dtype=object)}, "meta", "pickled"),
    "names bytes": ({"names": np.array([b"a", b"b"])}, "names", "not str"),
    "names integers": ({"names": np.array([1, 2])}, "names", "not str"),
    "shapes negative": (
        {"shapes": np.array([[-30, -40], [40, 32]])},
        "shapes",
        "not a positive integer",
    ),
    "shapes zero": ({"shapes": np.array([[0, 40], [40, 32]])}, "shapes", "positive"),
    "shapes float": (
        {"shapes": np.array([[30.5, 40], [40, 32]])},
        "shapes",
        "not integer",
    ),
    "shapes huge unsigned": (
        {"shapes": np.array([[2**64 - 1, 40], [40, 32]], np.uint64)},
        "shapes",
        "not a positive integer",
    ),
    "depths float": ({"depths": np.array([0.0, 1.0])}, "depths", "not integer"),
    "depths below -1": ({"depths": np.array([0, -7])}, "depths", "-7"),
    "duplicate names": (
        {"names": np.array(["a.weight", "a.weight"])},
        "names",
        "twice",
    ),
    "empty name": ({"names": np.array(["", "b"])}, "names", "empty name"),
    "unknown kind": ({"kinds": np.array(["mlp_in", "ffn"])}, "kinds", "'ffn'"),
    "empty bundle": (
        {
            "names": np.array([], str),
            "kinds": np.array([], str),
            "depths": np.array([], np.int64),
            "shapes": np.zeros((0, 2), np.int64),
            "offsets": np.array([0]),
            "eigenvalues": np.array([], float),
        },
        "names",
        "no layer",
    ),
    "skipped lengths differ": (
        {"skipped_reasons": np.array(["a", "b"])},
        "skipped_reasons",
        "2 entries",
    ),
    "skipped shape garbage": (
        {"skipped_shapes": np.array(["30x-1"])},
        "skipped_shapes",
        "not a shape",
    ),
    "source an array": ({"source": np.array(["a", "b"])}, "source", "not 0-d"),
    "format an array": (
        {"format": np.array([FORMAT, FORMAT])},
        "format",
        "",
    ),
}


def _scan(path: str, *extra: str):
    return run_cli(
        ["scan", path, "--out", "out", "--no-progress", "--no-plots", *extra]
    )


@pytest.fixture(autouse=True)
def _no_caches(monkeypatch):
    monkeypatch.setenv("HTMP_INFER_CACHE", "")
    monkeypatch.setenv("HTMP_INFER_JAX_CACHE", "")


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_scan_refuses_a_malformed_bundle(case, hostile_cwd, unchanged):
    changes, field, words = MALFORMED[case]
    _write(hostile_cwd / "in" / "b.npz", **changes)
    unchanged.start()
    line = assert_refused(_scan("in/b.npz"), match=words or None)
    assert "in/b.npz" in line and SOURCE not in line  # the path given, not source
    if case != "format an array":  # not tagged: read (and refused) as weights
        assert f"field {field!r}" in line


COMPARE = ["missing offsets", "meta not json", "counts disagree with shapes"]


@pytest.mark.parametrize("case", COMPARE)
def test_compare_layers_refuses_a_malformed_scan_folder(case, hostile_cwd, unchanged):
    changes, field, words = MALFORMED[case]
    _write(hostile_cwd / "sc" / "spectra.npz", **changes)
    unchanged.start()
    run = run_cli(["compare-layers", "sc", "--out", "cl.nc", "--no-progress"])
    line = assert_refused(run, match=words)
    assert "sc/spectra.npz" in line and f"field {field!r}" in line


@pytest.mark.parametrize("case", ["missing names", "eigenvalue nan", "unknown kind"])
def test_compare_layers_refuses_a_malformed_bundle_file(case, hostile_cwd, unchanged):
    changes, field, words = MALFORMED[case]
    _write(hostile_cwd / "b.npz", **changes)
    unchanged.start()
    run = run_cli(["compare-layers", "b.npz", "--no-progress"])
    assert f"field {field!r}" in assert_refused(run, match=words)


# --- direct reads: the rest of the format -----------------------------------------
@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_load_raises_one_line_spectrum_error(case, tmp_path):
    changes, field, words = MALFORMED[case]
    path = _write(tmp_path / "b.npz", **changes)
    with pytest.raises(SpectrumError) as exc:
        SpectraBundle.load(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{path}: field {field!r}: "), msg
    assert words.lower() in msg.lower()
    assert isinstance(exc.value, ValueError)


def test_the_reference_bundle_round_trips(tmp_path):
    path = _write(tmp_path / "b.npz")
    assert is_bundle(path)
    got, want = SpectraBundle.load(path), _bundle()
    assert got.source == SOURCE and got.meta == want.meta
    assert got.skipped == want.skipped
    for a, b in zip(got, want, strict=True):
        assert (a.name, a.kind, a.depth, a.shape) == (b.name, b.kind, b.depth, b.shape)
        np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)


def test_the_shipped_bundle_passes_the_schema():
    path = Path(__file__).resolve().parents[2] / "data" / "minilm_spectra.npz"
    bundle = SpectraBundle.load(path)
    assert len(bundle) == 39 and all(x.eigenvalues.size == min(x.shape) for x in bundle)


def _rezip(path: Path, edit: Callable[[str, bytes], bytes | None]) -> None:
    """Rewrite the members of a zip through ``edit`` (None drops one)."""
    with zipfile.ZipFile(path) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            if (new := edit(name, data)) is not None:
                zf.writestr(name, new)


def _lying_header(name: str, data: bytes) -> bytes:
    """eigenvalues.npy claims 1e12 values (8 TB) over its 62."""
    if name != "eigenvalues.npy":
        return data
    return data.replace(b"(62,)", b"(1000000000000,)", 1)


def _truncated_member(name: str, data: bytes) -> bytes:
    return data[:-16] if name == "offsets.npy" else data


def _garbage_member(name: str, data: bytes) -> bytes:
    return b"not an npy" if name == "meta.npy" else data


@pytest.mark.parametrize(
    "edit, field, words",
    [
        (_lying_header, "eigenvalues", "data bytes"),
        (_truncated_member, "offsets", "data bytes"),
        (_garbage_member, "meta", "unreadable"),
    ],
)
def test_members_that_lie_about_their_size(edit, field, words, hostile_cwd, unchanged):
    path = _write(hostile_cwd / "b.npz")
    _rezip(path, edit)
    unchanged.start()
    line = assert_refused(_scan("b.npz"), match=words)
    assert f"field {field!r}" in line


@pytest.mark.parametrize("cut", [0.9, 0.5, 0.1])
def test_a_truncated_bundle_file(cut, hostile_cwd, unchanged):
    path = _write(hostile_cwd / "b.npz")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    unchanged.start()
    assert "b.npz" in assert_refused(_scan("b.npz"))


def test_a_bundle_without_its_tag_is_read_as_weights_and_refused(
    hostile_cwd, unchanged
):
    """No ``format``: weights; its arrays are no matrices, so nothing to analyse."""
    _write(hostile_cwd / "b.npz", format=DROP)
    unchanged.start()
    assert_refused(_scan("b.npz"), match="no weight matrix")


def test_a_wrong_format_tag_is_not_a_bundle(tmp_path):
    path = _write(tmp_path / "b.npz", format=np.asarray("htmp-infer-spectra/99"))
    assert not is_bundle(path)
    with pytest.raises(SpectrumError, match="field 'format'"):
        SpectraBundle.load(path)


@pytest.mark.parametrize(
    "content", [b"", b"PK\x03\x04", b"\x00" * 100, json.dumps({"a": 1}).encode()]
)
def test_load_of_junk(content, tmp_path):
    path = tmp_path / "b.npz"
    path.write_bytes(content)
    assert not is_bundle(path)
    with pytest.raises(HTMPError) as exc:
        SpectraBundle.load(path)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)


def test_load_of_a_folder_and_a_missing_file(tmp_path):
    for path in (tmp_path, tmp_path / "none.npz"):
        assert not is_bundle(path)
        with pytest.raises(SpectrumError, match=re.escape(str(path))):
            SpectraBundle.load(path)


def test_unknown_extra_fields_are_ignored(tmp_path):
    path = _write(tmp_path / "b.npz", extra=np.arange(3))
    assert len(SpectraBundle.load(path)) == 2
