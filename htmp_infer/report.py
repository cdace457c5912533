"""Posterior summaries of a fit as tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import summary

__all__ = ["CI_PROB", "summarize"]

CI_PROB = 0.9


def summarize(dt: xr.DataTree, var_names: list[str] | None = None) -> pd.DataFrame:
    """Posterior mean, sd, median, 90% equal-tailed interval and MCMC diagnostics.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit from :func:`htmp_infer.fit`.
    var_names : list of str, optional
        Scalar posterior variables; default: all of them except ``log_*``
        coordinates.

    Returns
    -------
    pandas.DataFrame
        One row per variable, unrounded numbers.
    """
    post = dt["posterior"].dataset
    if var_names is None:
        var_names = [
            str(v)
            for v in post.data_vars
            if post[v].dims == ("chain", "draw") and not str(v).startswith("log_")
        ]
    table = summary(
        dt,
        var_names=var_names,
        kind="all",
        ci_prob=CI_PROB,
        ci_kind="eti",
        round_to="none",
    )
    medians = [float(np.median(post[v].values)) for v in var_names]
    table.insert(1, "median", medians)
    return pd.DataFrame(table)
