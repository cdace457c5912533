"""The scan's figures at 100+ layers: pages, full names, no empty axes.

A synthetic scan table of 110 layers (BERT-like names, up to 45 characters)
stands in for a scan; the ESD panels are stubbed in the paging tests (the
density solves cost 0.15 s a panel) and real in the 5-layer test.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from htmp_infer.inference.phases import PHASES
from htmp_infer.networks.layers import KINDS
from htmp_infer.plotting import scan as scan_plots
from htmp_infer.plotting.forest import KIND_ORDER, forest_figures, forest_table
from htmp_infer.plotting.pages import (
    ESD_PANELS,
    FOREST_ROWS,
    grid_pages,
    page_file,
    plot_files,
    split_pages,
)

MODELS = ("mp", "htmp", "power_law", "hard_edge")
_KINDS = {
    "attention.self.query": "attention_q",
    "attention.self.key": "attention_k",
    "attention.self.value": "attention_v",
    "attention.output.dense": "attention_o",
    "intermediate.dense": "mlp_in",
    "output.dense": "mlp_out",
}


def scan_tree(n: int, *, reading_model: bool = True) -> xr.DataTree:
    """A scan tree of ``n`` layers: its ``layers`` table and model weights."""
    rng = np.random.default_rng(n)
    names, kinds, depths = [], [], []
    for depth, (part, kind) in itertools.product(range(n), _KINDS.items()):
        names.append(f"encoder.layer.{depth}.{part}.weight")
        kinds.append(kind)
        depths.append(depth)
    names, kinds, depths = names[: n - 1], kinds[: n - 1], depths[: n - 1]
    names.insert(0, "embeddings.word_embeddings.weight")
    kinds.insert(0, "embedding")
    depths.insert(0, -1)
    med = np.exp(rng.normal(2.5, 1.5, n))
    table = pd.DataFrame(
        {
            "layer": names,
            "kind": kinds,
            "depth": depths,
            "kappa_median": med,
            "kappa_q05": med / np.exp(rng.uniform(0.1, 1.0, n)),
            "kappa_q95": med * np.exp(rng.uniform(0.1, 1.0, n)),
            "best_model": rng.choice(MODELS, n),
            "phase": rng.choice([*PHASES, "undetermined"], n),
            "poor_fit": rng.random(n) < 0.1,
        }
    )
    if reading_model:
        table["reading_model"] = rng.choice(MODELS, n)
    weight = rng.dirichlet(np.ones(len(MODELS)), n)
    comparison = xr.Dataset(
        {"weight": (("layer", "model"), weight)},
        coords={"layer": names, "model": list(MODELS)},
    )
    return xr.DataTree.from_dict(
        {
            "/layers": xr.Dataset.from_dataframe(table.set_index("layer")),
            "/comparison": comparison,
        }
    )


def fake_fits(names: list[str], model: str = "htmp") -> dict[str, xr.DataTree]:
    """Small fits of ``model``: eigenvalues, γ, κ draws (none for ``mp``)."""
    rng = np.random.default_rng(1)
    fits = {}
    for name in names:
        kappa = np.exp(rng.normal(1.5, 0.2, (1, 30)))
        post = {} if model == "mp" else {"kappa": (("chain", "draw"), kappa)}
        fits[name] = xr.DataTree.from_dict(
            {
                "/observed_data": xr.Dataset(
                    {"eigenvalues": ("i", rng.chisquare(3.0, 40) + 0.01)}
                ),
                "/constant_data": xr.Dataset({"gamma": 0.5}),
                "/posterior": xr.Dataset(post),
            }
        )
        fits[name].attrs["model"] = model
    return fits


@pytest.fixture
def stub_panels(monkeypatch):
    """ESD panels as one line each (the paging, not the density, is tested)."""

    def panel(ax, x, gamma, kappa, reps, **kwargs):
        ax.plot(np.sort(x), np.linspace(0, 1, x.size), color="k")

    monkeypatch.setattr(scan_plots, "esd_panel", panel)


def check_readable(fig: Figure) -> None:
    """Every axes has data; every text lies inside the figure; none overlap."""
    fig.set_dpi(40)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    inside = fig.bbox.padded(1.0)
    boxes: list[tuple[str, Bbox]] = []
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.has_data(), f"axes without data: {ax.get_title()!r}"
        low, high = sorted(ax.get_ylim())
        for t in ax.get_yticklabels():  # those of ticks in view are drawn
            if t.get_text() and low <= t.get_position()[1] <= high:
                boxes.append((f"ytick {t.get_text()}", t.get_window_extent(renderer)))
        for t in (ax.xaxis.label, ax.title, *ax.texts):
            if t.get_text() and t.get_fontsize() >= 7:
                boxes.append((t.get_text()[:40], t.get_window_extent(renderer)))
    if fig._suptitle is not None:
        boxes.append(("suptitle", fig._suptitle.get_window_extent(renderer)))
    for legend in fig.legends:
        boxes.append(("legend", legend.get_window_extent(renderer)))
    for what, box in boxes:
        assert inside.containsx(box.x0) and inside.containsx(box.x1), what
        assert inside.containsy(box.y0) and inside.containsy(box.y1), what
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        shrunk = Bbox.from_extents(
            box_a.x0 + 1, box_a.y0 + 1, box_a.x1 - 1, box_a.y1 - 1
        )
        assert not shrunk.overlaps(box_b), f"{a!r} overlaps {b!r}"


def test_split_pages_covers_each_item_once_within_the_cap():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        n, per = int(rng.integers(0, 300)), int(rng.integers(1, 70))
        bounds = rng.integers(0, max(n, 1), int(rng.integers(0, 20)))
        pages = split_pages(n, per, bounds.tolist())
        assert len(pages) == -(-n // per)
        assert [i for a, b in pages for i in range(a, b)] == list(range(n))
        assert all(0 < b - a <= per for a, b in pages)
        cols = int(rng.integers(1, 8))
        grid = grid_pages(n, per, cols)
        assert len(grid) == len(pages)
        assert [i for a, b in grid for i in range(a, b)] == list(range(n))
        assert all(0 < b - a <= per for a, b in grid)
        assert len({b - a for a, b in grid[:-1]}) <= 1


def test_split_pages_cuts_at_a_group_boundary_nearby():
    # 110 rows in groups of 18: the even cut (55) moves to the boundary at 54
    assert split_pages(110, 60, range(0, 110, 18)) == [(0, 54), (54, 110)]
    assert split_pages(101, 36) == [(0, 34), (34, 67), (67, 101)]
    with pytest.raises(ValueError, match="per_page"):
        split_pages(5, 0)


def test_forest_pages_cover_every_layer_once_with_full_names():
    tree = scan_tree(110)
    rows = forest_table(tree)
    figs = list(forest_figures(tree))
    try:
        assert len(figs) == -(-110 // FOREST_ROWS) == 2
        shown = [t.get_text() for fig in figs for t in fig.axes[0].get_yticklabels()]
        assert sorted(shown) == sorted(tree["layers"]["layer"].values.tolist())
        assert len(set(shown)) == 110
        assert shown == rows["layer"].tolist()  # grouped by kind, then depth
        assert "encoder.layer.10.attention.self.query.weight" in shown
        titles = [fig.get_suptitle() for fig in figs]
        starts = [int(re.search(r"layers (\d+)–(\d+) of 110", t)[1]) for t in titles]
        stops = [int(re.search(r"layers (\d+)–(\d+) of 110", t)[2]) for t in titles]
        assert starts[0] == 1 and stops[-1] == 110
        assert all(a == b + 1 for a, b in zip(starts[1:], stops[:-1], strict=True))
        for fig in figs:
            assert len(fig.axes) == 1
            check_readable(fig)
    finally:
        for fig in figs:
            plt.close(fig)


def test_forest_groups_by_kind_or_depth_and_falls_back_to_best_model():
    tree = scan_tree(40, reading_model=False)
    by_kind = forest_table(tree)
    assert list(dict.fromkeys(by_kind["group"]))[:4] == [
        "embedding",
        "attention_q",
        "attention_k",
        "attention_v",
    ]
    kinds = by_kind["kind"].tolist()
    assert all(
        np.all(np.diff(by_kind["depth"][by_kind["kind"] == k]) > 0) for k in set(kinds)
    )
    table = tree["layers"].dataset.to_dataframe()
    model = by_kind.set_index("layer")["model"]
    assert (model == table["best_model"].reindex(model.index)).all()
    by_depth = forest_table(tree, "depth")
    assert by_depth["group"].iloc[0] == "no block"
    assert np.all(np.diff(by_depth["depth"]) >= 0)
    with pytest.raises(ValueError, match="by must be"):
        forest_table(tree, "name")  # type: ignore[arg-type]


def test_kind_order_names_every_kind():
    assert sorted(KIND_ORDER) == sorted(KINDS)


def test_reading_model_sets_the_marker():
    tree = scan_tree(12)
    rows = forest_table(tree)
    table = tree["layers"].dataset.to_dataframe()
    model = rows.set_index("layer")["model"]
    assert (model == table["reading_model"].reindex(model.index)).all()
    assert (model != table["best_model"].reindex(model.index)).any()


def test_esd_pages_cover_every_layer_once(stub_panels):
    names = scan_tree(110)["layers"]["layer"].values.tolist()
    figs = list(scan_plots.esd_grid_figures(fake_fits(names)))
    try:
        assert len(figs) == -(-110 // ESD_PANELS) == 4
        titles = [ax.get_title() for fig in figs for ax in fig.axes]
        shown = [t.rsplit("\n", 1)[0].replace("\n", "") for t in titles]
        assert shown == names
        for p, fig in enumerate(figs, 1):
            assert all(ax.has_data() for ax in fig.axes)
            assert len(fig.axes) <= ESD_PANELS
            assert f"(page {p} of 4)" in fig.get_suptitle()
        # whole rows of 6 on every page but the last: 30, 30, 30, 20
        assert [len(fig.axes) for fig in figs] == [30, 30, 30, 20]
        assert figs[0].get_suptitle().endswith("layers 1–30 of 110 (page 1 of 4)")
        check_readable(figs[-1])  # 36 panels take seconds to lay out: one page
    finally:
        for fig in figs:
            plt.close(fig)


def test_write_scan_plots_writes_pages_and_removes_stale_ones(
    tmp_path, stub_panels, monkeypatch
):
    """Each page's file holds that page (savefig writes the title: fast)."""

    def savefig(fig, path, **kwargs):
        title = fig.get_suptitle() or fig.axes[0].get_title()
        panels = [ax.get_title().split("\n") for ax in fig.axes]
        names = ["".join(p[:-1]) for p in panels]  # the name's lines, not κ
        Path(path).write_text("\t".join([title, *names]), encoding="utf-8")

    monkeypatch.setattr(Figure, "savefig", savefig)
    open_before = set(plt.get_fignums())  # other tests in this process may leave some
    tree = scan_tree(110)
    names = tree["layers"]["layer"].values.tolist()
    layers = {
        n: xr.DataTree.from_dict({"/fit_htmp": f}) for n, f in fake_fits(names).items()
    }
    (tmp_path / "esd_grid_9.png").write_bytes(b"stale")
    (tmp_path / "forest_notes.png").write_bytes(b"not ours")
    written = scan_plots.write_scan_plots(tree, layers, tmp_path)
    files = tuple(p.name for p in written)
    assert files == plot_files(110)
    assert files == (
        "forest.png",
        "forest_2.png",
        "mechanisms.png",
        "esd_grid.png",
        "esd_grid_2.png",
        "esd_grid_3.png",
        "esd_grid_4.png",
    )
    saved = {p.name: p.read_text(encoding="utf-8").split("\t") for p in written}
    text = {name: parts[0] for name, parts in saved.items()}
    panels = [n for p in range(1, 5) for n in saved[page_file("esd_grid", p)][1:]]
    assert panels == forest_table(tree)["layer"].tolist()  # the forest's order
    assert text["forest_2.png"].startswith("κ by layer: layers 57–110 of 110 (page 2")
    assert text["mechanisms.png"] == "mechanism weights"
    for p in range(1, 5):
        assert text[page_file("esd_grid", p)].endswith(f"(page {p} of 4)")
    assert not (tmp_path / "esd_grid_9.png").exists()
    assert (tmp_path / "forest_notes.png").exists()
    assert set(plt.get_fignums()) <= open_before  # every page closed


def test_a_real_page_is_a_png(tmp_path):
    tree = scan_tree(3)
    names = tree["layers"]["layer"].values.tolist()
    layers = {
        n: xr.DataTree.from_dict({"/fit_htmp": f}) for n, f in fake_fits(names).items()
    }
    written = scan_plots.write_scan_plots(tree, layers, tmp_path)
    assert [p.name for p in written] == ["forest.png", "mechanisms.png", "esd_grid.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_five_layers_make_one_page_of_each_as_before(tmp_path):
    """The real ESD panels; the same three files a scan always wrote."""
    tree = scan_tree(5)
    names = tree["layers"]["layer"].values.tolist()
    fits = fake_fits(names)
    assert plot_files(5) == ("forest.png", "mechanisms.png", "esd_grid.png")
    forest = scan_plots.plot_kappa_forest(tree)
    grid = scan_plots.plot_esd_grid(fits)
    mech = scan_plots.plot_mechanisms(tree)
    try:
        assert forest.get_suptitle() == "κ by layer: layers 1–5 of 5"
        assert "page" not in grid.get_suptitle()
        assert len(grid.axes) == 5
        for fig in (forest, grid, mech):
            check_readable(fig)
    finally:
        for fig in (forest, grid, mech):
            plt.close(fig)


def test_the_grid_draws_each_layers_reading_model(tmp_path, monkeypatch):
    """The fit of ``reading_model``; the HTMP density only for ``htmp`` fits; a
    layer without a fit is named under the title."""
    names = ["a.query.weight", "b.key.weight", "c.value.weight", "d.dense.weight"]
    htmp, temp, mp = (fake_fits(names, m) for m in ("htmp", "power_law", "mp"))
    layers = {
        "a.query.weight": xr.DataTree.from_dict(
            {"/fit_htmp": htmp[names[0]], "/fit_power_law": temp[names[0]]}
        ),
        "b.key.weight": xr.DataTree.from_dict(
            {"/fit_htmp": htmp[names[1]], "/fit_power_law": temp[names[1]]}
        ),
        "c.value.weight": xr.DataTree.from_dict({"/fit_mp": mp[names[2]]}),
        "d.dense.weight": xr.DataTree(),
    }
    layers["a.query.weight"].attrs["reading_model"] = "power_law"
    chosen = {n: scan_plots.layer_fit(t) for n, t in layers.items()}
    assert [None if f is None else f.attrs["model"] for f in chosen.values()] == [
        "power_law",  # its reading model
        "htmp",  # no reading_model attribute (a scan of before): htmp
        "mp",  # the only fit
        None,
    ]
    fits = {n: f for n, f in chosen.items() if f is not None}
    fig = next(scan_plots.esd_grid_figures(fits, not_shown=["d.dense.weight"]))
    try:
        titles = [ax.get_title() for ax in fig.axes]
        k = float(np.median(temp[names[0]]["posterior"]["kappa"]))
        assert titles[0] == f"a.query.weight\npower_law: κ≈{k:.3g}"
        assert titles[1].startswith("b.key.weight\nhtmp: κ≈")
        assert titles[2] == "c.value.weight\nmp"
        red = [len(ax.collections) for ax in fig.axes]  # the density band
        assert red == [0, 1, 0]
        assert "1 layer(s) without a fit not shown: d.dense.weight" in (
            fig.get_suptitle()
        )
        check_readable(fig)
    finally:
        plt.close(fig)
