"""Cost of ``compare`` (all models) against one ``htmp`` fit, N = 1000.

Side by side in one process: a cold fit (compilation included) and a warm fit of
one spectrum, by NUTS (``fit``'s default) and from the evidence grid
(``method="grid"``), then a cold and a warm ``compare`` (grid draws, its default)
of another spectrum of a new size (so nothing of the first is reused). Prints
seconds and ratios; the issue's target is compare <= 3x one htmp fit.

    .venv/bin/python benchmarks/compare_cost.py
"""

from __future__ import annotations

import time
import warnings

from htmp_infer import Spectrum, compare, fit
from htmp_infer.ensembles.sampling import sample_htmp

GAMMA = 0.5


def _spectrum(n: int, seed: int) -> Spectrum:
    return Spectrum.from_eigenvalues(
        sample_htmp(seed, n, 2.0, gamma=GAMMA), gamma=GAMMA
    )


def _time(f) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main() -> None:
    warnings.simplefilter("ignore")
    a, b = _spectrum(1000, 1), _spectrum(1001, 2)
    kw = {"progress": False}
    fit_cold = _time(lambda: fit(a, method="nuts", **kw))
    fit_warm = _time(lambda: fit(a, method="nuts", seed=1, **kw))
    c = _spectrum(999, 3)
    grid_cold = _time(lambda: fit(c, method="grid", **kw))
    grid_warm = _time(lambda: fit(c, method="grid", seed=1, **kw))
    result = None

    def run() -> None:
        nonlocal result
        result = compare(b, **kw)

    cmp_cold = _time(run)
    cmp_warm = _time(lambda: compare(b, seed=1, **kw))
    print(
        "one htmp fit (4 chains x 1000 draws, 40 PPC replicates) vs compare of 4 models"
    )
    print(f"fit (NUTS)  cold {fit_cold:7.1f} s   warm {fit_warm:7.1f} s")
    print(f"fit (grid)  cold {grid_cold:7.1f} s   warm {grid_warm:7.1f} s")
    print(f"compare     cold {cmp_cold:7.1f} s   warm {cmp_warm:7.1f} s")
    print(
        f"compare / NUTS fit   cold {cmp_cold / fit_cold:7.2f}     "
        f"warm {cmp_warm / fit_warm:7.2f}"
    )
    print(
        f"compare / grid fit   cold {cmp_cold / grid_cold:7.2f}     "
        f"warm {cmp_warm / grid_warm:7.2f}"
    )
    assert result is not None
    print(result.table[["log_evidence", "error", "weight", "evaluations", "seconds"]])


if __name__ == "__main__":
    main()
