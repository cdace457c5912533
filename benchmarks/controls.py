"""Issue 18's controls: ``htmp-infer compare --matrix`` on matrices of known kind.

Each control matrix is drawn by :mod:`htmp_infer.validation.generators`, saved as
``.npy`` in a temporary folder and given to the command line exactly as a user
would (``htmp-infer compare W.npy --matrix --out W.nc``). The script then reads
the tables the command wrote (``W_comparison.csv``, ``W_phases.csv`` and any other
``W_*.csv`` it may add) and the summary lines it printed, and checks the targets
of issue 18:

====================  ===================================  =======================
control               matrix                               target
====================  ===================================  =======================
gaussian_384          384 x 384 i.i.d. N(0, 1)             P(random-like) >= 0.9
gaussian_1536         384 x 1536 i.i.d. N(0, 1)            P(random-like) >= 0.9
rank300_noise         rank 300 + 1e-6 noise, 384 x 384     P(rank-collapse) >= 0.9
powerlaw_cov_384      Gaussian, column covariance j^-1     not rank-collapse
powerlaw_cov_1536     the same, 384 x 1536                 not rank-collapse
well_conditioned      384 x 384, MiniLM MLP eigenvalues    never rank-collapse
====================  ===================================  =======================

"Not rank-collapse" is read as: rank-collapse is not the most probable phase and
has probability below 0.5; "never rank-collapse" as probability below 0.05. The
well-conditioned matrix has the eigenvalues of a MiniLM MLP matrix (default the
first FFN, ``encoder.layer.0.intermediate.dense.weight``, 384 x 1536, smallest
eigenvalue 10% of the mean), rotated by two Haar orthogonal matrices into a
384 x 384 matrix (:func:`~htmp_infer.validation.generators.well_conditioned`,
floored at 1% of the mean).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/controls.py
    .venv/bin/python benchmarks/controls.py --only gaussian_384 --cli-args=--ppc-draws=0
    .venv/bin/python benchmarks/controls.py --keep out/controls   # keep the outputs

Exit status 0 whether or not the targets are met (it is a report); the last table
says which are.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from htmp_infer.networks.bundle import SpectraBundle
from htmp_infer.validation.generators import (
    gaussian,
    low_rank_plus_noise,
    power_law_covariance,
    well_conditioned,
)

ROOT = Path(__file__).resolve().parents[1]
MINILM = ROOT / "data" / "minilm_spectra.npz"
MINILM_LAYER = "encoder.layer.0.intermediate.dense.weight"
KNOWN_CSV = ("comparison", "phases", "identification")
#: printed summary lines ("most probable model: ...", a reading...), not tables
SUMMARY = re.compile(r"^[A-Za-z][\w ()'/-]*: ")


@dataclass(frozen=True)
class Control:
    """One control: how to draw it and what it must read as."""

    name: str
    describe: str
    draw: Callable[[np.random.Generator], np.ndarray]
    phase: str
    target: str  # "at_least" (P >= 0.9), "not" (argmax != phase, P < 0.5), "never"

    def verdict(self, phases: pd.Series) -> tuple[bool, str]:
        """Whether ``phases`` (probability by phase) meets the target, and why."""
        p = float(phases.get(self.phase, 0.0))
        top = str(phases.idxmax())
        if self.target == "at_least":
            return p >= 0.9, f"P({self.phase}) = {p:.3f} (target >= 0.9)"
        if self.target == "not":
            ok = p < 0.5 and top != self.phase
            return ok, f"P({self.phase}) = {p:.3f}, top {top} (target: not it)"
        return p < 0.05, f"P({self.phase}) = {p:.3f} (target < 0.05)"


def controls(layer: str) -> list[Control]:
    """The six controls of issue 18 (``layer``: the MiniLM matrix to copy)."""
    bundle = SpectraBundle.load(MINILM)
    lam = next(sp.eigenvalues for sp in bundle.layers if sp.name == layer)
    lam = np.asarray(lam, dtype=np.float64)
    return [
        Control(
            "gaussian_384",
            "384x384 iid N(0,1)",
            lambda r: gaussian(r, 384, 384),
            "random-like",
            "at_least",
        ),
        Control(
            "gaussian_1536",
            "384x1536 iid N(0,1)",
            lambda r: gaussian(r, 384, 1536),
            "random-like",
            "at_least",
        ),
        Control(
            "rank300_noise",
            "384x384 rank 300 + 1e-6 noise",
            lambda r: low_rank_plus_noise(r, 384, 384, 300, 1e-6),
            "rank-collapse",
            "at_least",
        ),
        Control(
            "powerlaw_cov_384",
            "384x384 Gaussian, column cov j^-1",
            lambda r: power_law_covariance(r, 384, 384, 1.0),
            "rank-collapse",
            "not",
        ),
        Control(
            "powerlaw_cov_1536",
            "384x1536 Gaussian, column cov j^-1",
            lambda r: power_law_covariance(r, 384, 1536, 1.0),
            "rank-collapse",
            "not",
        ),
        Control(
            "well_conditioned",
            f"384x384, eigenvalues of {layer} (min/mean "
            f"{lam.min() / lam.mean():.3f}), floor 1%",
            lambda r: well_conditioned(r, lam, floor=0.01),
            "rank-collapse",
            "never",
        ),
    ]


def run_control(
    c: Control, folder: Path, seed: int, cli_args: list[str]
) -> dict[str, object]:
    """Draw the matrix, run the CLI on it, and read what it wrote and printed."""
    w = c.draw(np.random.default_rng(seed))
    npy = folder / f"{c.name}.npy"
    np.save(npy, w)
    out = folder / f"{c.name}.nc"
    cmd = [sys.executable, "-m", "htmp_infer", "compare", str(npy), "--matrix"]
    cmd += ["--out", str(out), "--no-progress", "--seed", str(seed), *cli_args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    secs = time.perf_counter() - t0
    (folder / f"{c.name}.stdout").write_text(proc.stdout + proc.stderr)
    res: dict[str, object] = {"name": c.name, "seconds": secs, "rc": proc.returncode}
    if proc.returncode != 0:
        res["error"] = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        return res
    table = pd.read_csv(folder / f"{c.name}_comparison.csv", index_col=0)
    phases = pd.read_csv(folder / f"{c.name}_phases.csv", index_col=0)["probability"]
    extra = {
        p.stem[len(c.name) + 1 :]: pd.read_csv(p)
        for p in sorted(folder.glob(f"{c.name}_*.csv"))
        if p.stem[len(c.name) + 1 :] not in KNOWN_CSV
    }
    lines = [
        ln
        for ln in proc.stdout.splitlines()
        if SUMMARY.match(ln) and not ln.startswith("wrote ")
    ]
    warns = [ln for ln in proc.stderr.splitlines() if "warning" in ln.lower()]
    res.update(table=table, phases=phases, extra=extra, lines=lines, warnings=warns)
    return res


def report(c: Control, res: dict[str, object]) -> tuple[bool | None, str]:
    """Print one control's outcome; return whether it met its target."""
    print(f"== {c.name}: {c.describe}  ({res['seconds']:.0f} s)")
    if "error" in res:
        print(f"   command failed (exit {res['rc']}): {res['error']}")
        return None, "command failed"
    table = res["table"]
    assert isinstance(table, pd.DataFrame)
    cols = [k for k in ("log_evidence", "error", "weight", "ppc_p") if k in table]
    with pd.option_context("display.width", 120):
        text = table[cols].to_string(float_format=lambda v: f"{v:.4g}")
    print("   " + text.replace("\n", "\n   "))
    phases = res["phases"]
    assert isinstance(phases, pd.Series)
    print("   phases: " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items()))
    extra = res["extra"]
    assert isinstance(extra, dict)
    for stem, frame in extra.items():
        print(f"   {stem}:")
        print("     " + frame.to_string(index=False).replace("\n", "\n     "))
    for ln in [*res["lines"], *res["warnings"]]:  # type: ignore[misc]
        print(f"   | {ln}")
    ok, why = c.verdict(phases)
    print(f"   target {'MET' if ok else 'MISSED'}: {why}")
    return ok, why


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seed", type=int, default=0, help="matrices and CLI seed")
    p.add_argument("--only", default=None, help="comma-separated control names")
    p.add_argument("--minilm-layer", default=MINILM_LAYER)
    p.add_argument(
        "--cli-args",
        default="",
        help="more arguments for htmp-infer compare, e.g. '--ppc-draws 0'",
    )
    p.add_argument("--keep", type=Path, default=None, help="write outputs here")
    args = p.parse_args()
    todo = controls(args.minilm_layer)
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - {c.name for c in todo})
        if unknown:
            p.error(f"unknown controls {unknown}; choose from {[c.name for c in todo]}")
        todo = [c for c in todo if c.name in names]
    cli_args = shlex.split(args.cli_args)
    t0 = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="htmp-controls-") as tmp:
        folder = args.keep if args.keep is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for c in todo:
            res = run_control(c, folder, args.seed, cli_args)
            outcomes.append((c, res, *report(c, res)))
            sys.stdout.flush()
    print(f"\nsummary (seed {args.seed}, {time.perf_counter() - t0:.0f} s in all)")
    for c, res, ok, why in outcomes:
        table = res.get("table")
        best = str(table.index[0]) if isinstance(table, pd.DataFrame) else "-"
        mark = {True: "MET   ", False: "MISSED", None: "FAILED"}[ok]
        print(f"  {mark} {c.name:<18} best {best:<13} {why}")


if __name__ == "__main__":
    main()
