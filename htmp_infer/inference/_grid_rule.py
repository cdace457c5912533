"""The trapezoid rule on a whitened box behind :mod:`htmp_infer.inference.evidence`.

The integrand is the unnormalised log posterior, evaluated in compiled batches of
``BATCH`` nodes; nodes are integer multiples of the spacing around the mode, so a
doubled box or a repeated call reuses the cached values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

RADIUS = 8.0


class HigherNode(Exception):
    """A grid node far above the optimised mode: a missed mode, or instability.

    Control flow, not an error: :mod:`htmp_infer.inference.evidence` catches it,
    polishes the mode from ``node`` and integrates again; only a second one
    becomes an :class:`~htmp_infer.errors.HTMPError`.
    """

    def __init__(self, message: str, node: np.ndarray) -> None:
        super().__init__(message)
        self.node = node


BORDER_DROP = 25.0
BATCH = 256  # small: a 1-D grid has ~30 nodes, and per-call overhead is ~10 us
PRUNE = 20.0  # fine nodes: only in cells next to a coarse node above peak - PRUNE
FLOOD = 30.0  # coarse nodes: flood fill above peak - FLOOD (> BORDER_DROP)
UNSTABLE = 10.0  # nats above the optimised mode: numerical failure, not a mode


def evaluate(batch: Callable[[Any], Any], z: np.ndarray) -> np.ndarray:
    """log integrand at the rows of ``z`` (in fixed-size compiled batches)."""
    if len(z) == 0:
        return np.empty(0)
    vals = np.concatenate(
        [
            np.asarray(batch(jnp.asarray(pad(z[i : i + BATCH]))))[
                : len(z[i : i + BATCH])
            ]
            for i in range(0, len(z), BATCH)
        ]
    )
    return np.where(np.isfinite(vals), -vals, -np.inf)


def cached_evaluate(
    batch: Callable[[Any], Any],
    z: np.ndarray,
    keys: np.ndarray,
    cache: dict[int, float],
) -> tuple[np.ndarray, int]:
    """:func:`evaluate` reusing nodes already evaluated (same integer key)."""
    vals = np.array([cache.get(k, np.nan) for k in keys.tolist()], dtype=np.float64)
    new = np.isnan(vals)
    if new.any():
        vals[new] = evaluate(batch, z[new])
        cache.update(zip(keys[new].tolist(), vals[new].tolist(), strict=True))
    return vals, int(new.sum())


def grid_log_integral(
    batch: Callable[[Any], Any],
    mode: np.ndarray,
    chol: np.ndarray,
    radii: np.ndarray,
    spacing: float,
    peak: float,
    cache: dict[int, float],
) -> tuple[float, float, np.ndarray, int, Grid]:
    """Trapezoid rule on the whitened box; returns value, error, face drops, count
    and the nonzero nodes with their log integrand.

    The nodes are the integer multiples of ``spacing`` (an even number of them
    on each side of the mode), so a box doubled after a failed border check
    contains the previous nodes, which ``cache`` keeps instead of re-evaluating.
    The rule at spacing ``2 * spacing`` is evaluated first (the even nodes), by a
    flood fill from the mode (:func:`_flood`): only the coarse nodes within
    ``FLOOD`` nats of the peak and their neighbours are evaluated. The fine nodes
    are then evaluated only in the coarse cells next to a coarse node within
    ``PRUNE`` nats of the maximum. Elsewhere the integrand is below
    ``e^{-PRUNE}`` of its peak (a smooth function cannot hide a peak between
    coarse nodes two whitened units apart), so those nodes are taken as zero.
    """
    d = mode.size
    half = 2 * np.ceil(np.asarray(radii) / (2 * spacing)).astype(int)  # even
    shape = tuple(int(2 * m + 1) for m in half)
    idx = np.indices(shape).reshape(d, -1).T  # 0 .. 2m along each axis
    ints = idx - half  # node = mode + spacing * ints @ chol.T
    keys = np.sum((ints + 4096) * (8192 ** np.arange(d)), axis=1)
    z = mode + (spacing * ints) @ chol.T
    is_coarse = np.all(idx % 2 == 0, axis=1)
    logf = np.full(len(idx), -np.inf)
    cshape = tuple(int(m + 1) for m in half)
    coarse_at = np.flatnonzero(is_coarse)  # C order of the coarse lattice
    logf_c, evals = _flood(
        lambda i: cached_evaluate(batch, z[coarse_at[i]], keys[coarse_at[i]], cache),
        cshape,
        peak,
    )
    logf[is_coarse] = logf_c
    sig = (logf_c > np.max(logf_c) - PRUNE).reshape(cshape)
    need = np.zeros(len(idx), dtype=bool)
    for off in np.ndindex(*(2,) * d):
        cidx = np.minimum((idx + np.asarray(off)) // 2, np.asarray(cshape) - 1)
        need |= sig[tuple(cidx.T)]
    todo = need & ~is_coarse
    logf[todo], more = cached_evaluate(batch, z[todo], keys[todo], cache)
    evals += more
    if np.max(logf) > peak + UNSTABLE:
        raise HigherNode(
            "evidence: the likelihood is numerically unstable far from the mode "
            f"(a grid node exceeds the mode by {np.max(logf) - peak:.3g} nats)",
            z[int(np.argmax(logf))],
        )
    log_jac = float(np.linalg.slogdet(chol)[1])
    fine = logsumexp(logf) + d * math.log(spacing) + log_jac
    coarse = logsumexp(logf_c) + d * math.log(2 * spacing) + log_jac
    keep = np.isfinite(logf)
    # Sheppard: a node's cell, projected on coordinate j, has variance
    # spacing^2 * sum_i L_ji^2 / 12.
    grid = Grid(z[keep], logf[keep], spacing * np.sqrt(np.sum(chol**2, axis=1) / 12.0))
    top = float(np.max(logf))
    faces = [(idx[:, k] == 0) | (idx[:, k] == shape[k] - 1) for k in range(d)]
    face = np.logical_or.reduce(faces)
    drops = np.array([top - float(np.max(logf[f])) for f in faces])
    # Mass beyond the box: bounded by the face mass times ~10 cells of decay.
    outside = 10.0 * math.exp(float(logsumexp(logf[face]) - logsumexp(logf)))
    err = abs(float(fine - coarse)) + outside
    return float(fine), err, drops, evals, grid


def _flood(
    values: Callable[[np.ndarray], tuple[np.ndarray, int]],
    shape: tuple[int, ...],
    peak: float,
) -> tuple[np.ndarray, int]:
    """log integrand on a lattice, evaluated outwards from its centre.

    Wave by wave, the neighbours (along each axis) of every node within
    ``FLOOD`` nats of the peak are evaluated, until no new node is that high.
    Nodes never reached stay ``-inf``: they are cut off from the mode by nodes
    ``FLOOD`` nats below it. That reaches every node above the ``BORDER_DROP``
    level of a connected posterior, and skips the box's empty corners, which a
    curved or tilted posterior stretches the box into. A wave smaller than half
    a compiled batch is topped up with the next layers of the lattice, which
    cost nothing (the batch is padded anyway) and save waves.
    """
    size = math.prod(shape)
    strides = np.array([math.prod(shape[k + 1 :]) for k in range(len(shape))])
    logf = np.full(size, -np.inf)
    seen = np.zeros(size, dtype=bool)
    front = np.array([int(np.sum((np.asarray(shape) // 2) * strides))])
    evals = 0
    top = peak
    while front.size:
        seen[front] = True
        layer = front
        while front.size < BATCH // 2:
            layer = _neighbours(layer, shape, strides)
            layer = layer[~seen[layer]]
            if not layer.size:
                break
            seen[layer] = True
            front = np.concatenate([front, layer])
        vals, n = values(front)
        logf[front], evals = vals, evals + n
        top = max(top, float(np.max(vals)))
        front = _neighbours(front[vals > top - FLOOD], shape, strides)
        front = front[~seen[front]]
    return logf, evals


def _neighbours(
    nodes: np.ndarray, shape: tuple[int, ...], strides: np.ndarray
) -> np.ndarray:
    """Flat indices of the lattice neighbours (one step along an axis) of nodes."""
    pos = np.stack(np.unravel_index(nodes, shape), axis=1)
    out = [np.empty(0, dtype=np.int64)]
    for ax in range(len(shape)):
        for step in (-1, 1):
            moved = pos[:, ax] + step
            ok = (moved >= 0) & (moved < shape[ax])
            out.append(nodes[ok] + step * strides[ax])
    return np.unique(np.concatenate(out))


def axis_radii(
    batch: Callable[[Any], Any], mode: np.ndarray, chol: np.ndarray
) -> np.ndarray:
    """Per-direction box radius from the integrand along each whitened axis.

    Radii 8, 16, ..., 256 are probed on both sides of the mode; each direction gets
    the smallest radius at which the integrand is ``BORDER_DROP`` nats below the
    mode on both sides. Posteriors with a prior-dominated direction (a likelihood
    plateau, as ``power_law`` has towards its HTMP limit) need a long box in that
    direction only.
    """
    d = mode.size
    steps = RADIUS * 2.0 ** np.arange(6)
    u = np.concatenate([np.outer(steps, e) for e in np.eye(d)] * 2)
    u[len(u) // 2 :] *= -1
    vals = np.asarray(batch(jnp.asarray(pad(mode + u @ chol.T))))[: len(u)]
    top = -np.asarray(batch(jnp.asarray(pad(mode[None, :]))))[0]
    drop = top + np.where(np.isfinite(vals), vals, np.inf)
    drop = drop.reshape(2, d, steps.size).min(axis=0)
    radii = np.empty(d)
    for i in range(d):
        ok = np.nonzero(drop[i] >= BORDER_DROP)[0]
        radii[i] = steps[ok[0]] if ok.size else steps[-1]
    return radii


def pad(z: np.ndarray, size: int = BATCH) -> np.ndarray:
    """Pad a batch to the compiled batch size (one compilation for every call)."""
    if len(z) == size:
        return z
    out = np.repeat(z[:1], size, axis=0)
    out[: len(z)] = z
    return out


class Grid(NamedTuple):
    points: np.ndarray
    logf: np.ndarray
    bandwidth: np.ndarray
