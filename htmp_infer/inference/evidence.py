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
   gets a long box without enlarging the others. Inside the box the nodes at
   spacing :math:`2h` are evaluated by a flood fill from the mode (those within
   30 nats of the peak and their neighbours), and the nodes at spacing :math:`h`
   only in cells next to a :math:`2h` node within 20 nats of the peak; the rest
   are below :math:`e^{-20}` of the peak and count as zero. For integrands
   analytic in a strip the trapezoidal rule converges geometrically in
   :math:`1/h` (for a Gaussian the relative error is
   :math:`\approx 2e^{-2\pi^2/h^2} \approx 5\times10^{-9}`);
3. the error estimate is the difference to the same rule at spacing :math:`2h`
   (every other node), which bounds the error of the fine rule from above, plus
   ten times the mass on the faces of the box (a bound on the mass outside it
   for integrands decaying over fewer than ten cells). Above 0.1 nats the
   spacing is halved once; if the error is still above 0.1 nats, importance
   sampling (below) is tried too and the finite result with the smaller error
   kept, with an :class:`~htmp_infer.errors.EvidenceWarning` when that error
   exceeds 0.1 nats. A grid node far above the optimised mode restarts BFGS
   from it, once; a non-finite evidence is an :class:`HTMPError`.

For :math:`d > 3`, or when the box would need more than 200 000 coarse nodes
(a posterior far from its Laplace scales), importance sampling from a
multivariate Student-t (5 degrees of freedom) centred at the mode, with the
box's per-axis scales, is used instead, with its Monte Carlo standard error.
Improper scale priors :math:`d\log(\text{scale})` are shared by all models
(:mod:`htmp_infer.mechanisms.bulk`), so evidence ratios are well defined.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp, ndtr

from htmp_infer.errors import (
    ArgumentError,
    CensoredSpikesWarning,
    EvidenceWarning,
    HTMPError,
)
from htmp_infer.inference._grid_rule import (
    BORDER_DROP,
    RADIUS,
    Grid,
    HigherNode,
    axis_radii,
    evaluate,
    grid_log_integral,
)
from htmp_infer.inference._programs import ExactSum, _mode, _polish, _potential_fns
from htmp_infer.inference.registry import load_model
from htmp_infer.inference.spike_caps import (
    PROFILE_DRAWS,
    choose_cap,
    is_adaptive,
    spike_cap,
    spike_profile,
)
from htmp_infer.mechanisms.protocol import ExactModel
from htmp_infer.mechanisms.spikes import CAP_MASS, adapt_cap, cap_mass, spike_limit
from htmp_infer.spectrum import Spectrum

__all__ = [
    "Evidence",
    "GridPosterior",
    "evidence_and_grid",
    "log_evidence",
    "posterior_grid",
    "spike_cap",
    "spike_profile",
]

_SPACING = {1: 0.5, 2: 0.75, 3: 1.0}  # finer where nodes are cheap
_IS_DRAWS = 20000
_MIN_IS_ESS = 10.0  # importance samples with fewer effective draws have no error
_MAX_COARSE = 2e5
_MAX_ERROR = 0.1  # nats; a larger quadrature error is reported by EvidenceWarning


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
    spike_cap : int
        The largest spike count :math:`K` summed (:mod:`htmp_infer.mechanisms.spikes`).
    cap_mass : float
        Below the prior's limit :math:`L`: the posterior probability of more than
        :math:`K` spikes, the mass the cap drops. At the limit (or for a model
        with a fixed cap): the probability of exactly :math:`K`; when large, the
        spike count is censored there.
    """

    model: str
    log_evidence: float
    error: float
    dim: int
    method: str
    evaluations: int
    spike_cap: int = 0
    cap_mass: float = math.nan


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


def _whitening(value_grad: Callable[[Any], Any], mode: np.ndarray) -> np.ndarray:
    h = _hessian(value_grad, mode)
    # a mode against a hard prior edge has an infinite difference quotient there:
    # that direction falls back to the unit scale below
    h = np.where(np.isfinite(h), 0.5 * (h + h.T), 0.0)
    w, v = np.linalg.eigh(h)
    if not np.all(np.isfinite(w)) or np.min(w) <= 0:
        # Not a strict minimum (flat direction): fall back to a unit-scale box.
        w = np.where(np.isfinite(w) & (w > 0), w, 1.0)
    return np.asarray(v @ np.diag(1.0 / np.sqrt(w)), dtype=np.float64)


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
        Its ``spike_cap`` is the cap the grid was computed with: a fit from this
        grid uses ``spectrum.with_max_spikes(evidence.spike_cap)``.
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

    The spike cap :math:`K` (:mod:`htmp_infer.mechanisms.spikes`) is chosen first
    (:func:`spike_cap`); after the grid, the posterior mass above it is measured
    on 32 grid draws and the cap raised and the grid rebuilt while it exceeds
    :data:`~htmp_infer.mechanisms.spikes.CAP_MASS`
    (:func:`~htmp_infer.mechanisms.spikes.adapt_cap`). A cap that binds at the
    prior's limit gets a :class:`~htmp_infer.errors.CensoredSpikesWarning`.

    Returns
    -------
    evidence : Evidence
    grid : GridPosterior or None
        ``None`` for a model without continuous parameters (``mp``).
    """
    first, mode = choose_cap(spectrum, model, seed, starts)
    limit = spike_limit(spectrum.n) if is_adaptive(model) else first
    ev, grid = Evidence(model, math.nan, math.nan, 0, "", 0), None

    def at(cap: int) -> np.ndarray | None:
        nonlocal ev, grid
        capped = spectrum.with_max_spikes(cap)
        ev, grid = _evidence_at_cap(
            capped, model, seed, starts, mode if cap == first else None
        )
        if grid is None:  # mp: the exact sum, to the limit
            return None
        profile = spike_profile(capped, model, grid.draw(_rng(seed), PROFILE_DRAWS))
        # below the limit: the mass the cap drops; at it: the mass on the limit
        mass = profile[cap] if cap >= limit else profile[cap + 1 :].sum()
        ev = ev._replace(cap_mass=float(mass))
        grid = grid._replace(evidence=ev)
        return profile

    cap = adapt_cap(at, first, spectrum.n, limit)
    if ev.spike_cap >= limit and ev.cap_mass > CAP_MASS:
        warnings.warn(
            CensoredSpikesWarning(
                f"{model!r}: the posterior puts {ev.cap_mass:.0%} on {cap} spikes, "
                f"the most its spike prior allows: the spike count is censored there"
            ),
            stacklevel=2,
        )
    return ev, grid


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0x5B1CE])


def _evidence_at_cap(
    spectrum: Spectrum,
    model: str,
    seed: int,
    starts: int,
    mode: np.ndarray | None = None,
) -> tuple[Evidence, GridPosterior | None]:
    """The evidence and grid at the spike cap ``spectrum.max_spikes``.

    ``mode``: the posterior mode at this cap, when :func:`spike_cap` found it.
    """
    cap = int(spectrum.max_spikes or 0)
    fns = _potential_fns(model, spectrum)
    if isinstance(fns, ExactSum):
        mass = cap_mass(cast(ExactModel, load_model(model)).exact_logits(spectrum))
        ev = Evidence(model, fns.log_evidence, 0.0, 0, "exact sum", 1, cap, mass)
        return ev, None
    names, value_grad, batch = fns
    d = len(names)
    if mode is None:
        mode = _mode(value_grad, batch, d, seed, starts)
    if d > 3:  # no model has d > 3 today
        ev, grid = _importance(model, batch, mode, _whitening(value_grad, mode), seed)
    else:
        try:
            ev, grid = _grid_evidence(model, value_grad, batch, mode, seed)
        except HigherNode as e:
            # the mode search stopped short (e.g. against a prior's hard edge):
            # polish from the best node the grid found and integrate again, once
            mode = _polish(value_grad, [e.node])
            try:
                ev, grid = _grid_evidence(model, value_grad, batch, mode, seed)
            except HigherNode as again:
                raise HTMPError(f"{model!r}: {again}") from None
    if not _finite(ev):
        raise HTMPError(
            f"evidence of {model!r}: no finite value ({ev.method}); the posterior "
            "lies where the likelihood cannot be evaluated (far in a prior tail?)"
        )
    if ev.error > _MAX_ERROR:
        warnings.warn(
            EvidenceWarning(
                f"evidence of {model!r}: quadrature error {ev.error:.2g} nats "
                f"(> {_MAX_ERROR}; {ev.method}): the posterior is not resolved, "
                f"read its weight and draws with that error in mind"
            ),
            stacklevel=3,
        )
    ev = ev._replace(spike_cap=cap)
    return ev, _grid_posterior(names, grid, ev)


def _finite(ev: Evidence) -> bool:
    return math.isfinite(ev.log_evidence) and math.isfinite(ev.error)


def _grid_evidence(
    model: str,
    value_grad: Callable[[Any], Any],
    batch: Callable[[Any], Any],
    mode: np.ndarray,
    seed: int,
) -> tuple[Evidence, Grid]:
    """The whitened trapezoid grid around ``mode`` (d <= 3), refined as needed.

    The box grows until its border is ``BORDER_DROP`` nats below the peak; a
    contained posterior whose 2h rule still disagrees by more than ``_MAX_ERROR``
    (a skewed, cliff-edged posterior) gets the spacing halved once. If the error
    is still larger, Student-t importance sampling over the same box is tried,
    and the finite result with the smaller error is returned.
    """
    d = mode.size
    chol = _whitening(value_grad, mode)
    radii = axis_radii(batch, mode, chol)
    peak = float(evaluate(batch, mode[None, :])[0])
    total = 0
    spacing = _SPACING[d]
    cache: dict[int, float] = {}
    for _ in range(4):
        counts = np.floor(radii / spacing) + 1  # coarse nodes per axis
        if float(np.prod(counts)) > _MAX_COARSE:
            # A box this large means the Laplace scales are far off (a flat or
            # curved posterior): Student-t importance sampling is robust there.
            return _importance(model, batch, mode, chol * radii / RADIUS, seed)
        value, err, drops, evals, grid = grid_log_integral(
            batch, mode, chol, radii, spacing, peak, cache
        )
        total += evals
        if not np.all(drops >= BORDER_DROP):
            radii = np.where(drops >= BORDER_DROP, radii, 2.0 * radii)
        elif err > _MAX_ERROR and spacing == _SPACING[d]:
            spacing, cache = spacing / 2.0, {}
        else:
            break
    ev = Evidence(model, value, err, d, "trapezoid grid", total)
    if err <= _MAX_ERROR:
        return ev, grid
    alt = _importance(model, batch, mode, chol * radii / RADIUS, seed)
    if _finite(alt[0]) and not (_finite(ev) and ev.error <= alt[0].error):
        return alt
    return ev, grid


def _grid_posterior(names: list[str], grid: Grid, ev: Evidence) -> GridPosterior:
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
        raise ArgumentError(f"model {model!r}: no continuous parameter")
    return grid


def _importance(
    model: str,
    batch: Callable[[Any], Any],
    mode: np.ndarray,
    chol: np.ndarray,
    seed: int,
) -> tuple[Evidence, Grid]:
    d = mode.size
    rng = np.random.default_rng(seed)
    df = 5.0
    g = rng.standard_normal((_IS_DRAWS, d))
    chi = rng.chisquare(df, size=(_IS_DRAWS, 1))
    u = g / np.sqrt(chi / df)
    z = mode + u @ chol.T
    logp = evaluate(batch, z)
    log_q = (
        math.lgamma((df + d) / 2)
        - math.lgamma(df / 2)
        - 0.5 * d * math.log(df * math.pi)
        - 0.5 * (df + d) * np.log1p(np.sum(u**2, axis=1) / df)
        - float(np.linalg.slogdet(chol)[1])
    )
    logw = logp - log_q
    grid = Grid(z, logw, np.full(d, 1e-300))  # weighted draws: a step CDF
    value = float(logsumexp(logw) - math.log(len(logw)))
    w = np.exp(logw - np.max(logw))
    ess = float(np.sum(w) ** 2 / np.sum(w**2))
    method = "importance sampling"
    if ess < _MIN_IS_ESS:
        # a few draws carry all the weight: the proposal missed the posterior,
        # and the spread of the weights says nothing about the error
        se, method = math.inf, f"importance sampling, degenerate (ESS {ess:.1f})"
    else:
        se = float(np.std(w) / (np.mean(w) * math.sqrt(len(w))))
    return Evidence(model, value, se, d, method, len(logw)), grid
