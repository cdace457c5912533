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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from htmp_infer.cli._args import (
    add_sampler_arguments,
    integer,
    sampler_options,
    seed,
)
from htmp_infer.cli.network import add_parsers
from htmp_infer.errors import ArgumentError, HTMPError

if TYPE_CHECKING:
    from htmp_infer.spectrum import Spectrum

__all__ = ["main"]

#: Ranges of ``simulate``. κ: the fit's prior, log κ ~ N(log 4, 3²), puts less
#: than 1e-4 of its mass outside [1e-5, 1e6] (±4σ), and beyond it the exact
#: sampler's χ² draws underflow (small κ) or every eigenvalue ties in float64
#: (large κ). The scale: the eigenvalues of a small-κ draw spread over hundreds of
#: decades around it, so 1e±100 leaves 200 decades of float64 on either side. N:
#: the sampler and the fit are O(N²) (130 s at N = 1e5 on one core, hours at 1e6);
#: no weight matrix has a smaller side above 1e6 (spectrum.MAX_EIGENVALUES).
KAPPA_RANGE = (1e-5, 1e6)
SCALE_RANGE = (1e-100, 1e100)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _float_in(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text)
        if not low <= value <= high:  # False for NaN
            raise argparse.ArgumentTypeError(
                f"must be a number in [{low:g}, {high:g}], got {text}"
            )
        return value

    return parse


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = integer(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be an integer in [{low}, {high}], got {text}"
            )
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``htmp-infer: error: ...``.

    Subparsers (``htmp-infer fit``, and ``scan`` from :mod:`htmp_infer.cli.network`)
    are built from the parser's class, so every subcommand reports the same way;
    ``--help`` still prints the usage.
    """

    def error(self, message: str) -> NoReturn:
        """Print one line naming the subcommand and exit with status 2."""
        command = self.prog.removeprefix("htmp-infer").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"htmp-infer: error: {where}{' '.join(message.split())}\n")


def _parser() -> argparse.ArgumentParser:
    from htmp_infer._spectrum_checks import MAX_ASPECT, MAX_EIGENVALUES

    p = _Parser(
        prog="htmp-infer",
        description="Posterior inference for the HTMP model of heavy-tailed spectra.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write an exact synthetic HTMP spectrum")
    s.add_argument("--kappa", type=_float_in(*KAPPA_RANGE), required=True)
    s.add_argument(
        "--gamma", type=_float_in(1 / MAX_ASPECT, 1.0), required=True, help="N/M"
    )
    s.add_argument(
        "--n", type=_int_in(2, MAX_EIGENVALUES), required=True, help="eigenvalues N"
    )
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument(
        "--scale", type=_float_in(*SCALE_RANGE), default=1.0, help="mean eigenvalue"
    )
    s.add_argument("--out", type=Path, required=True, help="output .npz")

    f = sub.add_parser("fit", help="fit a model to one spectrum")
    f.add_argument("input", type=Path, help="eigenvalues (.npy/.npz/.txt/.csv)")
    f.add_argument("--out", type=Path, required=True, help="output .nc (DataTree)")
    f.add_argument("--matrix", action="store_true", help="INPUT is a matrix W")
    f.add_argument("--model", default="htmp")
    f.add_argument("--gamma", type=_positive_float, help="aspect ratio N/M")
    f.add_argument("--n-cols", type=_positive_float, help="larger dimension M")
    add_sampler_arguments(f)
    f.add_argument("--plot", type=Path, help="also write a PNG of the fit")

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
    add_sampler_arguments(c)

    m = sub.add_parser("summary", help="print the posterior summary of a fit")
    m.add_argument("file", type=Path, help="a .nc written by `htmp-infer fit`")

    add_parsers(sub)
    return p


def _print_table(dt: object) -> None:
    from htmp_infer.inference.summary import describe_fit

    print(describe_fit(dt))  # type: ignore[arg-type]


def _check_simulated(lam: object, args: argparse.Namespace) -> None:
    """Refuse a draw that float64 could not hold (underflow, overflow, ties)."""
    import numpy as np

    from htmp_infer.errors import SpectrumError
    from htmp_infer.spectrum import Spectrum

    values = np.asarray(lam)
    at = (
        f"--kappa {args.kappa:g} --gamma {args.gamma:g} --n {args.n} "
        f"--scale {args.scale:g}"
    )
    bad = int(np.count_nonzero(~np.isfinite(values)))
    small = int(np.count_nonzero(values < np.finfo(np.float64).tiny))
    if bad or small:
        raise HTMPError(
            f"the simulated spectrum at {at} is not representable in float64: "
            f"{small} of {values.size} eigenvalues underflow to 0 or subnormal, "
            f"{bad} are not finite; use a larger --kappa"
        )
    try:
        Spectrum.from_eigenvalues(values, gamma=args.gamma)
    except SpectrumError as exc:
        raise HTMPError(
            f"the simulated spectrum at {at} cannot be fitted: {exc}"
        ) from None


def _simulate(args: argparse.Namespace) -> int:
    from htmp_infer.ensembles.sampling import sample_htmp
    from htmp_infer.io import check_output_file, write_spectrum_npz

    if args.out.suffix != ".npz":
        raise ArgumentError(f"--out must end in .npz, got {args.out.name}")
    check_output_file(args.out, what="--out")
    lam = sample_htmp(args.seed, args.n, args.kappa, gamma=args.gamma, scale=args.scale)
    _check_simulated(lam, args)
    write_spectrum_npz(
        args.out, lam, n_cols=args.n / args.gamma, kappa=args.kappa, seed=args.seed
    )
    print(f"wrote {args.out}: N={args.n} M={args.n / args.gamma:g} κ={args.kappa:g}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from htmp_infer.inference.fit import check_model, fit
    from htmp_infer.inference.options import SamplerOptions
    from htmp_infer.io import atomic_path, check_distinct, check_output_file, reading

    if args.out.suffix != ".nc":
        raise ArgumentError(f"--out must end in .nc, got {args.out.name}")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise ArgumentError(f"--plot must end in .png, got {args.plot.name}")
    check_model(args.model, "--model")
    options = sampler_options(args, SamplerOptions)
    with reading(args.input):
        check_output_file(args.out, what="--out")
        if args.plot is not None:
            check_output_file(args.plot, what="--plot")
            check_distinct(args.out, args.plot)
        spectrum = _load_spectrum(args)
        dt = fit(spectrum, args.model, options=options, progress=not args.no_progress)
        dt.attrs["n"] = spectrum.n
        with atomic_path(args.out) as tmp_nc:
            if args.plot is not None:
                from htmp_infer.plotting.esd import plot_esd

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
        raise ArgumentError(
            "--gamma/--n-cols are read from the matrix shape with --matrix"
        )
    spectrum = Spectrum.load(
        args.input, gamma=args.gamma, n_cols=args.n_cols, matrix=args.matrix
    )
    print(
        f"{spectrum.name}: N={spectrum.n} M={spectrum.n_cols:g} "
        f"γ={spectrum.gamma:.4g} zeros removed={spectrum.n_zero}",
        file=sys.stderr,
    )
    return spectrum


def _names(text: str | None, flag: str) -> list[str] | None:
    from htmp_infer.inference.fit import check_model

    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ArgumentError(f"{flag}: empty model list {text!r}")
    for name in names:
        check_model(name, f"model in {flag}")
    repeated = sorted({m for m in names if names.count(m) > 1})
    if repeated:
        raise ArgumentError(f"{flag} names {', '.join(repeated)} more than once")
    return names


def _compare(args: argparse.Namespace) -> int:
    import pandas as pd
    import xarray as xr

    from htmp_infer.inference.comparison import compare
    from htmp_infer.inference.options import SamplerOptions
    from htmp_infer.io import atomic_path, check_distinct, check_output_file, reading

    if args.out.suffix != ".nc":
        raise ArgumentError(f"--out must end in .nc, got {args.out.name}")
    fits = _names(args.fits, "--fits") or []
    models = _names(args.models, "--models")
    options = sampler_options(args, SamplerOptions)
    table_csv = args.out.with_name(f"{args.out.stem}_comparison.csv")
    phase_csv = args.out.with_name(f"{args.out.stem}_phases.csv")
    ident_csv = args.out.with_name(f"{args.out.stem}_identification.csv")
    outputs = (args.out, table_csv, phase_csv, ident_csv)
    with reading(args.input):
        for out in outputs:
            check_output_file(out, what="--out" if out is args.out else "output")
        check_distinct(*outputs)
        spectrum = _load_spectrum(args)
        result = compare(
            spectrum,
            models,
            fit_models=fits,
            options=options,
            progress=not args.no_progress,
        )
        phases = result.phase_table()
        tree = xr.DataTree.from_dict(
            {
                "comparison": xr.Dataset.from_dataframe(
                    result.table.rename_axis("model")
                ),
                "phases": xr.Dataset(
                    {"probability": result.phases},
                    attrs={
                        "phase": result.reading.phase if result.reading else "",
                        "reading_model": (
                            result.reading.model if result.reading else ""
                        ),
                    },
                ),
                **{f"fit_{m}": dt for m, dt in result.fits.items()},
            }
        )
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
    read = result.reading
    assert read is not None
    print(
        f"most probable model: {result.best}; readings from {read.model} "
        f"({read.verdict}); phase: {read.phase} "
        f"(most probable {result.phases.idxmax().item()}, "
        f"p = {float(result.phases.max()):.3f})"
    )
    print(f"wrote {args.out}, {table_csv.name}, {phase_csv.name}, {ident_csv.name}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from htmp_infer.inference.summary import read_fit

    dt = read_fit(args.file)
    try:
        _print_table(dt)
    except HTMPError as exc:
        raise HTMPError(f"{args.file}: {exc}") from None
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
        message = " ".join(str(exc).splitlines()) or type(exc).__name__
        print(f"htmp-infer: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("htmp-infer: error: interrupted", file=sys.stderr)
        return 130
