r"""Spectral features of a fitted density, per posterior draw, for every model.

The phases (:mod:`htmp_infer.inference.phases`) and the scan's readings are
read from four features that every mechanism model has at every aspect ratio
:math:`\gamma \le 1` (``docs/model.md`` §6):

- ``edge_exponent`` :math:`a`: the one-body weight :math:`\lambda^{a-1}` at the
  hard edge. A model that fits it reports it (``hard_edge``, and ``inverse_htmp``
  as :math:`\infty`: its lower edge is soft); otherwise it is the shape's tie
  :func:`tied_edge_exponent`;
- ``alpha_tail`` :math:`\alpha`: the upper-tail density :math:`\lambda^{-\alpha}`,
  reported by the models that have one (``power_law``: :math:`b'+1`;
  ``inverse_htmp``: :math:`1+\delta`), :math:`\infty` for an exponential edge;
- ``kappa``: the bulk's distance from Marchenko–Pastur (``mp`` reports
  :math:`\kappa = N`, the real Gaussian matrix);
- ``n_spikes`` and ``spike_ratio``: the largest eigenvalue over the bulk maximum.

and one reading, ``alpha_top``: the exponent of the power law at the top of the
spectrum, what HT-SR's α (WeightWatcher's Hill fit above ``xmin``) estimates.
When a draw has :math:`k \ge 1` spikes they are that top: their Pareto ratios
above the bulk maximum :math:`m` have index :math:`\nu`, whose exact
conditional posterior is :math:`\mathrm{Gamma}(2+k,\ 1+T_k)`,
:math:`T_k = \sum_s\log(\lambda_s/m)` (Gamma–Pareto conjugacy,
:mod:`htmp_infer.mechanisms.spikes`), and the density of the spikes is
:math:`\lambda^{-(\nu+1)}`: ``alpha_top`` :math:`= \nu + 1` (its posterior mean
:math:`(2+k)/(1+T_k)+1` is a Hill estimate with the bulk maximum as ``xmin``).
Without spikes it is the bulk's own ``alpha_tail``. The phases use the bulk's
``alpha_tail`` (``docs/model.md`` §6).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

__all__ = ["FEATURES", "features", "tied_edge_exponent"]

#: The per-draw features, in the order of :func:`features`' keys.
FEATURES = ("kappa", "edge_exponent", "alpha_tail", "n_spikes", "spike_ratio")
#: Seeds the draws of the spikes' Pareto index (:func:`features`).
_NU_SEED = 0x7A11


def tied_edge_exponent(
    kappa: ArrayLike, n_spikes: ArrayLike, n: int, n_cols: float
) -> NDArray[np.float64]:
    r"""The hard-edge exponent tied to the matrix shape, :math:`\beta(M-N+1)/2`.

    Notes
    -----
    The bulk of :math:`n = N-k` eigenvalues is the gas on an
    :math:`(N-k)\times(M-k)` matrix with :math:`\beta = \kappa/(N-k)`, so
    :math:`a = \beta\,((M-k)-(N-k)+1)/2 = \kappa(M-N+1)/(2(N-k))`. At
    :math:`\gamma = 1` this is :math:`\kappa/(2N)`, about 0.005 for
    :math:`\kappa = 4, N = 384`.
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    bulk = n - np.asarray(n_spikes, dtype=np.float64)
    return np.asarray(kappa * (n_cols - n + 1.0) / (2.0 * bulk))


def features(fit: xr.DataTree) -> dict[str, NDArray[np.float64]]:
    """The features of every posterior draw of one model's fit.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit from :func:`htmp_infer.fit` (groups ``posterior``,
        ``observed_data`` and ``constant_data``).

    Returns
    -------
    dict of str to ndarray
        :data:`FEATURES` and ``alpha_top``, each flattened over chains and
        draws. The Pareto indices are drawn with a fixed seed (and the fit's
        ``seed`` attribute), so the same fit gives the same readings.
    """
    post = fit["posterior"].dataset
    const = fit["constant_data"].dataset
    n, n_cols = int(const["n"]), float(const["n_cols"])
    size = post.sizes["chain"] * post.sizes["draw"]

    def draws(name: str) -> NDArray[np.float64] | None:
        if name not in post:
            return None
        return np.asarray(post[name].values, dtype=np.float64).ravel()

    k = draws("n_spikes")
    k = np.zeros(size) if k is None else k
    kappa = draws("kappa")
    kappa = np.full(size, np.inf) if kappa is None else kappa
    edge = draws("edge_exponent")
    if edge is None:
        edge = tied_edge_exponent(kappa, k, n, n_cols)
    alpha = draws("alpha_tail")
    alpha = np.full(size, np.inf) if alpha is None else alpha
    lam = np.sort(np.asarray(fit["observed_data"].dataset["eigenvalues"].values))
    ki = k.astype(np.int64)
    ratio = lam[-1] / lam[lam.size - 1 - ki]
    return {
        "kappa": kappa,
        "edge_exponent": edge,
        "alpha_tail": alpha,
        "n_spikes": k,
        "spike_ratio": ratio,
        "alpha_top": top_exponent(lam, ki, alpha, int(fit.attrs.get("seed", 0))),
    }


def top_exponent(
    eigenvalues: NDArray[np.float64],
    n_spikes: NDArray[np.int64],
    alpha_tail: NDArray[np.float64],
    seed: int,
) -> NDArray[np.float64]:
    r"""Per draw, the power-law exponent of the top of the spectrum.

    :math:`\nu + 1` with :math:`\nu \sim \mathrm{Gamma}(2+k, 1+T_k)` (the
    spikes' Pareto index, exactly) for draws with :math:`k \ge 1` spikes;
    ``alpha_tail`` (the bulk's) for the others.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64))
    n = lam.size
    top = np.concatenate([[0.0], np.cumsum(np.log(lam[::-1]))])  # sum of top k logs
    k = np.minimum(n_spikes, n - 1)
    t_k = top[k] - k * np.log(lam[n - 1 - k])
    rng = np.random.default_rng([_NU_SEED, seed])
    nu = rng.gamma(2.0 + k) / (1.0 + t_k)
    return np.where(k >= 1, nu + 1.0, alpha_tail)
