"""The results of a scan gathered: the per-layer table and the combined DataTree.

:func:`assemble` turns the layers' rows and DataTrees (:func:`htmp_infer.networks.scan.
scan_layer`) into a :class:`ScanResult`; :func:`write_tables` writes its
tables (layout in :mod:`htmp_infer.networks.scan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr

from htmp_infer.errors import HTMPError
from htmp_infer.io import write_atomic

if TYPE_CHECKING:
    from htmp_infer.networks.bundle import SpectraBundle
    from htmp_infer.networks.scan import ScanOptions

__all__ = [
    "COLUMNS",
    "READING_VARS",
    "ScanResult",
    "assemble",
    "gather",
    "write_tables",
]

#: The per-draw readings of every layer (the ``reading`` group).
READING_VARS = ("kappa", "edge_exponent", "alpha_tail", "n_spikes")

#: Columns of the per-layer table, in order (``w_<model>`` per compared model).
COLUMNS = (
    "layer",
    "kind",
    "depth",
    "shape",
    "n",
    "gamma",
    "best_model",
    "reading_model",
    "fit",
    "kappa_median",
    "kappa_q05",
    "kappa_q95",
    "edge_exponent_median",
    "edge_exponent_q05",
    "edge_exponent_q95",
    "alpha_median",
    "alpha_q05",
    "alpha_q95",
    "alpha_source",
    "hill_alpha",
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
    "warnings",
    "fit_seconds",
)


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
        Each layer's DataTree from :func:`scan_layer` (``fit_<model>``,
        ``comparison``, ``reading``).
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

    reading = xr.Dataset({v: stack("reading", v, v) for v in READING_VARS}).drop_vars(
        "sample", errors="ignore"
    )
    comparison = xr.Dataset(
        {
            v: stack("comparison", v, v, model=list(options.models))
            for v in ("weight", "log_evidence", "error", "ppc_p")
        }
    )
    phases = xr.Dataset({"probability": stack("comparison", "phase_probability", "p")})
    layers = xr.Dataset.from_dataframe(table.set_index("layer"))
    skipped_ds = xr.Dataset.from_dataframe(
        skipped.reset_index(drop=True).rename_axis("skipped")
    )
    tree = xr.DataTree.from_dict(
        {
            "/reading": xr.DataTree(reading),
            "/comparison": xr.DataTree(comparison),
            "/phases": xr.DataTree(phases),
            "/layers": xr.DataTree(layers),
            "/skipped": xr.DataTree(skipped_ds),
        }
    )
    tree.attrs.update({k: str(v) for k, v in asdict(options).items()})
    return ScanResult(table, tree, skipped, {n: trees[n] for n in names})


def gather(
    bundle: SpectraBundle,
    results: dict[int, tuple[dict[str, Any], xr.DataTree]],
    failed: list[tuple[str, str, str]],
    options: ScanOptions,
) -> ScanResult:
    """The table and DataTree of the fitted layers; failures join the skipped."""
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
    return assemble(rows, trees, skipped, options)


def write_tables(result: ScanResult, out: Path) -> None:
    """Write ``scan.csv``, ``scan.parquet``, ``scan.nc`` and ``skipped.csv``."""
    table = result.table
    write_atomic(out / "scan.csv", lambda p: table.to_csv(p, index=False))
    write_atomic(out / "scan.parquet", lambda p: table.to_parquet(p, index=False))
    write_atomic(out / "scan.nc", lambda p: result.tree.to_netcdf(p, engine="h5netcdf"))
    write_atomic(out / "skipped.csv", lambda p: result.skipped.to_csv(p, index=False))
