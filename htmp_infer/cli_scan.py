"""Command line for whole networks: ``htmp-infer scan`` and ``compare-layers``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from htmp_infer.errors import HTMPError

if TYPE_CHECKING:
    import pandas as pd

    from htmp_infer.bundle import SpectraBundle

__all__ = ["add_parsers"]


def _selection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("layer selection")
    g.add_argument("--include", help="regex: only tensors whose name matches")
    g.add_argument("--exclude", help="regex: skip tensors whose name matches")
    g.add_argument(
        "--kinds",
        help="comma-separated kinds or groups (attention, mlp, conv, embedding, "
        "linear, attention_q, ...); default all",
    )
    g.add_argument(
        "--conv",
        choices=("reshape", "slices"),
        default="reshape",
        help="conv kernels: one out x in*k*k matrix, or one matrix per position",
    )
    g.add_argument(
        "--no-split-qkv", action="store_true", help="keep fused qkv matrices whole"
    )
    g.add_argument("--min-dim", type=int, default=16, help="skip smaller matrices")
    g.add_argument(
        "--no-cache", action="store_true", help="do not read or write the cache"
    )


def add_method_argument(parser: Any, default: str) -> None:
    """``--method {grid,nuts}``: how a command draws its posteriors."""
    parser.add_argument(
        "--method",
        choices=("grid", "nuts"),
        default=default,
        help="independent draws from the evidence quadrature grid, or NUTS "
        f"(default: {default})",
    )


def add_parsers(
    sub: Any,
    positive_int: Callable[[str], int],
    nonnegative_int: Callable[[str], int],
) -> None:
    """Add the ``scan`` and ``compare-layers`` subcommands (``handler`` default)."""
    s = sub.add_parser(
        "scan",
        help="fit every layer of a network: table, DataTree, plots (resumable)",
    )
    s.add_argument(
        "path",
        type=Path,
        help="weights (.safetensors, HF directory, .pt/.bin, .npz) or a spectra "
        "bundle .npz",
    )
    s.add_argument("--out", type=Path, required=True, help="output directory")
    s.add_argument("--models", help="comma-separated models (default: all)")
    s.add_argument("--chains", type=positive_int, default=4)
    s.add_argument("--draws", type=positive_int, default=500)
    s.add_argument("--warmup", type=nonnegative_int, default=500)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--ppc-draws", type=positive_int, default=40)
    add_method_argument(s, "grid")
    s.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="worker processes fitting layers in parallel (default 1)",
    )
    s.add_argument("--no-plots", action="store_true")
    s.add_argument("--no-progress", action="store_true")
    _selection_args(s)
    s.set_defaults(handler=_scan)

    c = sub.add_parser(
        "compare-layers",
        help="hierarchical model over layers: group posteriors and stand-out layers",
    )
    c.add_argument(
        "path",
        type=Path,
        help="a scan output directory, a spectra bundle, or weights",
    )
    c.add_argument("--out", type=Path, help="output .nc (also <stem>_*.csv)")
    c.add_argument("--chains", type=positive_int, default=4)
    c.add_argument("--draws", type=positive_int, default=1000)
    c.add_argument("--warmup", type=nonnegative_int, default=1000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--no-progress", action="store_true")
    _selection_args(c)
    c.set_defaults(handler=_compare_layers)


def _bundle(args: argparse.Namespace) -> SpectraBundle:
    from htmp_infer.bundle import SpectraBundle, is_bundle
    from htmp_infer.scan import filter_bundle
    from htmp_infer.spectra import compute_bundle

    path: Path = args.path
    if not path.exists():
        raise HTMPError(f"{path}: no such file or directory")
    kinds = args.kinds.split(",") if args.kinds else None
    if path.is_dir() and (path / "spectra.npz").is_file():
        path = path / "spectra.npz"  # a scan output directory
    if is_bundle(path):
        return filter_bundle(
            SpectraBundle.load(path), args.include, args.exclude, kinds
        )
    return compute_bundle(
        path,
        include=args.include,
        exclude=args.exclude,
        kinds=kinds,
        conv=args.conv,
        split_qkv=not args.no_split_qkv,
        min_dim=args.min_dim,
        cache_dir=None if args.no_cache else "default",
        progress=not args.no_progress,
    )


def _scan(args: argparse.Namespace) -> int:
    import pandas as pd

    from htmp_infer.comparison import DEFAULT_MODELS
    from htmp_infer.registry import available_models
    from htmp_infer.scan import ScanOptions, scan

    models = tuple(args.models.split(",")) if args.models else DEFAULT_MODELS
    bad = [m for m in models if m not in available_models()]
    if bad or "htmp" not in models:
        raise HTMPError(
            f"--models must include htmp and name known models "
            f"({', '.join(available_models())}); got {args.models}"
        )
    if args.out.exists() and not args.out.is_dir():
        raise HTMPError(f"--out {args.out} exists and is not a directory")
    options = ScanOptions(
        models=models,
        chains=args.chains,
        draws=args.draws,
        warmup=args.warmup,
        seed=args.seed,
        ppc_draws=args.ppc_draws,
        method=args.method,
    )
    bundle = _bundle(args)
    result = scan(
        bundle,
        args.out,
        options=options,
        progress=not args.no_progress,
        plots=not args.no_plots,
        jobs=args.jobs,
    )
    cols = [
        "layer",
        "shape",
        "kappa_median",
        "kappa_q05",
        "kappa_q95",
        "alpha_median",
        "hill_alpha",
        "best_model",
        "phase",
        "phase_prob",
        "n_spikes",
        "ppc_p",
        "r_hat",
        "fit_seconds",
    ]
    if options.method == "grid":
        cols.remove("r_hat")  # independent grid draws: no chains to compare
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(
            result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}")
        )
    n_poor = int(result.table["poor_fit"].sum())
    for line in unidentified_lines(result.table):
        print(line)
    print(
        f"{len(result.table)} layers fitted ({len(result.resumed)} resumed), "
        f"{len(result.skipped)} tensors skipped or failed (skipped.csv), "
        f"{n_poor} poor fit(s) (ppc_p < 0.05); wrote {args.out}/scan.csv, "
        "scan.parquet, scan.nc"
        + ("" if args.no_plots else ", forest.png, mechanisms.png, esd_grid.png")
    )
    return 0


def _compare_layers(args: argparse.Namespace) -> int:
    import pandas as pd

    from htmp_infer.hierarchy import fit_layers
    from htmp_infer.io import write_atomic

    if args.out is not None and args.out.suffix != ".nc":
        raise HTMPError(f"--out must end in .nc, got {args.out.name}")
    bundle = _bundle(args)
    result = fit_layers(
        [layer.spectrum() for layer in bundle.layers],
        [layer.kind for layer in bundle.layers],
        [layer.depth for layer in bundle.layers],
        seed=args.seed,
        chains=args.chains,
        draws=args.draws,
        warmup=args.warmup,
        progress=not args.no_progress,
    )
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print("group posteriors (kappa of each kind at mid-depth):")
        print(result.groups.to_string(float_format=lambda v: f"{v:.3g}"))
        out = result.standouts
        flagged = out[out["stands_out"]]
        print(f"\nlayers that stand out from their group ({len(flagged)}):")
        print(
            (flagged if len(flagged) else out.head(0)).to_string(
                float_format=lambda v: f"{v:.3g}"
            )
        )
    if args.out is not None:
        stem = args.out.with_suffix("")
        write_atomic(args.out, lambda p: result.tree.to_netcdf(p, engine="h5netcdf"))
        write_atomic(Path(f"{stem}_groups.csv"), lambda p: result.groups.to_csv(p))
        write_atomic(Path(f"{stem}_layers.csv"), lambda p: result.standouts.to_csv(p))
        print(f"wrote {args.out}, {stem}_groups.csv, {stem}_layers.csv")
    return 0


def unidentified_lines(table: pd.DataFrame) -> list[str]:
    """One line per layer whose best model has a parameter the spectrum does not
    identify (the ``best_not_identified`` column), for the CLI summary."""
    what = (
        table["best_not_identified"]
        .astype(object)
        .where(table["best_not_identified"].notna(), "")
    )
    rows = table[what != ""]
    return [
        f"not identified in {layer} ({best}): {text}"
        for layer, best, text in zip(
            rows["layer"], rows["best_model"], what[what != ""], strict=True
        )
    ]
