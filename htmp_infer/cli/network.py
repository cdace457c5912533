"""Command line for whole networks: ``htmp-infer scan`` and ``compare-layers``.

Both check their arguments and outputs before any work, with a one-line error
(exit status 2), and never write over the file they read
(:func:`htmp_infer.io.reading`). ``SIGINT``, ``SIGTERM`` and ``SIGHUP`` stop
them with one line (exit status 128 + the signal number): a scan keeps every
layer it saved and says how to resume (:mod:`htmp_infer.networks.signals`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from htmp_infer.cli._args import (
    add_sampler_arguments,
    nonnegative_int,
    positive_int,
    sampler_options,
    seed,
)
from htmp_infer.errors import ArgumentError, HTMPError
from htmp_infer.networks.signals import Interrupted, ScanInterrupted, handling

if TYPE_CHECKING:
    import pandas as pd

    from htmp_infer.networks.bundle import SpectraBundle

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
    g.add_argument(
        "--min-dim", type=nonnegative_int, default=16, help="skip smaller matrices"
    )
    g.add_argument(
        "--no-cache", action="store_true", help="do not read or write the cache"
    )


def add_parsers(sub: Any) -> None:
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
    add_sampler_arguments(s)
    s.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="worker processes fitting layers in parallel (default 1)",
    )
    s.add_argument("--no-plots", action="store_true")
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
    c.add_argument("--seed", type=seed, default=0)
    c.add_argument("--no-progress", action="store_true")
    _selection_args(c)
    c.set_defaults(handler=_compare_layers)


def _input(args: argparse.Namespace) -> Path:
    """The file or folder the command reads: a scan folder means its bundle."""
    path: Path = args.path
    if not path.exists():
        raise HTMPError(f"{path}: no such file or directory")
    if path.is_dir() and (path / "spectra.npz").is_file():
        return path / "spectra.npz"  # a scan output directory
    return path


def _check_selection(args: argparse.Namespace) -> list[str] | None:
    """Check ``--include``, ``--exclude`` and ``--kinds`` before any work."""
    from htmp_infer.networks.layers import expand_kinds
    from htmp_infer.networks.scan import pattern

    pattern(args.include, "--include")
    pattern(args.exclude, "--exclude")
    if args.kinds is None:
        return None
    kinds = [k.strip() for k in args.kinds.split(",")]
    if not all(kinds):
        raise ArgumentError(f"--kinds {args.kinds!r}: an empty name in the list")
    expand_kinds(kinds)
    return kinds


def _bundle(
    args: argparse.Namespace, path: Path, kinds: list[str] | None
) -> SpectraBundle:
    from htmp_infer.networks.bundle import SpectraBundle, is_bundle
    from htmp_infer.networks.eigen import compute_bundle
    from htmp_infer.networks.scan import filter_bundle

    if is_bundle(path):
        bundle = SpectraBundle.load(path)
        return filter_bundle(bundle, args.include, args.exclude, kinds, label=str(path))
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


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _interrupted(exc: Interrupted, what: str) -> int:
    """Say in one line what an interruption kept; return 128 + the signal."""
    if isinstance(exc, ScanInterrupted) and exc.out_dir is not None:
        layers = exc.out_dir / "layers"
        text = (
            f"{exc.saved} of {exc.total} layers saved in {layers}; "
            "run the same command again to resume"
        )
    else:
        text = what
    print(f"htmp-infer: error: interrupted by {exc.name}: {text}", file=sys.stderr)
    return exc.exit_status


def _scan(args: argparse.Namespace) -> int:
    with handling(signal.SIGTERM, signal.SIGHUP):
        try:
            return _run_scan(args)
        except Interrupted as exc:
            return _interrupted(
                exc, "stopped before fitting; the same command starts it again"
            )


def _run_scan(args: argparse.Namespace) -> int:
    import pandas as pd

    from htmp_infer.io import reading
    from htmp_infer.networks.scan import ScanOptions, scan
    from htmp_infer.networks.state import check_outputs

    models = {}
    if args.models is not None:
        models["models"] = tuple(m.strip() for m in args.models.split(","))
    options = sampler_options(args, ScanOptions, **models)
    kinds = _check_selection(args)
    if args.jobs > (cpus := _usable_cpus()):
        raise ArgumentError(
            f"--jobs {args.jobs}: more worker processes than the {cpus} CPUs "
            f"this process may use; use at most {cpus}"
        )
    path = _input(args)
    with reading(path):
        check_outputs(args.out, plots=not args.no_plots)
        bundle = _bundle(args, path, kinds)
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
    with handling(signal.SIGTERM, signal.SIGHUP):
        try:
            return _run_compare_layers(args)
        except Interrupted as exc:
            return _interrupted(exc, "nothing was written")


def _run_compare_layers(args: argparse.Namespace) -> int:
    import pandas as pd

    from htmp_infer.inference.hierarchy import fit_layers
    from htmp_infer.io import check_output_file, reading, write_atomic
    from htmp_infer.networks.signals import deferred

    if args.out is not None and args.out.suffix != ".nc":
        raise ArgumentError(f"--out must end in .nc, got {args.out.name}")
    kinds = _check_selection(args)
    path = _input(args)
    with reading(path):
        outputs: list[Path] = []
        if args.out is not None:
            stem = args.out.with_suffix("")
            outputs = [args.out, Path(f"{stem}_groups.csv"), Path(f"{stem}_layers.csv")]
            for target in outputs:
                check_output_file(target, what="--out")
        bundle = _bundle(args, path, kinds)
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
        if outputs:
            with deferred():  # the three files, or none of them new
                write_atomic(
                    outputs[0], lambda p: result.tree.to_netcdf(p, engine="h5netcdf")
                )
                write_atomic(outputs[1], lambda p: result.groups.to_csv(p))
                write_atomic(outputs[2], lambda p: result.standouts.to_csv(p))
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
    if outputs:
        print(f"wrote {', '.join(map(str, outputs))}")
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
