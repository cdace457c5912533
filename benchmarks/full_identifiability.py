"""What one spectrum would tell about ``full``'s parameters: the Fisher information.

``full`` is not shipped (``docs/model.md`` §2). Its normaliser has no closed form,
but the question of what it could identify does not need one. Temperature and data
together give the gas

    p(λ) ∝ ∏_{i<j}|λ_i−λ_j|^β ∏_i λ_i^{a−1}(1+λ_i/c)^{−p} e^{−h/λ_i},
    β = κ/N, a = β(M−N+1)/2, p = a + b' + β(N−1),

an exponential family in (β, b', h) for fixed c. The Fisher information is the
covariance of the score, I(θ) = Cov_θ[∇_θ log p̃(λ | θ)], with p̃ the unnormalised
density, because the normaliser's gradient is the score's mean. So I is estimated
from simulated spectra alone: R independent MCMC draws of the gas
(``htmp_infer.ensembles.gas_mcmc``, 400 sweeps from an exact β-prime draw lifted above
the
edge, as the ``data`` model simulates). In θ = (log κ, log b', log h, log c) the
score of one spectrum is

    ∂/∂log κ = κ[V/N + (M−N+1)/(2N)·Σlog λ − ((M−N+1)/(2N) + (N−1)/N)·Σlog(1+λ/c)],
    ∂/∂log b' = −b'·Σlog(1+λ/c),    ∂/∂log h = −h·Σ 1/λ,
    ∂/∂log c = p·Σ λ/(c+λ),

V the log-Vandermonde. I⁻¹ is the Cramér–Rao bound: the covariance of an efficient
estimator, and the Bernstein–von Mises covariance of the posterior. Printed per
truth (N = 200, M = 400, c = 1): the bound's sd of log κ, log b' and log(h/c) with
every factor free (``full``), the sds of log κ and log b' when the edge is known
(the ``power_law`` situation) and of log(h/c) when the tail is known (``data``),
and the correlation of the two factors' estimates. Compare the sds with the
priors: log b' has prior sd 1.5 (``power_law``) and log v prior sd 1.54 (``data``).

*Check* (``--check``): at h = 0 the gas is the exact β-prime ensemble, and the
mean score must equal the gradient of its exact log-normaliser (Selberg–Jacobi,
autodiff) in (log κ, log b', log c); the MCMC's mean score must agree with the
exact sampler's. Both printed as z-scores over R spectra.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/full_identifiability.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/full_identifiability.py --check
"""

from __future__ import annotations

import argparse
import itertools
import time

import jax.numpy as jnp
import numpy as np
from jax import Array

from htmp_infer._numerics import log_abs_vandermonde
from htmp_infer.ensembles.gas_mcmc import sample_gas_mcmc
from htmp_infer.ensembles.jacobi import betaprime_log_normalizer
from htmp_infer.ensembles.sampling_jacobi import sample_betaprime

NAMES = ("log_kappa", "log_tail", "log_edge", "log_scale")


def _log_weight(x: Array, a: Array, p: Array, h: Array, c: Array) -> Array:
    return (a - 1.0) * jnp.log(x) - p * jnp.log1p(x / c) - h / x


def scores(
    spectra: np.ndarray, n_cols: int, kappa: float, tail: float, edge: float, c: float
) -> np.ndarray:
    """Score of each spectrum in (log κ, log b', log h, log c), shape (R, 4)."""
    n = spectra.shape[1]
    r = (n_cols - n + 1.0) / (2.0 * n)
    p = kappa * r + tail + kappa * (n - 1.0) / n
    out = []
    for lam in spectra:
        log1p = float(np.sum(np.log1p(lam / c)))
        out.append(
            [
                kappa
                * (
                    log_abs_vandermonde(lam) / n
                    + r * float(np.sum(np.log(lam)))
                    - (r + (n - 1.0) / n) * log1p
                ),
                -tail * log1p,
                -edge * float(np.sum(1.0 / lam)),
                p * float(np.sum(lam / (c + lam))),
            ]
        )
    return np.asarray(out)


def simulate(
    seed: int,
    n: int,
    n_cols: int,
    kappa: float,
    tail: float,
    edge: float,
    c: float,
    replicates: int,
) -> np.ndarray:
    """``replicates`` MCMC draws of the gas, each from its own exact β-prime start."""
    beta = kappa / n
    a = beta * (n_cols - n + 1.0) / 2.0
    p = a + tail + beta * (n - 1.0)
    rng = np.random.default_rng(seed)
    start = sample_betaprime(rng, n, beta, a, tail, c, size=replicates)
    start = np.sqrt(start**2 + edge) * np.exp(1e-6 * np.arange(n))
    x = sample_gas_mcmc(
        int(rng.integers(2**31)),
        n,
        kappa,
        _log_weight,
        start,
        steps=400,
        weight_params=(a, p, edge, c),
    )
    return np.asarray(x)


def bounds(fisher: np.ndarray) -> dict[str, float]:
    """Cramér–Rao sds, full and with one factor known, and the factors' correlation."""
    cov = np.linalg.inv(fisher)
    rel = np.array([0.0, 0.0, 1.0, -1.0])  # log(h/c)
    temp = np.linalg.inv(fisher[np.ix_([0, 1, 3], [0, 1, 3])])  # edge known
    data = np.linalg.inv(fisher[np.ix_([0, 2, 3], [0, 2, 3])])  # tail known
    rel_d = np.array([0.0, 1.0, -1.0])
    sd_tail, sd_rel = np.sqrt(cov[1, 1]), np.sqrt(rel @ cov @ rel)
    return {
        "sd_log_kappa": float(np.sqrt(cov[0, 0])),
        "sd_log_kappa_edge_known": float(np.sqrt(temp[0, 0])),
        "sd_log_tail": float(sd_tail),
        "sd_log_tail_edge_known": float(np.sqrt(temp[1, 1])),
        "sd_log_rel_edge": float(sd_rel),
        "sd_log_rel_edge_tail_known": float(np.sqrt(rel_d @ data @ rel_d)),
        "corr_tail_edge": float((cov[1] @ rel) / (sd_tail * sd_rel)),
    }


def exact_mean_score(
    n: int, n_cols: int, kappa: float, tail: float, c: float
) -> np.ndarray:
    """∇ log Z of the β-prime gas in (log κ, log b', log c): the mean score at h = 0."""
    import jax

    def log_z(theta: Array) -> Array:
        k, b, cc = jnp.exp(theta)
        beta = k / n
        a = beta * (n_cols - n + 1.0) / 2.0
        return betaprime_log_normalizer(n, beta, a, b, cc)

    theta = jnp.log(jnp.array([kappa, tail, c]))
    return np.asarray(jax.grad(log_z)(theta))


def check(args: argparse.Namespace) -> None:
    """Mean score vs the exact normaliser's gradient, exact sampler and MCMC."""
    n, m, r = args.n, args.n_cols, args.replicates
    print(f"check at h = 0 (the β-prime gas), N = {n}, M = {m}, R = {r}: z-scores")
    for i, (kappa, tail) in enumerate(itertools.product((1.0, 5.0), (2.0, 8.0))):
        beta = kappa / n
        a = beta * (m - n + 1.0) / 2.0
        exact = sample_betaprime(
            np.random.default_rng(100 + i), n, beta, a, tail, 1.0, size=r
        )
        mcmc = simulate(200 + i, n, m, kappa, tail, 0.0, 1.0, r)
        want = exact_mean_score(n, m, kappa, tail, 1.0)
        for label, x in (("exact", exact), ("mcmc", mcmc)):
            s = scores(x, m, kappa, tail, 0.0, 1.0)[:, [0, 1, 3]]
            z = (s.mean(0) - want) / (s.std(0, ddof=1) / np.sqrt(r))
            print(
                f"  kappa={kappa:g} b'={tail:g} {label:>5}: "
                + " ".join(f"{v:+.2f}" for v in z)
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--replicates", type=int, default=160)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--n-cols", type=int, default=400)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--check", action="store_true", help="validate the score only")
    args = p.parse_args()
    if args.check:
        check(args)
        return
    c = 1.0
    print(
        f"N = {args.n}, M = {args.n_cols}, c = 1, R = {args.replicates} spectra per "
        "truth; Cramér–Rao sds (prior sds: log b' 1.5, log v 1.54)"
    )
    head = (
        "κ",
        "b'",
        "h/c",
        "logκ",
        "(edge known)",
        "logb'",
        "(edge known)",
        "log(h/c)",
        "(tail known)",
        "corr",
        "s",
    )
    print(("{:>6}" * 3 + "{:>13}" * 6 + "{:>7}{:>6}").format(*head))
    truths = itertools.product((1.0, 5.0), (2.0, 8.0), (0.02, 0.2))
    for i, (kappa, tail, edge) in enumerate(truths):
        t0 = time.perf_counter()
        x = simulate(
            args.seed + i, args.n, args.n_cols, kappa, tail, edge, c, args.replicates
        )
        s = scores(x, args.n_cols, kappa, tail, edge, c)
        b = bounds(np.cov(s, rowvar=False))
        print(
            ("{:>6g}" * 3 + "{:>13.3f}" * 6 + "{:>7.2f}{:>6.0f}").format(
                kappa,
                tail,
                edge,
                b["sd_log_kappa"],
                b["sd_log_kappa_edge_known"],
                b["sd_log_tail"],
                b["sd_log_tail_edge_known"],
                b["sd_log_rel_edge"],
                b["sd_log_rel_edge_tail_known"],
                b["corr_tail_edge"],
                time.perf_counter() - t0,
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
