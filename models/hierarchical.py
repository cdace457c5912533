r"""Hierarchical HTMP: the layers of one network, partially pooled in log κ.

Generative story
----------------
Layer :math:`l = 1,\dots,L` of a network has a kind :math:`g_l` (a free label such
as ``"attention_q"`` or ``"mlp_in"``, :math:`G` kinds in all) and a relative depth
:math:`d_l\in[0, 1]` (:func:`relative_depth`). Its repulsion is

.. math::

    \log\kappa_l = \mu + a_{g_l} + b\,d_l + \tau z_l, \qquad
    a_g = \sigma_a u_g,

    \mu \sim \mathcal N(\log 4,\ 3^2), \quad
    u_g \sim \mathcal N(0, 1), \quad \sigma_a \sim \mathcal N^+(0, 1), \quad
    b \sim \mathcal N(0, 1), \quad \tau \sim \mathcal N^+(0, 1), \quad
    z_l \sim t_\nu(0, 1),

with :math:`\nu` = ``layer_df`` = 4 (``None``: :math:`z_l\sim\mathcal N(0, 1)`).
Given :math:`\kappa_l` its :math:`N_l` eigenvalues are the spiked HTMP of
:mod:`htmp_infer.models.htmp` (rate integrated out under :math:`d\log\vartheta`, spike
count
summed out), independently across layers:

.. math::

    p(\lambda_{1..L}\mid\kappa_{1..L}) = \prod_l p_{\rm HTMP}(\lambda_l\mid\kappa_l).

Each layer's likelihood is the exact one of :mod:`htmp_infer.models.htmp`, :math:`O(K)`
per
evaluation on cached statistics. Layers that share a static signature (bulk sizes,
:math:`M`) share one ``vmap``-ed evaluation; a network has a few such shapes.

Reported sites
--------------
``kappa``, ``log_kappa`` (dim ``layer``); ``group_log_kappa``
:math:`= \mu + a_g + b/2` (dim ``kind``), each kind's typical (median)
:math:`\log\kappa` at mid-depth; ``deviation`` :math:`= \tau z_l` (dim ``layer``),
how far a layer sits from its kind-and-depth prediction; ``sigma_a``, ``tau``. The
observed site ``eigenvalues`` has dims ``(layer, eig)`` (padded with NaN to the
largest :math:`N`; the padding is never read) and one log-likelihood term per
layer, so leave-one-layer-out cross-validation runs on the ``log_likelihood``
group.

Priors
------
- :math:`\mu`: the prior of :mod:`htmp_infer.models.htmp` (median :math:`\kappa = 4`,
log-sd 3).
- :math:`\sigma_a`, :math:`\tau`: half-normal(1) on the :math:`\log\kappa` scale, a
  factor :math:`e^{\pm 2}\approx 7` between kinds or layers within :math:`2\sigma`.
  They are sampled as :math:`\log\sigma_a`, :math:`\log\tau` with the half-normal
  density carried over (Jacobian included), so every latent site is real.
- :math:`b`: :math:`\mathcal N(0, 1)` per unit of relative depth (first to last
  block). Depth is the block index scaled to :math:`[0, 1]` over the network's
  blocks; layers without a block (embeddings, heads: depth ``None``) get
  :math:`d_l = 0.5`, where the depth term equals its value in ``group_log_kappa``.
- Layer deviations are Student-t with 4 degrees of freedom: one layer far from
  its kind (say :math:`\kappa = 200` among :math:`\kappa\approx 1.5`, 4.9 in
  :math:`\log\kappa`) is then explained as a tail draw instead of inflating
  :math:`\tau` and dragging its kind's centre towards it, which a normal
  :math:`z_l` does (measured: the kind's 90% interval then misses its truth).

Parameterisation
----------------
NUTS samples the same joint density in coordinates that a diagonal mass matrix
suits (every change below is a shift or a rotation: unit Jacobian).

- Layer effects are centred (NUTS samples :math:`\log\kappa_l`; ``deviation``
  :math:`= \tau z_l` is reported): each layer's likelihood pins
  :math:`\log\kappa_l` to :math:`\pm 0.1`–:math:`0.35` already at :math:`N\approx 50`,
  the data-dominated regime where the non-centred form needs 4–6 times more
  leapfrog steps.
- Kind effects are non-centred, rotated: :math:`u = H w` with :math:`H` the
  orthonormal Helmert basis (first column :math:`1/\sqrt G`), so ``kind_mean_z``
  :math:`= w_1 = \sqrt G\,\bar u` and ``kind_contrast`` :math:`= w_{2..G}`, both
  standard normal.
- The overall level is sampled where the data put it: ``mean_group_log_kappa``
  :math:`\bar m = \mu + \sigma_a\bar u + b/2`, the mean over kinds of
  ``group_log_kappa`` (at mid-depth), so that
  ``group_log_kappa`` :math:`= \bar m + \sigma_a H_{2..G}\,w_{2..G}` and
  :math:`\mu = \bar m - \sigma_a w_1/\sqrt G - b/2`. Its conditional law is
  :math:`\mathcal N(\log 4 + \sigma_a w_1/\sqrt G + b/2,\ 3^2)`, the prior of
  :math:`\mu` carried over.

In the original coordinates :math:`(\mu, u, b)` the data fix only the kind
centres :math:`\mu + \sigma_a u_g + b/2`, so :math:`\mu` and the :math:`u_g`
(posterior correlation −0.4 to −0.6 with two kinds) and :math:`\mu` and :math:`b`
(−0.3) slide along ridges that a diagonal mass matrix does not follow. A second
cause of slow mixing is not linear: the log-:math:`\tau` direction stiffens as
:math:`\tau` shrinks towards the spread of the layers, so a step size adapted at
large :math:`\tau` is too long at small :math:`\tau`: in these coordinates at
NUTS's usual target acceptance 0.85, one chain in four runs sat there for 200
draws (bulk ESS 23 of 2000, r̂ 1.07), hence the 0.95 of
:mod:`htmp_infer.inference.hierarchy`. On the 8-layer
network of ``tests/inference/test_hierarchy.py`` (2 chains × 1000 draws, seeds 1–4), the
smallest bulk/tail ESS over the reported sites was 317–712 / 206–731 in the
original coordinates at 0.85, and 433–794 / 320–716 in these at 0.95, with about
as many leapfrog steps per draw (18–30 against 14–31). :func:`to_latent` maps a
point of the original coordinates to the sampled ones.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array

from htmp_infer.mechanisms.bulk import (
    JointLogDensity,
    as_table,
    laguerre_bulk,
    spiked_data,
)
from htmp_infer.mechanisms.spikes import mix_spike_counts
from htmp_infer.models.htmp import LOG_KAPPA_LOC, LOG_KAPPA_SCALE
from htmp_infer.spectrum import Spectrum

__all__ = [
    "LAYER_DF",
    "MID_DEPTH",
    "helmert",
    "inputs",
    "layer_log_likelihoods",
    "log_half_normal",
    "model",
    "relative_depth",
    "to_latent",
]

MID_DEPTH = 0.5
"""Relative depth of layers without a block, and of ``group_log_kappa``."""
SIGMA_A_SCALE = 1.0
TAU_SCALE = 1.0
B_SCALE = 1.0
LAYER_DF = 4.0
"""Degrees of freedom of the Student-t layer deviations (``None``: normal)."""

Shapes = tuple[tuple[int, ...], ...]


def log_half_normal(scale: float) -> dist.Distribution:
    r"""Law of :math:`\log\sigma` for :math:`\sigma\sim\mathcal N^+(0, s^2)`."""
    return dist.TransformedDistribution(
        dist.HalfNormal(scale), dist.transforms.ExpTransform().inv
    )


def relative_depth(depths: Sequence[int | None]) -> np.ndarray:
    """Block indices scaled to ``[0, 1]``; ``None`` (and a single depth) give 0.5."""
    known = np.array([d for d in depths if d is not None], dtype=float)
    lo, hi = (known.min(), known.max()) if known.size else (0.0, 0.0)
    return np.array(
        [
            MID_DEPTH if d is None or hi == lo else (float(d) - lo) / (hi - lo)
            for d in depths
        ]
    )


def inputs(
    spectra: Sequence[Spectrum], kind: Sequence[int], depth: Sequence[float]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Static and traced keyword arguments of :func:`model`.

    Parameters
    ----------
    spectra : sequence of Spectrum
        One spectrum per layer.
    kind : sequence of int
        Kind index of each layer, in ``0..G-1``.
    depth : sequence of float
        Relative depth of each layer (:func:`relative_depth`).

    Returns
    -------
    static : dict
        ``shapes`` (per group of layers with the same :math:`N` and spike cap:
        the bulk sizes), ``members`` (the layer indices of each group) and
        ``n_kinds``.
    data : dict
        ``eigenvalues`` (NaN-padded, ``(L, max N)``), ``tables`` (per group, the
        stacked spike tables and :math:`M`), ``kind`` and ``depth``.
    """
    per_layer = [spiked_data(s) for s in spectra]
    signatures: dict[tuple[int, ...], list[int]] = {}
    for i, (static, _) in enumerate(per_layer):
        signatures.setdefault(static["sizes"], []).append(i)
    tables = tuple(
        jax.tree.map(
            lambda *xs: jnp.stack(xs),
            *[{k: per_layer[i][1][k] for k in ("table", "n_cols")} for i in members],
        )
        for members in signatures.values()
    )
    width = max(s.n for s in spectra)
    padded = np.full((len(spectra), width), np.nan)
    for i, s in enumerate(spectra):
        padded[i, : s.n] = s.eigenvalues
    static = {
        "shapes": tuple(signatures),
        "members": tuple(tuple(m) for m in signatures.values()),
        "n_kinds": int(max(kind)) + 1,
    }
    data = {
        "eigenvalues": jnp.asarray(padded),
        "tables": tables,
        "kind": jnp.asarray(kind, dtype=jnp.int32),
        "depth": jnp.asarray(depth, dtype=float),
    }
    return static, data


def _one_layer(sizes: tuple[int, ...], layer: dict[str, Any], kappa: Array) -> Array:
    """Exact spiked HTMP log-likelihood of one layer (:mod:`htmp_infer.models.htmp`)."""
    tab = as_table(sizes, layer["table"])
    return mix_spike_counts(laguerre_bulk(tab, layer["n_cols"], kappa), tab)


def layer_log_likelihoods(
    kappa: Array,
    tables: tuple[dict[str, Any], ...],
    shapes: Shapes,
    members: tuple[tuple[int, ...], ...],
) -> Array:
    """Exact spiked HTMP log-likelihood of every layer, one ``vmap`` per group."""
    out = jnp.zeros(jnp.shape(kappa))
    for sizes, idx, group in zip(shapes, members, tables, strict=True):
        rows = np.asarray(idx)
        one = functools.partial(_one_layer, sizes)
        out = out.at[rows].set(jax.vmap(one)(group, kappa[rows]))
    return out


def helmert(n: int) -> np.ndarray:
    """Orthonormal ``(n, n)`` Helmert matrix; column 0 is constant, ``1/sqrt(n)``.

    Columns ``1..n-1`` are contrasts (they sum to zero): column ``k`` compares
    entry ``k`` with the mean of entries ``0..k-1``.
    """
    h = np.zeros((n, n))
    h[:, 0] = 1.0 / math.sqrt(n)
    for k in range(1, n):
        h[:k, k] = 1.0
        h[k, k] = -float(k)
        h[:, k] /= math.sqrt(k * (k + 1))
    return h


def to_latent(point: dict[str, Any], n_kinds: int) -> dict[str, Any]:
    r"""Sampled coordinates of a point given as ``mu``, ``u``, ``b`` and the rest.

    ``kind_mean_z`` and ``kind_contrast`` are :math:`H^\top u`,
    ``mean_group_log_kappa`` is :math:`\mu + \sigma_a\bar u + b/2`; other entries
    (``b``, ``log_sigma_a``, ``log_tau``, ``log_kappa``) pass through. The map has
    unit Jacobian, so :func:`model` has the same log density at both.
    """
    out = {k: v for k, v in point.items() if k not in ("mu", "u")}
    w = helmert(n_kinds).T @ np.asarray(point["u"], dtype=float)
    sigma_a = np.exp(point["log_sigma_a"])
    out["kind_mean_z"] = w[0]
    if n_kinds > 1:
        out["kind_contrast"] = w[1:]
    out["mean_group_log_kappa"] = (
        point["mu"] + sigma_a * w[0] / math.sqrt(n_kinds) + point["b"] * MID_DEPTH
    )
    return out


def model(
    eigenvalues: Array | None,
    *,
    tables: tuple[dict[str, Array], ...],
    kind: Array,
    depth: Array,
    shapes: Shapes,
    members: tuple[tuple[int, ...], ...],
    n_kinds: int,
    layer_df: float | None = LAYER_DF,
) -> None:
    """The hierarchical NumPyro program (rates integrated, spike counts summed out).

    Sampled in the coordinates of the module's *Parameterisation* section; the
    joint density is that of the generative story.
    """
    n_layers = sum(len(m) for m in members)
    h = jnp.asarray(helmert(n_kinds))
    b = numpyro.sample("b", dist.Normal(0.0, B_SCALE))
    sigma_a = numpyro.deterministic(
        "sigma_a",
        jnp.exp(numpyro.sample("log_sigma_a", log_half_normal(SIGMA_A_SCALE))),
    )
    tau = numpyro.deterministic(
        "tau", jnp.exp(numpyro.sample("log_tau", log_half_normal(TAU_SCALE)))
    )
    w_mean = numpyro.sample("kind_mean_z", dist.Normal(0.0, 1.0))
    if n_kinds > 1:
        with numpyro.plate("contrast", n_kinds - 1):
            w_contrast = numpyro.sample("kind_contrast", dist.Normal(0.0, 1.0))
    else:  # one kind: no contrasts
        w_contrast = jnp.zeros(0)
    # mu = m_bar - shift ~ N(LOG_KAPPA_LOC, LOG_KAPPA_SCALE): the prior of mu
    shift = sigma_a * w_mean / math.sqrt(n_kinds) + b * MID_DEPTH
    m_bar = numpyro.sample(
        "mean_group_log_kappa",
        dist.Normal(LOG_KAPPA_LOC + shift, LOG_KAPPA_SCALE),
    )
    numpyro.deterministic("mu", m_bar - shift)
    with numpyro.plate("kind", n_kinds):
        numpyro.deterministic("u", h[:, 0] * w_mean + h[:, 1:] @ w_contrast)
        group = numpyro.deterministic(
            "group_log_kappa", m_bar + sigma_a * (h[:, 1:] @ w_contrast)
        )
    with numpyro.plate("layer", n_layers):
        pred = group[kind] + b * (depth - MID_DEPTH)  # = mu + sigma_a u_g + b d_l
        law = (
            dist.Normal(pred, tau)
            if layer_df is None
            else dist.StudentT(layer_df, pred, tau)
        )
        log_kappa = numpyro.sample("log_kappa", law)  # centred: pred + tau * z
        numpyro.deterministic("deviation", log_kappa - pred)
        kappa = numpyro.deterministic("kappa", jnp.exp(log_kappa))
        log_lik = layer_log_likelihoods(kappa, tables, shapes, members)
        width = 0 if eigenvalues is None else jnp.shape(eigenvalues)[-1]
        numpyro.sample("eigenvalues", JointLogDensity(log_lik, width), obs=eigenvalues)
