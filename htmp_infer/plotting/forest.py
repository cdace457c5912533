r"""The forest of κ by layer, readable at 100+ layers (matplotlib only).

One row per layer: the posterior median of κ (marker) and its 90% interval
(line) on a log axis, read from the scan table (``tree["layers"]``: the columns
``kappa_median``, ``kappa_q05``, ``kappa_q95``). Rows are grouped, by kind
(``attention_q`` … ``linear``) and within a kind by block depth, or by block and
within it by kind; groups are separated by alternate shading and named at the
right. The colour is the layer's phase, the marker shape the model its reading
comes from (``reading_model``, else ``best_model``), an open marker a layer
whose check fails (``poor_fit``). Layer names are written in full: the figure
is as wide as the longest one needs. Many layers are drawn over pages
(:func:`htmp_infer.plotting.pages.split_pages`), each titled with its layers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.textpath import TextToPath

from htmp_infer.plotting.pages import FOREST_ROWS, page_title, split_pages

__all__ = ["forest_figures", "forest_table", "plot_kappa_forest", "text_width"]

#: κ above which the HTMP variance γ(1 + 2/κ) is within 10% of Marchenko–Pastur.
KAPPA_MP = 20.0
#: Colours of the phases, in the order of :data:`htmp_infer.inference.phases.PHASES`.
_PHASE_COLOURS = ("#2ca02c", "#17becf", "#1f77b4", "#ff7f0e", "#d62728", "#9467bd",
                  "#8c564b", "#e377c2", "#bcbd22", "#393b79")  # fmt: skip
_UNDETERMINED = "0.55"
#: The kinds of :data:`htmp_infer.networks.layers.KINDS` in the order a network
#: meets them (plots do not import the code that made their data); others last.
KIND_ORDER = ("embedding", "attention_q", "attention_k", "attention_v", "attention_o",
              "attention_qkv", "mlp_in", "mlp_out", "conv", "linear")  # fmt: skip
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
_FONT = 7.0  # points, labels and legend
_ROW = 0.2  # inches per layer
_PLOT_WIDTH = 4.5  # inches of the data area


def text_width(labels: Sequence[str], size: float = _FONT) -> float:
    """Width in inches of the widest line of ``labels`` at ``size`` points (0: none)."""
    if not labels:
        return 0.0
    prop, ttp = FontProperties(size=size), TextToPath()
    lines = [line for s in labels for line in s.split("\n")]
    points = max(
        ttp.get_text_width_height_descent(s, prop, ismath=False)[0] for s in lines
    )
    return float(points) / 72.0


def forest_table(
    tree: xr.DataTree, by: Literal["kind", "depth"] = "kind"
) -> pd.DataFrame:
    """The rows of the forest, in drawing order, with their ``group`` label.

    Columns: ``layer``, ``kind``, ``depth``, ``kappa_median``, ``kappa_q05``,
    ``kappa_q95``, ``phase`` (``"undetermined"`` where missing), ``model`` (the
    ``reading_model``, else the ``best_model``, else ``""``), ``poor_fit``,
    ``group``; ``attrs["model_column"]`` says which column ``model`` is.

    Raises
    ------
    ValueError
        When ``by`` is neither ``"kind"`` nor ``"depth"``, or the tree has no
        ``layers`` table with the κ columns.
    """
    if by not in ("kind", "depth"):
        raise ValueError(f"by must be 'kind' or 'depth', not {by!r}")
    if "layers" not in tree.children:
        raise ValueError("the scan tree has no 'layers' table (a scan's scan.nc has)")
    table = tree["layers"].dataset.to_dataframe().reset_index()
    missing = {"layer", "kappa_median", "kappa_q05", "kappa_q95"} - set(table)
    if missing:
        raise ValueError(f"the scan tree's 'layers' table lacks {sorted(missing)}")
    n = len(table)
    rows = pd.DataFrame({"layer": table["layer"].astype(str)})
    for col in ("kappa_median", "kappa_q05", "kappa_q95"):
        rows[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    rows["kind"] = table["kind"].astype(str) if "kind" in table else ""
    depth = table["depth"] if "depth" in table else pd.Series(-1, index=table.index)
    rows["depth"] = pd.to_numeric(depth, errors="coerce").fillna(-1).astype(int)
    phase = table["phase"] if "phase" in table else pd.Series([None] * n)
    rows["phase"] = [p if isinstance(p, str) and p else "undetermined" for p in phase]
    model = pd.Series([""] * n)
    source = ""
    for col in ("best_model", "reading_model"):  # the reading model wins
        if col in table:
            given = table[col].where(table[col].notna(), "").astype(str)
            model = given.where(given != "", model)
            source = col
    rows["model"] = model.to_numpy()
    poor = table["poor_fit"] if "poor_fit" in table else pd.Series([False] * n)
    rows["poor_fit"] = poor.fillna(False).astype(bool).to_numpy()
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    rows["_kind"] = [rank.get(k, len(rank)) for k in rows["kind"]]
    rows["_at"] = np.arange(n)
    keys = (
        ["_kind", "kind", "depth", "_at"]
        if by == "kind"
        else ["depth", "_kind", "kind", "_at"]
    )
    rows = rows.sort_values(keys, kind="stable").reset_index(drop=True)
    if by == "kind":
        rows["group"] = rows["kind"].where(rows["kind"] != "", "(no kind)")
    else:
        rows["group"] = [f"block {d}" if d >= 0 else "no block" for d in rows["depth"]]
    rows = rows.drop(columns=["_kind", "_at"])
    rows.attrs["model_column"] = source
    if "comparison" in tree.children and "model" in tree["comparison"].coords:
        models = np.asarray(tree["comparison"].coords["model"])
        rows.attrs["models"] = [str(m) for m in models]
    return rows


def plot_kappa_forest(
    tree: xr.DataTree,
    *,
    by: Literal["kind", "depth"] = "kind",
    max_rows: int | None = None,
    page: int = 1,
) -> Figure:
    r"""Forest of κ by layer: posterior median and 90% interval, log axis.

    Parameters
    ----------
    tree : xarray.DataTree
        A scan's combined tree (its ``layers`` table).
    by : {"kind", "depth"}
        Group the rows by kind (then depth) or by block depth (then kind).
    max_rows : int, optional
        Most layers on a page; None: every layer on one figure.
    page : int
        Which page (1-based) to draw when ``max_rows`` is given.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = forest_table(tree, by)
    spans = _spans(rows, max_rows)
    if not 1 <= page <= len(spans):
        raise ValueError(f"page {page} does not exist: {len(spans)} page(s)")
    return _draw(rows, *spans[page - 1], page=page, pages=len(spans))


def forest_figures(
    tree: xr.DataTree,
    *,
    by: Literal["kind", "depth"] = "kind",
    max_rows: int = FOREST_ROWS,
) -> Iterator[Figure]:
    """Every page of the forest (:func:`plot_kappa_forest`), in order, each drawn
    when asked for (close one before drawing the next)."""
    rows = forest_table(tree, by)
    spans = _spans(rows, max_rows)
    for p, (a, b) in enumerate(spans, 1):
        yield _draw(rows, a, b, page=p, pages=len(spans))


def _spans(rows: pd.DataFrame, max_rows: int | None) -> list[tuple[int, int]]:
    n = len(rows)
    if n == 0:
        raise ValueError("the scan tree's 'layers' table is empty")
    groups = rows["group"].to_numpy()
    starts = [i for i in range(1, n) if groups[i] != groups[i - 1]]
    return split_pages(n, max_rows or n, starts)


def _phase_colours(phases: Sequence[str]) -> dict[str, str]:
    from htmp_infer.inference.phases import PHASES

    known = list(PHASES) + sorted(set(phases) - set(PHASES) - {"undetermined"})
    colours = {p: _PHASE_COLOURS[i % len(_PHASE_COLOURS)] for i, p in enumerate(known)}
    colours["undetermined"] = _UNDETERMINED
    return colours


def _draw(
    rows: pd.DataFrame, start: int, stop: int, *, page: int, pages: int
) -> Figure:
    part = rows.iloc[start:stop].reset_index(drop=True)
    colours = _phase_colours(list(rows["phase"]))
    # shapes in the comparison's model order, alike across scans of that set
    models = list(dict.fromkeys([*rows.attrs.get("models", ()), *rows["model"]]))
    models = [m for m in models if m]
    markers = {m: _MARKERS[i % len(_MARKERS)] for i, m in enumerate(models)}
    markers[""] = "o"
    handles = _legend(rows, colours, markers)
    # sized from every page's labels, so all pages are alike
    label_w = text_width(list(rows["layer"]))
    group_w = text_width(list(rows["group"]))
    legend_w = text_width([str(h.get_label()) for h in handles]) + 0.45
    width = label_w + _PLOT_WIDTH + group_w + legend_w + 0.6
    height = max(len(part) * _ROW + 1.2, len(handles) * 0.16 + 0.9)
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    y = np.arange(len(part))
    _bands(ax, part)
    colour = [colours[p] for p in part["phase"]]
    ax.hlines(y, part["kappa_q05"], part["kappa_q95"], colors=colour, lw=1.4)
    face = np.where(part["poor_fit"], "white", np.asarray(colour, dtype=object))
    for model, sel in part.groupby("model").indices.items():
        ax.scatter(
            part["kappa_median"].to_numpy()[sel],
            y[sel],
            marker=markers[str(model)],
            s=22,
            facecolors=list(face[sel]),
            edgecolors=[colour[i] for i in sel],
            linewidths=1.0,
            zorder=3,
        )
    ax.axvline(KAPPA_MP, color="0.4", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlim(*_xlim(rows))
    ax.set_yticks(y, list(part["layer"]), fontsize=_FONT, parse_math=False)
    ax.set_ylim(len(part) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("κ (posterior median and 90% interval, log scale)", fontsize=8)
    legend = fig.legend(
        handles=handles, loc="outside right upper", fontsize=_FONT, frameon=False
    )
    for handle, text in zip(handles, legend.get_texts(), strict=True):
        if handle.get_gid() == "header":
            text.set_fontweight("bold")
    fig.suptitle(
        f"κ by layer: {page_title(start, stop, len(rows), page, pages)}", fontsize=9
    )
    return fig


def _bands(ax: plt.Axes, part: pd.DataFrame) -> None:
    """Alternate shading per group, and the group's name at the right."""
    groups = part["group"].to_numpy()
    starts = [
        0,
        *(i for i in range(1, len(part)) if groups[i] != groups[i - 1]),
        len(part),
    ]
    for k, (a, b) in enumerate(itertools.pairwise(starts)):
        if k % 2:
            ax.axhspan(a - 0.5, b - 0.5, color="0.93", zorder=0, lw=0)
        if k:
            ax.axhline(a - 0.5, color="0.75", lw=0.6, zorder=0)
        ax.text(
            1.01,
            (a + b - 1) / 2,
            str(groups[a]),
            transform=ax.get_yaxis_transform(),
            ha="left",
            va="center",
            fontsize=_FONT,
            parse_math=False,
        )


def _xlim(rows: pd.DataFrame) -> tuple[float, float]:
    v = rows[["kappa_median", "kappa_q05", "kappa_q95"]].to_numpy().ravel()
    v = np.append(v[np.isfinite(v) & (v > 0)], KAPPA_MP)
    lo, hi = float(v.min()), float(v.max())
    return lo / 1.5, hi * 1.5


def _legend(
    rows: pd.DataFrame, colours: dict[str, str], markers: dict[str, str]
) -> list[Line2D]:
    def header(text: str) -> Line2D:
        return Line2D([], [], ls="none", label=text, gid="header")

    present = set(rows["phase"])
    handles = [header("phase (colour)")]
    handles += [Line2D([], [], color=c, marker="o", ms=5, lw=1.4, label=p)
                for p, c in colours.items() if p in present]  # fmt: skip
    models = [m for m in markers if m and m in set(rows["model"])]
    if models:
        what = "best model" if rows.attrs.get("model_column") == "best_model" else ""
        handles.append(header(f"{what or 'reading model'} (marker)"))
        handles += [
            Line2D([], [], color="k", marker=markers[m], ms=5, ls="none", label=m)
            for m in models
        ]
    if rows["poor_fit"].any():
        handles.append(
            Line2D(
                [],
                [],
                color="k",
                marker="o",
                mfc="white",
                ms=5,
                ls="none",
                label="open: check fails (poor_fit)",
            )
        )
    handles.append(
        Line2D(
            [],
            [],
            color="0.4",
            ls=":",
            lw=1,
            label=f"κ = {KAPPA_MP:g}: HTMP variance\nwithin 10% of MP",
        )
    )
    return handles
