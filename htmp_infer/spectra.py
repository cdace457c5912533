r"""From a checkpoint to a spectra bundle: select, decompose once, cache.

:func:`compute_bundle` opens the weights lazily (:mod:`htmp_infer.weights`), picks
the matrices (:mod:`htmp_infer.layers`) and computes each spectrum with
:func:`~htmp_infer.spectrum.matrix_eigenvalues` (float64 SVD). One tensor is in
memory at a time, so memory stays near the largest single matrix.

Cache
-----
Each spectrum is stored under ``<cache>/<sha256>.npy``, the hash taken over the
matrix's shape, dtype and bytes (exactly what the SVD would see) and the cache
format version. A second scan of the same weights — with other models, other
priors or more draws — reads the matrices and hashes them (about 1 GB/s) but
does no SVD. The cache directory is ``$HTMP_INFER_CACHE/spectra``, by default
``~/.cache/htmp-infer/spectra``; ``HTMP_INFER_CACHE=""`` turns it off. Entries
are written atomically.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from tqdm.auto import tqdm

from htmp_infer.bundle import LayerSpectrum, SpectraBundle
from htmp_infer.errors import HTMPError
from htmp_infer.io import write_atomic
from htmp_infer.layers import MatrixRef, Skipped, select_matrices
from htmp_infer.spectrum import matrix_eigenvalues
from htmp_infer.weights import TensorRef, open_weights

__all__ = ["cache_root", "cached_eigenvalues", "compute_bundle", "default_cache_dir"]

_CACHE_VERSION = b"htmp-infer-spectra-cache/1"


def cache_root() -> Path | None:
    """``$HTMP_INFER_CACHE`` (``~/.cache/htmp-infer`` by default); None: off."""
    root = os.environ.get(
        "HTMP_INFER_CACHE", str(Path.home() / ".cache" / "htmp-infer")
    )
    return Path(root) if root else None


def default_cache_dir() -> Path | None:
    """``$HTMP_INFER_CACHE/spectra``; None when the cache is off."""
    root = cache_root()
    return root / "spectra" if root is not None else None


def _digest(matrix: NDArray[np.generic]) -> str:
    h = hashlib.sha256(_CACHE_VERSION)
    h.update(f"{matrix.dtype.str}{matrix.shape}".encode())
    h.update(np.ascontiguousarray(matrix).data)
    return h.hexdigest()


def cached_eigenvalues(
    matrix: NDArray[np.generic], cache_dir: Path | None
) -> tuple[NDArray[np.float64], bool]:
    """Eigenvalues of :math:`W^\\top W`, from the cache when present.

    Returns
    -------
    eigenvalues : ndarray
        As :func:`~htmp_infer.spectrum.matrix_eigenvalues`.
    hit : bool
        Whether they came from the cache (no SVD done).
    """
    if cache_dir is None:
        return matrix_eigenvalues(matrix), False
    entry = cache_dir / f"{_digest(matrix)}.npy"
    if entry.is_file():
        try:
            lam = np.load(entry, allow_pickle=False)
            if lam.shape == (min(matrix.shape),) and lam.dtype == np.float64:
                return lam, True
        except (OSError, ValueError):
            pass  # a damaged entry is recomputed and replaced
    lam = matrix_eigenvalues(matrix)

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, lam)

    write_atomic(entry, _write)
    return lam, False


def compute_bundle(
    source: str | Path | Sequence[TensorRef],
    *,
    include: str | None = None,
    exclude: str | None = None,
    kinds: Collection[str] | None = None,
    conv: Literal["reshape", "slices"] = "reshape",
    split_qkv: bool = True,
    min_dim: int = 16,
    cache_dir: Path | Literal["default"] | None = "default",
    progress: bool = True,
) -> SpectraBundle:
    """Spectra of every selected weight matrix of a checkpoint.

    Parameters
    ----------
    source : path or sequence of TensorRef
        A file or directory that :func:`htmp_infer.weights.open_weights` reads, or
        tensors already opened (e.g. :func:`htmp_infer.weights.pytree_tensors`).
    include, exclude, kinds, conv, split_qkv, min_dim
        Layer selection, see :func:`htmp_infer.layers.select_matrices`.
    cache_dir : Path, None or "default"
        Spectrum cache (module docstring); None disables it.
    progress : bool
        Show a progress bar over the matrices.

    Returns
    -------
    SpectraBundle
        One layer per selected matrix. Tensors that are not matrices, are not
        selected, or fail (NaN/inf entries, unreadable) are in ``skipped`` with
        their reason; none is dropped silently.

    Raises
    ------
    HTMPError
        When the checkpoint cannot be opened or no matrix is left.
    """
    if isinstance(source, (str, Path)):
        tensors = open_weights(source)
        label = str(source)
    else:
        tensors = list(source)
        label = "<tensors>"
    matrices, skipped = select_matrices(
        tensors,
        include=include,
        exclude=exclude,
        kinds=kinds,
        conv=conv,
        split_qkv=split_qkv,
        min_dim=min_dim,
    )
    cache = default_cache_dir() if cache_dir == "default" else cache_dir
    layers: list[LayerSpectrum] = []
    hits = 0
    bar = tqdm(matrices, desc="spectra", unit="matrix", disable=not progress)
    for ref in bar:
        bar.set_postfix_str(ref.name[-40:], refresh=False)
        try:
            lam, hit = cached_eigenvalues(_load(ref), cache)
        except HTMPError as exc:
            skipped.append(Skipped(ref.name, ref.shape, f"failed: {exc}"))
            continue
        hits += hit
        layers.append(LayerSpectrum(ref.name, ref.kind, ref.depth, ref.shape, lam))
    if not layers:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:3])
        raise HTMPError(
            f"{label}: no weight matrix to analyse"
            + (f" ({len(skipped)} tensors skipped, e.g. {reasons})" if skipped else "")
        )
    meta = {
        "conv": conv,
        "split_qkv": str(split_qkv),
        "min_dim": str(min_dim),
        "include": include or "",
        "exclude": exclude or "",
        "kinds": ",".join(kinds or ()),
        "cache_hits": str(hits),
    }
    return SpectraBundle(layers, skipped, label, meta)


def _load(ref: MatrixRef) -> NDArray[np.generic]:
    matrix = np.asarray(ref.load())
    if matrix.shape != ref.shape:
        raise HTMPError(
            f"{ref.name}: loaded shape {matrix.shape}, expected {ref.shape}"
        )
    return matrix
