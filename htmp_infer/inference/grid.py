r"""Posterior draws from the evidence quadrature grid: exact, independent, no MCMC.

Every mechanism model has at most three continuous coordinates once its scale is
integrated and its spike count summed out (:mod:`htmp_infer.inference.evidence`). The
trapezoid grid that computes the evidence is then already a complete description
of the posterior: node :math:`z_g` carries weight :math:`w_g \propto e^{-U(z_g)}`.
Draws are taken from it directly:

1. pick a node with probability :math:`w_g`;
2. move it by the normal kernel of its cell (standard deviation
   :math:`h\sqrt{\sum_i L_{ji}^2/12}` on coordinate :math:`j`), so every marginal
   has the continuous CDF :meth:`~htmp_infer.inference.evidence.GridPosterior.cdf` that
   the simulation-based calibration suites test (``tests/models/test_model_sbc.py``,
   ``benchmarks/sbc.py``);
3. evaluate the model's deterministic sites (``kappa``, ``spike_logits``) and its
   log-likelihood at the draws in one compiled, vectorised call.

Approximation: the smoothing kernel inflates each posterior variance by the
cell variance (Sheppard's correction, 2–8% at the spacings used); the
quadrature itself is accurate to the evidence's stated error. The draws are
independent, so the effective sample size is the number of draws and there is no
r-hat to check: the attributes record the quadrature error and the effective
number of grid nodes instead.

Compared with NUTS (:func:`htmp_infer.inference.fit.fit`), the grid costs one
evidence evaluation, which :func:`htmp_infer.compare` needs anyway, and
no compilation of a sampler; it is what :func:`htmp_infer.networks.scan.scan` uses by
default.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from htmp_infer.errors import HTMPError
from htmp_infer.inference._programs import site_values
from htmp_infer.inference.evidence import GridPosterior, posterior_grid
from htmp_infer.spectrum import Spectrum

__all__ = ["grid_diagnostics", "grid_draws_tree"]


def grid_draws_tree(
    spectrum: Spectrum,
    model: str,
    *,
    chains: int,
    draws: int,
    rng: np.random.Generator,
    grid: GridPosterior | None = None,
    constant_data: dict[str, np.ndarray],
) -> tuple[xr.DataTree, GridPosterior]:
    """Independent posterior draws from the grid, as a fit's first groups.

    Parameters
    ----------
    spectrum : Spectrum
    model : str
    chains, draws : int
        The draws are independent; they are laid out as ``(chain, draw)`` so
        that the result has the shape of a NUTS fit.
    rng : numpy.random.Generator
    grid : GridPosterior, optional
        A grid already computed (by :func:`htmp_infer.compare`); else
        :func:`~htmp_infer.inference.evidence.posterior_grid` is called.
    constant_data : dict
        The ``constant_data`` group.

    Returns
    -------
    tree : xarray.DataTree
        Groups ``posterior``, ``log_likelihood``, ``observed_data`` and
        ``constant_data``.
    grid : GridPosterior
    """
    if grid is None:
        grid = posterior_grid(spectrum, model)
    spectrum = spectrum.with_max_spikes(grid.evidence.spike_cap)  # the grid's cap
    if not np.all(np.isfinite(grid.weights)) or grid.weights.sum() <= 0:
        raise HTMPError(f"{model}: the posterior grid has no finite weight")
    points = grid.draw(rng, chains * draws)
    sites, loglik = site_values(spectrum, model, points)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}

    def layout(value: np.ndarray, name: str) -> tuple[tuple[str, ...], np.ndarray]:
        value = np.asarray(value).reshape(chains, draws, *np.shape(value)[1:])
        extra = tuple(f"{name}_dim_{i}" for i in range(value.ndim - 2))
        return ("chain", "draw", *extra), value

    post = xr.Dataset({k: layout(v, k) for k, v in sites.items()}, coords=coords)
    ll = xr.Dataset({k: layout(v, k) for k, v in loglik.items()}, coords=coords)
    obs = xr.Dataset(
        {"eigenvalues": (("eig",), np.asarray(spectrum.eigenvalues))},
        coords={"eig": np.arange(spectrum.n)},
    )
    const = xr.Dataset({k: ((), v) for k, v in constant_data.items()})
    tree = xr.DataTree.from_dict(
        {
            "posterior": post,
            "log_likelihood": ll,
            "observed_data": obs,
            "constant_data": const,
        }
    )
    return tree, grid


def grid_diagnostics(grid: GridPosterior, n_draws: int) -> dict[str, float | str]:
    """What replaces the MCMC diagnostics for grid draws (DataTree attributes).

    ``ess_bulk_min`` is the number of draws (they are independent); ``r_hat_max``
    is NaN (there are no chains to compare); ``effective_nodes`` is the Kish
    effective number of grid nodes :math:`1/\\sum w_g^2`, and
    ``quadrature_error`` the evidence's error bound (nats).
    """
    return {
        "method": "grid",
        "r_hat_max": float("nan"),
        "ess_bulk_min": float(n_draws),
        "ess_tail_min": float(n_draws),
        "divergences": 0,
        "effective_nodes": float(1.0 / np.sum(grid.weights**2)),
        "nodes": int(grid.weights.size),
        "quadrature_error": float(grid.evidence.error),
        "warnings": "",
    }
