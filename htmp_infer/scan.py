r"""Scan a network: every layer's fit, mechanism weights and phase, resumably.

:func:`scan` takes weights (a file or directory, :mod:`htmp_infer.weights`) or a
spectra bundle (:mod:`htmp_infer.bundle`), computes the spectra once (cached,
:mod:`htmp_infer.spectra`) and runs, for every layer, :func:`scan_layer`: the
mechanism comparison (:func:`htmp_infer.compare`, which includes the
posterior of ``htmp``, by default drawn from its evidence grid
(:mod:`htmp_infer.grid_fit`), and the 5+1 phase posterior), a Hill + KS-xmin α
for side-by-side reading, and a posterior-predictive check.

Layers are independent tasks: :func:`scan_layer` is a pure function of the layer
spectrum and the options, so a distributed engine can map it over layers and
:func:`assemble` gathers the results.

Output directory
----------------
``layers/<i>-<name>.nc`` and ``.json``
    One layer's DataTree (``fit_htmp`` and ``comparison``) and its table row. The
    ``.json`` is written last and records the options' hash: a rerun skips every
    layer whose ``.json`` matches (resume after a kill), and redoes the rest.
``scan.csv``, ``scan.parquet``
    The per-layer table (:data:`COLUMNS`).
``scan.nc``
    One DataTree with a ``layer`` dimension: ``posterior`` (``kappa``,
    ``log_kappa``, ``alpha``, ``n_spikes``), ``comparison`` (``weight``,
    ``log_evidence``, ``error`` by ``layer`` and ``model``), ``phases``
    (``probability`` by ``layer`` and ``phase``), ``layers`` (shape, kind,
    depth, table columns) and ``skipped`` (every tensor not analysed, with reason).
``forest.png``, ``mechanisms.png``, ``esd_grid.png``
    :mod:`htmp_infer.scan_plots`.

Every file is written atomically, so no partial file ever looks finished.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from htmp_infer.bundle import LayerSpectrum, SpectraBundle, is_bundle
from htmp_infer.comparison import DEFAULT_MODELS, compare
from htmp_infer.errors import HTMPError
from htmp_infer.io import write_atomic
from htmp_infer.peers import hill_ks_alpha
from htmp_infer.predictive import ppc_pvalue
from htmp_infer.scan_pool import run_layers
from htmp_infer.spectra import compute_bundle

__all__ = [
    "COLUMNS",
    "ScanOptions",
    "ScanResult",
    "assemble",
    "filter_bundle",
    "scan",
    "scan_layer",
]

#: Columns of the per-layer table, in order (``w_<model>`` per compared model).
COLUMNS = (
    "layer",
    "kind",
    "depth",
    "shape",
    "n",
    "gamma",
    "kappa_median",
    "kappa_q05",
    "kappa_q95",
    "alpha_median",
    "alpha_q05",
    "alpha_q95",
    "hill_alpha",
    "best_model",
    "best_not_identified",
    "phase",
    "phase_prob",
    "n_spikes",
    "n_spikes_q95",
    "spike_cap",
    "ppc_p",
    "poor_fit",
    "r_hat",
    "ess_bulk",
    "divergences",
    "fit_seconds",
)

#: A layer's fit is flagged ``poor_fit`` when the posterior-predictive p-value is
#: below this (see :func:`htmp_infer.predictive.ppc_pvalue`).
POOR_FIT_P = 0.05

#: Bumped when a layer's results change (2: adaptive spike caps; 3: the
#: ``best_not_identified`` column; 4: the ``data`` model's edge prior), so that a
#: resumed scan redoes layers written by an older version.
RESULTS_VERSION = 4


@dataclass(frozen=True)
class ScanOptions:
    """What every layer's analysis depends on (hashed for resuming)."""

    models: tuple[str, ...] = DEFAULT_MODELS
    chains: int = 4
    draws: int = 500
    warmup: int = 500
    seed: int = 0
    ppc_draws: int = 40
    method: Literal["grid", "nuts"] = "grid"

    def __post_init__(self) -> None:
        if self.method not in ("grid", "nuts"):
            raise HTMPError(f"method must be 'grid' or 'nuts', got {self.method!r}")

    def key(self) -> str:
        """A short hash of the options: results computed with others are redone."""
        text = json.dumps({**asdict(self), "v": RESULTS_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ScanResult:
    """What :func:`scan` returns (and wrote to ``out_dir``).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per fitted layer (:data:`COLUMNS` plus ``w_<model>``).
    tree : xarray.DataTree
        The combined DataTree (module docstring).
    skipped : pandas.DataFrame
        ``name``, ``shape``, ``reason`` of every tensor not fitted, failures
        included (reason ``failed: ...``).
    layers : dict of str to xarray.DataTree
        Each layer's DataTree from :func:`scan_layer` (``fit_htmp``,
        ``comparison``).
    out_dir : Path or None
    resumed : list of str
        Layers read back from a previous run instead of refitted.
    """

    table: pd.DataFrame
    tree: xr.DataTree
    skipped: pd.DataFrame
    layers: dict[str, xr.DataTree] = field(default_factory=dict)
    out_dir: Path | None = None
    resumed: list[str] = field(default_factory=list)


def scan_layer(
    layer: LayerSpectrum, options: ScanOptions
) -> tuple[dict[str, Any], xr.DataTree]:
    """Analyse one layer: comparison, ``htmp`` posterior, phase, Hill α, PPC.

    Returns
    -------
    row : dict
        The table row (:data:`COLUMNS` and ``w_<model>``).
    tree : xarray.DataTree
        Children ``fit_htmp`` (the NUTS DataTree) and ``comparison`` (the model
        table and the phase probabilities).

    Raises
    ------
    HTMPError
        When the layer cannot be fitted (the scan lists it and goes on).
    """
    t0 = time.perf_counter()
    spectrum = layer.spectrum()
    result = compare(
        spectrum,
        list(options.models),
        seed=options.seed,
        chains=options.chains,
        draws=options.draws,
        warmup=options.warmup,
        progress=False,
        ppc_draws=options.ppc_draws,
        method=options.method,
    )
    fit = result.fits["htmp"]
    post = fit["posterior"].dataset
    kappa = post["kappa"].values.ravel()
    delta = kappa * (1.0 - spectrum.gamma) / (2.0 * spectrum.gamma)
    alpha = 1.0 + delta  # HT-SR density exponent of the inverse law, phases.py
    spikes = post["n_spikes"].values.ravel()
    phase = str(result.phases.idxmax().item())
    try:
        hill = float(hill_ks_alpha(spectrum.eigenvalues).alpha)
    except HTMPError:
        hill = float("nan")
    p_value = ppc_pvalue(fit) if options.ppc_draws else float("nan")
    row: dict[str, Any] = {
        "layer": layer.name,
        "kind": layer.kind,
        "depth": layer.depth,
        "shape": "x".join(map(str, layer.shape)),
        "n": spectrum.n,
        "gamma": spectrum.gamma,
        "kappa_median": float(np.median(kappa)),
        "kappa_q05": float(np.quantile(kappa, 0.05)),
        "kappa_q95": float(np.quantile(kappa, 0.95)),
        "alpha_median": float(np.median(alpha)),
        "alpha_q05": float(np.quantile(alpha, 0.05)),
        "alpha_q95": float(np.quantile(alpha, 0.95)),
        "hill_alpha": hill,
        "best_model": result.best,
        "best_not_identified": _not_identified(result.identification, result.best),
        "phase": phase,
        "phase_prob": float(result.phases.max()),
        "n_spikes": float(np.median(spikes)),
        "n_spikes_q95": float(np.quantile(spikes, 0.95)),
        "spike_cap": int(result.table.loc["htmp", "spike_cap"]),
        "ppc_p": p_value,
        "poor_fit": bool(p_value < POOR_FIT_P),
        "r_hat": float(fit.attrs.get("diag_r_hat_max", np.nan)),
        "ess_bulk": float(fit.attrs.get("diag_ess_bulk_min", np.nan)),
        "divergences": int(fit.attrs.get("diag_divergences", 0)),
        "fit_seconds": time.perf_counter() - t0,
        **{f"w_{m}": float(result.table.loc[m, "weight"]) for m in options.models},
    }
    table = result.table.drop(columns=["method"]).rename_axis("model")
    comparison = xr.Dataset.from_dataframe(table).assign(
        phase_probability=result.phases
    )
    tree = xr.DataTree.from_dict(
        {"/fit_htmp": fit, "/comparison": xr.DataTree(comparison)}
    )
    tree.attrs.update({"layer": layer.name, "kind": layer.kind, "depth": layer.depth})
    return row, tree


def _not_identified(ident: pd.DataFrame, model: str) -> str:
    """The best model's parameters the spectrum does not identify, with why."""
    settled = ident["verdict"].isin(("identified", "identified combination"))
    rows = ident[(ident["model"] == model) & ~settled]
    pairs = zip(rows["parameter"], rows["verdict"], strict=True)
    return "; ".join(f"{p}: {v}" for p, v in pairs)


def _slug(i: int, name: str) -> str:
    return f"{i:04d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:80]}"


def _load_done(stem: Path, layer: LayerSpectrum, key: str) -> dict[str, Any] | None:
    meta, nc = stem.with_suffix(".json"), stem.with_suffix(".nc")
    if not (meta.is_file() and nc.is_file()):
        return None
    try:
        done = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if done.get("options") != key or done.get("row", {}).get("layer") != layer.name:
        return None
    row: dict[str, Any] = done["row"]
    return row


def _save_layer(stem: Path, row: dict[str, Any], tree: xr.DataTree, key: str) -> None:
    write_atomic(
        stem.with_suffix(".nc"), lambda p: tree.to_netcdf(p, engine="h5netcdf")
    )
    text = json.dumps({"options": key, "row": row}, indent=1, default=float)

    def _json(path: Path) -> None:
        path.write_text(text)

    write_atomic(stem.with_suffix(".json"), _json)


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
        Weights (see :func:`htmp_infer.weights.open_weights`), a spectra bundle
        ``.npz``, or a bundle in memory.
    out_dir : path, optional
        Where to write (module docstring). Without it nothing is written and
        nothing is resumed.
    options : ScanOptions, optional
        Models, NUTS lengths, seed, replicates.
    include, exclude, kinds, conv, split_qkv, min_dim
        Layer selection (:func:`htmp_infer.layers.select_matrices`); for a bundle,
        ``include``/``exclude``/``kinds`` filter its layers.
    cache_dir : Path, None or "default"
        The spectrum cache (:mod:`htmp_infer.spectra`).
    progress : bool
        Progress bars (spectra, then layers with ETA).
    plots : bool
        Write the three PNG figures.
    jobs : int
        Worker processes fitting layers in parallel
        (:func:`htmp_infer.scan_pool.run_layers`); the results do not depend on it.

    Returns
    -------
    ScanResult

    Raises
    ------
    HTMPError
        When the source cannot be read, nothing is selected, or no layer could be
        fitted.
    """
    options = options or ScanOptions()
    if jobs < 1:
        raise HTMPError(f"jobs must be >= 1, got {jobs}")
    if isinstance(source, SpectraBundle) or is_bundle(source):
        bundle = (
            source if isinstance(source, SpectraBundle) else SpectraBundle.load(source)
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
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        bundle.save(out / "spectra.npz")  # what was fitted; compare-layers reads it
    key = options.key()
    results: dict[int, tuple[dict[str, Any], xr.DataTree]] = {}
    failed: list[tuple[str, str, str]] = []
    resumed: list[str] = []
    stems = [
        out / "layers" / _slug(i, layer.name) if out else None
        for i, layer in enumerate(bundle.layers)
    ]
    todo = []
    for i, layer in enumerate(bundle.layers):
        stem = stems[i]
        done = _load_done(stem, layer, key) if stem else None
        if done is not None and stem is not None:
            tree = xr.open_datatree(stem.with_suffix(".nc"), engine="h5netcdf").load()
            results[i] = (done, tree)
            resumed.append(layer.name)
        else:
            todo.append((i, layer))
    bar = tqdm(
        total=len(bundle.layers),
        initial=len(resumed),
        desc="scan",
        unit="layer",
        disable=not progress,
    )
    for i, outcome in run_layers(todo, options, jobs):
        layer = bundle.layers[i]
        bar.set_postfix_str(layer.name[-40:], refresh=False)
        bar.update()
        if isinstance(outcome, str):
            shape = "x".join(map(str, layer.shape))
            failed.append((layer.name, shape, f"failed: {outcome}"))
            continue
        stem = stems[i]
        if stem is not None:
            _save_layer(stem, *outcome, key)
        results[i] = outcome
    bar.close()
    rows = [results[i][0] for i in sorted(results)]
    trees = {results[i][0]["layer"]: results[i][1] for i in sorted(results)}
    if not rows:
        raise HTMPError(
            f"no layer could be fitted ({len(failed)} failed"
            + (f", e.g. {failed[0][0]}: {failed[0][2]}" if failed else "")
            + ")"
        )
    skipped = pd.DataFrame(
        [(s.name, "x".join(map(str, s.shape)), s.reason) for s in bundle.skipped]
        + failed,
        columns=["name", "shape", "reason"],
    )
    result = assemble(rows, trees, skipped, options)
    result.resumed = resumed
    if out is not None:
        _write_outputs(result, out, plots)
        result.out_dir = out
    return result


def filter_bundle(
    bundle: SpectraBundle,
    include: str | None,
    exclude: str | None,
    kinds: Sequence[str] | None,
) -> SpectraBundle:
    """The layers of a bundle that pass the name and kind filters."""
    from htmp_infer.layers import Skipped, expand_kinds

    wanted = expand_kinds(kinds) if kinds else None
    keep, skipped = [], list(bundle.skipped)
    for layer in bundle.layers:
        shape = layer.shape
        if include and not re.search(include, layer.name):
            skipped.append(
                Skipped(layer.name, shape, f"does not match --include {include!r}")
            )
        elif exclude and re.search(exclude, layer.name):
            skipped.append(Skipped(layer.name, shape, f"matches --exclude {exclude!r}"))
        elif wanted is not None and layer.kind not in wanted:
            skipped.append(
                Skipped(layer.name, shape, f"kind {layer.kind} not selected")
            )
        else:
            keep.append(layer)
    if not keep:
        raise HTMPError(f"{bundle.source}: no layer matches the selection")
    return SpectraBundle(keep, skipped, bundle.source, bundle.meta)


def assemble(
    rows: Sequence[dict[str, Any]],
    trees: dict[str, xr.DataTree],
    skipped: pd.DataFrame,
    options: ScanOptions,
) -> ScanResult:
    """Gather per-layer results into the table and the combined DataTree."""
    table = pd.DataFrame(list(rows))
    order = [*COLUMNS, *(f"w_{m}" for m in options.models)]
    table = table[order]
    names = table["layer"].tolist()
    layer_coord = {"layer": names}

    def stack(group: str, var: str, name: str, **sel: list[str]) -> xr.DataArray:
        arrays = [trees[n][group].dataset[var].sel(sel) for n in names]
        return (
            xr.concat(arrays, dim="layer", coords="minimal", join="exact")
            .assign_coords(layer_coord)
            .rename(name)
        )

    posterior = xr.Dataset(
        {
            v: stack("fit_htmp/posterior", v, v)
            for v in ("kappa", "log_kappa", "n_spikes")
        }
    )
    gamma = xr.DataArray(table["gamma"].to_numpy(), dims="layer", coords=layer_coord)
    posterior["alpha"] = 1.0 + posterior["kappa"] * (1.0 - gamma) / (2.0 * gamma)
    comparison = xr.Dataset(
        {
            v: stack("comparison", v, v, model=list(options.models))
            for v in ("weight", "log_evidence", "error")
        }
    )
    phases = xr.Dataset({"probability": stack("comparison", "phase_probability", "p")})
    layers = xr.Dataset.from_dataframe(table.set_index("layer"))
    skipped_ds = xr.Dataset.from_dataframe(
        skipped.reset_index(drop=True).rename_axis("skipped")
    )
    tree = xr.DataTree.from_dict(
        {
            "/posterior": xr.DataTree(posterior),
            "/comparison": xr.DataTree(comparison),
            "/phases": xr.DataTree(phases),
            "/layers": xr.DataTree(layers),
            "/skipped": xr.DataTree(skipped_ds),
        }
    )
    tree.attrs.update({k: str(v) for k, v in asdict(options).items()})
    return ScanResult(table, tree, skipped, {n: trees[n] for n in names})


def _write_outputs(result: ScanResult, out: Path, plots: bool) -> None:
    table = result.table
    write_atomic(out / "scan.csv", lambda p: table.to_csv(p, index=False))
    write_atomic(out / "scan.parquet", lambda p: table.to_parquet(p, index=False))
    write_atomic(out / "scan.nc", lambda p: result.tree.to_netcdf(p, engine="h5netcdf"))
    write_atomic(out / "skipped.csv", lambda p: result.skipped.to_csv(p, index=False))
    if plots:
        from htmp_infer.scan_plots import write_scan_plots

        write_scan_plots(result, out)
