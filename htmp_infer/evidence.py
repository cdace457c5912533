r"""Marginal likelihood (evidence) of a model for one spectrum, by quadrature.

Every mechanism model integrates its scale analytically where it can and sums the
spike count out exactly, which leaves :math:`d \le 3` continuous coordinates. The
evidence is then a low-dimensional integral of a smooth, unimodal integrand,

.. math::

    \log p(\lambda\mid\mathcal M) = \log\int e^{-U(z)}\,dz,

over the unconstrained coordinates :math:`z` (NumPyro's potential :math:`U`,
prior and Jacobians included), computed deterministically:

1. the mode :math:`\hat z` by BFGS from the best points of a screening batch
   (:func:`_mode`), and the Hessian
   :math:`H` there (Laplace);
2. the trapezoidal rule on a tensor grid in whitened coordinates
   :math:`z = \hat z + L u`, :math:`LL^\top = H^{-1}`, spacing :math:`h = 1/2,
   3/4, 1` for :math:`d = 1, 2, 3`,
   each direction's radius the smallest of :math:`8, 16, \dots, 256` at which the
   integrand along that whitened axis is :math:`e^{-25}` below the maximum
   (doubled again if a face of the box is not), so a prior-dominated direction
   gets a long box without enlarging the others. For integrands analytic in a
   strip the trapezoidal rule converges geometrically in :math:`1/h` (for a
   Gaussian the relative error is :math:`\approx 2e^{-2\pi^2/h^2} \approx
   5\times10^{-9}`);
3. the error estimate is the difference to the same rule at spacing :math:`2h`
   (every other node), which bounds the error of the fine rule from above, plus
   ten times the mass on the faces of the box (a bound on the mass outside it
   for integrands decaying over fewer than ten cells); above 0.1 nats it is an
   error, not a result.

For :math:`d > 3`, or when the box would need more than 200 000 coarse nodes
(a posterior far from its Laplace scales), importance sampling from a
multivariate Student-t (5 degrees of freedom) centred at the mode, with the
box's per-axis scales, is used instead, with its Monte Carlo standard error.
Improper scale priors :math:`d\log(\text{scale})` are shared by all models
(:mod:`htmp_infer.mechanisms`), so evidence ratios are well defined.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import log_density
from scipy.optimize import minimize
from scipy.special import logsumexp, ndtr

from htmp_infer._potential import (
    deterministic_sites,
    latent_sites,
    observed_log_likelihood,
    potential,
)
from htmp_infer.errors import HTMPError
from htmp_infer.registry import load_model
from htmp_infer.spectrum import Spectrum

__all__ = [
    "Evidence",
    "GridPosterior",
    "evidence_and_grid",
    "log_evidence",
    "posterior_grid",
]

_SPACING = {1: 0.5, 2: 0.75, 3: 1.0}  # finer where nodes are cheap
_RADIUS = 8.0
_BORDER_DROP = 25.0
_BATCH = 256  # small: a 1-D grid has ~30 nodes, and per-call overhead is ~10 us
_IS_DRAWS = 20000
_PRUNE = 30.0
_MAX_COARSE = 2e5
_UNSTABLE = 10.0  # nats above the optimised mode: numerical failure, not a mode
_MAX_ERROR = 0.1  # nats; a larger quadrature error is an error, not a result


class Evidence(NamedTuple):
    """Log evidence of one model, with its numerical error estimate.

    Attributes
    ----------
    model : str
    log_evidence : float
    error : float
        Estimated absolute error of ``log_evidence`` (nats).
    dim : int
        Number of continuous coordinates integrated numerically.
    method : str
        ``"exact sum"``, ``"trapezoid grid"`` or ``"importance sampling"``.
    evaluations : int
        Number of likelihood evaluations.
    """

    model: str
    log_evidence: float
    error: float
    dim: int
    method: str
    evaluations: int


@functools.lru_cache(maxsize=16)
def _compiled(model: str, static_items: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    """Jitted potential (value+gradient, batch) of a model, per static arguments."""
    module = load_model(model)
    program = functools.partial(module.model, **dict(static_items))

    def exact(data: dict[str, Any]) -> jax.Array:
        return log_density(program, (), data, {})[0]

    def make(data: dict[str, Any]) -> tuple[Any, ...]:
        template = latent_sites(program, data)
        if any(jnp.shape(v) for v in template.values()):
            raise HTMPError(f"model {model!r}: evidence needs scalar latent sites")
        _, unravel = ravel_pytree(template)

        def u_flat(x: jax.Array, data: dict[str, Any]) -> jax.Array:
            return potential(program, unravel(x), data)

        def sites_flat(x: jax.Array, data: dict[str, Any]) -> tuple[Any, Any]:
            z = unravel(x)
            return (
                deterministic_sites(program, z, data),
                observed_log_likelihood(program, z, data),
            )

        return (
            sorted(template),
            jax.jit(jax.value_and_grad(u_flat)),
            jax.jit(jax.vmap(u_flat, in_axes=(0, None))),
            jax.jit(jax.vmap(sites_flat, in_axes=(0, None))),
        )

    return program, jax.jit(exact), make


_MADE: dict[Any, tuple[Any, ...]] = {}


def _potential_fns(
    model: str, spectrum: Spectrum
) -> tuple[list[str], Any, Any, float | None]:
    module = load_model(model)
    static = module.static_kwargs(spectrum)
    data = module.data_kwargs(spectrum)
    key = (model, tuple(sorted(static.items())))
    _, exact, make = _compiled(*key)
    if key not in _MADE:
        if len(_MADE) > 16:
            _MADE.pop(next(iter(_MADE)))
        _MADE[key] = make(data)
    names, value_grad, batch, _ = _MADE[key]
    if not names:
        return [], None, None, float(exact(data))
    return (
        names,
        lambda x: value_grad(x, data),
        lambda xs: batch(xs, data),
        None,
    )


def site_values(
    spectrum: Spectrum, model: str, points: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Latent and deterministic sites, and observed log-likelihoods, at many points.

    Parameters
    ----------
    spectrum : Spectrum
    model : str
    points : ndarray, shape (S, d)
        Values of the latent coordinates (in the order of the grid's ``names``).

    Returns
    -------
    sites : dict of str to ndarray
        Every latent and deterministic site, leading axis ``S``.
    log_likelihood : dict of str to ndarray
        Every observed site's log-likelihood, shape ``(S,)``.
    """
    _potential_fns(model, spectrum)  # builds (or reuses) the compiled functions
    module = load_model(model)
    data = module.data_kwargs(spectrum)
    key = (model, tuple(sorted(module.static_kwargs(spectrum).items())))
    sites_fn = _MADE[key][3]
    outs: list[tuple[Any, Any]] = []
    for i in range(0, len(points), _BATCH):
        chunk = points[i : i + _BATCH]
        sites, loglik = sites_fn(jnp.asarray(_pad(chunk)), data)
        outs.append(
            (
                {k: np.asarray(v)[: len(chunk)] for k, v in sites.items()},
                {k: np.asarray(v)[: len(chunk)] for k, v in loglik.items()},
            )
        )
    return (
        {k: np.concatenate([o[0][k] for o in outs]) for k in outs[0][0]},
        {k: np.concatenate([o[1][k] for o in outs]) for k in outs[0][1]},
    )


def _hessian(value_grad: Callable[[Any], Any], mode: np.ndarray) -> np.ndarray:
    """Central differences of the exact gradient (2d gradient evaluations)."""
    d = mode.size
    h = 1e-4
    cols = []
    for i in range(d):
        e = np.zeros(d)
        e[i] = h
        gp = np.asarray(value_grad(jnp.asarray(mode + e))[1])
        gm = np.asarray(value_grad(jnp.asarray(mode - e))[1])
        cols.append((gp - gm) / (2 * h))
    return np.asarray(np.stack(cols, axis=1), dtype=np.float64)


def _mode(
    value_grad: Callable[[Any], Any],
    batch: Callable[[Any], Any],
    d: int,
    seed: int,
    starts: int,
) -> np.ndarray:
    """The posterior mode: BFGS from the best points of a screening batch.

    One compiled batch evaluates the potential at ``_BATCH`` points (the origin
    and uniform draws on :math:`[-4, 4]^d`, which covers every prior's central
    region in the unconstrained coordinates); BFGS then starts from the best
    ``starts`` of them that lie at least one unit apart.
    """
    rng = np.random.default_rng(seed)
    screen = np.vstack([np.zeros((1, d)), rng.uniform(-4.0, 4.0, (_BATCH - 1, d))])
    logf = _evaluate(batch, screen)
    chosen: list[np.ndarray] = []
    for i in np.argsort(-logf):
        if not np.isfinite(logf[i]) or len(chosen) == starts:
            break
        if all(np.max(np.abs(screen[i] - c)) >= 1.0 for c in chosen):
            chosen.append(screen[i])
    best: tuple[float, np.ndarray] | None = None

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, g = value_grad(jnp.asarray(x))
        v = float(value)
        if not math.isfinite(v):
            return 1e300, np.zeros(d)
        return v, np.asarray(g, dtype=np.float64)

    for x0 in chosen:
        res = minimize(fun, x0, jac=True, method="BFGS", options={"gtol": 1e-6})
        if math.isfinite(res.fun) and (best is None or res.fun < best[0]):
            best = (float(res.fun), np.asarray(res.x))
    if best is None:
        raise HTMPError("evidence: no finite starting point for the mode search")
    return best[1]


def _whitening(value_grad: Callable[[Any], Any], mode: np.ndarray) -> np.ndarray:
    h = _hessian(value_grad, mode)
    h = 0.5 * (h + h.T)
    w, v = np.linalg.eigh(h)
    if not np.all(np.isfinite(w)) or np.min(w) <= 0:
        # Not a strict minimum (flat direction): fall back to a unit-scale box.
        w = np.where(np.isfinite(w) & (w > 0), w, 1.0)
    return np.asarray(v @ np.diag(1.0 / np.sqrt(w)), dtype=np.float64)


def _evaluate(batch: Callable[[Any], Any], z: np.ndarray) -> np.ndarray:
    """log integrand at the rows of ``z`` (in fixed-size compiled batches)."""
    if len(z) == 0:
        return np.empty(0)
    vals = np.concatenate(
        [
            np.asarray(batch(jnp.asarray(_pad(z[i : i + _BATCH]))))[
                : len(z[i : i + _BATCH])
            ]
            for i in range(0, len(z), _BATCH)
        ]
    )
    return np.where(np.isfinite(vals), -vals, -np.inf)


def _cached_evaluate(
    batch: Callable[[Any], Any],
    z: np.ndarray,
    keys: np.ndarray,
    cache: dict[int, float],
) -> tuple[np.ndarray, int]:
    """:func:`_evaluate` reusing nodes already evaluated (same integer key)."""
    vals = np.array([cache.get(k, np.nan) for k in keys.tolist()], dtype=np.float64)
    new = np.isnan(vals)
    if new.any():
        vals[new] = _evaluate(batch, z[new])
        cache.update(zip(keys[new].tolist(), vals[new].tolist(), strict=True))
    return vals, int(new.sum())


def _grid_log_integral(
    batch: Callable[[Any], Any],
    mode: np.ndarray,
    chol: np.ndarray,
    radii: np.ndarray,
    spacing: float,
    peak: float,
    cache: dict[int, float],
) -> tuple[float, float, np.ndarray, int, _Grid]:
    """Trapezoid rule on the whitened box; returns value, error, face drops, count
    and the nonzero nodes with their log integrand.

    The nodes are the integer multiples of ``spacing`` (an even number of them
    on each side of the mode), so a box doubled after a failed border check
    contains the previous nodes, which ``cache`` keeps instead of re-evaluating.
    The rule at spacing ``2 * spacing`` is evaluated first (the even nodes).
    The fine nodes are then evaluated only in the coarse cells next to a coarse
    node within ``_PRUNE`` nats of the maximum; elsewhere the integrand is below
    ``e^{-_PRUNE}`` of its peak (a smooth function cannot hide a peak between
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
    logf_c, evals = _cached_evaluate(batch, z[is_coarse], keys[is_coarse], cache)
    logf[is_coarse] = logf_c
    cshape = tuple(int(m + 1) for m in half)
    sig = (logf_c > np.max(logf_c) - _PRUNE).reshape(cshape)
    # dilate by one coarse node in every direction
    dil = sig.copy()
    for ax in range(d):
        for shift in (1, -1):
            dil |= np.roll(sig, shift, axis=ax) & _no_wrap(sig.shape, ax, shift)
    sig = dil
    need = np.zeros(len(idx), dtype=bool)
    for off in np.ndindex(*(2,) * d):
        cidx = np.minimum((idx + np.asarray(off)) // 2, np.asarray(cshape) - 1)
        need |= sig[tuple(cidx.T)]
    todo = need & ~is_coarse
    logf[todo], more = _cached_evaluate(batch, z[todo], keys[todo], cache)
    evals += more
    if np.max(logf) > peak + _UNSTABLE:
        raise HTMPError(
            "evidence: the likelihood is numerically unstable far from the mode "
            f"(a grid node exceeds the mode by {np.max(logf) - peak:.3g} nats)"
        )
    log_jac = float(np.linalg.slogdet(chol)[1])
    fine = logsumexp(logf) + d * math.log(spacing) + log_jac
    coarse = logsumexp(logf_c) + d * math.log(2 * spacing) + log_jac
    keep = np.isfinite(logf)
    # Sheppard: a node's cell, projected on coordinate j, has variance
    # spacing^2 * sum_i L_ji^2 / 12.
    grid = _Grid(z[keep], logf[keep], spacing * np.sqrt(np.sum(chol**2, axis=1) / 12.0))
    top = float(np.max(logf))
    faces = [(idx[:, k] == 0) | (idx[:, k] == shape[k] - 1) for k in range(d)]
    face = np.logical_or.reduce(faces)
    drops = np.array([top - float(np.max(logf[f])) for f in faces])
    # Mass beyond the box: bounded by the face mass times ~10 cells of decay.
    outside = 10.0 * math.exp(float(logsumexp(logf[face]) - logsumexp(logf)))
    err = abs(float(fine - coarse)) + outside
    return float(fine), err, drops, evals, grid


def _no_wrap(shape: tuple[int, ...], axis: int, shift: int) -> np.ndarray:
    """Mask removing the entries that ``np.roll`` wrapped around."""
    mask = np.ones(shape, dtype=bool)
    sl = [slice(None)] * len(shape)
    sl[axis] = slice(0, 1) if shift > 0 else slice(-1, None)
    mask[tuple(sl)] = False
    return mask


def _axis_radii(
    batch: Callable[[Any], Any], mode: np.ndarray, chol: np.ndarray
) -> np.ndarray:
    """Per-direction box radius from the integrand along each whitened axis.

    Radii 8, 16, ..., 256 are probed on both sides of the mode; each direction gets
    the smallest radius at which the integrand is ``_BORDER_DROP`` nats below the
    mode on both sides. Posteriors with a prior-dominated direction (a likelihood
    plateau, as ``temperature`` has towards its HTMP limit) need a long box in that
    direction only.
    """
    d = mode.size
    steps = _RADIUS * 2.0 ** np.arange(6)
    u = np.concatenate([np.outer(steps, e) for e in np.eye(d)] * 2)
    u[len(u) // 2 :] *= -1
    vals = np.asarray(batch(jnp.asarray(_pad(mode + u @ chol.T))))[: len(u)]
    top = -np.asarray(batch(jnp.asarray(_pad(mode[None, :]))))[0]
    drop = top + np.where(np.isfinite(vals), vals, np.inf)
    drop = drop.reshape(2, d, steps.size).min(axis=0)
    radii = np.empty(d)
    for i in range(d):
        ok = np.nonzero(drop[i] >= _BORDER_DROP)[0]
        radii[i] = steps[ok[0]] if ok.size else steps[-1]
    return radii


def _pad(z: np.ndarray) -> np.ndarray:
    """Pad a batch to the compiled batch size (one compilation for every call)."""
    if len(z) == _BATCH:
        return z
    out = np.repeat(z[:1], _BATCH, axis=0)
    out[: len(z)] = z
    return out


class _Grid(NamedTuple):
    points: np.ndarray
    logf: np.ndarray
    bandwidth: np.ndarray


def log_evidence(
    spectrum: Spectrum, model: str, *, seed: int = 0, starts: int = 1
) -> Evidence:
    """Log marginal likelihood of ``model`` for ``spectrum``.

    Parameters
    ----------
    spectrum : Spectrum
        The observed spectrum.
    model : str
        A name from ``models.REGISTRY``.
    seed : int
        Seed of the mode-search starts (and of importance sampling for d > 3).
    starts : int
        Number of BFGS starts (the best points of a screening batch).

    Returns
    -------
    Evidence
    """
    return evidence_and_grid(spectrum, model, seed=seed, starts=starts)[0]


class GridPosterior(NamedTuple):
    """The quadrature grid of :func:`posterior_grid` as a weighted sample.

    Attributes
    ----------
    names : list of str
        Latent coordinates (e.g. ``log_kappa``), the columns of ``points``.
    points : ndarray, shape (G, d)
        Grid nodes.
    weights : ndarray, shape (G,)
        Normalised posterior weights of the nodes (trapezoid rule).
    bandwidth : ndarray, shape (d,)
        Standard deviation of one grid cell projected on each coordinate.
    evidence : Evidence
    """

    names: list[str]
    points: np.ndarray
    weights: np.ndarray
    bandwidth: np.ndarray
    evidence: Evidence

    def cdf(self, name: str, value: float) -> float:
        """Posterior probability that coordinate ``name`` is at most ``value``.

        Each node's weight is spread over its cell (a normal kernel with the
        cell's projected standard deviation), so the CDF is continuous rather than
        a staircase at the nodes; this adds the cell variance (Sheppard's
        correction, 2–8% of the posterior variance at the grid spacings used) and
        nothing else.
        """
        j = self.names.index(name)
        z = (value - self.points[:, j]) / self.bandwidth[j]
        return float(np.sum(self.weights * ndtr(z)))

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent draws, shape ``(size, d)``, from the smoothed grid posterior.

        A node is picked with its weight and moved by the normal kernel of its
        cell (independently per coordinate), so every marginal of the draws has
        exactly the CDF :meth:`cdf` (the distribution the SBC suites calibrate).
        """
        idx = rng.choice(self.weights.size, size=size, p=self.weights)
        noise = rng.standard_normal((size, self.points.shape[1])) * self.bandwidth
        return np.asarray(self.points[idx] + noise, dtype=np.float64)


def evidence_and_grid(
    spectrum: Spectrum, model: str, *, seed: int = 0, starts: int = 1
) -> tuple[Evidence, GridPosterior | None]:
    """:func:`log_evidence` and, for models with parameters, its grid posterior.

    Returns
    -------
    evidence : Evidence
    grid : GridPosterior or None
        ``None`` for a model without continuous parameters (``mp``).
    """
    names, value_grad, batch, exact = _potential_fns(model, spectrum)
    d = len(names)
    if d == 0:
        assert exact is not None
        return Evidence(model, exact, 0.0, 0, "exact sum", 1), None
    assert value_grad is not None and batch is not None
    mode = _mode(value_grad, batch, d, seed, starts)
    chol = _whitening(value_grad, mode)
    if d <= 3:
        radii = _axis_radii(batch, mode, chol)
        peak = float(_evaluate(batch, mode[None, :])[0])
        total = 0
        cache: dict[int, float] = {}
        for _ in range(3):
            counts = np.floor(radii / _SPACING[d]) + 1  # coarse nodes per axis
            if float(np.prod(counts)) > _MAX_COARSE:
                # A box this large means the Laplace scales are far off (a flat or
                # curved posterior): Student-t importance sampling is robust there.
                ev, grid = _importance(model, batch, mode, chol * radii / _RADIUS, seed)
                return ev, _grid_posterior(names, grid, ev)
            value, err, drops, evals, grid = _grid_log_integral(
                batch, mode, chol, radii, _SPACING[d], peak, cache
            )
            total += evals
            if np.all(drops >= _BORDER_DROP):
                break
            radii = np.where(drops >= _BORDER_DROP, radii, 2.0 * radii)
        if err > _MAX_ERROR:
            raise HTMPError(
                f"evidence of {model!r}: the posterior is not contained in the "
                f"quadrature box (border {drops.min():.1f} nats below the mode, "
                f"error {err:.2g} nats)"
            )
        ev = Evidence(model, value, err, d, "trapezoid grid", total)
    else:
        ev, grid = _importance(model, batch, mode, chol, seed)
    return ev, _grid_posterior(names, grid, ev)


def _grid_posterior(names: list[str], grid: _Grid, ev: Evidence) -> GridPosterior:
    w = np.exp(grid.logf - np.max(grid.logf))
    return GridPosterior(names, grid.points, w / w.sum(), grid.bandwidth, ev)


def posterior_grid(spectrum: Spectrum, model: str, *, seed: int = 0) -> GridPosterior:
    """The posterior on the evidence quadrature grid (models with 1 to 3 coordinates).

    The trapezoid weights are a deterministic, exact-to-quadrature-error
    representation of the posterior: its marginal CDFs give the probability
    integral transform used by the simulation-based calibration benchmark.
    """
    grid = evidence_and_grid(spectrum, model, seed=seed)[1]
    if grid is None:
        raise HTMPError(f"model {model!r}: no continuous parameter")
    return grid


def _importance(
    model: str,
    batch: Callable[[Any], Any],
    mode: np.ndarray,
    chol: np.ndarray,
    seed: int,
) -> tuple[Evidence, _Grid]:
    d = mode.size
    rng = np.random.default_rng(seed)
    df = 5.0
    g = rng.standard_normal((_IS_DRAWS, d))
    chi = rng.chisquare(df, size=(_IS_DRAWS, 1))
    u = g / np.sqrt(chi / df)
    z = mode + u @ chol.T
    logp = _evaluate(batch, z)
    log_q = (
        math.lgamma((df + d) / 2)
        - math.lgamma(df / 2)
        - 0.5 * d * math.log(df * math.pi)
        - 0.5 * (df + d) * np.log1p(np.sum(u**2, axis=1) / df)
        - float(np.linalg.slogdet(chol)[1])
    )
    logw = logp - log_q
    grid = _Grid(z, logw, np.full(d, 1e-300))  # weighted draws: a step CDF
    value = float(logsumexp(logw) - math.log(len(logw)))
    w = np.exp(logw - np.max(logw))
    se = float(np.std(w) / (np.mean(w) * math.sqrt(len(w))))
    return Evidence(model, value, se, d, "importance sampling", len(logw)), grid
