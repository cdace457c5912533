"""Cost of one mean-field solve of the ``full`` weight: why ``full`` is not shipped.

The ``full`` model's bulk weight (temperature and data together) is
λ^{a−1}(1+λ/c)^{−p}e^{−h'/λ} with p = a + b' + κ (mean-field exponent). In units
c = p, the data-edge correction is D = φ(h' = u) − φ(h' = 0) per particle, with
u = v·(a + κ/2) as in the ``data`` model's table. For a grid of points (κ, b', v)
over the prior box at N = 100, M = 200, this prints the seconds of each solve and
D, then the mean and range of the seconds per solve, and the time a
16 × 12 × 10 table at two hard-edge ratios would take (``docs/model.md`` §2).

    .venv/bin/python benchmarks/full_cost.py
"""

from __future__ import annotations

import math
import time

import numpy as np

from htmp_infer.errors import HTMPError
from htmp_infer.meanfield.free_energy import equilibrium

N, M = 100, 200
KAPPAS = (0.01, 0.3, 4.0, 100.0)
TAILS = (0.05, 1.0, 3.0, 300.0)
EDGES = (1e-5, 0.1, 10.0)
TABLE_SOLVES = 16 * 12 * 10 * 2


def _solve(kappa: float, a: float, p: float, u: float) -> tuple[float, float]:
    t0 = time.perf_counter()
    phi = equilibrium(kappa, a, b=p, c=p, h=u, s=math.inf, warm=True).phi
    return phi, time.perf_counter() - t0


def main() -> None:
    seconds: list[float] = []
    for kappa in KAPPAS:
        a = kappa * (M - N + 1) / (2 * N)
        for tail in TAILS:
            p = a + tail + kappa
            try:
                phi0, dt = _solve(kappa, a, p, 0.0)
            except HTMPError as e:
                print(f"kappa={kappa:g} b'={tail:g}: {e}")
                continue
            seconds.append(dt)
            for v in EDGES:
                phi, dt = _solve(kappa, a, p, v * (a + kappa / 2))
                seconds.append(dt)
                print(f"kappa={kappa:g} b'={tail:g} v={v:g}: D={phi - phi0:+.4g} "
                      f"({dt:.2f} s)")  # fmt: skip
    s = np.array(seconds)
    print(f"{s.size} solves: mean {s.mean():.2f} s, median {np.median(s):.2f} s, "
          f"range {s.min():.3f}-{s.max():.2f} s")  # fmt: skip
    print(f"a {TABLE_SOLVES}-solve table: about {TABLE_SOLVES * s.mean() / 60:.0f} min")


if __name__ == "__main__":
    main()
