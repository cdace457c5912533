r"""Scan a network: every layer's fit, mechanism weights and phase, resumably.

:func:`scan` takes weights (a file or directory, :mod:`htmp_infer.networks.weights`) or
a
spectra bundle (:mod:`htmp_infer.networks.bundle`), computes the spectra once (cached,
:mod:`htmp_infer.networks.eigen`) and runs, for every layer, :func:`scan_layer`: the
mechanism comparison (:func:`htmp_infer.compare`: every model's evidence, the
posterior and posterior-predictive check of every model with a non-negligible
weight, by default drawn from its evidence grid (:mod:`htmp_infer.inference.grid`),
the readings from the most probable model that passes its check
(:mod:`htmp_infer.inference.readings`) and the 5+1 phase posterior), plus
WeightWatcher's Hill + KS-xmin α for side-by-side reading. Warnings raised while
fitting a layer are kept in its ``warnings`` column (none about models of
negligible weight) and folded into one line per kind at the end
(:func:`fold_warnings`).

Layers are independent tasks: :func:`scan_layer` is a pure function of the layer
spectrum and the options, so a distributed engine can map it over layers and
:func:`assemble` gathers the results.

Output directory
----------------
``layers/<i>-<name>.nc`` and ``.json``
    One layer's DataTree (``fit_<model>``, ``comparison``, ``reading``) and its
    table row. The
    ``.json`` is written last and records the options' hash: a rerun skips every
    layer whose ``.json`` matches (resume after a kill), and redoes the rest.
``scan.csv``, ``scan.parquet``
    The per-layer table (:data:`COLUMNS`).
``scan.nc``
    One DataTree with a ``layer`` dimension: ``reading`` (the draws of
    ``kappa``, ``edge_exponent``, ``alpha_tail`` and ``n_spikes`` each reading
    comes from), ``comparison`` (``weight``, ``log_evidence``, ``error``,
    ``ppc_p`` by ``layer`` and ``model``), ``phases``
    (``probability`` by ``layer`` and ``phase``), ``layers`` (shape, kind,
    depth, table columns) and ``skipped`` (every tensor not analysed, with reason).
``forest.png``, ``mechanisms.png``, ``esd_grid.png``
    :mod:`htmp_infer.plotting.scan`.

``.scan.lock``
    Present while a scan writes there (one scan per folder at a time).

Every file is written atomically, so no partial file ever looks finished; a
scan killed or interrupted keeps every layer it saved, and the same command
resumes it (:mod:`htmp_infer.networks.state`, :mod:`htmp_infer.networks.signals`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import signal
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from htmp_infer.errors import ArgumentError, HTMPError
from htmp_infer.inference.comparison import DEFAULT_MODELS, compare
from htmp_infer.inference.options import SamplerOptions
from htmp_infer.inference.readings import POOR_FIT_P
from htmp_infer.io import reading
from htmp_infer.networks.bundle import LayerSpectrum, SpectraBundle, is_bundle
from htmp_infer.networks.eigen import compute_bundle
from htmp_infer.networks.notices import ScanWarning, fold_warnings, kept_warnings
from htmp_infer.networks.pool import run_layers
from htmp_infer.networks.selection import ScanArgumentError, filter_bundle, pattern
from htmp_infer.networks.signals import Interrupted, ScanInterrupted, deferred, handling
from htmp_infer.networks.state import (
    BUNDLE,
    check_outputs,
    layer_stem,
    load_layer,
    locked,
    save_bundle,
    save_layer,
)
from htmp_infer.networks.table import (
    COLUMNS,
    ScanResult,
    assemble,
    gather,
    write_tables,
)
from htmp_infer.validation.hill import hill_ks_alpha

__all__ = [
    "COLUMNS",
    "ScanArgumentError",
    "ScanOptions",
    "ScanResult",
    "assemble",
    "filter_bundle",
    "pattern",
    "scan",
    "scan_layer",
]

#: Bumped when a layer's results change (2: adaptive spike caps; 3: the
#: ``best_not_identified`` column; 4: the ``data`` model's edge prior; 6: readings
#: from the supported model, per-model checks, phases from features), so that a
#: resumed scan redoes layers written by an older version.
RESULTS_VERSION = 6


@dataclass(frozen=True)
class ScanOptions(SamplerOptions):
    """What every layer's analysis depends on (hashed for resuming).

    The :class:`~htmp_infer.inference.options.SamplerOptions` of every layer's
    comparison (checked the same way, with shorter runs by default: ``draws``
    and ``warmup`` 500), and the ``models`` compared (``htmp`` among them).

    Raises
    ------
    ScanArgumentError
        A field out of range, or a model list without ``htmp``, with an unknown
        model or a model twice.
    """

    draws: int = 500
    warmup: int = 500
    models: tuple[str, ...] = DEFAULT_MODELS

    def __post_init__(self) -> None:
        from htmp_infer.inference.registry import available_models

        try:
            super().__post_init__()
        except ArgumentError as exc:
            raise ScanArgumentError(str(exc)) from None
        known = available_models()
        if isinstance(self.models, str) or not isinstance(self.models, Sequence):
            raise ScanArgumentError(
                f"models must be a sequence of model names, got {self.models!r}"
            )
        models = list(self.models)
        if "htmp" not in models or any(m not in known for m in models):
            raise ScanArgumentError(
                f"models must include htmp and name known models "
                f"({', '.join(known)}); got {','.join(map(str, models))}"
            )
        if len(set(models)) != len(models):
            raise ScanArgumentError(f"models lists a model twice: {','.join(models)}")
        object.__setattr__(self, "models", tuple(models))

    def key(self) -> str:
        """A short hash of the options: results computed with others are redone."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        text = json.dumps({**fields, "v": RESULTS_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def scan_layer(
    layer: LayerSpectrum, options: ScanOptions
) -> tuple[dict[str, Any], xr.DataTree]:
    """Analyse one layer: comparison, per-model checks, readings, phase, Hill α.

    Returns
    -------
    row : dict
        The table row (:data:`COLUMNS` and ``w_<model>``).
    tree : xarray.DataTree
        Children ``fit_<model>`` (every model fitted: those with weight at least
        0.01 and the tail model), ``comparison`` (the model table, with each
        model's ``ppc_p``, and the phase probabilities) and ``reading`` (the
        draws the readings come from); attributes ``reading_model`` and
        ``alpha_source``.

    Raises
    ------
    HTMPError
        When the layer cannot be fitted (the scan lists it and goes on).
    """
    t0 = time.perf_counter()
    spectrum = layer.spectrum()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compare(
            spectrum, list(options.models), options=options, progress=False
        )
    reading = result.reading
    assert reading is not None
    fit = result.fits[reading.model]
    draws = reading.draws
    try:
        hill = float(hill_ks_alpha(spectrum.eigenvalues).alpha)
    except HTMPError:
        hill = float("nan")

    def quantiles(name: str) -> dict[str, float]:
        x = draws[name]
        # infinite draws (no power-law tail) are order statistics, not averaged
        q: Any
        if np.isnan(x).all():
            q = [np.nan] * 3
        elif np.isfinite(x).all():
            q = np.quantile(x, [0.05, 0.5, 0.95])
        else:
            q = np.quantile(x, [0.05, 0.5, 0.95], method="inverted_cdf")
        return {
            f"{name}_median": float(q[1]),
            f"{name}_q05": float(q[0]),
            f"{name}_q95": float(q[2]),
        }

    row: dict[str, Any] = {
        "layer": layer.name,
        "kind": layer.kind,
        "depth": layer.depth,
        "shape": "x".join(map(str, layer.shape)),
        "n": spectrum.n,
        "gamma": spectrum.gamma,
        "best_model": result.best,
        "reading_model": reading.model,
        "fit": reading.verdict,
        **quantiles("kappa"),
        **quantiles("edge_exponent"),
        **{
            k.replace("alpha_tail", "alpha"): float(v)
            for k, v in quantiles("alpha_tail").items()
        },
        "alpha_source": reading.alpha_source,
        "hill_alpha": hill,
        "best_not_identified": _not_identified(result.identification, result.best),
        "phase": reading.phase,
        "phase_prob": float(reading.phases.max()),
        "n_spikes": float(np.median(draws["n_spikes"])),
        "n_spikes_q95": float(np.quantile(draws["n_spikes"], 0.95)),
        "spike_cap": int(result.table.loc[reading.model, "spike_cap"]),
        "ppc_p": reading.ppc_p,
        "poor_fit": bool(reading.ppc_p < POOR_FIT_P),
        "r_hat": float(fit.attrs.get("diag_r_hat_max", np.nan)),
        "ess_bulk": float(  # exact draws (mp) are independent too
            fit.attrs.get("diag_ess_bulk_min", draws["kappa"].size)
        ),
        "divergences": int(fit.attrs.get("diag_divergences", 0)),
        "warnings": kept_warnings(caught, result.table),
        "fit_seconds": time.perf_counter() - t0,
        **{f"w_{m}": float(result.table.loc[m, "weight"]) for m in options.models},
    }
    table = result.table.drop(columns=["method"]).rename_axis("model")
    comparison = xr.Dataset.from_dataframe(table).assign(
        phase_probability=reading.phases
    )
    sample = np.arange(draws["kappa"].size)
    read_ds = xr.Dataset(
        {k: (("sample",), np.asarray(v, dtype=np.float64)) for k, v in draws.items()},
        coords={"sample": sample},
    )
    tree = xr.DataTree.from_dict(
        {
            **{f"/fit_{m}": f for m, f in result.fits.items()},
            "/comparison": xr.DataTree(comparison),
            "/reading": xr.DataTree(read_ds),
        }
    )
    tree.attrs.update(
        {
            "layer": layer.name,
            "kind": layer.kind,
            "depth": layer.depth,
            "reading_model": reading.model,
            "alpha_source": reading.alpha_source,
        }
    )
    return row, tree


def _not_identified(ident: pd.DataFrame, model: str) -> str:
    """The best model's parameters the spectrum does not identify, with why."""
    settled = ident["verdict"].isin(("identified", "identified combination"))
    rows = ident[(ident["model"] == model) & ~settled]
    pairs = zip(rows["parameter"], rows["verdict"], strict=True)
    return "; ".join(f"{p}: {v}" for p, v in pairs)


def scan(
    source: str | Path | SpectraBundle,
    out_dir: str | Path | None = None,
    *,
    options: ScanOptions | None = None,
    include: str | None = None,
    exclude: str | None = None,
    kinds: Sequence[str] | None = None,
    conv: Literal["reshape", "slices"] = "reshape",
    split_qkv: bool = True,
    min_dim: int = 16,
    cache_dir: Path | Literal["default"] | None = "default",
    progress: bool = True,
    plots: bool = True,
    jobs: int = 1,
) -> ScanResult:
    """Fit every layer of a network and gather a per-layer mechanism map.

    Parameters
    ----------
    source : path or SpectraBundle
        Weights (see :func:`htmp_infer.networks.weights.open_weights`), a spectra bundle
        ``.npz``, or a bundle in memory.
    out_dir : path, optional
        Where to write (module docstring). Without it nothing is written and
        nothing is resumed.
    options : ScanOptions, optional
        Models, and how each layer's posteriors are drawn (method, lengths,
        seed, replicates).
    include, exclude, kinds, conv, split_qkv, min_dim
        Layer selection (:func:`htmp_infer.networks.layers.select_matrices`); for a
        bundle,
        ``include``/``exclude``/``kinds`` filter its layers.
    cache_dir : Path, None or "default"
        The spectrum cache (:mod:`htmp_infer.networks.eigen`).
    progress : bool
        Progress bars (spectra, then layers with ETA).
    plots : bool
        Write the three PNG figures.
    jobs : int
        Worker processes fitting layers in parallel
        (:func:`htmp_infer.networks.pool.run_layers`); the results do not depend on it.

    Returns
    -------
    ScanResult

    Raises
    ------
    HTMPError
        When the source cannot be read, nothing is selected, or no layer could be
        fitted; :class:`~htmp_infer.errors.OutputError` (before any work) when an
        output cannot be written, would replace the source (a bundle in
        ``out_dir`` is kept when it holds the same spectra), or another scan is
        writing into ``out_dir``.
    htmp_infer.networks.signals.ScanInterrupted
        On ``SIGINT`` (a ``KeyboardInterrupt``), with the number of layers saved:
        the same call resumes from them.
    """
    options = options or ScanOptions()
    if jobs < 1:
        raise ScanArgumentError(f"jobs must be >= 1, got {jobs}")
    out = Path(out_dir) if out_dir is not None else None
    inputs = () if isinstance(source, SpectraBundle) else (source,)
    with reading(*inputs), handling():
        if out is not None:
            check_outputs(out, plots=plots)  # before any work
        if isinstance(source, SpectraBundle) or is_bundle(source):
            bundle = (
                source
                if isinstance(source, SpectraBundle)
                else SpectraBundle.load(source)
            )
            bundle = filter_bundle(bundle, include, exclude, kinds)
        else:
            bundle = compute_bundle(
                Path(source),
                include=include,
                exclude=exclude,
                kinds=kinds,
                conv=conv,
                split_qkv=split_qkv,
                min_dim=min_dim,
                cache_dir=cache_dir,
                progress=progress,
            )
        if out is None:
            return _fit_layers(bundle, None, options, progress, plots, jobs)
        with locked(out):
            save_bundle(bundle, out / BUNDLE)  # what was fitted; compare-layers
            return _fit_layers(bundle, out, options, progress, plots, jobs)


def _fit_layers(
    bundle: SpectraBundle,
    out: Path | None,
    options: ScanOptions,
    progress: bool,
    plots: bool,
    jobs: int,
) -> ScanResult:
    """Resume what ``out`` holds, fit the rest, write the tables (module doc)."""
    key = options.key()
    results: dict[int, tuple[dict[str, Any], xr.DataTree]] = {}
    failed: list[tuple[str, str, str]] = []
    resumed: list[str] = []
    stems = [
        layer_stem(out, i, layer.name) if out else None
        for i, layer in enumerate(bundle.layers)
    ]
    try:
        todo = []
        for i, layer in enumerate(bundle.layers):
            stem = stems[i]
            done = load_layer(stem, layer, key) if stem else None
            if done is not None:
                results[i] = done
                resumed.append(layer.name)
            else:
                todo.append((i, layer))
        with (
            tqdm(
                total=len(bundle.layers),
                initial=len(resumed),
                desc="scan",
                unit="layer",
                disable=not progress,
            ) as bar,
            contextlib.closing(run_layers(scan_layer, todo, options, jobs)) as outcomes,
        ):
            for i, outcome in outcomes:
                layer = bundle.layers[i]
                bar.set_postfix_str(layer.name[-40:], refresh=False)
                bar.update()
                if isinstance(outcome, str):
                    shape = "x".join(map(str, layer.shape))
                    failed.append((layer.name, shape, f"failed: {outcome}"))
                    continue
                with deferred():  # saved and counted, or neither
                    stem = stems[i]
                    if stem is not None:
                        save_layer(stem, *outcome, key)
                    results[i] = outcome
        result = gather(bundle, results, failed, options)
        result.resumed = resumed
        for line in fold_warnings(result.table):
            warnings.warn(ScanWarning(line), stacklevel=3)
        if out is not None:
            with deferred():
                write_tables(result, out)
            if plots:
                from htmp_infer.plotting.scan import write_scan_plots

                write_scan_plots(result.tree, result.layers, out)
            result.out_dir = out
        return result
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        saved = len(results) if out is not None else 0
        raise ScanInterrupted(signum, saved, len(bundle.layers), out) from None
