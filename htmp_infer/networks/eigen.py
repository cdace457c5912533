r"""From a checkpoint to a spectra bundle: select, decompose once, cache.

:func:`compute_bundle` opens the weights lazily (:mod:`htmp_infer.networks.weights`),
picks
the matrices (:mod:`htmp_infer.networks.layers`) and computes each spectrum with
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
are written atomically. A cache that cannot be written (a read-only folder, a
file where the folder should be) gives one ``UserWarning`` and the scan goes on
without it; a damaged entry is recomputed.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from tqdm.auto import tqdm

from htmp_infer._cache import cache_root, default_cache_dir
from htmp_infer.errors import HTMPError, SpectrumError
from htmp_infer.io import write_atomic
from htmp_infer.networks.bundle import LayerSpectrum, SpectraBundle
from htmp_infer.networks.layers import MatrixRef, Skipped, select_matrices
from htmp_infer.networks.weights import TensorRef, open_weights
from htmp_infer.spectrum import matrix_eigenvalues

__all__ = ["cache_root", "cached_eigenvalues", "compute_bundle", "default_cache_dir"]

_CACHE_VERSION = b"htmp-infer-spectra-cache/1"
_TINY = np.finfo(np.float64).tiny


def _digest(matrix: NDArray[np.generic]) -> str:
    h = hashlib.sha256(_CACHE_VERSION)
    h.update(f"{matrix.dtype.str}{matrix.shape}".encode())
    h.update(np.ascontiguousarray(matrix).data)
    return h.hexdigest()


def _eigenvalues(matrix: NDArray[np.generic]) -> NDArray[np.float64]:
    """:func:`matrix_eigenvalues`, refusing a spectrum float64 cannot hold.

    Squaring singular values overflows for entries near 1e154 and above, and
    underflows (to subnormals or zero) for entries below about 1e-154. The
    eigenvalues are not rescaled, since the bundle stores them as they are: such
    a matrix is refused with what happened, and the caller lists it as failed.
    """
    with np.errstate(over="ignore", under="ignore"):  # detected just below
        lam = matrix_eigenvalues(matrix)
    pos = lam[lam > 0]
    big = float(np.max(np.abs(matrix)))
    if not np.isfinite(lam).all():
        raise SpectrumError(
            f"entries up to {big:.3g} overflow float64 when squared (an eigenvalue "
            "of WᵀW exceeds 1.8e308); rescale the matrix"
        )
    if (big > 0 and pos.size == 0) or (pos.size and pos[0] < _TINY):
        raise SpectrumError(
            f"entries at most {big:.3g} underflow float64 when squared (eigenvalues "
            "of WᵀW below 2.2e-308); rescale the matrix"
        )
    return lam


def _cache_off(cache_dir: Path, why: str) -> None:
    warnings.warn(
        f"spectrum cache {cache_dir} cannot be written ({why}); going on without "
        "it (point HTMP_INFER_CACHE at a writable folder, or set it to '' to "
        "turn the cache off)",
        UserWarning,
        stacklevel=3,
    )


def _cached(
    matrix: NDArray[np.generic], cache_dir: Path | None
) -> tuple[NDArray[np.float64], bool, bool]:
    """:func:`cached_eigenvalues`, and whether the cache can still be used.

    A cache that cannot be written is reported by one warning and the third
    value False: the caller stops using it.
    """
    if cache_dir is None:
        return _eigenvalues(matrix), False, True
    entry = cache_dir / f"{_digest(matrix)}.npy"
    try:
        if entry.is_file():
            lam = np.load(entry, allow_pickle=False)
            ok = lam.shape == (min(matrix.shape),) and lam.dtype == np.float64
            if ok and np.isfinite(lam).all() and (lam >= 0).all():
                return lam, True, True
    except (OSError, ValueError, EOFError):
        pass  # a damaged or unreadable entry is recomputed and replaced
    lam = _eigenvalues(matrix)

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, lam)

    try:
        write_atomic(entry, _write)
    except (OSError, HTMPError) as exc:
        _cache_off(cache_dir, getattr(exc, "strerror", None) or str(exc))
        return lam, False, False
    return lam, False, True


def cached_eigenvalues(
    matrix: NDArray[np.generic], cache_dir: Path | None
) -> tuple[NDArray[np.float64], bool]:
    """Eigenvalues of :math:`W^\\top W`, from the cache when present.

    A cache that cannot be written (a read-only folder, a file in the way) is
    reported by a ``UserWarning`` and the eigenvalues are returned all the same.

    Returns
    -------
    eigenvalues : ndarray
        As :func:`~htmp_infer.spectrum.matrix_eigenvalues`.
    hit : bool
        Whether they came from the cache (no SVD done).

    Raises
    ------
    SpectrumError
        As :func:`~htmp_infer.spectrum.matrix_eigenvalues`, and for a matrix
        whose squared singular values overflow or underflow float64.
    """
    lam, hit, _ = _cached(matrix, cache_dir)
    return lam, hit


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
        A file or directory that :func:`htmp_infer.networks.weights.open_weights`
        reads, or
        tensors already opened (e.g.
        :func:`htmp_infer.networks.weights.pytree_tensors`).
    include, exclude, kinds, conv, split_qkv, min_dim
        Layer selection, see :func:`htmp_infer.networks.layers.select_matrices`.
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
            lam, hit, usable = _cached(_load(ref), cache)
        except HTMPError as exc:
            skipped.append(Skipped(ref.name, ref.shape, f"failed: {exc}"))
            continue
        hits += hit
        cache = cache if usable else None  # warned once; no cache from here on
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
