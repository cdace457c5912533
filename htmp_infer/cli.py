"""Command line: ``htmp-infer simulate | fit | compare | summary | scan | ...``.

Every subcommand is a thin wrapper over the public API. Bad input is reported in
one line on stderr with exit status 2; outputs are written atomically, so a failed
run leaves no file behind.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from htmp_infer.cli_scan import add_method_argument, add_parsers
from htmp_infer.errors import HTMPError

if TYPE_CHECKING:
    from htmp_infer.spectrum import Spectrum

__all__ = ["main"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _nonnegative_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="htmp-infer",
        description="Posterior inference for the HTMP model of heavy-tailed spectra.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write an exact synthetic HTMP spectrum")
    s.add_argument("--kappa", type=_positive_float, required=True)
    s.add_argument("--gamma", type=_positive_float, required=True, help="N/M in (0, 1]")
    s.add_argument("--n", type=_positive_int, required=True, help="eigenvalues N")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scale", type=_positive_float, default=1.0, help="mean eigenvalue")
    s.add_argument("--out", type=Path, required=True, help="output .npz")

    f = sub.add_parser("fit", help="fit a model to one spectrum")
    f.add_argument("input", type=Path, help="eigenvalues (.npy/.npz/.txt/.csv)")
    f.add_argument("--out", type=Path, required=True, help="output .nc (DataTree)")
    f.add_argument("--matrix", action="store_true", help="INPUT is a matrix W")
    f.add_argument("--model", default="htmp")
    f.add_argument("--gamma", type=_positive_float, help="aspect ratio N/M")
    f.add_argument("--n-cols", type=_positive_float, help="larger dimension M")
    f.add_argument("--chains", type=_positive_int, default=4)
    f.add_argument("--draws", type=_positive_int, default=1000)
    f.add_argument("--warmup", type=_nonnegative_int, default=1000)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--ppc-draws", type=_nonnegative_int, default=40)
    add_method_argument(f, "nuts")
    f.add_argument("--plot", type=Path, help="also write a PNG of the fit")
    f.add_argument("--no-progress", action="store_true")

    c = sub.add_parser(
        "compare", help="weigh the mechanism models and give the phase posterior"
    )
    c.add_argument("input", type=Path, help="eigenvalues (.npy/.npz/.txt/.csv)")
    c.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output .nc (tables and fits); the tables also go to <stem>_*.csv",
    )
    c.add_argument("--matrix", action="store_true", help="INPUT is a matrix W")
    c.add_argument("--gamma", type=_positive_float, help="aspect ratio N/M")
    c.add_argument("--n-cols", type=_positive_float, help="larger dimension M")
    c.add_argument("--models", help="comma-separated models (default: all)")
    c.add_argument(
        "--fits", default="htmp", help="models whose posteriors are also written"
    )
    c.add_argument("--chains", type=_positive_int, default=4)
    c.add_argument("--draws", type=_positive_int, default=1000)
    c.add_argument("--warmup", type=_nonnegative_int, default=1000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--ppc-draws", type=_nonnegative_int, default=40)
    add_method_argument(c, "grid")
    c.add_argument("--no-progress", action="store_true")

    m = sub.add_parser("summary", help="print the posterior summary of a fit")
    m.add_argument("file", type=Path, help="a .nc written by `htmp-infer fit`")

    add_parsers(sub, _positive_int, _nonnegative_int)
    return p


def _print_table(dt: object) -> None:
    import pandas as pd

    from htmp_infer.report import summarize

    table = summarize(dt)  # type: ignore[arg-type]
    with pd.option_context("display.width", 120, "display.precision", 4):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    attrs = dt.attrs  # type: ignore[attr-defined]
    if attrs.get("method") == "grid":
        print(
            f"model={attrs.get('model')} N={attrs.get('n', '')} method=grid "
            f"(independent draws) draws={attrs.get('diag_ess_bulk_min', 0):.0f} "
            f"grid_nodes={attrs.get('diag_nodes', '')} "
            f"effective_nodes={attrs.get('diag_effective_nodes', float('nan')):.1f} "
            f"quadrature_error={attrs.get('diag_quadrature_error', float('nan')):.2g}"
        )
        return
    print(
        f"model={attrs.get('model')} N={attrs.get('n', '')} "
        f"r_hat_max={attrs.get('diag_r_hat_max', float('nan')):.4f} "
        f"ess_bulk_min={attrs.get('diag_ess_bulk_min', float('nan')):.0f} "
        f"divergences={attrs.get('diag_divergences', '')} "
        f"mean_leapfrog_steps={attrs.get('diag_mean_steps', float('nan')):.2f}"
    )
    if attrs.get("diag_warnings"):
        print(f"warning: {attrs['diag_warnings']}")


def _simulate(args: argparse.Namespace) -> int:
    from htmp_infer.io import write_spectrum_npz
    from htmp_infer.sampling import sample_htmp

    if not args.gamma <= 1:
        raise HTMPError(f"--gamma must be in (0, 1], got {args.gamma}")
    if args.n < 2:
        raise HTMPError(f"--n must be >= 2, got {args.n}")
    if args.out.suffix != ".npz":
        raise HTMPError(f"--out must end in .npz, got {args.out.name}")
    lam = sample_htmp(args.seed, args.n, args.kappa, gamma=args.gamma, scale=args.scale)
    write_spectrum_npz(
        args.out, lam, n_cols=args.n / args.gamma, kappa=args.kappa, seed=args.seed
    )
    print(f"wrote {args.out}: N={args.n} M={args.n / args.gamma:g} κ={args.kappa:g}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from htmp_infer.inference import fit
    from htmp_infer.io import atomic_path
    from htmp_infer.registry import available_models

    if args.out.suffix != ".nc":
        raise HTMPError(f"--out must end in .nc, got {args.out.name}")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise HTMPError(f"--plot must end in .png, got {args.plot.name}")
    if args.model not in available_models():
        raise HTMPError(
            f"unknown model {args.model!r}; choose one of "
            f"{', '.join(available_models())}"
        )
    spectrum = _load_spectrum(args)
    dt = fit(
        spectrum,
        args.model,
        chains=args.chains,
        draws=args.draws,
        warmup=args.warmup,
        seed=args.seed,
        progress=not args.no_progress,
        ppc_draws=args.ppc_draws,
        method=args.method,
    )
    dt.attrs["n"] = spectrum.n
    with atomic_path(args.out) as tmp_nc:
        if args.plot is not None:
            from htmp_infer.plotting import plot_esd

            with atomic_path(args.plot) as tmp_png:
                fig = plot_esd(dt)
                fig.savefig(tmp_png, dpi=110, format="png")
                dt.to_netcdf(tmp_nc, engine="h5netcdf")
        else:
            dt.to_netcdf(tmp_nc, engine="h5netcdf")
    _print_table(dt)
    print(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _load_spectrum(args: argparse.Namespace) -> Spectrum:
    from htmp_infer.spectrum import Spectrum

    if args.matrix and (args.gamma is not None or args.n_cols is not None):
        raise HTMPError("--gamma/--n-cols are read from the matrix shape with --matrix")
    spectrum = Spectrum.load(
        args.input, gamma=args.gamma, n_cols=args.n_cols, matrix=args.matrix
    )
    print(
        f"{spectrum.name}: N={spectrum.n} M={spectrum.n_cols:g} "
        f"γ={spectrum.gamma:.4g} zeros removed={spectrum.n_zero}",
        file=sys.stderr,
    )
    return spectrum


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise HTMPError(f"empty model list {text!r}")
    return names


def _compare(args: argparse.Namespace) -> int:
    import pandas as pd
    import xarray as xr

    from htmp_infer.comparison import compare
    from htmp_infer.io import atomic_path
    from htmp_infer.registry import available_models

    if args.out.suffix != ".nc":
        raise HTMPError(f"--out must end in .nc, got {args.out.name}")
    fits = _names(args.fits) or []
    models = _names(args.models)
    unknown = [m for m in [*fits, *(models or [])] if m not in available_models()]
    if unknown:
        raise HTMPError(
            f"unknown model(s) {', '.join(unknown)}; choose from "
            f"{', '.join(available_models())}"
        )
    spectrum = _load_spectrum(args)
    result = compare(
        spectrum,
        models,
        seed=args.seed,
        fit_models=fits,
        chains=args.chains,
        draws=args.draws,
        warmup=args.warmup,
        progress=not args.no_progress,
        ppc_draws=args.ppc_draws,
        method=args.method,
    )
    phases = result.phase_table()
    tree = xr.DataTree.from_dict(
        {
            "comparison": xr.Dataset.from_dataframe(result.table.rename_axis("model")),
            "phases": xr.Dataset({"probability": result.phases}),
            **{f"fit_{m}": dt for m, dt in result.fits.items()},
        }
    )
    table_csv = args.out.with_name(f"{args.out.stem}_comparison.csv")
    phase_csv = args.out.with_name(f"{args.out.stem}_phases.csv")
    ident_csv = args.out.with_name(f"{args.out.stem}_identification.csv")
    with (
        atomic_path(args.out) as tmp_nc,
        atomic_path(table_csv) as tmp_t,
        atomic_path(phase_csv) as tmp_p,
        atomic_path(ident_csv) as tmp_i,
    ):
        result.table.to_csv(tmp_t)
        phases.to_csv(tmp_p)
        result.identification.to_csv(tmp_i, index=False)
        tree.to_netcdf(tmp_nc, engine="h5netcdf")
    with pd.option_context("display.width", 120):
        print(result.table.to_string(float_format=lambda v: f"{v:.4g}"))
        print()
        print(phases.to_string(float_format=lambda v: f"{v:.3f}"))
        if len(result.identification):
            print()
            ident = result.identification.drop(columns=["q05", "q95"])
            print(ident.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    best = result.phases.idxmax().item()
    print(
        f"most probable model: {result.best}; phase: {best} "
        f"(p = {float(result.phases.max()):.3f})"
    )
    print(f"wrote {args.out}, {table_csv.name}, {phase_csv.name}, {ident_csv.name}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    import xarray as xr

    path: Path = args.file
    if not path.is_file():
        raise HTMPError(f"{path}: no such file")
    try:
        dt = xr.open_datatree(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HTMPError(f"{path.name}: not a fit file ({first})") from None
    if "posterior" not in dt.children or "kappa" not in dt["posterior"].dataset:
        raise HTMPError(f"{path.name}: no posterior with kappa; not a fit file")
    _print_table(dt)
    return 0


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    print(f"htmp-infer: warning: {message}", file=sys.stderr)


def _enable_compilation_cache() -> None:
    """Keep compiled samplers across runs (JAX's persistent compilation cache).

    The directory is ``$HTMP_INFER_JAX_CACHE`` (empty disables it), by default
    ``~/.cache/htmp-infer/jax``. A second ``fit`` of a spectrum of the same size
    then skips the XLA compilation of the sampler.
    """
    path = os.environ.get(
        "HTMP_INFER_JAX_CACHE", str(Path.home() / ".cache" / "htmp-infer" / "jax")
    )
    if path:
        import jax

        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command in ("fit", "compare", "scan", "compare-layers"):
        _enable_compilation_cache()
    handlers = {
        "simulate": _simulate,
        "fit": _fit,
        "compare": _compare,
        "summary": _summary,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            handler = getattr(args, "handler", None) or handlers[args.command]
            return int(handler(args))
    except HTMPError as exc:
        print(f"htmp-infer: error: {exc}", file=sys.stderr)
        return 2
