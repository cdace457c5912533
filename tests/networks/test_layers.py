"""Layer selection: kinds, depth, skip reasons, conv and fused-QKV matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from htmp_infer.errors import HTMPError, SpectrumError
from htmp_infer.networks.layers import (
    KIND_GROUPS,
    KINDS,
    MatrixRef,
    Skipped,
    classify,
    expand_kinds,
    layer_depth,
    select_matrices,
)
from htmp_infer.networks.weights import TensorRef, open_weights

RNG = np.random.default_rng(1)


class Source:
    """In-memory TensorRefs that count their loads."""

    def __init__(self) -> None:
        self.reads: dict[str, int] = {}
        self.refs: list[TensorRef] = []

    def add(
        self, name: str, shape: tuple[int, ...], dtype: str = "float32", data=None
    ) -> np.ndarray:
        arr = (
            np.asarray(data)
            if data is not None
            else RNG.standard_normal(shape).astype(np.float32)
        )
        self.reads[name] = 0

        def load() -> np.ndarray:
            self.reads[name] += 1
            return arr

        self.refs.append(TensorRef(name, tuple(shape), dtype, load, "<test>"))
        return arr


def _kinds(matrices: list[MatrixRef]) -> dict[str, str]:
    return {m.name: m.kind for m in matrices}


def _reasons(skipped: list[Skipped]) -> dict[str, str]:
    return {s.name: s.reason for s in skipped}


def test_kinds_and_groups_are_consistent() -> None:
    assert len(set(KINDS)) == 10
    assert {k for group in KIND_GROUPS.values() for k in group} == set(KINDS)


def test_bert_like_checkpoint() -> None:
    src = Source()
    h, inter = 32, 64
    src.add("bert.embeddings.word_embeddings.weight", (100, h))
    src.add("bert.embeddings.position_embeddings.weight", (40, h))
    src.add("bert.embeddings.token_type_embeddings.weight", (2, h))
    src.add("bert.embeddings.LayerNorm.weight", (h,))
    src.add("bert.embeddings.position_ids", (1, 40), "int64", np.arange(40)[None])
    for i in range(2):
        p = f"bert.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            src.add(f"{p}attention.self.{name}.weight", (h, h))
            src.add(f"{p}attention.self.{name}.bias", (h,))
        src.add(f"{p}attention.output.dense.weight", (h, h))
        src.add(f"{p}attention.output.LayerNorm.weight", (h,))
        src.add(f"{p}intermediate.dense.weight", (inter, h))
        src.add(f"{p}output.dense.weight", (h, inter))
        src.add(f"{p}output.dense.bias", (h,))
    src.add("bert.pooler.dense.weight", (h, h))
    src.add("cls.predictions.transform.LayerNorm.weight", (2, h))  # 2-D, still a norm
    matrices, skipped = select_matrices(src.refs)
    kinds = _kinds(matrices)
    p = "bert.encoder.layer.1."
    assert kinds == {
        "bert.embeddings.word_embeddings.weight": "embedding",
        "bert.embeddings.position_embeddings.weight": "embedding",
        **{
            f"bert.encoder.layer.{i}.{suffix}": kind
            for i in range(2)
            for suffix, kind in [
                ("attention.self.query.weight", "attention_q"),
                ("attention.self.key.weight", "attention_k"),
                ("attention.self.value.weight", "attention_v"),
                ("attention.output.dense.weight", "attention_o"),
                ("intermediate.dense.weight", "mlp_in"),
                ("output.dense.weight", "mlp_out"),
            ]
        },
        "bert.pooler.dense.weight": "linear",
    }
    depth = {m.name: m.depth for m in matrices}
    assert depth[p + "output.dense.weight"] == 1
    assert depth["bert.pooler.dense.weight"] == -1
    shape = {m.name: m.shape for m in matrices}
    assert shape[p + "intermediate.dense.weight"] == (inter, h)
    reasons = _reasons(skipped)
    assert reasons["bert.embeddings.token_type_embeddings.weight"] == (
        "too small: min dimension 2 < 16"
    )
    assert reasons["bert.embeddings.LayerNorm.weight"] == "vector (bias or norm scale)"
    assert reasons[p + "output.dense.bias"] == "vector (bias or norm scale)"
    assert reasons["bert.embeddings.position_ids"] == "integer dtype int64"
    assert (
        reasons["cls.predictions.transform.LayerNorm.weight"] == "normalisation layer"
    )
    assert len(matrices) + len(skipped) == len(src.refs)
    assert all(n == 0 for n in src.reads.values())  # nothing read


def test_gpt2_c_attn_split() -> None:
    src = Source()
    w = src.add("transformer.h.3.attn.c_attn.weight", (768, 2304))
    src.add("transformer.h.3.attn.c_attn.bias", (2304,))
    src.add("transformer.h.3.attn.c_proj.weight", (768, 768))
    src.add("transformer.h.3.mlp.c_fc.weight", (768, 3072))
    src.add("transformer.h.3.mlp.c_proj.weight", (3072, 768))
    src.add("transformer.h.3.ln_1.weight", (768,))
    src.add("transformer.wte.weight", (500, 768))
    matrices, skipped = select_matrices(src.refs)
    by_name = {m.name: m for m in matrices}
    base = "transformer.h.3.attn.c_attn.weight"
    for i, tag in enumerate("qkv"):
        m = by_name[f"{base}[{tag}]"]
        assert (m.kind, m.shape, m.depth) == (f"attention_{tag}", (768, 768), 3)
        np.testing.assert_array_equal(m.load(), w[:, i * 768 : (i + 1) * 768])
    assert base not in by_name
    assert by_name["transformer.h.3.attn.c_proj.weight"].kind == "attention_o"
    assert by_name["transformer.h.3.mlp.c_fc.weight"].kind == "mlp_in"
    assert by_name["transformer.h.3.mlp.c_proj.weight"].kind == "mlp_out"
    assert by_name["transformer.wte.weight"].kind == "embedding"
    assert set(_reasons(skipped)) == {
        "transformer.h.3.attn.c_attn.bias",
        "transformer.h.3.ln_1.weight",
    }
    assert src.reads[base] == 3  # one read per part, each on demand


def test_pytorch_mha_in_proj_split_on_axis_0() -> None:
    src = Source()
    e = 32
    w = src.add("encoder.layers.2.self_attn.in_proj_weight", (3 * e, e))
    src.add("encoder.layers.2.self_attn.out_proj.weight", (e, e))
    matrices, _ = select_matrices(src.refs)
    by_name = {m.name: m for m in matrices}
    for i, tag in enumerate("qkv"):
        m = by_name[f"encoder.layers.2.self_attn.in_proj_weight[{tag}]"]
        assert m.shape == (e, e) and m.depth == 2
        loaded = m.load()
        np.testing.assert_array_equal(loaded, w[i * e : (i + 1) * e])
        assert loaded.flags.c_contiguous
    assert by_name["encoder.layers.2.self_attn.out_proj.weight"].kind == "attention_o"


def test_unsplittable_or_unsplit_qkv_stays_whole() -> None:
    src = Source()
    src.add("model.layers.0.self_attn.qkv_proj.weight", (32 + 2 * 8, 32))  # GQA
    src.add("blocks.1.attn.qkv.weight", (96, 32))
    matrices, skipped = select_matrices(src.refs, split_qkv=True)
    assert _kinds(matrices) == {
        "model.layers.0.self_attn.qkv_proj.weight": "attention_qkv",
        "blocks.1.attn.qkv.weight[q]": "attention_q",
        "blocks.1.attn.qkv.weight[k]": "attention_k",
        "blocks.1.attn.qkv.weight[v]": "attention_v",
    }
    assert skipped == []
    matrices, skipped = select_matrices(src.refs, split_qkv=False)
    assert [(m.name, m.kind, m.shape) for m in matrices][1] == (
        "blocks.1.attn.qkv.weight",
        "attention_qkv",
        (96, 32),
    )
    assert skipped == []


def test_conv_reshape_and_slices() -> None:
    src = Source()
    w = src.add("features.conv1.weight", (8, 3, 3, 3))
    (m,), _ = select_matrices(src.refs, min_dim=1)
    assert (m.name, m.kind, m.shape) == ("features.conv1.weight", "conv", (8, 27))
    np.testing.assert_array_equal(m.load(), w.reshape(8, 27))
    matrices, skipped = select_matrices(src.refs, conv="slices", min_dim=1)
    assert skipped == [] and len(matrices) == 9
    for m in matrices:
        i, j = map(int, m.name.removeprefix("features.conv1.weight[")[:-1].split(","))
        assert (m.kind, m.shape) == ("conv", (8, 3))
        np.testing.assert_array_equal(m.load(), w[:, :, i, j])
    assert matrices[5].name == "features.conv1.weight[1,2]"


def test_flax_conv_kernel_layout() -> None:
    src = Source()
    w = src.add("params/Conv_0/kernel", (3, 3, 4, 8))  # (kh, kw, in, out)
    (m,), _ = select_matrices(src.refs, min_dim=1)
    assert (m.kind, m.shape) == ("conv", (8, 36))
    torch_layout = w.transpose(3, 2, 0, 1)  # (out, in, kh, kw)
    np.testing.assert_array_equal(m.load(), torch_layout.reshape(8, 36))
    np.testing.assert_allclose(
        np.linalg.svd(m.load(), compute_uv=False),
        np.linalg.svd(w.reshape(36, 8), compute_uv=False),
        rtol=1e-5,
    )
    slices, _ = select_matrices(src.refs, conv="slices", min_dim=1)
    assert len(slices) == 9
    np.testing.assert_array_equal(slices[7].load(), w[2, 1].T)
    assert slices[7].name == "params/Conv_0/kernel[2,1]"


def test_conv1d_and_flax_dense_general() -> None:
    src = Source()
    w1 = src.add("encoder.conv.weight", (16, 4, 5))
    q = src.add(
        "params/encoderblock_2/MultiHeadDotProductAttention_0/query/kernel", (32, 4, 8)
    )
    out = src.add(
        "params/encoderblock_2/MultiHeadDotProductAttention_0/out/kernel", (4, 8, 32)
    )
    matrices, _ = select_matrices(src.refs, min_dim=1)
    by_kind = {m.kind: m for m in matrices}
    np.testing.assert_array_equal(by_kind["conv"].load(), w1.reshape(16, 20))
    assert by_kind["attention_q"].shape == (32, 32)
    assert by_kind["attention_q"].depth == 2
    np.testing.assert_array_equal(by_kind["attention_q"].load(), q.reshape(32, 32))
    np.testing.assert_array_equal(by_kind["attention_o"].load(), out.reshape(32, 32))


def test_small_conv_slices_are_one_skipped_entry() -> None:
    src = Source()
    src.add("conv1.weight", (8, 3, 3, 3))
    matrices, skipped = select_matrices(src.refs, conv="slices")
    assert matrices == []
    assert skipped == [
        Skipped("conv1.weight", (8, 3, 3, 3), "too small: min dimension 3 < 16")
    ]


def test_include_exclude_kinds() -> None:
    src = Source()
    for i in range(3):
        src.add(f"model.layers.{i}.self_attn.q_proj.weight", (32, 32))
        src.add(f"model.layers.{i}.mlp.up_proj.weight", (64, 32))
        src.add(f"model.layers.{i}.mlp.down_proj.weight", (32, 64))
    src.add("model.embed_tokens.weight", (100, 32))
    src.add("lm_head.weight", (100, 32))

    matrices, skipped = select_matrices(src.refs, include=r"layers\.[01]\.")
    assert {m.depth for m in matrices} == {0, 1}
    assert (
        _reasons(skipped)["lm_head.weight"]
        == "does not match --include 'layers\\\\.[01]\\\\.'"
    )

    matrices, skipped = select_matrices(src.refs, exclude="mlp")
    assert {m.kind for m in matrices} == {"attention_q", "embedding", "linear"}
    assert (
        _reasons(skipped)["model.layers.2.mlp.up_proj.weight"]
        == "matches --exclude 'mlp'"
    )

    matrices, skipped = select_matrices(src.refs, kinds=["mlp", "embedding"])
    assert {m.kind for m in matrices} == {"mlp_in", "mlp_out", "embedding"}
    reasons = _reasons(skipped)
    assert reasons["lm_head.weight"] == "kind linear not selected"
    assert (
        reasons["model.layers.0.self_attn.q_proj.weight"]
        == "kind attention_q not selected"
    )

    matrices, _ = select_matrices(src.refs, kinds="mlp_out")  # a single name
    assert {m.kind for m in matrices} == {"mlp_out"}
    matrices, _ = select_matrices(src.refs, kinds=None)
    assert len(matrices) == len(src.refs)


def test_kinds_filter_on_fused_parts() -> None:
    src = Source()
    src.add("h.0.attn.c_attn.weight", (32, 96))
    matrices, skipped = select_matrices(src.refs, kinds=["attention_q"])
    assert [m.name for m in matrices] == ["h.0.attn.c_attn.weight[q]"]
    assert _reasons(skipped) == {
        "h.0.attn.c_attn.weight[k]": "kind attention_k not selected",
        "h.0.attn.c_attn.weight[v]": "kind attention_v not selected",
    }
    matrices, skipped = select_matrices(src.refs, kinds=["mlp"])
    assert matrices == []
    assert skipped == [
        Skipped("h.0.attn.c_attn.weight", (32, 96), "kind attention_qkv not selected")
    ]
    matrices, _ = select_matrices(src.refs, kinds=["attention_qkv"])
    assert len(matrices) == 3


def test_expand_kinds() -> None:
    assert expand_kinds(["mlp", "conv"]) == {"mlp_in", "mlp_out", "conv"}
    assert expand_kinds("attention") == set(KINDS[:5])
    with pytest.raises(HTMPError, match="unknown kind 'ffn'"):
        expand_kinds(("ffn",))


def test_bad_options() -> None:
    with pytest.raises(HTMPError) as exc:
        select_matrices([], kinds=["attention", "mlp_hidden"])
    msg = str(exc.value)
    assert "'mlp_hidden'" in msg and "attention_qkv" in msg and "mlp" in msg
    with pytest.raises(HTMPError, match="--include"):
        select_matrices([], include="(")
    with pytest.raises(HTMPError, match="conv"):
        select_matrices([], conv="pool")  # type: ignore[arg-type]


def test_other_skip_reasons() -> None:
    src = Source()
    src.add("scale", ())
    src.add("mask", (32, 32), "bool", np.ones((32, 32), bool))
    src.add("q8.weight", (32, 32), "float8_e4m3fn")
    src.add("layer1.0.bn1.weight", (32, 32))
    src.add("big", (2,) * 6)
    _, skipped = select_matrices(src.refs)
    assert _reasons(skipped) == {
        "scale": "scalar",
        "mask": "unsupported dtype bool",
        "q8.weight": "unsupported dtype float8_e4m3fn",
        "layer1.0.bn1.weight": "normalisation layer",
        "big": "6-D tensor is neither a matrix nor a convolution kernel",
    }


def test_load_converts_and_checks_finiteness() -> None:
    src = Source()
    src.add("a.weight", (20, 20), "float16", np.ones((20, 20), np.float16))
    bad = np.ones((20, 20))
    bad[3, 4], bad[5, 6] = np.nan, np.inf
    src.add("b.weight", (20, 20), "float64", bad)
    a, b = select_matrices(src.refs)[0]
    assert a.load().dtype == np.float32
    with pytest.raises(SpectrumError) as exc:
        b.load()
    assert str(exc.value) == "layer b.weight: 2 NaN/inf entries"


@pytest.mark.parametrize(
    "name, kind",
    [
        ("encoder.block.2.layer.0.SelfAttention.q.weight", "attention_q"),
        ("encoder.block.2.layer.0.SelfAttention.o.weight", "attention_o"),
        ("encoder.block.2.layer.1.DenseReluDense.wi.weight", "mlp_in"),
        ("encoder.block.2.layer.1.DenseReluDense.wo.weight", "mlp_out"),
        ("shared.weight", "embedding"),
        ("layers.4.attention.wq.weight", "attention_q"),
        ("layers.4.attention.wo.weight", "attention_o"),
        ("layers.4.feed_forward.w1.weight", "mlp_in"),
        ("layers.4.feed_forward.w3.weight", "mlp_in"),
        ("layers.4.feed_forward.w2.weight", "mlp_out"),
        ("model.layers.1.self_attn.k_proj.weight", "attention_k"),
        ("model.layers.1.self_attn.v_proj.weight", "attention_v"),
        ("model.layers.1.mlp.gate_proj.weight", "mlp_in"),
        ("blocks.0.mlp.fc2.weight", "mlp_out"),
        ("blocks.0.mlp.0.weight", "mlp_in"),
        ("transformer.blocks.7.attn.Wqkv.weight", "attention_qkv"),
        ("gpt_neox.layers.1.attention.query_key_value.weight", "attention_qkv"),
        ("transformer.wpe.weight", "embedding"),
        ("params/Embed_0/embedding", "embedding"),
        ("lm_head.weight", "linear"),
        ("params/Dense_0/kernel", "linear"),
        ("classifier.weight", "linear"),
        ("monkey.weight", "linear"),  # "key" only as a whole component
    ],
)
def test_classify(name: str, kind: str) -> None:
    assert classify(name, (32, 32)) == kind


@pytest.mark.parametrize(
    "name, depth",
    [
        ("bert.encoder.layer.3.attention.self.query.weight", 3),
        ("model.layers.12.mlp.down_proj.weight", 12),
        ("transformer.h.5.attn.c_attn.weight", 5),
        ("blocks.2.attn.qkv.weight", 2),
        ("encoder.block.4.layer.1.DenseReluDense.wi.weight", 4),
        ("params/layer_3/Dense_0/kernel", 3),
        ("params/encoderblock_7/MlpBlock_0/Dense_0/kernel", 7),
        ("visual.transformer.resblocks.11.attn.in_proj_weight", 11),
        ("bert.embeddings.word_embeddings.weight", -1),
        ("fc1.weight", -1),
        ("h.weight", -1),
    ],
)
def test_layer_depth(name: str, depth: int) -> None:
    assert layer_depth(name) == depth


def test_from_a_safetensors_file(tmp_path: Path) -> None:
    w = RNG.standard_normal((32, 96)).astype(np.float32)
    save_file(
        {"h.1.attn.c_attn.weight": w, "h.1.attn.c_attn.bias": np.zeros(96, np.float32)},
        str(tmp_path / "m.safetensors"),
    )
    matrices, skipped = select_matrices(open_weights(tmp_path / "m.safetensors"))
    assert [m.name for m in matrices] == [f"h.1.attn.c_attn.weight[{t}]" for t in "qkv"]
    np.testing.assert_array_equal(matrices[2].load(), w[:, 64:])
    assert _reasons(skipped) == {"h.1.attn.c_attn.bias": "vector (bias or norm scale)"}
