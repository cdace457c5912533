"""The confusion matrix on generators that are not the models (issue 18).

:mod:`benchmarks.confusion` asks whether each model's own spectra are given to
it; this asks what the comparison says about weight matrices that *none* of the
models generated (:mod:`htmp_infer.validation.generators`):

- ``gaussian``: i.i.d. N(0, 1) entries (the real Wishart law: ``mp`` exactly);
- ``power_law_covariance``: Gaussian rows with population covariance
  eigenvalues j^-1 (a data-structure generator, no temperature in it);
- ``student_t``: i.i.d. Student-t(3) entries, unit variance (heavy-tailed
  entries, not a Coulomb gas);
- ``low_rank_plus_noise``: rank 25/32 of the smaller side (300 at 384) plus
  i.i.d. noise of sd 1e-6 (rank collapse).

For each generator and shape, R matrices are drawn (each row its own seeded
stream, :func:`htmp_infer.validation.calibration.model_stream`, so ``--generators``
and ``--shapes`` rerun rows exactly), and :func:`htmp_infer.compare` weighs the
models on each spectrum. Printed per row: the mean posterior weight of each
model, the fraction of replicates where each model is the most probable, the
distribution of the most probable phase, the mean of each model's
posterior-predictive p-value ``ppc_p`` and the fraction below 0.05 (when
``compare``'s table has that column), and the reading model and decided phase
(when ``compare`` returns a reading). ``--out`` writes one CSV row per
replicate.

    .venv/bin/python benchmarks/nonmodel.py                        # R = 10, both shapes
    .venv/bin/python benchmarks/nonmodel.py --reps 2 --shapes 384x384
    .venv/bin/python benchmarks/nonmodel.py --models mp,htmp,power_law --out n.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from htmp_infer.inference.comparison import compare
from htmp_infer.io import atomic_path
from htmp_infer.validation.calibration import model_stream
from htmp_infer.validation.generators import (
    gaussian,
    low_rank_plus_noise,
    power_law_covariance,
    spectrum_of,
    student_t,
)

Draw = Callable[[np.random.Generator, int, int], np.ndarray]
GENERATORS: dict[str, Draw] = {
    "gaussian": gaussian,
    "power_law_covariance": lambda r, n, m: power_law_covariance(r, n, m, 1.0),
    "student_t": lambda r, n, m: student_t(r, n, m, 3.0),
    "low_rank_plus_noise": lambda r, n, m: low_rank_plus_noise(
        r, n, m, 25 * min(n, m) // 32, 1e-6
    ),
}
POOR_FIT = 0.05


def parse_shape(text: str) -> tuple[int, int]:
    """``"384x1536"`` as ``(384, 1536)``."""
    try:
        n, m = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r} is not NxM") from None
    return n, m


def run_one(
    draw: Draw,
    rng: np.random.Generator,
    shape: tuple[int, int],
    models: list[str] | None,
    seed: int,
    ppc_draws: int | None,
) -> dict[str, object]:
    """One replicate: draw, compare, and the record of what it said."""
    w = draw(rng, *shape)
    spec = spectrum_of(w)
    kwargs: dict[str, int] = {"seed": seed}
    if ppc_draws is not None:
        kwargs["ppc_draws"] = ppc_draws
    t0 = time.perf_counter()
    res = compare(spec, models, progress=False, **kwargs)  # type: ignore[arg-type]
    rec: dict[str, object] = {"seconds": time.perf_counter() - t0}
    table = res.table
    rec |= {f"w_{m}": float(table.loc[m, "weight"]) for m in table.index}
    rec["best"] = res.best
    if "ppc_p" in table:
        rec |= {f"ppc_{m}": float(table.loc[m, "ppc_p"]) for m in table.index}
    phases = res.phases.to_series()
    rec |= {f"p_{k}": float(v) for k, v in phases.items()}
    rec["phase_argmax"] = str(phases.idxmax())
    reading = getattr(res, "reading", None)
    if reading is not None:
        for key in ("model", "phase", "verdict"):
            if hasattr(reading, key):
                rec[f"reading_{key}"] = str(getattr(reading, key))
    return rec


def _counts(values: list[str]) -> str:
    c = Counter(values)
    return ", ".join(f"{k} {v / len(values):.2f}" for k, v in c.most_common())


def summarize(records: list[dict[str, object]], models: list[str]) -> None:
    """Print the per-row tables."""
    rows = list(dict.fromkeys((str(r["generator"]), str(r["shape"])) for r in records))
    label = max(len(f"{g} {s}") for g, s in rows) + 2
    width = max(max(len(m) for m in models) + 2, 8)
    head = " " * label + "".join(f"{m:>{width}}" for m in models)

    def group(g: str, s: str) -> list[dict[str, object]]:
        return [r for r in records if r["generator"] == g and r["shape"] == s]

    def mean(rs: list[dict[str, object]], key: str) -> float:
        vals = [float(r[key]) for r in rs if key in r]  # type: ignore[arg-type]
        vals = [v for v in vals if not math.isnan(v)]
        return float(np.mean(vals)) if vals else math.nan

    print("mean posterior weight (rows: generator, shape)")
    print(head + f"{'R':>5}")
    for g, s in rows:
        rs = group(g, s)
        vals = "".join(f"{mean(rs, f'w_{m}'):>{width}.3f}" for m in models)
        print(f"{g + ' ' + s:<{label}}{vals}{len(rs):>5}")
    print("fraction of replicates where the model is the most probable")
    print(head)
    for g, s in rows:
        rs = group(g, s)
        vals = "".join(
            f"{np.mean([r.get('best') == m for r in rs]):>{width}.2f}" for m in models
        )
        print(f"{g + ' ' + s:<{label}}{vals}")
    if any(k.startswith("ppc_") for r in records for k in r):
        print(f"mean ppc_p / fraction below {POOR_FIT} (NaN: model not checked)")
        print(head)
        for g, s in rows:
            rs = group(g, s)
            cells = []
            for m in models:
                ps = [float(r.get(f"ppc_{m}", math.nan)) for r in rs]  # type: ignore[arg-type]
                ps = [p for p in ps if not math.isnan(p)]
                cell = (
                    f"{np.mean(ps):.2f}/{np.mean(np.less(ps, POOR_FIT)):.2f}"
                    if ps
                    else "nan"
                )
                cells.append(f"{cell:>{width}}")
            print(f"{g + ' ' + s:<{label}}{''.join(cells)}")
    else:
        print("(no ppc_p column in compare's table)")
    print("most probable phase (argmax of the phase probabilities): fractions")
    for g, s in rows:
        rs = group(g, s)
        top = [str(r.get("phase_argmax", "error")) for r in rs]
        print(f"  {g + ' ' + s:<{label}}{_counts(top)}")
    if any("reading_model" in r for r in records):
        print("reading: model / decided phase / verdict, fractions")
        for g, s in rows:
            rs = group(g, s)
            for key in ("reading_model", "reading_phase", "reading_verdict"):
                if any(key in r for r in rs):
                    vals = [str(r.get(key, "-")) for r in rs]
                    print(f"  {g + ' ' + s:<{label}}{key[8:]:<8} {_counts(vals)}")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reps", type=int, default=10, help="replicates per row")
    p.add_argument(
        "--shapes",
        default="384x384,384x1536",
        help="comma-separated NxM (default 384x384,384x1536)",
    )
    p.add_argument(
        "--generators", default=",".join(GENERATORS), help="rows to draw (default all)"
    )
    p.add_argument("--models", default=None, help="compare's models (default its own)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--ppc-draws", type=int, default=None, help="default: compare's")
    p.add_argument("--out", type=Path, default=None, help="per-replicate CSV")
    args = p.parse_args()
    shapes = [parse_shape(s) for s in args.shapes.split(",")]
    gens = args.generators.split(",")
    unknown = sorted(set(gens) - set(GENERATORS))
    if unknown:
        p.error(f"unknown generators {unknown}; choose from {list(GENERATORS)}")
    models = None if args.models is None else args.models.split(",")
    records: list[dict[str, object]] = []
    t0 = time.perf_counter()
    bar = tqdm(total=len(gens) * len(shapes) * args.reps, desc="nonmodel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g in gens:
            for n, m in shapes:
                shape = f"{n}x{m}"
                rng = model_stream(args.seed, f"{g}:{shape}")
                for r in range(args.reps):
                    rec: dict[str, object] = {
                        "generator": g,
                        "shape": shape,
                        "replicate": r,
                    }
                    try:
                        rec |= run_one(
                            GENERATORS[g], rng, (n, m), models, r, args.ppc_draws
                        )
                    except Exception as exc:  # reported at the end; the run goes on
                        rec["error"] = f"{type(exc).__name__}: {exc}"
                    records.append(rec)
                    bar.update()
    bar.close()
    secs = time.perf_counter() - t0
    compared = list(
        dict.fromkeys(k[2:] for r in records for k in r if k.startswith("w_"))
    )
    print(
        f"non-model generators, R = {args.reps}, shapes {args.shapes}, "
        f"seed {args.seed}, {secs:.0f} s "
        f"({secs / max(len(records), 1):.0f} s per spectrum)"
    )
    if compared:
        summarize(records, compared)
    errors = [r for r in records if "error" in r]
    if errors:
        print(f"{len(errors)} replicate(s) failed (counted as 'error' above):")
        for r in errors:
            print(f"  {r['generator']} {r['shape']} #{r['replicate']}: {r['error']}")
    if args.out is not None:
        keys = list(dict.fromkeys(k for r in records for k in r))
        with atomic_path(args.out) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(records)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
