"""Which tensors of a checkpoint are weight matrices, and of what kind.

:func:`select_matrices` turns the :class:`~htmp_infer.networks.weights.TensorRef` list
of a
checkpoint into :class:`MatrixRef` objects (one 2-D matrix each, read lazily) and
a list of :class:`Skipped` tensors with the reason each was left out.

Conventions
-----------
Kinds (:data:`KINDS`) follow the tensor name, case-insensitively, split into
components at ``.`` and ``/``:

* ``embedding``: ``embed`` in a component (``word_embeddings``, ``embed_tokens``,
  ``Embed_0``), ``wte``, ``wpe``, ``shared.weight``; ``lm_head`` is ``linear``.
* ``attention_qkv`` (fused): ``qkv`` in a component, ``c_attn``,
  ``in_proj_weight``, ``Wqkv``, ``query_key_value``.
* ``attention_q/k/v/o``: ``query``/``q_proj``/``q``, ``key``/``k_proj``/``k``,
  ``value``/``v_proj``/``v``, ``attention.output.dense``/``o_proj``/``out_proj``/
  ``attn.c_proj``/``o``; ``wq``/``wk``/``wv``/``wo``/``out`` under an attention
  component (``attn``, ``attention``).
* ``mlp_in``: ``intermediate.dense``, ``fc1``, ``up_proj``, ``gate_proj``,
  ``c_fc``, ``mlp.0``, ``w1``, ``w3``, ``wi``; ``mlp_out``: ``output.dense`` not
  under ``attention``, ``fc2``, ``down_proj``, ``mlp.c_proj``, ``w2``, ``wo``.
* ``conv``: any 3-D to 5-D tensor (3-D is a conv1d kernel); ``linear``: any
  other 2-D tensor.

Orientation: Flax kernels are stored (in, out), PyTorch weights (out, in). The
singular values, hence the spectrum, do not depend on orientation, so 2-D
matrices are returned as stored, without a transpose.

Skipped: tensors of fewer than two dimensions (biases, norm scales), names of
normalisation layers (a component containing ``norm``, ``ln``/``ln_*``,
``bn``/``bn1``), non-float dtypes, tensors of more than five dimensions, kinds not
selected, and matrices whose smaller side is below ``min_dim`` (for instance
BERT's 2 x 384 ``token_type_embeddings``).

Convolutions: PyTorch kernels are (out, in, *k) (names ending ``weight``), Flax
kernels (*k, in, out) (names ending ``kernel``). ``conv="reshape"`` gives one
(out, in * prod(k)) matrix per kernel, in PyTorch order for both layouts.
``conv="slices"`` gives one (out, in) matrix per spatial position, named
``"conv1.weight[i,j]"``: each slice is a layer of its own. Their spectra are not
pooled into one spectrum, since a pooled spectrum is not one Coulomb gas; the
hierarchical model pools across slices instead. A 3-D Flax ``DenseGeneral``
attention kernel (``query/kernel`` (E, H, D), ``out/kernel`` (H, D, E)) is
reshaped to (E, H * D) or (H * D, E), not treated as a convolution.

Fused QKV (``split_qkv=True``): the axis exactly three times the other one,
axis 0 for PyTorch's ``in_proj_weight`` (3E, E), axis 1 for GPT-2's Conv1D
``c_attn`` (E, 3E), splits into three matrices suffixed ``[q]``, ``[k]``,
``[v]`` of kinds ``attention_q/k/v``. Without such an axis (grouped-query
attention), or with ``split_qkv=False``, the tensor stays whole as
``attention_qkv``.

Depth: the first integer after a ``layer``, ``layers``, ``h``, ``block`` or
``blocks`` component (``encoder.layer.3.``, ``model.layers.12.``, ``h.5.``), or
in a ``layer_3``/``layers_3``/``block_3`` component; -1 when there is none.

A :class:`MatrixRef`'s ``load`` reads its tensor only when called (a fused or
sliced tensor is read once per part) and raises
:class:`~htmp_infer.errors.SpectrumError` on NaN or inf entries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable
from typing import Literal, NamedTuple

import numpy as np

from htmp_infer.errors import ArgumentError, SpectrumError
from htmp_infer.networks.weights import TensorRef

__all__ = [
    "KINDS",
    "KIND_GROUPS",
    "MatrixRef",
    "SelectionError",
    "Skipped",
    "classify",
    "compile_pattern",
    "expand_kinds",
    "layer_depth",
    "select_matrices",
]

KINDS = ("attention_q", "attention_k", "attention_v", "attention_o", "attention_qkv",
         "mlp_in", "mlp_out", "conv", "embedding", "linear")  # fmt: skip
KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "attention": KINDS[:5],
    "mlp": ("mlp_in", "mlp_out"),
    "conv": ("conv",),
    "embedding": ("embedding",),
    "linear": ("linear",),
}


class SelectionError(ArgumentError):
    """A bad layer-selection argument: regular expression, kind or ``conv``
    (an :class:`~htmp_infer.errors.ArgumentError`: HTMPError and ValueError)."""


class Skipped(NamedTuple):
    """A tensor (or part of one) that is not analysed, and why."""

    name: str
    shape: tuple[int, ...]
    reason: str


class MatrixRef(NamedTuple):
    """One weight matrix, read when ``load()`` is called.

    Attributes
    ----------
    name : str
        Tensor name; parts carry a suffix (``"c_attn.weight[q]"``, ``"conv[1,2]"``).
    kind : str
        One of :data:`KINDS`.
    depth : int
        Block index parsed from the name (:func:`layer_depth`), -1 when none.
    shape : tuple of int
        The 2-D shape ``load()`` returns.
    load : callable
        Returns the matrix, float32 or float64.
    """

    name: str
    kind: str
    depth: int
    shape: tuple[int, int]
    load: Callable[[], np.ndarray]


_FLOATS = ("float16", "bfloat16", "float32", "float64")
_QKV = {"c_attn", "in_proj_weight", "wqkv", "query_key_value"}
_ATTN = dict.fromkeys(("query", "q_proj", "q"), "attention_q")
_ATTN |= dict.fromkeys(("key", "k_proj", "k"), "attention_k")
_ATTN |= dict.fromkeys(("value", "v_proj", "v"), "attention_v")
_ATTN |= dict.fromkeys(("o_proj", "out_proj", "o"), "attention_o")
_ATTN_CTX = {"wq": "attention_q", "wk": "attention_k", "wv": "attention_v"}
_ATTN_CTX |= {"wo": "attention_o", "out": "attention_o"}
_MLP_IN = {"fc1", "up_proj", "gate_proj", "c_fc", "w1", "w3", "wi", "wi_0", "wi_1"}
_MLP_IN |= {"dense_h_to_4h", "gate_up_proj"}
_MLP_OUT = {"fc2", "down_proj", "w2", "wo", "dense_4h_to_h"}
_DEPTH_KEY = re.compile(r"h|[a-z]*(?:layers?|blocks?)")
_DEPTH_ONE = re.compile(r"[a-z]*(?:layers?|blocks?)_?(\d+)")


def _parts(name: str) -> list[str]:
    return re.split(r"[./]", name.lower())


def _attn_context(parts: list[str]) -> bool:
    return any("attn" in p or "attention" in p for p in parts)


def _dense_general(parts: list[str], shape: tuple[int, ...]) -> bool:
    """A 3-D Flax DenseGeneral attention kernel (query/key/value/out)."""
    if len(shape) != 3 or len(parts) < 2 or parts[-1] != "kernel":
        return False
    return parts[-2] in ("query", "key", "value", "out") and _attn_context(parts)


def classify(name: str, shape: tuple[int, ...]) -> str:
    """The kind (one of :data:`KINDS`) of a tensor of two or more dimensions."""
    parts = _parts(name)
    dotted = "." + ".".join(parts) + "."
    attn = _attn_context(parts)
    if _dense_general(parts, shape):
        return _ATTN.get(parts[-2]) or _ATTN_CTX[parts[-2]]
    if len(shape) >= 3:
        return "conv"
    if "lm_head" in parts:
        return "linear"
    if any("embed" in p for p in parts) or {"wte", "wpe"} & set(parts):
        return "embedding"
    if ".shared.weight." in dotted:
        return "embedding"
    if _QKV & set(parts) or any("qkv" in p for p in parts):
        return "attention_qkv"
    if ".attention.output.dense." in dotted or ".attn.c_proj." in dotted:
        return "attention_o"
    for part in reversed(parts):
        if part in _ATTN or (attn and part in _ATTN_CTX):
            return _ATTN.get(part) or _ATTN_CTX[part]
    if ".intermediate.dense." in dotted or ".mlp.0." in dotted or _MLP_IN & set(parts):
        return "mlp_in"
    if ".mlp.c_proj." in dotted or _MLP_OUT & set(parts):
        return "mlp_out"
    if ".output.dense." in dotted and not attn:
        return "mlp_out"
    return "linear"


def layer_depth(name: str) -> int:
    """Block index in a tensor name (``"model.layers.12.mlp"`` -> 12); -1 if none."""
    parts = _parts(name)
    for i, part in enumerate(parts):
        if _DEPTH_KEY.fullmatch(part) and i + 1 < len(parts) and parts[i + 1].isdigit():
            return int(parts[i + 1])
        if found := _DEPTH_ONE.fullmatch(part):
            return int(found.group(1))
    return -1


def _skip_reason(ref: TensorRef) -> str | None:
    parts = _parts(ref.name)
    ndim = len(ref.shape)
    if ndim < 2:
        return "vector (bias or norm scale)" if ndim == 1 else "scalar"
    if any("norm" in p or re.fullmatch(r"ln(_\w+|\d*)|bn(_?\d+)?", p) for p in parts):
        return "normalisation layer"
    if ref.dtype not in _FLOATS:
        if ref.dtype.startswith(("int", "uint")):
            return f"integer dtype {ref.dtype}"
        return f"unsupported dtype {ref.dtype}"
    if ndim > 5:
        return f"{ndim}-D tensor is neither a matrix nor a convolution kernel"
    return None


class _Part(NamedTuple):
    """A matrix of a tensor: ``tensor.transpose(perm)[at].reshape(shape)``."""

    name: str
    kind: str
    shape: tuple[int, int]
    at: tuple[slice | int, ...] = ()
    perm: tuple[int, ...] | None = None


def _parts_of(ref: TensorRef, kind: str, conv: str, split_qkv: bool) -> list[_Part]:
    """The matrices of one tensor (several for conv slices and fused QKV)."""
    shape, name, every = ref.shape, ref.name, slice(None)
    if _dense_general(_parts(name), shape):
        if _parts(name)[-2] == "out":  # (H, D, E) -> (H * D, E)
            return [_Part(name, kind, (shape[0] * shape[1], shape[2]))]
        return [_Part(name, kind, (shape[0], shape[1] * shape[2]))]
    if len(shape) >= 3:
        nd, flax = len(shape), _parts(name)[-1] == "kernel"
        perm = (nd - 1, nd - 2, *range(nd - 2)) if flax else None  # -> (out, in, *k)
        n_out, n_in, *k = [shape[i] for i in perm] if perm else shape
        if conv == "reshape":
            return [_Part(name, kind, (n_out, n_in * math.prod(k)), (), perm)]
        return [
            _Part(f"{name}[{','.join(map(str, at))}]", kind, (n_out, n_in),
                  (every, every, *at), perm)
            for at in np.ndindex(*k)
        ]  # fmt: skip
    rows, cols = shape[0], shape[1]
    if split_qkv and kind == "attention_qkv" and (rows == 3 * cols or cols == 3 * rows):
        n = min(rows, cols)
        cuts = [slice(i * n, (i + 1) * n) for i in range(3)]
        index = [(c, every) if rows == 3 * cols else (every, c) for c in cuts]
        return [
            _Part(f"{name}[{tag}]", f"attention_{tag}", (n, n), at)
            for tag, at in zip("qkv", index, strict=True)
        ]
    return [_Part(name, kind, (rows, cols))]


def _loader(ref: TensorRef, part: _Part) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        w = np.asarray(ref.load())
        if w.dtype not in (np.float32, np.float64):
            w = w.astype(np.float32)
        if part.perm is not None:
            w = w.transpose(part.perm)
        m = np.ascontiguousarray(w[part.at].reshape(part.shape))
        if bad := int(m.size - np.count_nonzero(np.isfinite(m))):
            raise SpectrumError(f"layer {part.name}: {bad} NaN/inf entries")
        return m

    return load


def compile_pattern(pattern: str | None, option: str) -> re.Pattern[str] | None:
    """``re.compile(pattern)``; a bad one is a :class:`SelectionError` naming
    ``option`` (``"--include"``) and the pattern. None gives None."""
    try:
        return None if pattern is None else re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise SelectionError(
            f"{option} {pattern!r}: not a regular expression ({exc})"
        ) from None


def expand_kinds(kinds: str | Iterable[str]) -> set[str]:
    """Kinds and group names (``["attention", "mlp_in"]``) -> the set of kinds.

    Raises
    ------
    SelectionError
        A name that is neither a kind nor a group, listing the valid names.
    """
    names = [kinds] if isinstance(kinds, str) else list(kinds)
    if unknown := [k for k in names if k not in KIND_GROUPS and k not in KINDS]:
        valid = ", ".join([*KIND_GROUPS, *(k for k in KINDS if k not in KIND_GROUPS)])
        raise SelectionError(
            f"unknown kind {', '.join(map(repr, unknown))}; valid: {valid}"
        )
    return {k for n in names for k in KIND_GROUPS.get(n, (n,))}


def select_matrices(
    tensors: Iterable[TensorRef],
    *,
    include: str | None = None,
    exclude: str | None = None,
    kinds: Collection[str] | None = None,
    conv: Literal["reshape", "slices"] = "reshape",
    split_qkv: bool = True,
    min_dim: int = 16,
) -> tuple[list[MatrixRef], list[Skipped]]:
    """Pick the weight matrices of a checkpoint; nothing is read.

    Parameters
    ----------
    tensors : iterable of TensorRef
        From :func:`~htmp_infer.networks.weights.open_weights` or ``pytree_tensors``.
    include, exclude : str, optional
        Regular expressions searched in the tensor name: tensors not matching
        ``include``, or matching ``exclude``, are skipped.
    kinds : collection of str, optional
        Kinds (:data:`KINDS`) or group names (:data:`KIND_GROUPS`) to keep; a
        fused QKV part is kept when its own kind or ``attention_qkv`` is
        selected. None or empty: all kinds.
    conv : {"reshape", "slices"}
        One (out, in * prod(k)) matrix per kernel, or one (out, in) per position.
    split_qkv : bool
        Split fused QKV tensors into query, key and value matrices.
    min_dim : int
        Skip matrices whose smaller side is below this.

    Returns
    -------
    matrices : list of MatrixRef
    skipped : list of Skipped
        Every tensor (or part) left out, with the reason.

    Raises
    ------
    SelectionError
        Unknown kind, invalid regular expression or ``conv`` value (an
        :class:`~htmp_infer.errors.HTMPError` and a ``ValueError``).
    """
    if conv not in ("reshape", "slices"):
        raise SelectionError(f"conv must be 'reshape' or 'slices', not {conv!r}")
    wanted = expand_kinds(kinds) if kinds else None
    inc = compile_pattern(include, "--include")
    exc = compile_pattern(exclude, "--exclude")
    matrices: list[MatrixRef] = []
    skipped: list[Skipped] = []
    for ref in tensors:
        reason = _skip_reason(ref)
        if inc is not None and not inc.search(ref.name):
            reason = f"does not match --include {include!r}"
        elif exc is not None and exc.search(ref.name):
            reason = f"matches --exclude {exclude!r}"
        if reason is not None:
            skipped.append(Skipped(ref.name, ref.shape, reason))
            continue
        kind, depth = classify(ref.name, ref.shape), layer_depth(ref.name)
        parts = _parts_of(ref, kind, conv, split_qkv)
        left: list[Skipped] = []
        for part in parts:
            if wanted is not None and not {part.kind, kind} & wanted:
                why = f"kind {part.kind} not selected"
            elif min(part.shape) < min_dim:
                why = f"too small: min dimension {min(part.shape)} < {min_dim}"
            else:
                load = _loader(ref, part)
                matrices.append(
                    MatrixRef(part.name, part.kind, depth, part.shape, load)
                )
                continue
            left.append(Skipped(part.name, part.shape, why))
        if len(parts) > 1 and len(left) == len(parts):  # one line for the tensor
            if all(s.reason.startswith("kind ") for s in left):
                left = [Skipped(ref.name, ref.shape, f"kind {kind} not selected")]
            elif len({s.reason for s in left}) == 1:
                left = [Skipped(ref.name, ref.shape, left[0].reason)]
        skipped.extend(left)
    return matrices, skipped
