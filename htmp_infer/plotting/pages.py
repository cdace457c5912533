"""Pages of a scan's figures: where a long list of layers is cut, and the files.

A scan of 100+ layers does not fit one readable figure. The forest of κ and the
grid of ESDs are drawn over as many pages as needed, each page saying which
layers it holds ("layers 37–72 of 110"). The first page keeps the name a scan
always wrote (``forest.png``, ``esd_grid.png``), the next ones are numbered from
2 (``forest_2.png``, ``esd_grid_2.png``, …), so a scan of few layers writes the
same files as before and every reference to the first file stays valid.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ESD_PANELS",
    "FOREST_ROWS",
    "grid_pages",
    "page_file",
    "page_title",
    "plot_files",
    "remove_stale_pages",
    "split_pages",
]

#: Most layers (rows) on one page of the κ forest.
FOREST_ROWS = 60
#: Most layers (panels, 6 x 6) on one page of the ESD grid.
ESD_PANELS = 36
#: Panels in a row of the ESD grid.
ESD_COLUMNS = 6
#: The paged figures' stems (``<stem>.png``, ``<stem>_2.png``, …).
PAGED = ("forest", "esd_grid")


def split_pages(
    n: int, per_page: int, boundaries: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """Cut ``n`` items into the fewest pages of at most ``per_page`` items.

    The pages are about equally full. A cut moves to the nearest group boundary
    (an index in ``boundaries`` where a new group starts) when one lies within
    a quarter page of it and no page then holds more than ``per_page`` items,
    so groups are split across pages only when they must be.

    Parameters
    ----------
    n : int
        Number of items, ≥ 0.
    per_page : int
        Most items on a page, ≥ 1.
    boundaries : sequence of int
        Indices in ``(0, n)`` where a group starts.

    Returns
    -------
    list of (int, int)
        ``(start, stop)`` of each page: consecutive, covering ``range(n)``
        exactly once; empty when ``n`` is 0.

    Raises
    ------
    ValueError
        When ``per_page`` < 1 or ``n`` < 0.
    """
    if per_page < 1 or n < 0:
        raise ValueError(f"split_pages: per_page={per_page}, n={n}")
    if n == 0:
        return []
    pages = math.ceil(n / per_page)
    bounds = sorted({b for b in boundaries if 0 < b < n})
    slack = max(1, math.ceil(n / pages) // 4)
    cuts = [0]
    for k in range(1, pages):
        prev = cuts[-1]
        ideal = round(k * n / pages)
        # a cut c keeps this page and every later one within per_page
        ok = [
            b
            for b in bounds
            if abs(b - ideal) <= slack
            and prev < b <= prev + per_page
            and n - b <= (pages - k) * per_page
        ]
        cut = min(ok, key=lambda b: (abs(b - ideal), b)) if ok else ideal
        # feasible: this page within per_page, the rest within the pages left
        low, high = n - (pages - k) * per_page, prev + per_page
        cuts.append(max(prev + 1, low, min(cut, high)))
    cuts.append(n)
    return list(itertools.pairwise(cuts))


def grid_pages(n: int, per_page: int, cols: int) -> list[tuple[int, int]]:
    """Cut ``n`` panels into the fewest pages of at most ``per_page``, in rows of
    ``cols``: every page but the last as full as the others and made of whole
    rows where ``per_page`` allows (110 panels, 36 a page, 6 a row: 30, 30, 30, 20).

    Returns
    -------
    list of (int, int)
        ``(start, stop)`` of each page, as :func:`split_pages`.
    """
    pages = len(split_pages(n, per_page))
    if pages == 0:
        return []
    even = math.ceil(n / pages)
    size = max(even, min(per_page, math.ceil(even / cols) * cols))
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def page_file(stem: str, page: int) -> str:
    """File of a page (1-based): ``<stem>.png`` for the first, ``<stem>_<page>.png``."""
    return f"{stem}.png" if page == 1 else f"{stem}_{page}.png"


def page_title(start: int, stop: int, n: int, page: int, pages: int) -> str:
    """``"layers 37–72 of 110 (page 2 of 4)"``; ``"layers 1–5 of 5"`` on one page."""
    text = f"layers {start + 1}–{stop} of {n}" if n > 1 else "1 layer"
    return text + (f" (page {page} of {pages})" if pages > 1 else "")


def plot_files(n_layers: int) -> tuple[str, ...]:
    """Every figure file a scan of ``n_layers`` layers writes (its pages included)."""
    forest = len(split_pages(n_layers, FOREST_ROWS)) or 1
    esd = len(grid_pages(n_layers, ESD_PANELS, ESD_COLUMNS)) or 1
    return (
        *(page_file("forest", p) for p in range(1, forest + 1)),
        "mechanisms.png",
        *(page_file("esd_grid", p) for p in range(1, esd + 1)),
    )


def remove_stale_pages(out: Path, stem: str, pages: int) -> list[Path]:
    """Remove ``<stem>_<k>.png`` with ``k > pages`` from ``out`` and return them.

    A scan of fewer layers into the folder of an earlier, larger one would leave
    that scan's later pages next to its own. Only plain files and links of
    exactly that name are removed (the link, never its target).
    """
    pattern = re.compile(rf"{re.escape(stem)}_([1-9][0-9]*)\.png")
    removed: list[Path] = []
    try:
        names = os.listdir(out)
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m is None or int(m[1]) <= pages:
            continue
        path = out / name
        with contextlib.suppress(FileNotFoundError):
            if path.is_symlink() or path.is_file():
                path.unlink()
                removed.append(path)
    return removed
