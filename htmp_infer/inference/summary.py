"""Posterior summaries of a fit as tables, and reading a fit file back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import summary

from htmp_infer.errors import HTMPError

__all__ = ["CI_PROB", "describe_fit", "read_fit", "summarize"]

CI_PROB = 0.9

# what reading an arbitrary file with h5netcdf can raise: h5py's OSError on a file
# that is not HDF5 or is truncated, and the decoders' errors on odd contents
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError)


def _scalar_vars(post: xr.Dataset) -> list[str]:
    """Numeric posterior variables with dims (chain, draw), minus ``log_*``."""
    return [
        str(v)
        for v in post.data_vars
        if post[v].dims == ("chain", "draw")
        and post[v].dtype.kind in "iuf"
        and not str(v).startswith("log_")
    ]


def summarize(dt: xr.DataTree, var_names: list[str] | None = None) -> pd.DataFrame:
    """Posterior mean, sd, median, 90% equal-tailed interval and MCMC diagnostics.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit from :func:`htmp_infer.fit`.
    var_names : list of str, optional
        Scalar posterior variables; default: all the numeric ones with dims
        ``(chain, draw)`` except ``log_*`` coordinates.

    Returns
    -------
    pandas.DataFrame
        One row per variable, unrounded numbers.
    """
    post = dt["posterior"].dataset
    if var_names is None:
        var_names = _scalar_vars(post)
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


def read_fit(path: str | Path) -> xr.DataTree:
    """Read a fit written by ``htmp-infer fit`` (or :func:`htmp_infer.fit`).

    Raises
    ------
    HTMPError
        One line naming ``path`` when it is missing, a folder, not a netCDF/HDF5
        file, truncated, or holds no posterior ``kappa`` with dims
        ``(chain, draw)`` of real numbers (a scan's ``scan.nc`` has a ``layer``
        dim; a comparison keeps its fits in ``fit_*`` groups).
    """
    p = Path(path)
    try:
        if not p.exists():
            raise HTMPError(f"{path}: no such file")
        if p.is_dir():
            raise HTMPError(f"{path}: is a directory, expected a .nc file of a fit")
        if not p.is_file():
            raise HTMPError(f"{path}: is not a regular file")
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EACCES from stat()
        raise HTMPError(f"{path}: {exc.strerror or exc}") from None
    try:
        dt = xr.open_datatree(p, engine="h5netcdf", phony_dims="access")
        try:
            dt = dt.load()
        finally:
            dt.close()
    except _READ_ERRORS as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HTMPError(f"{path}: not a fit file ({first})") from None
    if "posterior" not in dt.children:
        fits = sorted(c for c in dt.children if str(c).startswith("fit_"))
        hint = (
            f" (a comparison: its fits are the groups {', '.join(fits)})"
            if fits
            else ""
        )
        raise HTMPError(f"{path}: no posterior group; not a fit file{hint}")
    post = dt["posterior"].dataset
    if "kappa" not in post:
        raise HTMPError(f"{path}: no posterior with kappa; not a fit file")
    kappa = post["kappa"]
    if kappa.dims != ("chain", "draw"):
        hint = " (a scan's scan.nc: read its scan.csv)" if "layer" in kappa.dims else ""
        raise HTMPError(
            f"{path}: posterior kappa has dims {kappa.dims}, expected "
            f"('chain', 'draw'); not a single fit{hint}"
        )
    if kappa.dtype.kind not in "iuf" or kappa.size == 0:
        raise HTMPError(
            f"{path}: posterior kappa holds {kappa.size} values of dtype "
            f"{kappa.dtype}; expected real numbers"
        )
    return dt


def _number(value: object, spec: str) -> str:
    """``value`` formatted with ``spec`` when it is a real number, else as is."""
    try:
        return format(float(value), spec)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return str(value)


def describe_fit(dt: xr.DataTree) -> str:
    """The summary table and one line of diagnostics, as ``htmp-infer`` prints it.

    Raises
    ------
    HTMPError
        When the posterior cannot be summarised (a hand-made file).
    """
    try:
        table = summarize(dt)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HTMPError(f"cannot summarise the posterior ({first})") from None
    with pd.option_context("display.width", 120, "display.precision", 4):
        lines = [table.to_string(float_format=lambda v: f"{v:.4g}")]
    attrs = dt.attrs
    nan = float("nan")
    if attrs.get("method") == "grid":
        lines.append(
            f"model={attrs.get('model')} N={attrs.get('n', '')} method=grid "
            f"(independent draws) "
            f"draws={_number(attrs.get('diag_ess_bulk_min', 0), '.0f')} "
            f"grid_nodes={attrs.get('diag_nodes', '')} "
            f"effective_nodes={_number(attrs.get('diag_effective_nodes', nan), '.1f')} "
            f"quadrature_error="
            f"{_number(attrs.get('diag_quadrature_error', nan), '.2g')}"
        )
        return "\n".join(lines)
    lines.append(
        f"model={attrs.get('model')} N={attrs.get('n', '')} "
        f"r_hat_max={_number(attrs.get('diag_r_hat_max', nan), '.4f')} "
        f"ess_bulk_min={_number(attrs.get('diag_ess_bulk_min', nan), '.0f')} "
        f"divergences={attrs.get('diag_divergences', '')} "
        f"mean_leapfrog_steps={_number(attrs.get('diag_mean_steps', nan), '.2f')}"
    )
    if attrs.get("diag_warnings"):
        lines.append(f"warning: {attrs['diag_warnings']}")
    return "\n".join(lines)
