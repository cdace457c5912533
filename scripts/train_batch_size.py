"""Train a small MLP on scikit-learn's digits at several batch sizes.

The question: does eigenvalue repulsion κ fall as the training batch size shrinks
(the batch-size trend reported for MiniAlexNet on CIFAR-10), in a network trained
here, offline, in a few minutes of CPU?

Data: ``sklearn.datasets.load_digits`` (1797 × 64, bundled with scikit-learn, no
download), split with a fixed seed into ``--n-train`` training images (stratified)
and the rest for test, standardised with the training mean/std. With the default
``--n-train 1024`` every power-of-two batch size up to 1024 divides the training set,
so no example is dropped and batch 1024 is full-batch gradient descent.

Model: a plain JAX MLP 64 → hidden… → 10 with ReLU, He-normal kernels and zero
biases drawn from ``--seed``; the same initial weights are used for every batch size.
Parameters are a dict pytree ``{"dense_0": {"kernel": (in, out), "bias": (out,)}, …}``.

Optimiser: ``optax.sgd`` at a constant learning rate (``--momentum 0`` = plain SGD),
softmax cross-entropy, no weight decay. Every batch size is trained for the SAME
number of epochs (the protocol of the batch-size experiments in the heavy-tailed
self-regularisation literature): each run sees the same number of examples, and
smaller batches take proportionally more, noisier steps. The data order of every
epoch comes from ``--seed`` too. At one learning rate the SGD noise "temperature"
lr/B grows as the batch shrinks (the defaults span a factor 64 in four steps of 4);
``benchmarks/temperature_manipulation.py`` fits the spectra of these weights.

Output: ``<out>/batch_<B>.npz`` (keys ``dense_<i>/kernel`` and ``dense_<i>/bias``,
float32, written atomically) and ``<out>/README.md`` (provenance, accuracies and,
per layer with at least 50 eigenvalues, the moment estimator κ̂ and WeightWatcher's
α of the eigenvalues of WᵀW, at initialisation and after training). A section of an
existing README starting at ``## Notes`` (hand-written) is kept.

Usage:
    python scripts/train_batch_size.py --out data/batch_size
    python scripts/train_batch_size.py --epochs 100 --batch-sizes 1024 16 8 --lr 0.1

Requires scikit-learn and optax on top of the library's dependencies (the ``scripts``
extra); an optax installed outside the environment, e.g. with
``pip install --no-deps --target DIR optax chex absl-py toolz`` and ``PYTHONPATH=DIR``,
is recorded in the README's provenance.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import sklearn
from numpy.typing import NDArray
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from htmp_infer.validation.hill import hill_ks_alpha
from htmp_infer.validation.peers import moment_kappa

Params = dict[str, dict[str, jax.Array]]

DEFAULT_OUT = "data/batch_size"
DEFAULT_EPOCHS = 400
DEFAULT_BATCH_SIZES = (1024, 256, 64, 16)
DEFAULT_HIDDEN = (512, 384, 384)
DEFAULT_LR = 0.1
DEFAULT_MOMENTUM = 0.0
DEFAULT_N_TRAIN = 1024
DEFAULT_SEED = 0
MIN_EIGENVALUES = 50  # layers with fewer eigenvalues are not analysed
NOTES_HEADING = "## Notes"  # this section of an existing README is kept


def load_data(
    n_train: int, seed: int
) -> tuple[
    NDArray[np.float32], NDArray[np.int32], NDArray[np.float32], NDArray[np.int32]
]:
    """Digits split (stratified, seeded) and standardised with training statistics."""
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, train_size=n_train, stratify=y, random_state=seed
    )
    mean = x_tr.mean(axis=0)
    std = x_tr.std(axis=0)
    std[std == 0] = 1.0  # constant (always-blank) pixels stay 0
    return (
        ((x_tr - mean) / std).astype(np.float32),
        y_tr.astype(np.int32),
        ((x_te - mean) / std).astype(np.float32),
        y_te.astype(np.int32),
    )


def init_params(key: jax.Array, sizes: tuple[int, ...]) -> Params:
    """He-normal kernels (std √(2/fan_in)) and zero biases."""
    params: Params = {}
    keys = jax.random.split(key, len(sizes) - 1)
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        params[f"dense_{i}"] = {
            "kernel": jax.random.normal(k, (n_in, n_out), jnp.float32)
            * np.float32(np.sqrt(2.0 / n_in)),
            "bias": jnp.zeros((n_out,), jnp.float32),
        }
    return params


def forward(params: Params, x: jax.Array) -> jax.Array:
    """Logits of the ReLU MLP."""
    n = len(params)
    for i in range(n):
        layer = params[f"dense_{i}"]
        x = x @ layer["kernel"] + layer["bias"]
        if i < n - 1:
            x = jax.nn.relu(x)
    return x


def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy."""
    logits = forward(params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@jax.jit
def accuracy(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(forward(params, x), axis=-1) == y)


def make_epoch(opt: optax.GradientTransformation, batch_size: int, n_train: int) -> Any:
    """A jitted function running one epoch (shuffle, then scan over the batches)."""
    steps = n_train // batch_size

    @jax.jit
    def epoch(
        params: Params, opt_state: Any, key: jax.Array, x: jax.Array, y: jax.Array
    ) -> tuple[Params, Any, jax.Array]:
        perm = jax.random.permutation(key, n_train)[: steps * batch_size]
        xb = x[perm].reshape(steps, batch_size, -1)
        yb = y[perm].reshape(steps, batch_size)

        def step(carry: Any, batch: Any) -> tuple[Any, jax.Array]:
            p, s = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, *batch)
            updates, s = opt.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (xb, yb))
        return params, opt_state, losses.mean()

    return epoch


def train(
    params: Params,
    data: tuple[jax.Array, jax.Array, jax.Array, jax.Array],
    *,
    batch_size: int,
    epochs: int,
    lr: float,
    momentum: float,
    seed: int,
) -> Params:
    """Train a copy of ``params``; one progress line per ~10% of the epochs."""
    x_tr, y_tr, x_te, y_te = data
    n_train = int(x_tr.shape[0])
    if not 1 <= batch_size <= n_train:
        raise SystemExit(f"batch size {batch_size} outside [1, {n_train}]")
    if n_train % batch_size:
        print(
            f"  note: batch {batch_size} does not divide {n_train}; "
            f"{n_train % batch_size} examples (reshuffled) are skipped each epoch"
        )
    opt = optax.sgd(lr, momentum=momentum or None)
    opt_state = opt.init(params)
    epoch_fn = make_epoch(opt, batch_size, n_train)
    # Same data-order stream for every batch size (independent of the init key).
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1), epochs)
    every = max(1, epochs // 10)
    t0 = time.perf_counter()
    for e in range(epochs):
        params, opt_state, loss = epoch_fn(params, opt_state, keys[e], x_tr, y_tr)
        if (e + 1) % every == 0 or e + 1 == epochs:
            loss_f = float(loss)
            if not np.isfinite(loss_f):
                raise SystemExit(f"batch {batch_size}: loss diverged at epoch {e + 1}")
            print(
                f"  batch {batch_size:5d}  epoch {e + 1:5d}/{epochs}  "
                f"loss {loss_f:.3e}  train {float(accuracy(params, x_tr, y_tr)):.4f}  "
                f"test {float(accuracy(params, x_te, y_te)):.4f}  "
                f"[{time.perf_counter() - t0:.0f} s]",
                flush=True,
            )
    return params


def flatten(params: Params) -> dict[str, NDArray[np.float32]]:
    return {
        f"{layer}/{name}": np.asarray(arr, dtype=np.float32)
        for layer, leaves in params.items()
        for name, arr in leaves.items()
    }


def load_params(path: Path, like: Params) -> Params:
    """Weights saved by an earlier run, checked against the architecture of ``like``."""
    with np.load(path) as z:
        flat = {k: z[k] for k in z.files}
    want = {k: v.shape for k, v in flatten(like).items()}
    got = {k: v.shape for k, v in flat.items()}
    if got != want:
        raise SystemExit(f"{path}: arrays {got} do not match the model's {want}")
    return {
        layer: {name: jnp.asarray(flat[f"{layer}/{name}"]) for name in leaves}
        for layer, leaves in like.items()
    }


def save_npz(path: Path, arrays: Mapping[str, NDArray[np.float32]]) -> None:
    """``np.savez`` to a temporary file in the same directory, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def layer_stats(kernel: NDArray[np.float32]) -> dict[str, float]:
    """γ, κ̂ (moments) and WeightWatcher's α of the eigenvalues of WᵀW (float64)."""
    w = np.asarray(kernel, dtype=np.float64)
    lam = np.linalg.svd(w, compute_uv=False) ** 2
    gamma = min(w.shape) / max(w.shape)
    fit = hill_ks_alpha(lam)
    return {
        "n": float(lam.size),
        "gamma": gamma,
        "kappa": moment_kappa(lam, gamma),
        "alpha": fit.alpha,
        "alpha_se": fit.alpha_se,
        "n_tail": float(fit.n_tail),
        "lam_max_over_mean": float(lam.max() / lam.mean()),
    }


def analysed_layers(flat: Mapping[str, NDArray[np.float32]]) -> Iterator[str]:
    for key, arr in flat.items():
        if key.endswith("/kernel") and min(arr.shape) >= MIN_EIGENVALUES:
            yield key.removesuffix("/kernel")


def fmt_kappa(k: float) -> str:
    return "∞" if not np.isfinite(k) else f"{k:.3g}"


def stats_table(
    runs: Mapping[str, Mapping[str, NDArray[np.float32]]],
) -> tuple[list[str], list[tuple[str, str, dict[str, float]]]]:
    lines = [
        "| weights | layer | shape | γ | κ̂ (moments) | WW α ± se (n_tail) "
        "| λ_max / mean λ | ‖W − W₀‖_F / ‖W₀‖_F |",
        "|---|---|---|---|---|---|---|---|",
    ]
    init = runs["init"]
    rows = []
    for label, flat in runs.items():
        for layer in analysed_layers(flat):
            kernel = flat[f"{layer}/kernel"]
            s = layer_stats(kernel)
            w0 = init[f"{layer}/kernel"].astype(np.float64)
            s["rel_change"] = float(np.linalg.norm(kernel - w0) / np.linalg.norm(w0))
            rows.append((label, layer, s))
            lines.append(
                f"| {label} | {layer} | {kernel.shape[0]}×{kernel.shape[1]} "
                f"| {s['gamma']:.3g} | {fmt_kappa(s['kappa'])} "
                f"| {s['alpha']:.2f} ± {s['alpha_se']:.2f} ({int(s['n_tail'])}) "
                f"| {s['lam_max_over_mean']:.3g} | {s['rel_change']:.3f} |"
            )
    return lines, rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument(
        "--batch-sizes", type=int, nargs="+", default=list(DEFAULT_BATCH_SIZES)
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="constant SGD rate")
    p.add_argument("--momentum", type=float, default=DEFAULT_MOMENTUM)
    p.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=list(DEFAULT_HIDDEN),
        help="hidden layer widths",
    )
    p.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN)
    p.add_argument(
        "--keep-existing",
        action="store_true",
        help="reuse batch_<B>.npz already in --out instead of retraining it "
        "(for the README; the other settings must match those of the kept files)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    x_tr, y_tr, x_te, y_te = load_data(args.n_train, args.seed)
    data = (jnp.asarray(x_tr), jnp.asarray(y_tr), jnp.asarray(x_te), jnp.asarray(y_te))
    sizes = (x_tr.shape[1], *args.hidden, 10)
    init = init_params(jax.random.key(args.seed), sizes)
    print(
        f"digits: {len(y_tr)} train / {len(y_te)} test; "
        f"MLP {' → '.join(map(str, sizes))}; "
        f"SGD lr {args.lr} momentum {args.momentum}; {args.epochs} epochs"
    )

    runs: dict[str, dict[str, NDArray[np.float32]]] = {"init": flatten(init)}
    results = []
    for b in args.batch_sizes:
        path = out / f"batch_{b}.npz"
        t0 = time.perf_counter()
        if args.keep_existing and path.is_file():
            params = load_params(path, init)
            wall = math.nan  # not trained by this run
        else:
            params = train(
                init,
                data,
                batch_size=b,
                epochs=args.epochs,
                lr=args.lr,
                momentum=args.momentum,
                seed=args.seed,
            )
            wall = time.perf_counter() - t0
            save_npz(path, flatten(params))
        tr = float(accuracy(params, data[0], data[1]))
        te = float(accuracy(params, data[2], data[3]))
        runs[f"batch {b}"] = flatten(params)
        steps = args.epochs * (args.n_train // b)
        results.append((b, steps, tr, te, wall, path))
        how = "kept" if math.isnan(wall) else f"{wall:.0f} s"
        print(f"batch {b}: train {tr:.4f}  test {te:.4f}  ({steps} steps, {how})")

    table, _ = stats_table(runs)
    print("\n".join(table))
    total = time.perf_counter() - t_start
    command = "python scripts/train_batch_size.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    pythonpath = os.environ.get("PYTHONPATH")
    if pythonpath:
        command = f"PYTHONPATH={pythonpath} {command}"
    readme = render_readme(args, sizes, len(y_tr), len(y_te), results, table, command)
    readme = readme.replace("{WALL}", f"{total:.0f}") + kept_notes(out / "README.md")
    write_text(out / "README.md", readme)
    print(f"wrote {out}/README.md; total wall time {total:.0f} s")
    return 0


def kept_notes(path: Path) -> str:
    """The hand-written ``## Notes`` section of an existing README ("" if none)."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    start = text.find(f"\n{NOTES_HEADING}")
    return "" if start < 0 else "\n" + text[start:].lstrip("\n")


def optax_origin() -> str:
    """Where optax was imported from, when not from this Python's site-packages."""
    where = Path(optax.__file__).resolve().parents[1]
    if where.name == "site-packages":
        return ""
    return f" (installed with `pip install --no-deps --target {where}`, on PYTHONPATH)"


def render_readme(
    args: argparse.Namespace,
    sizes: tuple[int, ...],
    n_train: int,
    n_test: int,
    results: list[tuple[int, int, float, float, float, Path]],
    table: list[str],
    command: str,
) -> str:
    runs = "\n".join(
        f"| {b} | {args.lr / b:.3g} | {steps} | {tr:.4f} | {te:.4f} "
        f"| {'kept' if math.isnan(wall) else f'{wall:.0f}'} "
        f"| `{path.name}` "
        f"| {path.stat().st_size:,} |"
        for b, steps, tr, te, wall, path in results
    )
    total_bytes = sum(path.stat().st_size for *_, path in results)
    kept = [path.name for *_, wall, path in results if math.isnan(wall)]
    kept_line = (
        f" `kept`: {', '.join(kept)} came from an earlier run and were reused "
        "(`--keep-existing`), not retrained by this command; their accuracies are "
        "recomputed from the files."
        if kept
        else ""
    )
    return f"""# Digits MLP trained at several batch sizes

Weights of one small network trained here, offline, at several batch sizes and
one learning rate, to test whether eigenvalue repulsion κ falls as the batch size
shrinks (as reported for MiniAlexNet on CIFAR-10: batch 1000 → κ = ∞, 250 → 5.5,
100 → 2.3), and whether the `power_law` model's reading follows the SGD noise
temperature lr/B (`benchmarks/temperature_manipulation.py`).

Produced by (wall time {{WALL}} s on {platform.machine()} CPU, jax {jax.__version__},
optax {optax.__version__}{optax_origin()},
scikit-learn {sklearn.__version__}, numpy {np.__version__})

    {command}

## Setup

- **Data**: `sklearn.datasets.load_digits` (1797 images × 64 pixels, 10 classes,
  bundled with scikit-learn). Stratified split `train_test_split(train_size=
  {args.n_train}, random_state={args.seed})`: {n_train} train / {n_test} test.
  Standardised per pixel with the training mean and std (constant pixels → 0).
- **Model**: MLP {" → ".join(map(str, sizes))}, ReLU, no normalisation or dropout.
  He-normal kernels (std √(2/fan_in)) and zero biases from
  `jax.random.key({args.seed})`; the same initial weights for every batch size.
- **Optimiser**: `optax.sgd(learning_rate={args.lr}, momentum={args.momentum or None})`,
  constant rate, softmax cross-entropy, no weight decay or augmentation.
- **Budget**: the same number of epochs ({args.epochs}) for every batch size, so
  each run sees the same examples and a batch B takes {args.n_train}/B steps per
  epoch (the protocol of the batch-size experiments in the literature; at equal
  steps the large batch would see B_large/B_small times more data). Each epoch
  is a fresh permutation from `fold_in(key({args.seed}), 1)`, identical across
  batch sizes.

## Results

| batch | lr/B | steps | train acc | test acc | train wall s | file | bytes |
|---|---|---|---|---|---|---|---|
{runs}

Total {total_bytes:,} bytes.{kept_line}

Files: `batch_<B>.npz`, keys `dense_<i>/kernel` (in, out) and `dense_<i>/bias`
(out,), float32 (`np.load(path)["dense_1/kernel"]`).

## Spectra

Eigenvalues of WᵀW (`np.linalg.svd(W, compute_uv=False)**2`, float64) of every
kernel with at least {MIN_EIGENVALUES} eigenvalues; γ = min/max of the shape.
κ̂ is the moment estimator 2γ/(m₂/m₁² − 1 − γ)
(`htmp_infer.validation.peers.moment_kappa`; ∞ when the spectrum is no wider than
Marchenko–Pastur); WW α is the power-law exponent of the upper tail as
WeightWatcher 0.7.7 computes it (`htmp_infer.validation.hill.hill_ks_alpha`: Hill
estimator, xmin by minimum KS distance; about 2–4 is heavy-tailed, larger is
random-like, and it is noisy for a few hundred eigenvalues). The last
column is the relative Frobenius distance of the trained kernel from its
initialisation.

{chr(10).join(table)}

License: generated by this project (Apache-2.0); the digits data are the UCI
Optical Recognition of Handwritten Digits test set as shipped by scikit-learn
(CC BY 4.0).
"""


if __name__ == "__main__":
    raise SystemExit(main())
