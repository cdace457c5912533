"""Cost of the ``data`` model against ``htmp`` and ``power_law`` (issue 18).

In one process, per case (one matrix shape and a few spectra of it), every model's
``evidence_and_grid`` (what ``compare`` and ``scan`` run per model) is timed

- table: for ``data``, the edge table of the shape, built from an empty cache;
- first call / first pass: the first call, and all calls of a first pass over the
  case's spectra (JIT compilation of every spike cap they reach included;
  programs compiled for an earlier case with the same N are reused);
- warm: a second pass over the same spectra, everything compiled (median).

Cases: the shipped MiniLM's 384×384 attention and 384×1536 MLP matrices, and at
N = 768 and 1536 (square) MiniLM-like spectra (a MiniLM attention spectrum's
quantile function, log-linearly interpolated to N values) and a draw of the
``data`` model (κ = 10, v = 1e-4, 3 spikes; a square HTMP draw has values
~1e-187 of the mean at N = 768, which ``data`` refuses). Wall and CPU seconds
(CPU: all threads of the process; the fairer number on a shared machine), and
the ratios of ``data`` to the others.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/data_cost.py
    .venv/bin/python benchmarks/data_cost.py --cases 384x384 --spectra 2
    .venv/bin/python benchmarks/data_cost.py --accuracy 384x384 --points 40
    .venv/bin/python benchmarks/data_cost.py --occam

``--accuracy NxM`` instead measures the edge table of that shape against fresh
mean-field solves at random points of its whole box (every spike count to L).
``--occam`` compares ``data``'s log evidence under the edge prior of issue 18
(log v normal, [1e-8, 10] at ±3 sd) and the previous one ([1e-3, 10]) with
``htmp``'s, on MiniLM layers and HTMP draws. The table cache is a fresh temporary
folder unless ``--cache`` names one (then cached tables are reused and ``table``
is the time to read them).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

BUNDLE = Path(__file__).resolve().parents[1] / "data" / "minilm_spectra.npz"
#: ``power_law`` is the model issue 18 renamed from ``temperature``; ``hard_edge``
#: the other model of the lower edge.
MODELS = ("htmp", "power_law", "hard_edge", "data")
CASES = ("384x384", "384x1536", "768x768", "1536x1536")


def _clock(f: Callable[[], object]) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - w0, time.process_time() - c0


def _minilm(kind_shape: tuple[int, int]) -> list:  # type: ignore[type-arg]
    from htmp_infer.networks.bundle import SpectraBundle

    bundle = SpectraBundle.load(BUNDLE)
    out = []
    for layer in bundle.layers:
        spec = layer.spectrum()
        if (spec.n, int(spec.n_cols)) == kind_shape and "pooler" not in layer.name:
            out.append(spec)
    return out


def _stretched(n: int, m: int, count: int) -> list:  # type: ignore[type-arg]
    """MiniLM attention spectra's quantile functions, resampled at ``n`` values."""
    from htmp_infer import Spectrum

    out = []
    for spec in _minilm((384, 384))[:count]:
        lam = np.sort(spec.eigenvalues)
        p_old = (np.arange(lam.size) + 0.5) / lam.size
        p_new = (np.arange(n) + 0.5) / n
        values = np.exp(np.interp(p_new, p_old, np.log(lam)))
        # ties where the interpolation is flat: spread by a relative 1e-9
        values = values * (1.0 + 1e-9 * np.arange(n))
        out.append(Spectrum.from_eigenvalues(values, n_cols=m, name=spec.name))
    return out


def _spectra(case: str, count: int) -> list:  # type: ignore[type-arg]
    from htmp_infer import Spectrum
    from htmp_infer.models import data as data_model

    n, m = (int(x) for x in case.split("x"))
    if (n, m) in ((384, 384), (384, 1536)):
        return _minilm((n, m))[:count]
    specs = _stretched(n, m, count - 1)
    # a square HTMP draw puts its smallest values ~1e-187 of the mean at N = 768,
    # which `data` refuses: the simulated spectrum is the data model's own
    shape = Spectrum.from_eigenvalues(np.arange(1.0, n + 1.0), n_cols=m)
    params = {"kappa": 10.0, "relative_edge": 1e-4, "rate": 1.0, "n_spikes": 3}
    lam = data_model.simulate(np.random.default_rng(7), params, shape)
    return [*specs, Spectrum.from_eigenvalues(lam, n_cols=m, name="data draw")]


def _evidence(spec, model: str) -> tuple[tuple[float, float], object]:  # type: ignore[no-untyped-def]
    from htmp_infer.errors import HTMPError
    from htmp_infer.inference.evidence import Evidence, evidence_and_grid

    got: dict[str, object] = {}

    def run() -> None:
        try:
            got["ev"] = evidence_and_grid(spec, model)[0]
        except HTMPError as e:
            print(f"  {model}: failed: {e}")
            got["ev"] = Evidence(model, math.nan, math.nan, 0, "failed", 0)

    return _clock(run), got["ev"]


def cost(cases: list[str], count: int) -> None:
    """Cold and warm evidence+grid seconds per model and case."""
    from htmp_infer.meanfield.data_edge import edge_table
    from htmp_infer.mechanisms.spikes import spike_limit

    rows = []
    for case in cases:
        specs = _spectra(case, count)
        n, m = specs[0].n, float(specs[0].n_cols)
        top = spike_limit(n)
        table = _clock(lambda n=n, m=m, top=top: edge_table(n, m, top, progress=False))
        print(f"{case}: data-edge table {table[0]:.1f} s wall, {table[1]:.1f} s CPU")
        for model in MODELS:
            passes = []
            for label in ("cold", "warm"):
                times = []
                for spec in specs:
                    t, ev = _evidence(spec, model)
                    times.append(t)
                    print(
                        f"  {label} {model:12s} {spec.name[:40]:40s} {t[0]:7.1f} s "
                        f"wall {t[1]:7.1f} s CPU  logZ {ev.log_evidence:10.2f} "  # type: ignore[attr-defined]
                        f"cap {ev.spike_cap} ({ev.cap_mass:.2f}) "  # type: ignore[attr-defined]
                        f"evals {ev.evaluations}",  # type: ignore[attr-defined]
                        flush=True,
                    )
                passes.append(times)
            rows.append(
                {
                    "case": case,
                    "model": model,
                    "table": table if model == "data" else (0.0, 0.0),
                    "first": passes[0][0],
                    "pass1": tuple(sum(t[i] for t in passes[0]) for i in (0, 1)),
                    "warm": tuple(
                        statistics.median(t[i] for t in passes[1]) for i in (0, 1)
                    ),
                }
            )
    print(
        "\ncase       model        table(wall/CPU)  first call(wall/CPU)"
        "  first pass(wall/CPU)  warm median(wall/CPU)"
    )
    for r in rows:
        tab, first, one, hot = r["table"], r["first"], r["pass1"], r["warm"]
        print(
            f"{r['case']:10s} {r['model']:12s} {tab[0]:6.1f}/{tab[1]:6.1f}"
            f"     {first[0]:6.1f}/{first[1]:6.1f}       {one[0]:6.1f}/{one[1]:6.1f}"
            f"         {hot[0]:6.2f}/{hot[1]:6.2f}"
        )
    print("\nratios of data to the others (CPU seconds)")
    for case in cases:
        by = {r["model"]: r for r in rows if r["case"] == case}
        d = by["data"]
        for other in MODELS[:-1]:
            o = by[other]
            print(
                f"{case:10s} data/{other:12s} warm {d['warm'][1] / o['warm'][1]:6.2f}"
                f"  first pass {d['pass1'][1] / o['pass1'][1]:6.2f}"
                f"  first pass + table "
                f"{(d['pass1'][1] + d['table'][1]) / o['pass1'][1]:6.2f}"
            )


def accuracy(case: str, points: int, seed: int) -> None:
    """The table of one shape against fresh solves over its whole box."""
    from htmp_infer.meanfield.data_edge import (
        EDGE_RANGE,
        KAPPA_RANGE,
        edge_correction,
        edge_free_energy,
        edge_table,
    )
    from htmp_infer.mechanisms.spikes import spike_limit

    n, m = (int(x) for x in case.split("x"))
    tab = edge_table(n, float(m), spike_limit(n), progress=False)
    rng = np.random.default_rng(seed)
    r0, r_top = tab.ratios[0], tab.ratios[-1]
    errs = []
    for _ in range(points):
        lk = rng.uniform(*np.log(KAPPA_RANGE))
        lv = rng.uniform(*np.log(EDGE_RANGE))
        r = math.exp(rng.uniform(math.log(r0), math.log(r_top)))
        kappa = math.exp(lk)
        direct, _ = edge_free_energy(
            kappa, kappa * r, math.exp(lv) * kappa * (r0 + 0.5)
        )
        got = float(edge_correction(tab.coef, tab.ratios, lk, lv, np.array([r]))[0])
        errs.append(abs(got - direct))
        print(
            f"kappa {kappa:9.4f} v {math.exp(lv):9.2e} r/r0 {r / r0:6.4f} "
            f"D {direct:12.5e} error {errs[-1]:8.1e}",
            flush=True,
        )
    e = np.asarray(errs)
    print(
        f"{case}: {points} points, max error {e.max():.1e} per eigenvalue "
        f"(x N = {n}: {n * e.max():.1e} nats), median {np.median(e):.1e}"
    )


def occam() -> None:
    """log BF(data - htmp) under the new and the previous edge prior."""
    from htmp_infer import Spectrum
    from htmp_infer.ensembles.sampling import sample_htmp
    from htmp_infer.inference import _programs
    from htmp_infer.inference.evidence import log_evidence
    from htmp_infer.models import data as data_model

    attn = _minilm((384, 384))
    mlp = _minilm((384, 1536))
    cases = [
        attn[2],
        attn[9],
        mlp[0],
        mlp[5],
        Spectrum.from_eigenvalues(
            sample_htmp(1, 384, 10.0, n_cols=384), n_cols=384, name="htmp 384x384"
        ),
        Spectrum.from_eigenvalues(
            sample_htmp(2, 384, 10.0, n_cols=1536), n_cols=1536, name="htmp 384x1536"
        ),
    ]
    priors = {
        "new [1e-8, 10]": data_model.LOG_EDGE,
        "old [1e-3, 10]": (math.log(1e-3), math.log(10.0)),
    }
    htmp = {s.name: log_evidence(s, "htmp").log_evidence for s in cases}
    for label, box in priors.items():
        data_model.LOG_EDGE = box
        _programs._compiled.cache_clear()  # the prior is compiled into the program
        _programs._MADE.clear()
        for s in cases:
            ev = log_evidence(s, "data")
            print(
                f"{label}  {s.name[:46]:46s} log BF(data - htmp) "
                f"{ev.log_evidence - htmp[s.name]:9.2f}  (error {ev.error:.2f})",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--spectra", type=int, default=3, help="spectra per case")
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--accuracy", metavar="NxM", default=None)
    p.add_argument("--points", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--occam", action="store_true")
    args = p.parse_args()
    tmp = None
    if args.cache is None:
        tmp = tempfile.TemporaryDirectory(prefix="htmp-data-cost-")
        args.cache = Path(tmp.name)
    os.environ["HTMP_INFER_CACHE"] = str(args.cache)
    warnings.simplefilter("ignore")
    print(f"table cache {args.cache}; python {sys.version.split()[0]}", flush=True)
    if args.accuracy:
        accuracy(args.accuracy, args.points, args.seed)
    elif args.occam:
        occam()
    else:
        import jax.numpy as jnp

        jnp.ones(1).block_until_ready()  # the backend starts before any timing
        cost(args.cases.split(","), args.spectra)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
