r"""Spectra bundles: the eigenvalues and shapes of every matrix of one network.

A bundle is what :func:`htmp_infer.spectra.compute_bundle` makes from a checkpoint,
what ``htmp-infer scan`` accepts instead of weights, and what the shipped real
default (``data/minilm_spectra.npz``) is.

File format (``.npz``, no pickles, ``format = "htmp-infer-spectra/1"``)
----------------------------------------------------------------------
``names``, ``kinds`` (str, one per layer), ``depths`` (int64, ``-1`` when the name
carries no block index), ``shapes`` (int64, ``L x 2``: the matrix shape the
spectrum was computed from), ``offsets`` (int64, ``L + 1``) and ``eigenvalues``
(float64, concatenated: layer ``l`` is ``eigenvalues[offsets[l]:offsets[l+1]]``,
all :math:`\min(\text{shape})` eigenvalues of :math:`W^\top W` in ascending order,
numerical zeros stored as ``0``), ``skipped_names``, ``skipped_shapes`` (str such
as ``"384"`` or ``"2x384"``), ``skipped_reasons``, ``source`` (str) and
``meta`` (a JSON object of strings: provenance, options).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from htmp_infer.errors import SpectrumError
from htmp_infer.io import write_atomic
from htmp_infer.layers import Skipped
from htmp_infer.spectrum import Spectrum

__all__ = ["FORMAT", "LayerSpectrum", "SpectraBundle", "is_bundle"]

FORMAT = "htmp-infer-spectra/1"


@dataclass(frozen=True)
class LayerSpectrum:
    """The spectrum of one weight matrix.

    Attributes
    ----------
    name : str
        Tensor name (with a ``[q]``/``[i,j]`` suffix for split matrices).
    kind : str
        Layer kind (:data:`htmp_infer.layers.KINDS`).
    depth : int
        Block index parsed from the name, ``-1`` when there is none.
    shape : tuple of int
        Shape of the matrix the eigenvalues come from.
    eigenvalues : ndarray
        All :math:`\\min(\\text{shape})` eigenvalues of :math:`W^\\top W`, ascending,
        numerical zeros stored as 0.
    """

    name: str
    kind: str
    depth: int
    shape: tuple[int, int]
    eigenvalues: NDArray[np.float64]

    @property
    def gamma(self) -> float:
        r"""Aspect ratio :math:`\min/\max` of the matrix shape."""
        return min(self.shape) / max(self.shape)

    def spectrum(self) -> Spectrum:
        """The :class:`~htmp_infer.spectrum.Spectrum` (zeros removed and counted)."""
        return Spectrum.from_eigenvalues(
            self.eigenvalues, n_cols=max(self.shape), name=self.name
        )


@dataclass
class SpectraBundle:
    """The layer spectra of one network, and what was skipped and why.

    Attributes
    ----------
    layers : list of LayerSpectrum
    skipped : list of Skipped
        Every tensor that is not in ``layers``, with the reason.
    source : str
        Where the spectra come from (a path, a package).
    meta : dict of str to str
        Provenance and the options used.
    """

    layers: list[LayerSpectrum]
    skipped: list[Skipped] = field(default_factory=list)
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[LayerSpectrum]:
        return iter(self.layers)

    def select(self, names: Sequence[str]) -> SpectraBundle:
        """A bundle with the named layers only (in the given order)."""
        by_name = {layer.name: layer for layer in self.layers}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise SpectrumError(f"no layer named {', '.join(missing)} in the bundle")
        return SpectraBundle(
            [by_name[n] for n in names], list(self.skipped), self.source, self.meta
        )

    def save(self, path: str | Path) -> None:
        """Write the bundle atomically (format in the module docstring)."""
        sizes = [layer.eigenvalues.size for layer in self.layers]
        arrays: dict[str, NDArray[np.generic]] = {
            "format": np.asarray(FORMAT),
            "names": np.asarray([x.name for x in self.layers], dtype=str),
            "kinds": np.asarray([x.kind for x in self.layers], dtype=str),
            "depths": np.asarray([x.depth for x in self.layers], dtype=np.int64),
            "shapes": np.asarray(
                [x.shape for x in self.layers], dtype=np.int64
            ).reshape(-1, 2),
            "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "eigenvalues": np.concatenate(
                [np.asarray(x.eigenvalues, dtype=np.float64) for x in self.layers]
                or [np.empty(0)]
            ),
            "skipped_names": np.asarray([s.name for s in self.skipped], dtype=str),
            "skipped_shapes": np.asarray(
                ["x".join(map(str, s.shape)) for s in self.skipped], dtype=str
            ),
            "skipped_reasons": np.asarray([s.reason for s in self.skipped], dtype=str),
            "source": np.asarray(self.source),
            "meta": np.asarray(json.dumps(self.meta, sort_keys=True)),
        }

        def _write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]

        write_atomic(path, _write)

    @classmethod
    def load(cls, path: str | Path) -> SpectraBundle:
        """Read a bundle written by :meth:`save`; one-line error if it is not one."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                if "format" not in z.files or str(z["format"]) != FORMAT:
                    raise SpectrumError(f"{p.name}: not a spectra bundle ({FORMAT})")
                d = {k: z[k] for k in z.files}
        except SpectrumError:
            raise
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SpectrumError(f"{p.name}: unreadable bundle ({first})") from None
        off = d["offsets"]
        layers = [
            LayerSpectrum(
                str(name),
                str(kind),
                int(depth),
                (int(shape[0]), int(shape[1])),
                d["eigenvalues"][off[i] : off[i + 1]].astype(np.float64),
            )
            for i, (name, kind, depth, shape) in enumerate(
                zip(d["names"], d["kinds"], d["depths"], d["shapes"], strict=True)
            )
        ]
        skipped = [
            Skipped(str(n), _parse_shape(str(s)), str(r))
            for n, s, r in zip(
                d["skipped_names"],
                d["skipped_shapes"],
                d["skipped_reasons"],
                strict=True,
            )
        ]
        return cls(layers, skipped, str(d["source"]), json.loads(str(d["meta"])))


def _parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split("x")) if text else ()


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a spectra bundle (an ``.npz`` with the format tag)."""
    p = Path(path)
    if p.suffix != ".npz" or not p.is_file():
        return False
    try:
        with np.load(p, allow_pickle=False) as z:
            return "format" in z.files and str(z["format"]) == FORMAT
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False
