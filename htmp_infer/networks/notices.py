"""Warnings raised while fitting a scan's layers: kept per layer, folded at the end.

A 100-layer scan used to print one line per warning per layer (171 lines about
censored spike counts, all for models of negligible weight). Now each layer
keeps the warnings worth reading in its ``warnings`` column
(:func:`kept_warnings`), and the scan prints one line per kind at the end
(:func:`fold_warnings`).
"""

from __future__ import annotations

import warnings

import pandas as pd

from htmp_infer.inference.readings import NEGLIGIBLE

__all__ = ["ScanWarning", "fold_warnings", "kept_warnings"]


class ScanWarning(UserWarning):
    """One kind of warning raised while fitting a scan's layers, folded into one
    line with its count (:func:`fold_warnings`)."""


def kept_warnings(caught: list[warnings.WarningMessage], table: pd.DataFrame) -> str:
    """The warnings worth showing, as ``Category: message`` lines joined by
    ``" | "``: those about a model with a negligible weight are dropped (its
    readings are not used), and repeats are kept once."""
    negligible = {str(m) for m in table.index if table.loc[m, "weight"] < NEGLIGIBLE}
    kept: dict[str, None] = {}
    for w in caught:
        text = str(w.message)
        model = text.split(":", 1)[0].strip("'\"")
        if model in negligible:
            continue
        kept[f"{w.category.__name__}: {text}"] = None
    return " | ".join(kept)


def fold_warnings(table: pd.DataFrame) -> list[str]:
    """One line per warning kind (category and model) over the scan's layers.

    Returns
    -------
    list of str
        ``Category ('model') in K layers, e.g. <layer>: <message>``.
    """
    kinds: dict[str, list[tuple[str, str]]] = {}
    for name, text in zip(table["layer"], table["warnings"], strict=True):
        for item in filter(None, str(text).split(" | ")):
            category, _, message = item.partition(": ")
            model = message.split(":", 1)[0] if message.startswith("'") else ""
            kinds.setdefault(f"{category} {model}".strip(), []).append((name, message))
    return [
        f"{kind} in {len(hits)} layer{'s' * (len(hits) > 1)}, e.g. "
        f"{hits[0][0]}: {hits[0][1]} (all in the warnings column of scan.csv)"
        for kind, hits in kinds.items()
    ]
