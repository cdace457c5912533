"""WeightWatcher ``analyze()`` on a safetensors checkpoint, without torch.

Peer reference for ``benchmarks/scan.py``: times WeightWatcher 0.7.7 on the same
weights our scan reads.

Install (not a project dependency)::

    .venv/bin/pip install weightwatcher

That adds one 83 kB pure-Python wheel. Its requirements (numpy, pandas, scipy,
matplotlib, matplotlib-inline, powerlaw, scikit-learn, safetensors, tqdm) are
already in the dev venv. Neither torch nor tensorflow is needed. WeightWatcher's
own safetensors-directory route opens files with ``framework="pt"``, so it does
need torch, and the torch wheel here is the CUDA build (about 3 GB of wheels).
This helper instead loads the tensors with ``safetensors.numpy`` and passes the
plain ``{name: ndarray}`` dict, which WeightWatcher treats as a PyTorch state dict
("pystatedict"). That code path only reads the module-global name ``torch`` for
``type(w) == torch.Tensor`` checks. Without torch the global is never bound, so
we bind a stand-in whose ``Tensor`` matches nothing. If real torch is installed,
WeightWatcher replaces the stand-in and nothing changes.

What it analyses: every ``*.weight`` key in the file(s), in file (alphabetical)
order, with WeightWatcher's ``layer_id`` counting from 1 over those keys.
1-D weights (LayerNorm) are skipped as unknown layer types. Matrices with
``min(shape) < min_evals = 8`` are skipped too, e.g. BERT's 2x384
``token_type_embeddings``. Every other 2-D weight is treated as a dense layer,
embeddings included (the word embedding 30522x384 has N = 30522, so it is within
``max_N = 50000``). WeightWatcher's ``N`` is the larger dimension and ``M`` the
smaller; each layer costs one float64 ``scipy.linalg.svd(compute_uv=False)``.
With ``full=True`` (``randomize=True, mp_fit=True``) it also does two SVDs of a
randomly permuted copy per layer. That copy comes from NumPy's global RNG and is
unseeded, so the ``rand_*`` columns vary from run to run. It also does a
Marchenko-Pastur fit of both spectra: a ``scipy.optimize.brute`` search over
scikit-learn KDEs, which is about 90 % of the full mode's time.

Timing note: on a shared machine with few cores, multi-threaded OpenBLAS is slow
and noisy for these small SVDs. Set ``OPENBLAS_NUM_THREADS=1`` (before NumPy is
imported) for both this run and our own scan.
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas

__all__ = ["run_weightwatcher", "weightwatcher_available"]

_WW_LOGGER = "weightwatcher"


@functools.cache
def _import_weightwatcher() -> types.ModuleType:
    """Import ``weightwatcher`` quietly and return its ``weightwatcher`` module.

    On import, WeightWatcher calls ``logging.basicConfig(level=INFO)``. It also
    logs a warning when torch is missing, and a CRITICAL "Can not load torch" for
    each ``WeightWatcher(model)`` it builds. This function puts back the root
    logger's handlers and level, and mutes WeightWatcher's own logger.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    ww_logger = logging.getLogger(_WW_LOGGER)
    ww_logger.setLevel(logging.CRITICAL + 1)
    try:
        ww_module = importlib.import_module("weightwatcher.weightwatcher")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        ww_logger.setLevel(logging.CRITICAL + 1)  # the import resets it to WARNING

    if not hasattr(ww_module, "torch"):  # bound only once WW imports real torch

        class _NoTensor:
            pass

        ww_module.__dict__["torch"] = types.SimpleNamespace(Tensor=_NoTensor)
    return ww_module


def weightwatcher_available() -> str | None:
    """Return None when weightwatcher imports; otherwise a one-line reason."""
    try:
        _import_weightwatcher()
    except ImportError as exc:
        return f"weightwatcher not importable ({exc}); `pip install weightwatcher`"
    return None


def _safetensors_files(weights_path: Path) -> list[Path]:
    if weights_path.is_dir():
        files = sorted(weights_path.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no *.safetensors in {weights_path}")
        return files
    if weights_path.suffix != ".safetensors":
        raise ValueError(f"expected a .safetensors file or directory: {weights_path}")
    return [weights_path]


def _load_state_dict(weights_path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file (or directory of shards) as NumPy arrays.

    bfloat16 and float8 become float32. Reading them needs ``ml_dtypes``, which
    JAX installs.
    """
    try:
        import ml_dtypes  # noqa: F401  (registers bfloat16 / float8 with NumPy)
    except ImportError:
        pass
    from safetensors.numpy import load_file

    state: dict[str, np.ndarray] = {}
    for path in _safetensors_files(weights_path):
        for key, arr in load_file(path).items():
            if arr.dtype.kind == "V" or arr.dtype.name.startswith(("bfloat", "float8")):
                arr = arr.astype(np.float32)
            state[key] = arr
    return state


def run_weightwatcher(
    weights_path: Path, *, full: bool
) -> tuple[float, pandas.DataFrame]:
    """Run WeightWatcher ``analyze()`` on a safetensors file or directory.

    ``full=False`` runs WeightWatcher's default analysis, a power-law alpha per
    layer. ``full=True`` adds ``randomize=True, mp_fit=True``. The returned
    seconds cover building ``WeightWatcher(model=...)`` and ``analyze()``. They
    exclude importing weightwatcher (several seconds) and reading the file. The
    DataFrame is WeightWatcher's details table, one row per analysed matrix,
    with columns ``layer_id, name, N, M, alpha, ...``.
    """
    ww_module = _import_weightwatcher()
    state = _load_state_dict(Path(weights_path))
    kwargs: dict[str, Any] = {"plot": False}
    if full:
        kwargs.update(randomize=True, mp_fit=True)
    t0 = time.perf_counter()
    watcher = ww_module.WeightWatcher(model=state)
    details = watcher.analyze(**kwargs)
    seconds = time.perf_counter() - t0
    return seconds, details
