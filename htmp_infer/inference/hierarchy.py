r"""Fit the layers of one network jointly: partial pooling of :math:`\log\kappa`.

The model is :mod:`htmp_infer.models.hierarchical` (loaded lazily; the arrow goes
``models -> htmp_infer``): each layer keeps its exact spiked HTMP likelihood,
and :math:`\log\kappa_l` is pooled towards its kind's centre with a depth trend.
The result names each kind's typical :math:`\kappa` and the layers that stand out
from their kind.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import numpy as np
import pandas as pd
import xarray as xr

from htmp_infer.errors import ArgumentError
from htmp_infer.inference.diagnostics import check_convergence
from htmp_infer.inference.nuts import run_nuts, to_datatree
from htmp_infer.inference.spike_caps import spike_cap
from htmp_infer.spectrum import Spectrum

__all__ = ["LayerGroupFit", "fit_layers"]

_QUANTILES = (0.05, 0.5, 0.95)
_DIAGNOSED = ["log_kappa", "group_log_kappa", "mu", "b", "sigma_a", "tau"]
TARGET_ACCEPT = 0.95
r"""Step-size target of the hierarchical NUTS runs (``run_nuts`` defaults to 0.85).

The curvature of the posterior changes with :math:`\tau`: the log-:math:`\tau`
direction stiffens as :math:`\tau` shrinks to the spread of the layers. A step
size adapted at 0.85 while a chain sat at large :math:`\tau` was too long for
small :math:`\tau`, and the chain stuck there (htmp_infer.models.hierarchical,
*Parameterisation*); 0.95 leaves the margin, for ~40% more leapfrog steps.
"""


@dataclass
class LayerGroupFit:
    """Posterior of the hierarchical model over the layers of one network.

    Attributes
    ----------
    tree : xarray.DataTree
        ``posterior`` (``kappa``, ``log_kappa``, ``deviation`` with dim ``layer``;
        ``group_log_kappa``, ``u`` with dim ``kind``; ``mu``, ``b``, ``sigma_a``,
        ``tau``; and the sampled coordinates ``mean_group_log_kappa``,
        ``kind_mean_z``, ``kind_contrast`` (dim ``contrast``), ``log_sigma_a``,
        ``log_tau``: :mod:`htmp_infer.models.hierarchical`, *Parameterisation*),
        ``sample_stats``, ``log_likelihood`` (``eigenvalues``, one term per layer),
        ``observed_data`` (NaN-padded ``eigenvalues``) and
        ``constant_data`` (``layer_kind``, ``depth``, ``relative_depth``, ``n``,
        ``n_cols``). Attributes hold the run settings and the diagnostics.
    groups : pandas.DataFrame
        One row per kind: ``n_layers`` and the median, 5% and 95% quantiles of
        :math:`\\exp(\\text{group\\_log\\_kappa})` (``kappa_median``,
        ``kappa_q05``, ``kappa_q95``).
    standouts : pandas.DataFrame
        One row per layer (index ``layer``): ``kind``, ``kappa_median``,
        ``kappa_q05``, ``kappa_q95``, ``deviation_median``, ``deviation_q05``,
        ``deviation_q95``, ``p_deviation_positive`` and ``stands_out`` (the 90%
        interval of the deviation excludes 0), sorted by :math:`|`median
        deviation:math:`|`, largest first.
    """

    tree: xr.DataTree
    groups: pd.DataFrame
    standouts: pd.DataFrame


def fit_layers(
    spectra: Sequence[Spectrum],
    kinds: Sequence[str],
    depths: Sequence[int | None],
    *,
    seed: int = 0,
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    progress: bool = True,
    layer_df: float | None = 4.0,
) -> LayerGroupFit:
    r"""Fit the hierarchical HTMP model to the layers of one network.

    Parameters
    ----------
    spectra : sequence of Spectrum
        One spectrum per layer (at least two); their names label the layers.
    kinds : sequence of str
        The kind of each layer (free labels, e.g. ``"attention_q"``); a kind may
        hold a single layer.
    depths : sequence of int or None
        Block index of each layer; ``None`` for layers outside the blocks
        (embeddings, heads), which get relative depth 0.5.
    seed : int
        Seed of the NUTS run.
    chains, draws, warmup : int
        NUTS chains and iterations per chain after and before adaptation.
    progress : bool
        Show a progress bar.
    layer_df : float or None, default 4
        Degrees of freedom of the Student-t layer deviations; ``None`` for normal
        deviations (not robust to a layer far from its kind).

    Returns
    -------
    LayerGroupFit

    Raises
    ------
    ArgumentError
        Fewer than two layers, lengths that differ, or bad run settings.

    Warns
    -----
    ConvergenceWarning
        When r-hat > 1.01, the ESS is low or a transition diverged.

    Notes
    -----
    :math:`\log\kappa_l = \mu + a_{g_l} + b\,d_l + \tau z_l` with the priors of
    :mod:`htmp_infer.models.hierarchical`, and the exact spiked HTMP likelihood of every
    layer, :math:`\prod_l p(\lambda_l\mid\kappa_l)`. One compiled NUTS program per
    set of layer sizes; each distinct :math:`N` adds one ``vmap``-ed likelihood to
    it (:math:`M` is traced).
    A layer stands out when the equal-tailed 90% posterior interval of
    :math:`\tau z_l`, its distance in :math:`\log\kappa` from its kind at its
    depth, excludes zero.

    Each layer's spike cap is the one its own ``htmp`` fit would choose
    (:func:`~htmp_infer.inference.spike_caps.spike_cap`), raised to the largest
    among the layers of the same :math:`N` so that they share one compiled
    likelihood; a spectrum that already carries ``max_spikes`` keeps it.
    """
    _check(spectra, kinds, depths, chains, draws, warmup, layer_df)
    spectra = _with_spike_caps(spectra)
    from htmp_infer.models import hierarchical as module

    kind_names = list(dict.fromkeys(str(k) for k in kinds))
    kind_index = [kind_names.index(str(k)) for k in kinds]
    relative = module.relative_depth(depths)
    static, data = module.inputs(spectra, kind_index, relative.tolist())
    static["layer_df"] = layer_df
    names = _layer_names(spectra)

    t0 = time.perf_counter()
    run = run_nuts(
        functools.partial(module.model, **static),
        data,
        cache_key=("hierarchical", tuple(sorted(static.items()))),
        key=jax.random.key(seed),
        chains=chains,
        warmup=warmup,
        draws=draws,
        target_accept=TARGET_ACCEPT,
        progress=progress,
        label=f"hierarchical HTMP on {len(spectra)} layers",
    )
    t_sample = time.perf_counter() - t0
    by_layer = ["log_kappa", "deviation", "kappa", "layer_kind", "depth"]
    by_layer += ["relative_depth", "n", "n_cols"]
    dims = {v: ["layer"] for v in by_layer} | {
        "u": ["kind"],
        "group_log_kappa": ["kind"],
        "kind_contrast": ["contrast"],
        "eigenvalues": ["layer", "eig"],
    }
    tree = to_datatree(
        run,
        log_likelihood=True,
        coords={
            "layer": names,
            "kind": kind_names,
            "contrast": np.arange(len(kind_names) - 1),
            "eig": np.arange(data["eigenvalues"].shape[1]),
        },
        dims=dims,
        constant_data={
            "layer_kind": np.array([str(k) for k in kinds]),
            "depth": np.array([np.nan if d is None else d for d in depths], float),
            "relative_depth": relative,
            "n": np.array([s.n for s in spectra]),
            "n_cols": np.array([s.n_cols for s in spectra]),
        },
    )
    diag = check_convergence(tree, _DIAGNOSED)
    tree.attrs.update(
        {
            "model": "hierarchical",
            "layer_deviations": "normal" if layer_df is None else f"t({layer_df:g})",
            "seed": seed,
            "chains": chains,
            "draws": draws,
            "warmup": warmup,
            "backend": jax.default_backend(),
            "seconds_sampling": t_sample,
            **{f"diag_{k}": v for k, v in diag.items()},
        }
    )
    post = tree["posterior"].dataset
    kinds_of_layer = [str(k) for k in kinds]
    return LayerGroupFit(
        tree=tree,
        groups=_group_table(post, kind_names, kinds_of_layer),
        standouts=_standout_table(post, kinds_of_layer),
    )


def _with_spike_caps(spectra: Sequence[Spectrum]) -> list[Spectrum]:
    """Every layer at the largest ``htmp`` spike cap among the layers of its N."""
    caps = [
        s.max_spikes if s.max_spikes is not None else spike_cap(s, "htmp")
        for s in spectra
    ]
    size_cap: dict[int, int] = {}
    for s, cap in zip(spectra, caps, strict=True):
        size_cap[s.n] = max(cap, size_cap.get(s.n, 0))
    return [
        s if s.max_spikes is not None else s.with_max_spikes(size_cap[s.n])
        for s in spectra
    ]


def _check(
    spectra: Sequence[Spectrum],
    kinds: Sequence[str],
    depths: Sequence[int | None],
    chains: int,
    draws: int,
    warmup: int,
    layer_df: float | None,
) -> None:
    """Raise :class:`ArgumentError` with a one-line message for unusable input."""
    if len(spectra) < 2:
        raise ArgumentError(f"fit_layers needs at least 2 layers, got {len(spectra)}")
    if not len(kinds) == len(depths) == len(spectra):
        raise ArgumentError(
            f"one kind and one depth per layer: got {len(spectra)} spectra, "
            f"{len(kinds)} kinds and {len(depths)} depths"
        )
    if chains < 1 or draws < 1 or warmup < 0:
        raise ArgumentError(
            f"chains and draws must be >= 1 and warmup >= 0, got {chains}, {draws}, "
            f"{warmup}"
        )
    if layer_df is not None and not layer_df > 0:
        raise ArgumentError(f"layer_df must be > 0 or None, got {layer_df}")


def _layer_names(spectra: Sequence[Spectrum]) -> list[str]:
    """Spectrum names, made unique by their position where they repeat."""
    names = [s.name for s in spectra]
    if len(set(names)) == len(names):
        return names
    return [f"{name}#{i}" for i, name in enumerate(names)]


def _quantiles(values: xr.DataArray | np.ndarray) -> np.ndarray:
    """5%, 50% and 95% quantiles over (chain, draw); shape ``(3, ...)``."""
    return np.quantile(np.asarray(values), _QUANTILES, axis=(0, 1))


def _group_table(
    post: xr.Dataset, kind_names: list[str], kinds_of_layer: list[str]
) -> pd.DataFrame:
    lo, mid, hi = _quantiles(np.exp(post["group_log_kappa"]))
    return pd.DataFrame(
        {
            "n_layers": [kinds_of_layer.count(k) for k in kind_names],
            "kappa_median": mid,
            "kappa_q05": lo,
            "kappa_q95": hi,
        },
        index=pd.Index(kind_names, name="kind"),
    )


def _standout_table(post: xr.Dataset, kinds_of_layer: list[str]) -> pd.DataFrame:
    k_lo, k_mid, k_hi = _quantiles(post["kappa"])
    d_lo, d_mid, d_hi = _quantiles(post["deviation"])
    table = pd.DataFrame(
        {
            "kind": kinds_of_layer,
            "kappa_median": k_mid,
            "kappa_q05": k_lo,
            "kappa_q95": k_hi,
            "deviation_median": d_mid,
            "deviation_q05": d_lo,
            "deviation_q95": d_hi,
            "p_deviation_positive": np.mean(post["deviation"].values > 0, axis=(0, 1)),
            "stands_out": (d_lo > 0) | (d_hi < 0),
        },
        index=pd.Index(post["layer"].values, name="layer"),
    )
    order = np.argsort(-np.abs(d_mid), kind="stable")
    return table.iloc[order]
