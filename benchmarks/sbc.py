"""Simulation-based calibration of every registered model with parameters.

For each model: R prior draws, an exact spectrum each, the quadrature posterior,
and the probability integral transform of every coordinate. Prints the χ²
p-values of the 10-bin histograms and saves the histograms as one PNG.

    .venv/bin/python benchmarks/sbc.py --replicates 200 --n 200 --out out/sbc.png
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from htmp_infer.validation.calibration import sbc

MODELS = ("htmp", "inverse_htmp", "power_law", "data", "hard_edge")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--replicates", type=int, default=200)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--gamma", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", type=Path, default=Path("out/sbc.png"))
    args = p.parse_args()
    models = args.models.split(",")
    results = []
    for model in models:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sbc(
                model,
                n=args.n,
                gamma=args.gamma,
                replicates=args.replicates,
                seed=args.seed,
                progress=True,
            )
        results.append(res)
        secs = time.perf_counter() - t0
        for name, pv in res.pvalue.items():
            print(
                f"{model:13s} {name:19s} chi2 p = {pv:.3f}  counts "
                f"{res.counts[name].tolist()}  (R = {args.replicates}, N = {args.n}, "
                f"redrawn {res.redrawn}, failed {res.failed}, {secs:.0f} s)",
                flush=True,
            )
    cols = max(len(r.pit) for r in results)
    fig, axes = plt.subplots(
        len(results), cols, figsize=(3.2 * cols, 2.4 * len(results)), squeeze=False
    )
    for row, res in zip(axes, results, strict=True):
        for ax, (name, pit) in zip(row, res.pit.items(), strict=False):
            ax.hist(pit, bins=10, range=(0, 1), color="0.6", edgecolor="k")
            ax.axhline(len(pit) / 10, color="r", lw=1)
            ax.set_title(f"{res.model}: {name}\np = {res.pvalue[name]:.2f}", fontsize=8)
        for ax in row[len(res.pit) :]:
            ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
