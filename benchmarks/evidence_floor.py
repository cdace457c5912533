"""How much of the scan's fit time is the quadrature's likelihood evaluations.

For every matrix of the shipped MiniLM bundle and every model of the scan, this
runs ``evidence_and_grid`` (the step that dominates a layer's fit) twice, the
first to compile, and on the second pass times the compiled batched evaluations of
the log posterior at the grid nodes (every call of
``htmp_infer.inference._grid_rule.evaluate``) apart from the rest (mode search, Hessian,
spike-cap search, bookkeeping). It prints, per model, the evaluations, the seconds
of the whole evidence, the seconds inside the compiled evaluations, and the SVD
floor of the same matrices (the bundle's recorded shapes, Gaussian matrices,
float64 singular values only), so the last line says how many SVD-times the
quadrature's own node evaluations take before any overhead.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/evidence_floor.py
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

import htmp_infer.inference.evidence as ev_module
from htmp_infer.errors import HTMPError
from htmp_infer.inference import _grid_rule
from htmp_infer.inference.comparison import DEFAULT_MODELS
from htmp_infer.networks.bundle import SpectraBundle

BUNDLE = Path(__file__).resolve().parents[1] / "data" / "minilm_spectra.npz"


def _svd_floor(shapes: list[tuple[int, ...]]) -> float:
    rng = np.random.default_rng(0)
    total = 0.0
    for shape in shapes:
        x = rng.standard_normal(shape[:2])
        t0 = time.perf_counter()
        np.linalg.svd(x, compute_uv=False)  # as benchmarks/scan.py times its floor
        total += time.perf_counter() - t0
    return total


def main() -> None:
    bundle = SpectraBundle.load(BUNDLE)
    spectra = [layer.spectrum() for layer in bundle.layers]
    inside = {"s": 0.0}
    original = _grid_rule.evaluate

    def timed(batch, z):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = original(batch, z)
        inside["s"] += time.perf_counter() - t0
        return out

    ev_module.evaluate = timed  # the grid code calls it through this name
    _grid_rule.evaluate = timed
    rows = []
    for rep in range(2):
        for model in DEFAULT_MODELS:
            inside["s"] = 0.0
            total, evaluations = 0.0, 0
            for spec in spectra:
                t0 = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        ev, _ = ev_module.evidence_and_grid(spec, model)
                except HTMPError:
                    continue
                total += time.perf_counter() - t0
                evaluations += ev.evaluations
            if rep:
                rows.append((model, evaluations, total, inside["s"]))
    svd = _svd_floor([layer.shape for layer in bundle.layers])
    print(f"{len(spectra)} MiniLM matrices, second pass (compiled programs reused)")
    print(f"{'model':<14}{'evaluations':>12}{'evidence s':>12}{'compiled s':>12}")
    for model, n_eval, total, compiled in rows:
        print(f"{model:<14}{n_eval:>12}{total:>12.2f}{compiled:>12.2f}")
    all_total = sum(r[2] for r in rows)
    all_compiled = sum(r[3] for r in rows)
    n_all = sum(r[1] for r in rows)
    print(f"{'all':<14}{n_all:>12}{all_total:>12.2f}{all_compiled:>12.2f}")
    print(
        f"SVD floor {svd:.2f} s: evidences {all_total / svd:.1f}x, their compiled "
        f"node evaluations alone {all_compiled / svd:.1f}x"
    )


if __name__ == "__main__":
    main()
