r"""Normaliser of the data-structure gas: exact Laguerre part plus a mean-field table.

The ``data`` model's bulk of :math:`n` eigenvalues is the Coulomb gas with
:math:`\beta = \kappa/n` and one-body weight (rate :math:`\vartheta`, data edge
:math:`h'`)

.. math::

    w(\lambda) = \lambda^{a-1} e^{-h'/\lambda} e^{-\vartheta\lambda},

a generalised-inverse-Gaussian gas with no closed-form normaliser. Scaling
:math:`x = \vartheta\lambda` leaves one dimensionless edge :math:`u = h'\vartheta`
and :math:`\log Z_n = -E\log\vartheta + \log\tilde Z_n(\kappa, a, u)`,
:math:`E = na + \beta n(n-1)/2`. We use the **mean-field control variate**

.. math::

    \log\tilde Z_n(\kappa, a, u) \approx \log Z_n^{\rm Selberg}(\kappa, a)
        + n\,D(\kappa, a, u), \qquad
    D = \varphi(\kappa, a, u) - \varphi_{\rm L}(\kappa, a),

where :math:`\varphi` is the high-temperature free energy per particle of the gas
(:func:`htmp_infer.meanfield.free_energy.equilibrium`) and
:math:`\varphi_{\rm L}(\kappa, a) = \int_0^1[\ln\Gamma(a+\kappa t/2)
+ \ln\Gamma(1+\kappa t/2)]\,dt` its closed-form Laguerre value (the :math:`N\to\infty`
limit of :math:`\tfrac1N\log Z_N^{\rm Selberg}`; it matches the solver to 1e-12).
The exact Selberg term carries the :math:`O(1)` finite-:math:`n` remainder of the
Laguerre gas; what is approximated is only how the data edge changes that
remainder. The approximation is exact at :math:`\kappa\to0` (independent
particles) and is validated by simulation-based calibration against MCMC draws
of the gas (``tests/models/test_model_sbc.py``).

:math:`D` does not vanish quickly as the edge goes to 0: at small hard-edge
exponent :math:`a` (square matrices, :math:`a = \kappa/(2N)`) the edge removes
the mass :math:`\approx u^a` of the power-law lower tail, and :math:`D` is still
of order 1 at :math:`v = 10^{-8}` (e.g. :math:`-0.24` per particle at
:math:`\kappa = 1`, :math:`N = M = 384`). So no cut-off below which :math:`D` may
be set to 0 exists. The table spans :math:`v \in [10^{-12}, 10]`, four decades
below the prior's box (``models/data.py``); below it :func:`edge_correction`
continues :math:`D` to 0 with the slope it has there (an extrapolation, needed
only by spectra whose smallest eigenvalue is below :math:`10^{-12}` of the mean).

:math:`D` is tabulated once per matrix shape on a Chebyshev–Lobatto grid in
:math:`(\log\kappa, \log v)`, :math:`v = u/(a_0+\kappa/2)` the edge relative to the
Laguerre mean eigenvalue, at :data:`RATIO_NODES` hard-edge ratios :math:`r = a/\kappa`
spaced evenly in :math:`\log r` from the full bulk (:math:`k = 0`) to the bulk with
the most spikes the prior allows (:math:`k = L`). Between them (every other spike
count, whatever the spike cap in use) it is piecewise cubic Hermite in
:math:`\log a`, using :math:`\partial_a D = E_{\rho^*}[\log x] - \tfrac2\kappa
[\ln\Gamma(a+\kappa/2) - \ln\Gamma(a)]` from the same solve (the envelope theorem).
One table serves every spike cap of a shape, so the cap can be raised
(:mod:`htmp_infer.inference.spike_caps`) without a new table. Tables are cached on
disk (``$HTMP_INFER_CACHE/data_edge``).
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike
from numpy.polynomial import chebyshev
from numpy.typing import NDArray
from scipy import integrate, special
from tqdm.auto import tqdm

from htmp_infer._cache import cache_root
from htmp_infer.io import write_atomic
from htmp_infer.meanfield.free_energy import equilibrium

__all__ = [
    "EDGE_RANGE",
    "KAPPA_RANGE",
    "RATIO_NODES",
    "EdgeTable",
    "edge_correction",
    "edge_free_energy",
    "edge_table",
    "hard_edge_ratios",
    "laguerre_phi",
]

#: Support of κ in the ``data`` model (and of the table).
KAPPA_RANGE = (0.01, 100.0)
#: The table's box of the relative edge v = u/(a₀ + κ/2): the prior's box
#: (``models/data.py``, [1e-8, 10]) and four decades below it.
EDGE_RANGE = (1e-12, 10.0)
#: Hard-edge ratios tabulated per shape (even in log r from k = 0 to k = L).
RATIO_NODES = 4
_NODES = (32, 28)  # Chebyshev–Lobatto nodes in log κ and log v
_VERSION = "htmp-infer-data-edge/2"


class EdgeTable(NamedTuple):
    """Chebyshev coefficients of :math:`D` and :math:`\\partial_a D` per ratio.

    Attributes
    ----------
    coef : ndarray, shape (2 R, 32, 28)
        :math:`D(r_j)` (row :math:`2j`) and :math:`\\partial_aD(r_j)` (row
        :math:`2j+1`), :math:`j < R` = :data:`RATIO_NODES`, in the Chebyshev basis
        of :math:`(\\log\\kappa, \\log v)` mapped to :math:`[-1, 1]^2`.
    ratios : ndarray, shape (R,)
        The ratios :math:`r_j = a/\\kappa`, increasing, :math:`r_0` the full bulk's.
    """

    coef: NDArray[np.float64]
    ratios: NDArray[np.float64]


def laguerre_phi(kappa: float, a: float) -> float:
    r"""Mean-field free energy of the Laguerre gas (rate 1), in closed form.

    Notes
    -----
    :math:`\varphi_{\rm L} = \int_0^1[\ln\Gamma(a+\kappa t/2)+\ln\Gamma(1+\kappa t/2)]
    \,dt`, the limit of :math:`\tfrac1N\log Z_N` of the Selberg product
    :math:`\prod_j\Gamma(a+j\beta/2)\Gamma(1+(j+1)\beta/2)/\Gamma(1+\beta/2)` at
    :math:`\beta = \kappa/N`. Adaptive quadrature (the log singularity of
    :math:`\ln\Gamma` at :math:`a = 0, t = 0` is integrable).
    """

    def f(t: float) -> float:
        return float(
            special.gammaln(a + 0.5 * kappa * t) + special.gammaln(1 + 0.5 * kappa * t)
        )

    value, _ = integrate.quad(f, 0.0, 1.0, limit=400, epsabs=1e-14, epsrel=1e-13)
    return float(value)


def edge_free_energy(kappa: float, a: float, u: float) -> tuple[float, float]:
    r""":math:`D(\kappa, a, u)` and :math:`\partial_a D` from one mean-field solve.

    Parameters
    ----------
    kappa, a, u : float
        Repulsion, hard-edge exponent (:math:`a \ge 0`) and edge :math:`u > 0`
        in units of the rate.
    """
    eq = equilibrium(kappa, a, h=u, s=1.0, warm=True)
    lag_da = 2.0 / kappa * (math.lgamma(a + 0.5 * kappa) - math.lgamma(a))
    return eq.phi - laguerre_phi(kappa, a), float(eq.grad[1]) - lag_da


def _lobatto(n: int) -> NDArray[np.float64]:
    return np.cos(np.pi * np.arange(n) / (n - 1))[::-1].copy()


def _log_bounds() -> tuple[tuple[float, float], tuple[float, float]]:
    return (
        (math.log(KAPPA_RANGE[0]), math.log(KAPPA_RANGE[1])),
        (math.log(EDGE_RANGE[0]), math.log(EDGE_RANGE[1])),
    )


def _from_unit(x: NDArray[np.float64], lo: float, hi: float) -> NDArray[np.float64]:
    return lo + 0.5 * (x + 1.0) * (hi - lo)


def hard_edge_ratios(n: int, n_cols: float, top: int) -> NDArray[np.float64]:
    """The :data:`RATIO_NODES` tabulated ratios :math:`r = a/\\kappa`.

    Even in :math:`\\log r` from :math:`r_0 = (M-N+1)/(2N)` (no spike) to
    :math:`(M-N+1)/(2(N-k))` at :math:`k` = ``top`` spikes (at least 1).
    """
    top = max(int(top), 1)
    lo = math.log((n_cols - n + 1.0) / (2.0 * n))
    hi = math.log((n_cols - n + 1.0) / (2.0 * (n - top)))
    return np.exp(np.linspace(lo, hi, RATIO_NODES))


def _build(ratios: NDArray[np.float64], progress: bool | None) -> NDArray[np.float64]:
    """Solve at every node and return the Chebyshev coefficients.

    Solves go in a snake order (ratios inside log v inside log κ, each sweep
    reversing the last), so that consecutive solves differ in one coordinate and
    the solver's warm start (:func:`~htmp_infer.meanfield.free_energy.equilibrium`)
    applies as often as it can: the ratio nodes after the first cost a warm solve.
    """
    (klo, khi), (vlo, vhi) = _log_bounds()
    nk, nv = _NODES
    nr = ratios.size
    xk, xv = _lobatto(nk), _lobatto(nv)
    kappas = np.exp(_from_unit(xk, klo, khi))
    rel = np.exp(_from_unit(xv, vlo, vhi))
    vals = np.empty((2 * nr, nk, nv))
    off = None if progress is None else not progress  # None: on a terminal only
    bar = tqdm(total=nk * nv * nr, desc="data-edge table (once per shape)", disable=off)
    step = 0
    for i, kappa in enumerate(kappas):
        u_unit = kappa * (ratios[0] + 0.5)  # a₀ + κ/2
        for j in range(nv) if i % 2 == 0 else range(nv - 1, -1, -1):
            for m in range(nr) if step % 2 == 0 else range(nr - 1, -1, -1):
                vals[2 * m : 2 * m + 2, i, j] = edge_free_energy(
                    kappa, kappa * ratios[m], rel[j] * u_unit
                )
                bar.update()
            step += 1
    bar.close()
    inv_k = np.linalg.inv(chebyshev.chebvander(xk, nk - 1))
    inv_v = np.linalg.inv(chebyshev.chebvander(xv, nv - 1))
    return np.einsum("ik,qkl,jl->qij", inv_k, vals, inv_v)


def _cache_file(ratios: NDArray[np.float64]) -> Path | None:
    root = cache_root()
    if root is None:
        return None
    key = f"{_VERSION}{KAPPA_RANGE}{EDGE_RANGE}{_NODES}{ratios.tolist()}"
    return root / "data_edge" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


@functools.lru_cache(maxsize=16)
def _table(ratios: tuple[float, ...], progress: bool | None) -> EdgeTable:
    r = np.array(ratios)
    path = _cache_file(r)
    if path is not None and path.exists():
        with np.load(path) as f:
            return EdgeTable(np.asarray(f["coef"]), r)
    coef = _build(r, progress)
    if path is not None:
        write_atomic(path, lambda tmp: np.savez(tmp, coef=coef))
    return EdgeTable(coef, r)


def edge_table(
    n: int, n_cols: float, max_spikes: int, *, progress: bool | None = None
) -> EdgeTable:
    """The table for an ``n × n_cols`` spectrum with up to ``max_spikes`` spikes.

    The ``data`` model passes the most spikes its prior allows (or a larger cap
    set by hand), so that one table serves every spike cap the adaptive choice
    can reach. Built on first use (32 × 28 × :data:`RATIO_NODES` mean-field
    solves, a few minutes, with a progress bar on a terminal; ``progress`` forces
    it on or off) and then read from the disk cache.
    """
    ratios = hard_edge_ratios(n, n_cols, max_spikes)
    return _table(tuple(float(r) for r in ratios), progress)


def _chebyshev_basis(x: Array, n: int) -> tuple[Array, Array]:
    """:math:`T_j(x)` and :math:`T_j'(x)`, :math:`j < n` (last axis)."""
    terms, slopes = [jnp.ones_like(x), x], [jnp.zeros_like(x), jnp.ones_like(x)]
    for _ in range(2, n):
        slopes.append(2.0 * terms[-1] + 2.0 * x * slopes[-1] - slopes[-2])
        terms.append(2.0 * x * terms[-1] - terms[-2])
    return jnp.stack(terms[:n], axis=-1), jnp.stack(slopes[:n], axis=-1)


def edge_correction(
    coef: ArrayLike,
    ratios: ArrayLike,
    log_kappa: ArrayLike,
    log_rel_edge: ArrayLike,
    r: ArrayLike,
) -> Array:
    r""":math:`D(\kappa, \kappa r, u)` for each hard-edge ratio ``r`` (spike count).

    Parameters
    ----------
    coef, ratios : array_like
        :attr:`EdgeTable.coef` and :attr:`EdgeTable.ratios`.
    log_kappa, log_rel_edge : array_like
        :math:`\log\kappa` and :math:`\log v` (scalars).
    r : array_like
        Ratios :math:`a/\kappa` in :math:`[r_0, r_{R-1}]`.

    Returns
    -------
    Array
        :math:`D` for each ``r``: piecewise cubic Hermite in :math:`\log a` between
        the tabulated ratios, smooth in :math:`(\log\kappa, \log v)`
        (JAX-differentiable).

    Notes
    -----
    Outside the table's box :math:`\kappa` and large :math:`v` are held at the
    box's edge. Below the box's smallest :math:`v` the correction decays to the
    HTMP's 0 as :math:`D = D_0(\ell_0/\ell)^q e^{-b(\ell-\ell_0)}`,
    :math:`\ell = -\log u`, :math:`b = \min(a, g)`, :math:`q = (g-b)\ell_0`,
    :math:`g` the edge's :math:`\partial\log|D|/\partial\log v`: value and
    slope continuous, the removed mass :math:`\propto u^a` of the power-law lower
    tail at large :math:`a\ell`, a slower power of :math:`\ell` at small
    :math:`a` (square matrices). Against fresh solves: within 0.3% of :math:`D`
    down to :math:`v = 10^{-16}` (``benchmarks/data_cost.py --accuracy``).
    """
    (klo, khi), (vlo, vhi) = _log_bounds()
    log_kappa = jnp.clip(jnp.asarray(log_kappa), klo, khi)
    log_v = jnp.asarray(log_rel_edge)
    x = 2.0 * (log_kappa - klo) / (khi - klo) - 1.0
    y = jnp.clip(2.0 * (log_v - vlo) / (vhi - vlo) - 1.0, -1.0, 1.0)
    coef = jnp.asarray(coef)
    tk, _ = _chebyshev_basis(x, coef.shape[1])
    tv, dtv = _chebyshev_basis(y, coef.shape[2])
    rows = jnp.einsum("i,qij,j->q", tk, coef, tv)
    rows_dv = jnp.einsum("i,qij,j->q", tk, coef, dtv) * (2.0 / (vhi - vlo))
    log_r = jnp.log(jnp.asarray(ratios))
    lr = jnp.log(jnp.asarray(r))
    i = jnp.clip(jnp.searchsorted(log_r, lr, side="right") - 1, 0, log_r.shape[0] - 2)
    width = log_r[i + 1] - log_r[i]
    safe = jnp.where(width > 0, width, 1.0)
    s = jnp.where(width > 0, (lr - log_r[i]) / safe, 0.0)
    a_nodes = jnp.exp(log_kappa + log_r)  # dD/dlog a = a ∂_a D

    def hermite(rows: Array) -> Array:
        value, slope = rows[0::2], a_nodes * rows[1::2]
        return (
            ((2 * s - 3) * s * s + 1) * value[i]
            + ((s - 2) * s + 1) * s * width * slope[i]
            + (3 - 2 * s) * s * s * value[i + 1]
            + (s - 1) * s * s * width * slope[i + 1]
        )

    d_edge, d_slope = hermite(rows), hermite(rows_dv)
    # below the box: D = D₀ (ℓ₀/ℓ)^q e^{-b(ℓ-ℓ₀)}, ℓ = -log u, b = min(a, g),
    # q = (g - b) ℓ₀, g = (∂D/∂log v)/D at the edge: slope continuous, → 0
    below = log_v < vlo
    ell0 = -(vlo + log_kappa + jnp.log(jnp.asarray(ratios)[0] + 0.5))
    ok = below & (ell0 > 0) & (d_edge < 0)
    g = jnp.maximum(jnp.where(ok, d_slope / jnp.where(ok, d_edge, -1.0), 0.0), 0.0)
    b = jnp.minimum(jnp.exp(log_kappa) * jnp.asarray(r), g)
    q = (g - b) * jnp.where(ok, ell0, 0.0)
    depth = jnp.where(ok, vlo - log_v, 0.0)  # ℓ - ℓ₀ ≥ 0
    shrink = jnp.where(ok, ell0 / jnp.where(ok, ell0 + depth, 1.0), 1.0)
    return d_edge * jnp.exp(q * jnp.log(shrink) - b * depth)
