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
of the gas (``tests/models/test_data_model.py``).

:math:`D` is tabulated once per matrix shape on a Chebyshev–Lobatto grid in
:math:`(\log\kappa, \log v)`, :math:`v = u/(a_0+\kappa/2)` the edge relative to the
Laguerre mean eigenvalue, at the hard-edge ratios :math:`r = a/\kappa` of the full
bulk and of the bulk with the most spikes; between them (the other spike counts)
it is cubic Hermite in :math:`a`, using :math:`\partial_a D = E_{\rho^*}[\log x]
- \tfrac2\kappa[\ln\Gamma(a+\kappa/2) - \ln\Gamma(a)]` from the same solve (the
envelope theorem). Tables are cached on disk (``$HTMP_INFER_CACHE/data_edge``).
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
    "EdgeTable",
    "edge_correction",
    "edge_free_energy",
    "edge_table",
    "laguerre_phi",
]

#: Support of κ in the ``data`` model (and of the table).
KAPPA_RANGE = (0.01, 100.0)
#: Support of the relative edge v = u/(a₀ + κ/2).
EDGE_RANGE = (1e-5, 10.0)
_NODES = (24, 16)  # Chebyshev–Lobatto nodes in log κ and log v
_VERSION = "htmp-infer-data-edge/1"


class EdgeTable(NamedTuple):
    """Chebyshev coefficients of :math:`D` and :math:`\\partial_a D`.

    Attributes
    ----------
    coef : ndarray, shape (4, 24, 16)
        :math:`D(r_0)`, :math:`\\partial_aD(r_0)`, :math:`D(r_1)`,
        :math:`\\partial_aD(r_1)` in the Chebyshev basis of
        :math:`(\\log\\kappa, \\log v)` mapped to :math:`[-1, 1]^2`.
    ratios : ndarray, shape (2,)
        :math:`r_0 = a/\\kappa` of the full bulk and :math:`r_1` of the smallest.
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


def hard_edge_ratios(n: int, n_cols: float, max_spikes: int) -> NDArray[np.float64]:
    """:math:`r = a/\\kappa = (M-N+1)/(2(N-k))` for k = 0 and k = K."""
    return np.array(
        [(n_cols - n + 1.0) / (2.0 * n), (n_cols - n + 1.0) / (2.0 * (n - max_spikes))]
    )


def _build(ratios: NDArray[np.float64], progress: bool | None) -> NDArray[np.float64]:
    (klo, khi), (vlo, vhi) = _log_bounds()
    nk, nv = _NODES
    xk, xv = _lobatto(nk), _lobatto(nv)
    kappas = np.exp(_from_unit(xk, klo, khi))
    rel = np.exp(_from_unit(xv, vlo, vhi))
    vals = np.empty((4, nk, nv))
    off = None if progress is None else not progress  # None: on a terminal only
    bar = tqdm(total=nk * nv * 2, desc="data-edge table (once per shape)", disable=off)
    for i, kappa in enumerate(kappas):
        u_unit = kappa * (ratios[0] + 0.5)  # a₀ + κ/2
        for m, r in enumerate(ratios):
            for j, v in enumerate(rel):
                vals[2 * m : 2 * m + 2, i, j] = edge_free_energy(
                    kappa, kappa * r, v * u_unit
                )
                bar.update()
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
def _table(r0: float, r1: float, progress: bool | None) -> EdgeTable:
    ratios = np.array([r0, r1])
    path = _cache_file(ratios)
    if path is not None and path.exists():
        with np.load(path) as f:
            return EdgeTable(np.asarray(f["coef"]), ratios)
    coef = _build(ratios, progress)
    if path is not None:
        write_atomic(path, lambda tmp: np.savez(tmp, coef=coef))
    return EdgeTable(coef, ratios)


def edge_table(
    n: int, n_cols: float, max_spikes: int, *, progress: bool | None = None
) -> EdgeTable:
    """The table for an ``n × n_cols`` spectrum with up to ``max_spikes`` spikes.

    Built on first use (768 mean-field solves, about a minute or two, with a
    progress bar on a terminal; ``progress`` forces it on or off) and then read
    from the disk cache.
    """
    r0, r1 = hard_edge_ratios(n, n_cols, max_spikes)
    return _table(float(r0), float(r1), progress)


def _chebyshev_basis(x: Array, n: int) -> Array:
    terms = [jnp.ones_like(x), x]
    for _ in range(2, n):
        terms.append(2.0 * x * terms[-1] - terms[-2])
    return jnp.stack(terms[:n], axis=-1)


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
        :math:`\log\kappa` and :math:`\log v` (scalars, inside the table's box).
    r : array_like
        Ratios :math:`a/\kappa` in :math:`[r_0, r_1]`.

    Returns
    -------
    Array
        :math:`D` for each ``r``; smooth in all arguments (JAX-differentiable).
    """
    (klo, khi), (vlo, vhi) = _log_bounds()
    x = jnp.clip(2.0 * (jnp.asarray(log_kappa) - klo) / (khi - klo) - 1.0, -1.0, 1.0)
    y = jnp.clip(2.0 * (jnp.asarray(log_rel_edge) - vlo) / (vhi - vlo) - 1.0, -1.0, 1.0)
    vals = jnp.einsum(
        "i,qij,j->q",
        _chebyshev_basis(x, _NODES[0]),
        jnp.asarray(coef),
        _chebyshev_basis(y, _NODES[1]),
    )
    ratios = jnp.asarray(ratios)
    dr = ratios[1] - ratios[0]
    safe = jnp.where(dr > 0, dr, 1.0)
    s = jnp.where(dr > 0, (jnp.asarray(r) - ratios[0]) / safe, 0.0)
    slope = jnp.exp(jnp.asarray(log_kappa)) * dr  # da/ds
    h00 = (2 * s - 3) * s * s + 1
    h10 = ((s - 2) * s + 1) * s
    h01 = (3 - 2 * s) * s * s
    h11 = (s - 1) * s * s
    return h00 * vals[0] + h10 * slope * vals[1] + h01 * vals[2] + h11 * slope * vals[3]
