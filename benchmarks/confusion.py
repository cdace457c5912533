"""Mechanism confusion matrix: spectra from each model, weights from ``compare``.

Spectra are simulated from each model's prior (spike count included; exactly,
except ``data``, whose spectra are MCMC draws of its gas) at
N = 1000; each gets the posterior model probabilities of all models (evidence by
quadrature). Prints the mean weight matrix and the fraction of replicates whose
own model has weight > 0.5 (target >= 0.9).

    .venv/bin/python benchmarks/confusion.py --replicates 20 --n 1000
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from htmp_infer.calibration import confusion_matrix

MODELS = ("mp", "htmp", "inverse_htmp", "temperature", "data")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--replicates", type=int, default=20)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--gamma", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args()
    models = tuple(args.models.split(","))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weights, hits = confusion_matrix(
            models,
            n=args.n,
            gamma=args.gamma,
            replicates=args.replicates,
            seed=args.seed,
            progress=True,
        )
    secs = time.perf_counter() - t0
    width = max(len(m) for m in models) + 2
    print(
        f"mean posterior weight (rows: true model), N = {args.n}, "
        f"R = {args.replicates}, {secs:.0f} s"
    )
    print(" " * width + "".join(f"{m:>{width}}" for m in models) + f"{'hit':>8}")
    for i, m in enumerate(models):
        row = "".join(f"{w:>{width}.3f}" for w in weights[i])
        print(f"{m:<{width}}{row}{hits[i]:>8.2f}")
    print(f"min hit rate {np.min(hits):.2f} (target >= 0.90)")


if __name__ == "__main__":
    main()
