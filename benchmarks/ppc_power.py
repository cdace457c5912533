"""Power and false-alarm rate of the posterior-predictive check at N = 384.

For each (generator, fitted model) pair, spectra are drawn exactly from the
generator (each model's own ``simulate`` at fixed parameters), the fitted model
is fitted alone (grid posterior, 40 replicates, the scan's defaults) and
flagged when :func:`htmp_infer.inference.predictive.ppc_pvalue` < 0.05. When the
generator is the fitted model the flag rate is the false-alarm rate (nominal at
most 5%; the posterior-predictive p-value is conservative); otherwise it is the
power, which issue 18 asks to be at least 80% against a different model. A
fitted model that contains the generator (``hard_edge`` contains ``htmp``;
``power_law`` contains it as b' -> infinity) cannot be flagged: those pairs
measure false alarms, not power.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ppc_power.py --reps 20

Prints one row per pair: flag rate, its binomial standard error, and the median
p-value of each statistic, so the statistic that carries the power is visible.
"""

from __future__ import annotations

import argparse
import importlib
import time
import warnings

import numpy as np

from htmp_infer import Spectrum, fit
from htmp_infer.inference.predictive import (
    STATISTICS,
    joint_pvalue,
    likelihood_pvalue,
    ppc_pvalue,
    ppc_pvalues,
    statistics,
)

N = 384
#: (name, model, parameters, gamma)
GENERATORS = {
    "htmp k=5 square": ("htmp", {"kappa": 5.0}, 1.0),
    "htmp k=20 square": ("htmp", {"kappa": 20.0}, 1.0),
    "hard_edge a=0.4 k=10 square": (
        "hard_edge",
        {"kappa": 10.0, "edge_exponent": 0.4},
        1.0,
    ),
    "power_law b'=2 k=10 gamma=0.25": (
        "power_law",
        {"kappa": 10.0, "tail": 2.0},
        0.25,
    ),
    "htmp k=10 gamma=0.25": ("htmp", {"kappa": 10.0}, 0.25),
}
#: (generator, fitted model)
PAIRS = (
    ("htmp k=5 square", "htmp"),
    ("htmp k=20 square", "htmp"),
    ("hard_edge a=0.4 k=10 square", "hard_edge"),
    ("hard_edge a=0.4 k=10 square", "htmp"),
    ("htmp k=5 square", "hard_edge"),
    ("power_law b'=2 k=10 gamma=0.25", "htmp"),
    ("power_law b'=2 k=10 gamma=0.25", "power_law"),
    ("htmp k=10 gamma=0.25", "inverse_htmp"),
)


def draw(rng: np.random.Generator, name: str) -> Spectrum:
    model, params, gamma = GENERATORS[name]
    module = importlib.import_module(f"htmp_infer.models.{model}")
    shape = Spectrum.from_eigenvalues(np.linspace(1.0, 2.0, N), gamma=gamma)
    lam = module.simulate(rng, {**params, "scale": 1.0, "n_spikes": 0}, shape)
    return Spectrum.from_eigenvalues(np.sort(lam), gamma=gamma)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"N = {N}, {args.reps} spectra per pair, flag = ppc_p < 0.05")
    head = "generator | fitted | flagged | se | " + " | ".join(
        [*STATISTICS, "joint", "likelihood"]
    )
    print(head)
    for i, (gen, model) in enumerate(PAIRS):
        rng = np.random.default_rng([args.seed, i])
        t0 = time.perf_counter()
        flags, stats = [], []
        for _ in range(args.reps):
            dt = fit(
                draw(rng, gen), model, progress=False, seed=int(rng.integers(2**31))
            )
            flags.append(ppc_pvalue(dt) < 0.05)
            obs = statistics(np.asarray(dt["observed_data"].dataset["eigenvalues"]))
            reps = np.asarray(dt["posterior_predictive"].dataset["eigenvalues"])
            joint = joint_pvalue(obs, statistics(reps.reshape(-1, reps.shape[-1])))
            stats.append([*ppc_pvalues(dt).values, joint, likelihood_pvalue(dt)])
        rate = float(np.mean(flags))
        se = np.sqrt(rate * (1 - rate) / len(flags))
        med = np.median(np.asarray(stats), axis=0)
        cells = " | ".join(f"{v:.2g}" for v in med)
        print(
            f"{gen} | {model} | {rate:.2f} | {se:.2f} | {cells} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
