"""How often each verdict of ``htmp_infer.inference.identification`` comes out, by
simulation.

Spectra are simulated from the priors of ``htmp`` (the nested limit of
``power_law`` as b' → ∞ and of ``data`` as v → 0) and of the two extended
models themselves; each is compared under ``htmp``, ``power_law`` and
``data`` and the verdict of every parameter is counted. On ``htmp`` spectra
the extra parameter should come out one-sided (``lower bound only`` for
temperature's log b', ``upper bound only`` for data's log v) in about 98% of
replicates: a side is called bounded when the best fit beats the limit by
more than 2 nats, which a likelihood-ratio test puts at P(χ²₁ > 4)/2 ≈ 2.3%.

    .venv/bin/python benchmarks/identification.py --replicates 40 --n 100
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

from htmp_infer import compare
from htmp_infer.validation.calibration import model_stream, simulate_from_prior

MODELS = ("htmp", "power_law", "data")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--replicates", type=int, default=40)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--gamma", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args()
    rows = []
    t0 = time.perf_counter()
    for truth in MODELS:
        rng = model_stream(args.seed, truth)
        for r in range(args.replicates):
            _, spec, _ = simulate_from_prior(truth, rng, args.n, args.gamma)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = compare(spec, MODELS, draws=50, ppc_draws=0, progress=False)
            for row in res.identification.itertuples():
                rows.append((truth, r, row.model, row.parameter, row.verdict))
        print(f"{truth}: {time.perf_counter() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows, columns=["truth", "rep", "model", "parameter", "verdict"])
    df = df[df["model"] != "htmp"]
    groups = df.groupby(["truth", "model", "parameter"])["verdict"]
    table = groups.value_counts(normalize=True).unstack(fill_value=0.0)
    table.insert(0, "spectra", groups.size())
    with pd.option_context("display.width", 200, "display.multi_sparse", False):
        print(f"verdict frequencies, N = {args.n}, R = {args.replicates}")
        print("(spectra: replicates whose evidence of that model could be computed)")
        print(table.round(3).to_string())


if __name__ == "__main__":
    main()
