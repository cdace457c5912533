"""Nodes and seconds of the evidence grid: flood-filled rule against the whole box.

For every layer of the shipped MiniLM bundle (``data/minilm_spectra.npz``) and the
three default models with parameters, the evidence is computed twice, side by
side in one process (after one warm-up pass, so no compilation is timed):

1. ``flood``: the rule as shipped (:mod:`htmp_infer.inference._grid_rule`: coarse nodes
by
   a flood fill above peak − 30 nats, fine nodes next to coarse nodes above peak
   − 20 nats);
2. ``box``: every node of the same boxes (both thresholds set to infinity).

Prints the nodes evaluated, the seconds, and the largest differences in log
evidence, reported error, posterior mean and posterior sd of any coordinate.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/grid_nodes.py [--layers K]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np

from htmp_infer.inference import _grid_rule
from htmp_infer.inference.evidence import evidence_and_grid
from htmp_infer.networks.bundle import LayerSpectrum, SpectraBundle

MODELS = ("htmp", "inverse_htmp", "power_law")
BUNDLE = Path(__file__).resolve().parents[1] / "data" / "minilm_spectra.npz"


def _run(
    layers: list[LayerSpectrum],
) -> tuple[list[tuple[float, float, np.ndarray]], int, float]:
    out, nodes = [], 0
    t0 = time.perf_counter()
    for layer in layers:
        spectrum = layer.spectrum()
        for model in MODELS:
            ev, grid = evidence_and_grid(spectrum, model)
            assert grid is not None
            w = grid.weights[:, None]
            mean = np.sum(w * grid.points, axis=0)
            sd = np.sqrt(np.sum(w * (grid.points - mean) ** 2, axis=0))
            out.append((ev.log_evidence, ev.error, np.concatenate([mean, sd])))
            nodes += ev.evaluations
    return out, nodes, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=None, help="first K layers")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    layers = list(SpectraBundle.load(BUNDLE).layers)[: args.layers]
    _run(layers)  # compile every shape once
    flood, n_flood, t_flood = _run(layers)
    saved = (_grid_rule.FLOOD, _grid_rule.PRUNE)
    _grid_rule.FLOOD, _grid_rule.PRUNE = math.inf, math.inf
    try:
        box, n_box, t_box = _run(layers)
    finally:
        _grid_rule.FLOOD, _grid_rule.PRUNE = saved
    pairs = list(zip(flood, box, strict=True))
    print(f"{len(layers)} layers x {len(MODELS)} models")
    print(f"flood: {n_flood:8d} nodes  {t_flood:7.1f} s")
    print(f"box:   {n_box:8d} nodes  {t_box:7.1f} s")
    print(f"nodes ratio {n_flood / n_box:.3f}   time ratio {t_flood / t_box:.3f}")
    print(f"max |d log evidence| {max(abs(f[0] - b[0]) for f, b in pairs):.2e} nats")
    print(f"max |d error|        {max(abs(f[1] - b[1]) for f, b in pairs):.2e} nats")
    print(
        "max |d mean|, |d sd|  "
        f"{max(float(np.max(np.abs(f[2] - b[2]))) for f, b in pairs):.2e}"
    )


if __name__ == "__main__":
    main()
