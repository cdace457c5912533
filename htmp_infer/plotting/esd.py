"""Figures: the empirical spectral density against the fitted model."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from htmp_infer.errors import OutputError
from htmp_infer.limit import htmp_pdf

__all__ = ["esd_panel", "fit_arrays", "plot_esd"]


def _density_band(
    grid: np.ndarray, gamma: float, kappa: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Pointwise 90% band and median of :math:`\rho_{\gamma,\kappa}(x)` over κ draws.

    At each x the density is a smooth function of κ, and over a posterior's
    range it is monotone except near the x where the curves cross. Quantiles
    commute with monotone maps, so the band is the pointwise lower and upper
    envelope of the densities at the 5%, 50% and 95% quantiles of κ, and the
    middle curve the density at the median: three solves of the limit law
    instead of one per draw.
    """
    curves = np.stack(
        [htmp_pdf(grid, gamma, float(k)) for k in np.quantile(kappa, [0.05, 0.5, 0.95])]
    )
    return curves.min(axis=0), curves[1], curves.max(axis=0)


def _hist_band(
    edges: np.ndarray, replicates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # density over all N values of each replicate (some may fall outside the edges)
    widths = np.diff(edges)
    dens = np.stack(
        [np.histogram(r, bins=edges)[0] / (r.size * widths) for r in replicates]
    )
    lo, hi = np.quantile(dens, [0.05, 0.95], axis=0)
    return lo, hi


def plot_esd(
    dt: xr.DataTree,
    *,
    path: str | Path | None = None,
    bins: int = 60,
) -> Figure:
    r"""Plot the ESD with the posterior density band and posterior predictive band.

    Eigenvalues are shown as :math:`x = \lambda/\bar\lambda` (mean one), the units of
    the HTMP limit law :math:`\rho_{\gamma,\kappa}`. Left: linear axes; right:
    log-log axes with logarithmic bins (heavy tails). The red band is the 90%
    posterior band of :math:`\rho_{\gamma,\kappa}` (its curves at the 5% and
    95% quantiles of :math:`\kappa`) around the curve at the median; the grey
    band is the 90% band of the histograms of the exact finite-N replicates in
    ``posterior_predictive`` (when present).

    Parameters
    ----------
    dt : xarray.DataTree
        A fit from :func:`htmp_infer.fit`.
    path : str or Path, optional
        Save the figure there, atomically, in the format its suffix names (PNG
        without one); the path is checked before anything is drawn
        (:func:`htmp_infer.io.check_output_file`).
    bins : int
        Histogram bins.
    """
    fmt = None
    if path is not None:
        from htmp_infer.io import check_output_file

        fmt = Path(path).suffix.lstrip(".").lower() or "png"
        if fmt not in FigureCanvasBase.get_supported_filetypes():
            raise OutputError(f"path {path}: matplotlib cannot write .{fmt} files")
        check_output_file(path, what="path")
    x, gamma, kappa, reps = fit_arrays(dt)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    esd_panel(axes[0], x, gamma, kappa, reps, bins=bins, log=False)
    esd_panel(axes[1], x, gamma, kappa, reps, bins=bins, log=True, legend=False)
    k_med = float(np.median(kappa))
    axes[0].set_title(
        f"{dt.attrs.get('spectrum', '')}: γ={gamma:.4g}, κ median {k_med:.3g}"
    )
    axes[1].set_title("log-log")
    if path is not None:
        from htmp_infer.io import write_atomic

        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format=fmt))
    return fig


def fit_arrays(
    dt: xr.DataTree,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray | None]:
    """From a fit: x = λ/mean, γ, κ draws, replicates/mean (or None)."""
    obs = np.asarray(dt["observed_data"].dataset["eigenvalues"])
    x = obs / obs.mean()
    gamma = float(dt["constant_data"].dataset["gamma"])
    kappa = np.asarray(dt["posterior"].dataset["kappa"]).ravel()
    reps = None
    if "posterior_predictive" in dt.children:
        r = np.asarray(dt["posterior_predictive"].dataset["eigenvalues"])
        r = r.reshape(-1, r.shape[-1])
        reps = r / r.mean(axis=1, keepdims=True)
    return x, gamma, kappa, reps


def esd_panel(
    ax: Axes,
    x: np.ndarray,
    gamma: float,
    kappa: np.ndarray | None,
    reps: np.ndarray | None,
    *,
    bins: int = 60,
    log: bool = True,
    legend: bool = True,
    points: int = 300,
) -> None:
    """One ESD panel: histogram, HTMP density band, posterior-predictive band.

    ``kappa`` holds the posterior draws of κ of an ``htmp`` fit (None: no
    density band, for the fits of other models); ``points`` is the number of
    abscissae of the density band.
    """
    if log:
        pos = x[x > 0]
        edges = np.geomspace(pos.min() * 0.9, pos.max() * 1.1, bins + 1)
        centers = np.sqrt(edges[1:] * edges[:-1])
        grid = np.geomspace(edges[0], edges[-1], points)
    else:
        edges = np.linspace(0.0, np.quantile(x, 0.995) * 1.05, bins + 1)
        centers = (edges[1:] + edges[:-1]) / 2
        grid = np.linspace(max(edges[0], 1e-6 * edges[-1]), edges[-1], points)
    if reps is not None:
        lo, hi = _hist_band(edges, reps)
        ax.fill_between(
            centers,
            lo,
            hi,
            step="mid",
            color="0.6",
            alpha=0.5,
            label="posterior predictive 90%",
        )
    ax.hist(
        x,
        bins=list(edges),
        density=True,
        histtype="step",
        color="k",
        lw=1.2,
        label=f"ESD (N={x.size})",
    )
    if kappa is not None:
        lo, mid, hi = _density_band(grid, gamma, kappa)
        ax.fill_between(
            grid,
            lo,
            hi,
            color="tab:red",
            alpha=0.3,
            label=r"HTMP $\rho_{\gamma,\kappa}$ 90% band",
        )
        ax.plot(grid, mid, color="tab:red", lw=1.2)
    ax.set_xlabel(r"$x = \lambda / \bar\lambda$")
    ax.set_ylabel("density")
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        floor = 0.5 / (x.size * np.diff(edges).max())
        # The density band of a tiny κ diverges at 0 (x^{δ-1}); cap the axis a
        # decade and a half above the histogram so the ESD stays readable and the
        # log axis does not span hundreds of decades (and of tick labels).
        top = 30.0 * float(np.histogram(x, bins=edges, density=True)[0].max())
        ax.set_ylim(bottom=max(floor, 1e-6), top=max(top, 10 * floor))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
    if legend:
        ax.legend(fontsize=8)
