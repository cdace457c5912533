"""Does the ``power_law`` model's reading follow a manipulated SGD temperature?

Issue 18 asks for a test of the mechanism name on a network trained here: vary
the SGD noise temperature lr/B (learning rate over batch size) over at least three
settings, fit every trained layer, and see whether the ``power_law`` model's
reading moves monotonically with it; if it does not, the model is named after its
shape instead (power-law confinement).

The weights are ``data/batch_size/batch_<B>.npz`` (``scripts/train_batch_size.py``:
one digits MLP, the same initial weights, seeds, learning rate and number of
epochs; only the batch size B changes, so lr/B spans the batch sizes' range). For
each kernel with at least ``--min-eigenvalues`` eigenvalues and each setting (and
the initial weights, as a reference with no training), in one process:

1. the eigenvalues of WᵀW (float64, :meth:`htmp_infer.Spectrum.from_matrix`) and
   WeightWatcher 0.7.7's α of them (:func:`htmp_infer.validation.hill.hill_ks_alpha`,
   the scan's ``hill_alpha``);
2. :func:`htmp_infer.compare` of ``mp, htmp, inverse_htmp, temperature`` (and
   ``hard_edge`` when the model registry has it) with ``fit_models=["power_law"]``
   (grid draws, ``--draws``, no posterior-predictive draws): the model weights, and
   the ``power_law`` posterior's median and 90% interval of ``tail`` (b′),
   ``alpha_tail`` (b′ + 1, the upper-tail exponent), ``confinement_power`` (ρm/2)
   and ``kappa``, with the identification verdict of ``log_tail``.

Then, per layer and reading (``confinement_power``, ``tail``, and for reference
``kappa`` and WeightWatcher's α), across the trained settings ordered by lr/B:
the Spearman correlation of the medians with lr/B, whether the medians are
strictly monotone, and whether the 90% intervals of the two extreme settings are
disjoint. The reading "moves monotonically with the temperature, beyond the
posterior uncertainty" when both hold (with four settings |ρ| = 1; the exact
one-sided permutation p-value of ρ = 1 is 1/24). The HT-SR expectation is a
heavier upper tail at higher temperature: ``tail`` and ``confinement_power``
falling as lr/B rises.

Run (about 5 min in all on one shared core: 15 spectra, each compiled size
about 20–150 s the first time, then 5–10 s)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/temperature_manipulation.py \
        [--data data/batch_size] [--lr 0.1] [--layers dense_1 dense_2] [--out t.csv]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from htmp_infer import Spectrum, compare
from htmp_infer.models import REGISTRY
from htmp_infer.validation.hill import hill_ks_alpha

BASE_MODELS = ("mp", "htmp", "inverse_htmp", "power_law")
READINGS = ("tail", "alpha_tail", "confinement_power", "kappa")
TESTED = ("confinement_power", "tail", "kappa", "hill_alpha")
LEVEL = 0.90
DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "batch_size"


def models() -> list[str]:
    """The default comparison, plus ``hard_edge`` once it is registered."""
    return [*BASE_MODELS, *(["hard_edge"] if "hard_edge" in REGISTRY else [])]


def settings(data: Path, lr: float) -> list[tuple[str, float, Path]]:
    """(label, lr/B, file) of every ``batch_<B>.npz``, by rising lr/B."""
    found = []
    for path in data.glob("batch_*.npz"):
        m = re.fullmatch(r"batch_(\d+)", path.stem)
        if m:
            b = int(m.group(1))
            found.append((f"B={b}", lr / b, path))
    if len(found) < 3:
        raise SystemExit(f"{data}: need at least 3 batch_<B>.npz, found {len(found)}")
    return sorted(found, key=lambda s: s[1])


def initial_kernels(data: Path) -> dict[str, np.ndarray] | None:
    """The shared initial weights, rebuilt by the training script (None if absent)."""
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    sys.path.insert(0, str(scripts))
    try:
        import jax
        from train_batch_size import DEFAULT_HIDDEN, DEFAULT_SEED, init_params
    except ImportError:  # optax or scikit-learn missing: no reference row
        return None
    with np.load(next(data.glob("batch_*.npz"))) as z:
        shapes = [z[f"dense_{i}/kernel"].shape for i in range(len(DEFAULT_HIDDEN) + 1)]
    sizes = (shapes[0][0], *(s[1] for s in shapes))
    params = init_params(jax.random.key(DEFAULT_SEED), sizes)
    return {f"{k}/kernel": np.asarray(v["kernel"]) for k, v in params.items()}


def one_spectrum(
    kernel: np.ndarray, name: str, *, draws: int, seed: int
) -> dict[str, object]:
    """Weights, ``power_law`` readings and WeightWatcher's α of one kernel."""
    spectrum = Spectrum.from_matrix(np.asarray(kernel, dtype=np.float64), name=name)
    row: dict[str, object] = {"N": spectrum.n, "gamma": spectrum.gamma}
    row["hill_alpha"] = hill_ks_alpha(spectrum.eigenvalues).alpha
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # censored-spike notes of weight-0 models
        comp = compare(
            spectrum,
            models(),
            fit_models=["power_law"],
            progress=False,
            seed=seed,
            draws=draws,
            ppc_draws=0,
        )
    row["seconds"] = time.perf_counter() - t0
    for m, w in comp.table["weight"].items():
        row[f"w_{m}"] = float(w)
    row["best"] = comp.best
    post = comp.fits["power_law"]["posterior"]
    lo, hi = (1 - LEVEL) / 2, (1 + LEVEL) / 2
    for var in READINGS:
        x = np.asarray(post[var]).ravel()
        row[f"{var}_median"] = float(np.median(x))
        row[f"{var}_lo"], row[f"{var}_hi"] = (
            float(q) for q in np.quantile(x, [lo, hi])
        )
    ident = comp.identification
    sel = ident[(ident["model"] == "power_law") & (ident["parameter"] == "log_tail")]
    row["tail_verdict"] = str(sel["verdict"].iloc[0]) if len(sel) else "n/a"
    return row


def verdict(trained: pd.DataFrame, var: str) -> dict[str, object]:
    """Spearman, monotonicity and extreme-interval separation of one reading."""
    med = trained[f"{var}_median" if f"{var}_median" in trained else var].to_numpy()
    rho = float(stats.spearmanr(trained["lr_over_B"], med).statistic)
    d = np.diff(med)
    monotone = bool((d > 0).all() or (d < 0).all())
    disjoint: bool | None = None  # a point estimate (WeightWatcher's α): no interval
    if f"{var}_lo" in trained:
        first, last = trained.iloc[0], trained.iloc[-1]
        disjoint = bool(
            first[f"{var}_hi"] < last[f"{var}_lo"]
            or last[f"{var}_hi"] < first[f"{var}_lo"]
        )
    moves = monotone and disjoint is True
    return {"spearman": rho, "monotone": monotone, "disjoint": disjoint, "yes": moves}


def fmt(x: float) -> str:
    return "∞" if not math.isfinite(x) else f"{x:.3g}"


def interval(r: pd.Series, var: str) -> str:
    return f"{fmt(r[f'{var}_median'])} [{fmt(r[f'{var}_lo'])}, {fmt(r[f'{var}_hi'])}]"


def print_tables(table: pd.DataFrame, verdicts: pd.DataFrame) -> None:
    ms = [c for c in table.columns if c.startswith("w_")]
    print("\n| layer | weights | lr/B | " + " | ".join(m[2:] for m in ms), end="")
    print(" | b′ (tail) | α_tail = b′+1 | ρm/2 | κ | log_tail | WW α | s |")
    print("|" + "---|" * (len(ms) + 10))
    for _, r in table.iterrows():
        lrb = "—" if r["label"] == "init" else f"{r['lr_over_B']:.3g}"
        w = " | ".join(f"{r[m]:.3f}" for m in ms)
        cells = " | ".join(interval(r, v) for v in READINGS)
        print(
            f"| {r['layer']} | {r['label']} | {lrb} | {w} | {cells} "
            f"| {r['tail_verdict']} | {r['hill_alpha']:.2f} | {r['seconds']:.0f} |"
        )
    print(
        "\n| layer | reading | Spearman vs lr/B | medians monotone "
        "| extreme 90% intervals disjoint | moves with lr/B |"
    )
    print("|---|---|---|---|---|---|")
    for _, v in verdicts.iterrows():
        dis = {True: "yes", False: "no"}.get(v["disjoint"], "—")
        print(
            f"| {v['layer']} | {v['reading']} | {v['spearman']:+.2f} "
            f"| {'yes' if v['monotone'] else 'no'} | {dis} "
            f"| {'**yes**' if v['yes'] else '**no**'} |"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--lr", type=float, default=0.1, help="the training rate")
    p.add_argument("--layers", nargs="+", default=None, help="default: all with N ≥ 50")
    p.add_argument("--min-eigenvalues", type=int, default=50)
    p.add_argument("--draws", type=int, default=4000, help="posterior grid draws")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-init", action="store_true", help="skip the reference row")
    p.add_argument("--out", type=Path, default=None, help="CSV of the full table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    runs = settings(args.data, args.lr)
    init = None if args.no_init else initial_kernels(args.data)
    if init is None and not args.no_init:
        print("no reference row: the training script needs optax and scikit-learn")
    with np.load(runs[0][2]) as z:
        names = [k.removesuffix("/kernel") for k in z.files if k.endswith("/kernel")]
        sizes = {k: min(z[f"{k}/kernel"].shape) for k in names}
    layers = args.layers or [k for k in names if sizes[k] >= args.min_eigenvalues]
    print(
        f"models {', '.join(models())}; layers {', '.join(layers)}; "
        f"settings {', '.join(f'{s[0]} (lr/B {s[1]:.3g})' for s in runs)}"
    )
    rows = []
    for layer in layers:
        todo = [("init", 0.0, init[f"{layer}/kernel"])] if init is not None else []
        for label, lrb, path in runs:
            with np.load(path) as z:
                todo.append((label, lrb, z[f"{layer}/kernel"]))
        for label, lrb, kernel in todo:
            row = one_spectrum(
                kernel, f"{label}:{layer}", draws=args.draws, seed=args.seed
            )
            rows.append({"layer": layer, "label": label, "lr_over_B": lrb, **row})
            print(
                f"  {layer} {label}: best {row['best']}, "
                f"ρm/2 {interval(pd.Series(row), 'confinement_power')}, "
                f"b′ {interval(pd.Series(row), 'tail')} [{row['seconds']:.0f} s]",
                flush=True,
            )
    table = pd.DataFrame(rows).fillna({c: 0.0 for c in (f"w_{m}" for m in models())})
    if args.out is not None:
        table.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    verdicts = []
    for layer, g in table[table["label"] != "init"].groupby("layer", sort=False):
        for var in TESTED:
            verdicts.append({"layer": layer, "reading": var, **verdict(g, var)})
    print_tables(table, pd.DataFrame(verdicts))
    print(f"total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
