"""Figures of a scan: κ forest, mechanism-weight heatmap, grid of layer ESDs.

The forest (:mod:`htmp_infer.plotting.forest`) and the ESD grid are drawn over
pages of at most :data:`~htmp_infer.plotting.pages.FOREST_ROWS` and
:data:`~htmp_infer.plotting.pages.ESD_PANELS` layers (``forest.png``,
``forest_2.png``, …; ``esd_grid.png``, ``esd_grid_2.png``, …), each titled with
the layers it holds; layer names are written in full.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import cast

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from htmp_infer.io import write_atomic
from htmp_infer.plotting.esd import esd_panel, fit_arrays
from htmp_infer.plotting.forest import (
    forest_figures,
    forest_table,
    plot_kappa_forest,
    text_width,
)
from htmp_infer.plotting.pages import (
    ESD_COLUMNS,
    ESD_PANELS,
    grid_pages,
    page_file,
    page_title,
    remove_stale_pages,
)

__all__ = [
    "esd_grid_figures",
    "forest_figures",
    "layer_fit",
    "plot_esd_grid",
    "plot_kappa_forest",
    "plot_mechanisms",
    "wrap_name",
    "write_scan_plots",
]


def plot_mechanisms(tree: xr.DataTree) -> Figure:
    """Heatmap of the mechanism weights (posterior model probabilities) by layer.

    Layer names are written in full; the figure is as wide as they need.
    """
    w = tree["comparison"].dataset["weight"].transpose("layer", "model")
    layers = [str(v) for v in w["layer"].values]
    models = [str(v) for v in w["model"].values]
    fig, ax = plt.subplots(
        figsize=(
            1.9 + text_width(layers) + 1.1 * len(models),
            1.3 + 0.22 * len(layers),
        ),
        layout="constrained",
    )
    im = ax.imshow(w.values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_yticks(range(len(layers)), layers, fontsize=7, parse_math=False)
    for (i, j), v in np.ndenumerate(w.values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                color="w" if v < 0.5 else "k")  # fmt: skip
    fig.colorbar(im, ax=ax, label="weight")
    ax.set_title("mechanism weights")
    return fig


def plot_esd_grid(
    fits: Mapping[str, xr.DataTree],
    *,
    max_panels: int = ESD_PANELS,
    page: int = 1,
    bins: int = 40,
) -> Figure:
    """One page of the grid of layer ESDs (log-log), fitted density, predictive band.

    Parameters
    ----------
    fits : mapping of str to xarray.DataTree
        Layer names to their fits (the one each layer's readings come from:
        :func:`layer_fit`), in the order they are drawn. The red band of the
        HTMP density is drawn for ``htmp`` fits only; every panel shows its
        fit's posterior predictive band.
    max_panels : int
        Most layers on a page; the layers are cut into the fewest pages of whole
        rows (:func:`~htmp_infer.plotting.pages.grid_pages`), and the title
        names the page's layers ("layers 37–72 of 101").
    page : int
        Which page (1-based).
    bins : int
        Histogram bins of each panel.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``fits`` is empty or ``page`` does not exist.
    """
    spans = grid_pages(len(fits), max_panels, ESD_COLUMNS)
    if not 1 <= page <= len(spans):
        raise ValueError(f"page {page} does not exist: {len(spans)} page(s)")
    return _esd_page(fits, *spans[page - 1], page, len(spans), max_panels, bins)


def esd_grid_figures(
    fits: Mapping[str, xr.DataTree],
    *,
    max_panels: int = ESD_PANELS,
    bins: int = 40,
    not_shown: Sequence[str] = (),
) -> Iterator[Figure]:
    """Every page of the ESD grid (:func:`plot_esd_grid`), in order, each drawn
    when asked for (close one before drawing the next). Layers named in
    ``not_shown`` (no fit to draw) are named under every page's title."""
    spans = grid_pages(len(fits), max_panels, ESD_COLUMNS)
    for p, (a, b) in enumerate(spans, 1):
        yield _esd_page(fits, a, b, p, len(spans), max_panels, bins, not_shown)


def layer_fit(tree: xr.DataTree) -> xr.DataTree | None:
    """The fit a layer's readings come from: ``fit_<reading_model>`` (the
    tree's ``reading_model`` attribute), else ``fit_htmp``, else its first
    ``fit_<model>`` child; None when it has none."""
    fits = [str(k) for k in tree.children if str(k).startswith("fit_")]
    for name in (f"fit_{tree.attrs.get('reading_model')}", "fit_htmp", *fits):
        if name in tree.children:
            return cast(xr.DataTree, tree[name])
    return None


def _esd_page(
    fits: Mapping[str, xr.DataTree],
    start: int,
    stop: int,
    page: int,
    pages: int,
    max_panels: int,
    bins: int,
    not_shown: Sequence[str] = (),
) -> Figure:
    names = list(fits)[start:stop]
    # every page as wide as a full one, so they line up
    cols = min(ESD_COLUMNS, max_panels, len(fits))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.6 * cols, 2.45 * rows + 0.5), layout="constrained",
        squeeze=False,
    )  # fmt: skip
    for ax, name in zip(axes.flat, names, strict=False):
        # 120 abscissae: enough for a small panel, 0.4x the single-fit plot's
        fit = fits[name]
        model = str(fit.attrs.get("model", "htmp"))
        x, gamma, kappa, reps = _panel_arrays(fit)
        density = kappa if model == "htmp" else None  # ρ_{γ,κ} is htmp's law
        esd_panel(
            ax, x, gamma, density, reps, bins=bins, log=True, legend=False, points=120
        )
        reading = model if kappa is None else f"{model}: κ≈{np.median(kappa):.3g}"
        ax.set_title(f"{wrap_name(name)}\n{reading}", fontsize=7, parse_math=False)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(names) :]:
        fig.delaxes(ax)
    parts = [
        "ESD (black),",
        "posterior predictive 90% of the reading model (grey),",
        "HTMP density 90% where that model is htmp (red):",
        page_title(start, stop, len(fits), page, pages),
    ]
    if not_shown:
        some = ", ".join(not_shown[:3]) + (", …" if len(not_shown) > 3 else "")
        parts.append(f"({len(not_shown)} layer(s) without a fit not shown: {some})")
    title = _lines(parts, fig.get_figwidth() - 0.3, size=10)
    fig.suptitle(title, fontsize=10, parse_math=False)
    return fig


def _lines(parts: Sequence[str], width: float, size: float) -> str:
    """``parts`` joined by spaces, over lines no wider than ``width`` inches
    (a part wider than that has a line of its own)."""
    lines: list[str] = []
    for part in parts:
        joined = f"{lines[-1]} {part}" if lines else part
        if lines and text_width([joined], size) <= width:
            lines[-1] = joined
        else:
            lines.append(part)
    return "\n".join(lines)


def _panel_arrays(
    fit: xr.DataTree,
) -> tuple[np.ndarray, float, np.ndarray | None, np.ndarray | None]:
    """:func:`~htmp_infer.plotting.esd.fit_arrays` of any model's fit: κ draws
    or None for a model without κ."""
    if "kappa" in fit["posterior"].dataset:
        return fit_arrays(fit)
    obs = np.asarray(fit["observed_data"].dataset["eigenvalues"])
    gamma = float(fit["constant_data"].dataset["gamma"])
    reps = None
    if "posterior_predictive" in fit.children:
        r = np.asarray(fit["posterior_predictive"].dataset["eigenvalues"])
        r = r.reshape(-1, r.shape[-1])
        reps = r / r.mean(axis=1, keepdims=True)
    return obs / obs.mean(), gamma, None, reps


def wrap_name(name: str, width: int = 34) -> str:
    """``name`` in full over lines of at most ``width`` characters, cut after a
    ``.``, ``_`` or ``/`` where one is close enough, else anywhere."""
    lines = []
    while len(name) > width:
        cut = max((m.end() for m in re.finditer(r"[._/]", name[:width])), default=0)
        cut = cut if cut > width // 2 else width
        lines.append(name[:cut])
        name = name[cut:]
    return "\n".join([*lines, name])


def write_scan_plots(
    tree: xr.DataTree, layers: Mapping[str, xr.DataTree], out: Path
) -> list[Path]:
    """Write the scan's figures into ``out`` atomically; return their paths.

    ``forest.png`` (κ by layer), ``mechanisms.png`` (model weights) and
    ``esd_grid.png`` (the layers' ESDs), with ``forest_2.png``, … and
    ``esd_grid_2.png``, … when the layers take more than one page
    (:func:`htmp_infer.plotting.pages.plot_files`). The grid's panels follow
    the forest's rows (grouped by kind, then depth). Later pages an earlier scan
    of more layers left in ``out`` are removed.

    Parameters
    ----------
    tree : xarray.DataTree
        The scan's combined tree (a ``layer`` dimension, its ``layers`` table).
    layers : mapping of str to xarray.DataTree
        Each layer's own tree, with its ``fit_<model>`` children; the grid
        draws the one its readings come from (:func:`layer_fit`).
    out : Path
        The output folder.

    Returns
    -------
    list of Path
        The files written, in order.
    """
    # the grid in the forest's order: panel k is row k of the forest
    order = [n for n in forest_table(tree)["layer"] if n in layers]
    order += [n for n in layers if n not in set(order)]
    chosen = {n: layer_fit(layers[n]) for n in order}
    fits = {n: f for n, f in chosen.items() if f is not None}
    not_shown = [n for n, f in chosen.items() if f is None]
    written: list[Path] = []

    def save(name: str, fig: Figure) -> None:
        try:
            write_atomic(out / name, lambda p: fig.savefig(p, dpi=110, format="png"))
        finally:
            plt.close(fig)
        written.append(out / name)

    # one figure at a time: a page is saved and closed before the next is drawn
    pages = {"forest": 0, "esd_grid": 0}
    for fig in forest_figures(tree):
        pages["forest"] += 1
        save(page_file("forest", pages["forest"]), fig)
    save("mechanisms.png", plot_mechanisms(tree))
    for fig in esd_grid_figures(fits, not_shown=not_shown):
        pages["esd_grid"] += 1
        save(page_file("esd_grid", pages["esd_grid"]), fig)
    for stem, n in pages.items():
        remove_stale_pages(out, stem, n)
    return written
