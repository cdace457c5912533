"""Figures of a scan: κ forest, mechanism-weight heatmap, grid of layer ESDs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import arviz_plots as azp
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from htmp_infer.io import write_atomic
from htmp_infer.plotting.esd import esd_panel, fit_arrays

__all__ = ["plot_esd_grid", "plot_kappa_forest", "plot_mechanisms", "write_scan_plots"]


def plot_kappa_forest(tree: xr.DataTree) -> Figure:
    r"""Forest plot (arviz-plots) of :math:`\log_{10}\kappa` for every layer.

    Points are posterior medians with 50% and 94% credible intervals; a vertical
    line at :math:`\log_{10} 20` marks where the limit law is already
    Marchenko–Pastur (the random-like side).
    """
    post = tree["posterior"].dataset
    dt = xr.DataTree.from_dict(
        {"/posterior": xr.Dataset({"log10_kappa": np.log10(post["kappa"])})}
    )
    n_layers = post.sizes["layer"]
    pc = azp.plot_forest(
        dt,
        var_names=["log10_kappa"],
        combined=True,
        backend="matplotlib",
        figure_kwargs={"figsize": (7, 1.0 + 0.22 * n_layers)},
    )
    fig: Figure = pc.viz.ds["figure"].item()
    for ax in fig.axes[-1:]:
        ax.axvline(np.log10(20.0), color="0.5", ls=":", lw=1)
    fig.suptitle(r"$\log_{10}\kappa$ by layer (median, 50% and 94% intervals)")
    return fig


def plot_mechanisms(tree: xr.DataTree) -> Figure:
    """Heatmap of the mechanism weights (posterior model probabilities) by layer."""
    w = tree["comparison"].dataset["weight"].transpose("layer", "model")
    layers = [str(v) for v in w["layer"].values]
    models = [str(v) for v in w["model"].values]
    fig, ax = plt.subplots(
        figsize=(1.6 + 1.1 * len(models), 1.0 + 0.22 * len(layers)),
        constrained_layout=True,
    )
    im = ax.imshow(w.values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_yticks(range(len(layers)), [_short(n) for n in layers], fontsize=7)
    for (i, j), v in np.ndenumerate(w.values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                color="w" if v < 0.5 else "k")  # fmt: skip
    fig.colorbar(im, ax=ax, label="weight")
    ax.set_title("mechanism weights")
    return fig


def plot_esd_grid(
    fits: dict[str, xr.DataTree], *, max_panels: int = 36, bins: int = 40
) -> Figure:
    """ESDs of the layers (log-log) with the fitted density and predictive bands.

    ``fits`` maps layer names to ``htmp`` fits; at most ``max_panels`` layers,
    evenly spaced, are drawn.
    """
    names = list(fits)
    if len(names) > max_panels:
        idx = np.linspace(0, len(names) - 1, max_panels).round().astype(int)
        names = [names[i] for i in idx]
    cols = min(6, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.6 * cols, 2.3 * rows), constrained_layout=True,
        squeeze=False,
    )  # fmt: skip
    for ax, name in zip(axes.flat, names, strict=False):
        # 120 abscissae: enough for a small panel, 0.4x the single-fit plot's
        x, gamma, kappa, reps = fit_arrays(fits[name])
        esd_panel(
            ax, x, gamma, kappa, reps, bins=bins, log=True, legend=False, points=120
        )
        ax.set_title(f"{_short(name)}\nκ≈{np.median(kappa):.3g}", fontsize=7)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("ESD (black), HTMP density 90% (red), posterior predictive 90% (grey)")
    return fig


def _short(name: str, width: int = 34) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def write_scan_plots(
    tree: xr.DataTree, layers: Mapping[str, xr.DataTree], out: Path
) -> None:
    """Write ``forest.png``, ``mechanisms.png`` and ``esd_grid.png`` atomically.

    Parameters
    ----------
    tree : xarray.DataTree
        The scan's combined tree (a ``layer`` dimension).
    layers : mapping of str to xarray.DataTree
        Each layer's own tree, with its ``fit_htmp`` child.
    out : Path
        The output folder.
    """
    fits = {n: cast(xr.DataTree, t["fit_htmp"]) for n, t in layers.items()}
    figures = {
        "forest.png": plot_kappa_forest(tree),
        "mechanisms.png": plot_mechanisms(tree),
        "esd_grid.png": plot_esd_grid(fits),
    }
    for name, fig in figures.items():

        def _save(path: Path, fig: Figure = fig) -> None:
            fig.savefig(path, dpi=110, format="png")

        write_atomic(out / name, _save)
        plt.close(fig)
