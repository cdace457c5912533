"""Mechanism confusion matrix: spectra from each model, weights from ``compare``.

Spectra are simulated from each model's prior (spike count included; exactly,
except ``data``, whose spectra are MCMC draws of its gas) at
N = 1000; each gets the posterior model probabilities of all models (evidence by
quadrature). Prints the mean weight matrix, the fraction of replicates whose
own model has weight > 0.5 (target >= 0.9), the true parameters of the misses,
and the reliability of the weights (fraction of candidates that are the truth,
per bin of their weight). ``--out`` writes one CSV row per replicate.

    .venv/bin/python benchmarks/confusion.py --replicates 30 --n 1000 --out c.csv
    .venv/bin/python benchmarks/confusion.py --truths power_law,data

Each true model has its own seeded stream, so ``--truths`` reruns rows exactly.
"""

from __future__ import annotations

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np

from htmp_infer.io import atomic_path
from htmp_infer.validation.calibration import confusion_matrix, weight_reliability

MODELS = ("mp", "htmp", "inverse_htmp", "power_law", "data")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--replicates", type=int, default=20)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--gamma", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--truths", default=None, help="rows to simulate (default: all)")
    p.add_argument("--out", type=Path, default=None, help="per-replicate CSV")
    args = p.parse_args()
    models = tuple(args.models.split(","))
    truths = None if args.truths is None else tuple(args.truths.split(","))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = confusion_matrix(
            models,
            n=args.n,
            gamma=args.gamma,
            replicates=args.replicates,
            seed=args.seed,
            truths=truths,
            progress=True,
        )
    secs = time.perf_counter() - t0
    width = max(len(m) for m in models) + 2
    print(
        f"mean posterior weight (rows: true model), N = {args.n}, "
        f"R = {args.replicates}, {secs:.0f} s"
    )
    print(" " * width + "".join(f"{m:>{width}}" for m in models) + f"{'hit':>8}")
    for i, m in enumerate(res.models):
        row = "".join(f"{w:>{width}.3f}" for w in res.weights[i])
        print(f"{m:<{width}}{row}{res.hits[i]:>8.2f}")
    print(f"min hit rate {np.min(res.hits):.2f} (target >= 0.90)")
    print("misses (own weight <= 0.5): true parameters and the weights")
    for r in res.records:
        if float(r[f"w_{r['truth']}"]) <= 0.5:
            true = {k[5:]: v for k, v in r.items() if str(k).startswith("true_")}
            ws = {k[2:]: round(float(v), 3) for k, v in r.items() if k[:2] == "w_"}
            print(f"  {r['truth']} #{r['replicate']}: {true} -> {ws}")
    if truths is None:
        print("reliability: mean weight, fraction true, count, binomial sd")
        for mean, frac, c, sd in weight_reliability(res.records, models):
            print(f"  {mean:6.3f} {frac:6.3f} {c:5d} {sd:6.3f}")
    if args.out is not None:
        keys = list(dict.fromkeys(k for r in res.records for k in r))
        with atomic_path(args.out) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(res.records)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
