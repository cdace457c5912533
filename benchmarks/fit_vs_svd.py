"""Fit time against the SVD floor, and NUTS steps per iteration across N.

Part 1 (the issue's benchmark): for N in {256, 1024, 4096} and gamma = 0.5, draw a
Gaussian N x N/gamma matrix, time its singular values (the floor: any spectral
tool pays it), then fit the htmp model to the resulting spectrum with 4 chains x
1000 draws (1000 warm-up) in the same process. Compile time is the first call's
extra time over a second call with another seed.

Part 2: mean leapfrog steps per NUTS iteration on exact HTMP spectra for N from 256
to 16384 and kappa from 0.5 to 50.

Usage: python benchmarks/fit_vs_svd.py [--sizes 256 1024 4096] [--steps-sizes ...]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import htmp_infer
from htmp_infer import Spectrum, fit
from htmp_infer.ensembles.sampling import sample_htmp


def _fit_seconds(spectrum: Spectrum, seed: int, ppc: int) -> tuple[float, object]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = fit(spectrum, method="nuts", seed=seed, progress=False, ppc_draws=ppc)
    return time.perf_counter() - t0, dt


def part1(sizes: list[int], gamma: float, ppc: int) -> None:
    print(f"# Part 1: fit vs SVD, gamma={gamma}, 4 chains x 1000 draws + 1000 warm-up")
    print(
        f"{'N':>6} {'svd_s':>8} {'compile_s':>9} {'fit_s':>7} {'ppc_s':>6} "
        f"{'ratio':>6} {'ratio+c':>7} {'steps':>6} {'kappa_med':>9}"
    )
    rng = np.random.default_rng(0)
    for n in sizes:
        w = rng.standard_normal((n, int(n / gamma)))
        t0 = time.perf_counter()
        sv = np.linalg.svd(w, compute_uv=False)
        t_svd = time.perf_counter() - t0
        spectrum = Spectrum.from_eigenvalues(sv**2, gamma=gamma, name=f"gauss{n}")
        t_first, _ = _fit_seconds(spectrum, seed=1, ppc=0)
        t_fit, dt = _fit_seconds(spectrum, seed=2, ppc=ppc)
        t_ppc = float(dt.attrs["seconds_ppc"])
        compile_s = max(t_first - (t_fit - t_ppc), 0.0)
        steps = float(dt.attrs["diag_mean_steps"])
        k_med = float(np.median(dt["posterior"]["kappa"].values))
        print(
            f"{n:>6} {t_svd:>8.2f} {compile_s:>9.2f} {t_fit:>7.2f} {t_ppc:>6.2f} "
            f"{t_fit / t_svd:>6.2f} {(t_fit + compile_s) / t_svd:>7.2f} "
            f"{steps:>6.2f} {k_med:>9.4g}",
            flush=True,
        )
    print("ratio = warm fit (NUTS + posterior predictive) / SVD; ratio+c adds compile")
    print("kappa_med: a real Gaussian matrix is beta = 1, i.e. kappa = N\n")


def part2(sizes: list[int], kappas: list[float], gamma: float) -> None:
    print("# Part 2: mean leapfrog steps per iteration (4 chains x 1000 + 1000)")
    print(f"{'N':>6} " + " ".join(f"{'k=' + format(k, 'g'):>8}" for k in kappas))
    for n in sizes:
        row = []
        for k in kappas:
            lam = sample_htmp(n + int(10 * k), n, k, gamma=gamma)
            s = Spectrum.from_eigenvalues(lam, gamma=gamma)
            _, dt = _fit_seconds(s, seed=0, ppc=0)
            row.append(float(dt.attrs["diag_mean_steps"]))
        print(f"{n:>6} " + " ".join(f"{v:>8.2f}" for v in row), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[256, 1024, 4096])
    p.add_argument(
        "--steps-sizes", type=int, nargs="*", default=[256, 1024, 4096, 16384]
    )
    p.add_argument("--kappas", type=float, nargs="*", default=[0.5, 2.0, 50.0])
    p.add_argument("--gamma", type=float, default=0.5)
    p.add_argument("--ppc-draws", type=int, default=40)
    args = p.parse_args()
    import jax

    print(
        f"htmp-infer {htmp_infer.__version__}, jax {jax.__version__} on "
        f"{jax.default_backend()}, {os.cpu_count()} CPUs, "
        f"OMP/OPENBLAS threads={os.environ.get('OMP_NUM_THREADS', 'default')}/"
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}\n"
    )
    if args.sizes:
        part1(args.sizes, args.gamma, args.ppc_draws)
    if args.steps_sizes:
        part2(args.steps_sizes, args.kappas, args.gamma)


if __name__ == "__main__":
    main()
