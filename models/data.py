r"""Data structure: a soft lower edge from the data's alignment with eigenvectors.

Generative story
----------------
When the readout targets align with the features' eigenvectors, the Master
Model's marginal likelihood adds :math:`e^{-\rho h/(c+\lambda)}` to the one-body
weight (``docs/model.md`` §1); for a small readout scale :math:`c \ll \lambda` it is
the inverse-Gamma edge :math:`e^{-h'/\lambda}`, :math:`h' = \rho h`. With a Gaussian
feature prior (rate :math:`\vartheta`) the eigenvalues form the gas

.. math::

    p(\lambda\mid\kappa,h',\vartheta) \propto
    \prod_{i<j}|\lambda_i-\lambda_j|^{\kappa/N}
    \prod_i \lambda_i^{a-1}e^{-h'/\lambda_i}e^{-\vartheta\lambda_i},

:math:`a = \beta(M-N+1)/2`, plus :math:`k` spikes. The edge replaces the HTMP's
power-law lower tail :math:`\lambda^{\delta-1}` by an exponential cut-off at
:math:`\lambda \approx h'`: structure in the data lifts the small eigenvalues.

The normaliser has no closed form; :mod:`htmp_infer.meanfield.data_edge` uses the exact
Laguerre (Selberg) normaliser plus the mean-field free-energy difference of the
edge, tabulated per matrix shape. **This likelihood is an approximation**,
validated by simulation-based calibration against MCMC draws of the gas
(``tests/models/test_data_model.py``); replicated spectra come from that MCMC
(:func:`htmp_infer.ensembles.gas_mcmc.sample_gas_mcmc`), not from an exact sampler.

Identifiability: only :math:`h' = \rho h` enters (the temperature ratio and the
alignment :math:`h` are not separable), reported as ``edge`` in eigenvalue units
and as ``relative_edge`` :math:`v = h'\vartheta/(a+\kappa/2)`, the edge over the
HTMP mean eigenvalue.

Priors
------
- ``log_kappa``: normal with ``data_edge.KAPPA_RANGE`` = [0.01, 100] (the
  table's box) at ±3 sd: median κ = 1, sd 1.54 (κ in [0.14, 7.2] with 80%
  probability);
- ``log_relative_edge`` :math:`\log v`: normal with ``EDGE_PRIOR_RANGE`` =
  [1e-8, 10] at ±3 sd (median 3.2e-4, sd 3.45), inside the table's [1e-12, 10].
  Square weights have smallest eigenvalues 1e-5 to 1e-9 of the mean, so the
  prior reaches that far. ``data`` nests ``htmp`` at :math:`v \to 0`, so on a
  spectrum an edge does not change the two models are close in evidence
  (``docs/model.md``, "Priors");
- rate :math:`\vartheta`: scale-invariant :math:`d\log\vartheta` (improper),
  sampled as ``log_relative_scale`` :math:`= \log(E/(S_K\vartheta))`, with
  :math:`S_K` the sum of all but the :math:`K` largest eigenvalues (:math:`K` =
  :func:`~htmp_infer.mechanisms.spikes.default_max_spikes`, the first spike cap,
  whatever the cap in use), so that spikes holding most of the trace do not move
  the origin of the mode search. The prior is flat in this coordinate, so the
  anchor changes neither the posterior nor the evidence;
- spikes: :math:`P(k)\propto 2^{-k}` on :math:`0..L`, Gamma(2, 1) Pareto index;
  the cap is raised while the posterior presses against it, as in every model
  (one edge table per shape spans every count to :math:`L`).
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array

from htmp_infer.ensembles.gas_mcmc import sample_gas_mcmc
from htmp_infer.ensembles.sampling import sample_beta_laguerre
from htmp_infer.errors import HTMPError
from htmp_infer.meanfield.data_edge import (
    EDGE_RANGE,
    KAPPA_RANGE,
    edge_correction,
    edge_table,
)
from htmp_infer.mechanisms.bulk import as_table, data_edge_bulk
from htmp_infer.mechanisms.spikes import (
    add_spikes,
    default_max_spikes,
    spike_limit,
    spike_log_prior,
)
from htmp_infer.models._common import data_kwargs as _common_data
from htmp_infer.models._common import observe, spike_counts
from htmp_infer.models._common import static_kwargs as static_kwargs
from htmp_infer.spectrum import Spectrum

#: The spike cap is raised until the posterior leaves it (one edge table per
#: shape spans every spike count the prior allows).
SPIKES_ADAPTIVE = True

LOG_KAPPA = (math.log(KAPPA_RANGE[0]), math.log(KAPPA_RANGE[1]))
#: The prior's box for the relative edge v (±3 sd), inside the table's
#: ``EDGE_RANGE``: square weights have edges down to 1e-9 of the mean
#: (``docs/model.md`` §2, "Priors").
EDGE_PRIOR_RANGE = (1e-8, EDGE_RANGE[1])
LOG_EDGE = (math.log(EDGE_PRIOR_RANGE[0]), math.log(EDGE_PRIOR_RANGE[1]))
#: Smallest eigenvalue, relative to the mean of the bulk, that the model accepts.
#: The edge's posterior lies below it; the correction's continuation below the
#: table is measured to 1% down to v = 1e-20 (``docs/model.md``). Spectra below
#: it come from κ ≲ 0.15 (an HTMP draw at κ = 0.15, N = 100, M = 200 reaches
#: 1.7e-21), where the mode search could not reach the posterior anyway.
MIN_RELATIVE_EIGENVALUE = 1e-20
#: MCMC sweeps per replicated spectrum (the SBC suite checks they suffice).
SIM_STEPS = 400


def box_prior(bounds: tuple[float, float]) -> dist.Normal:
    """Normal prior centred on a box, with the box at ±3 sd.

    Smooth everywhere, so the grid's mode search and NUTS never meet a hard wall
    (a truncated prior piles a random-like spectrum's posterior against it, where
    no optimiser moves). Outside the table's box the correction is extrapolated
    (:func:`~htmp_infer.meanfield.data_edge.edge_correction`): held for κ (0.27%
    of the prior mass) and v > 10 (0.13%), continued to 0 below v = 1e-12
    (7e-9), as documented in ``docs/model.md``.
    """
    lo, hi = bounds
    return dist.Normal(0.5 * (lo + hi), (hi - lo) / 6.0)


def _loc_scale(bounds: tuple[float, float]) -> tuple[float, float]:
    return 0.5 * (bounds[0] + bounds[1]), (bounds[1] - bounds[0]) / 6.0


def _anchor(spectrum: Spectrum) -> float:
    """Sum of all but the ``default_max_spikes(n)`` largest eigenvalues."""
    n = spectrum.n
    return float(np.sum(np.sort(spectrum.eigenvalues)[: n - default_max_spikes(n)]))


def data_kwargs(spectrum: Spectrum) -> dict[str, Any]:
    """Traced arguments: the spike statistics and the edge table of this shape.

    The table spans every spike count to the prior's limit :math:`L` (or the cap,
    if set above it by hand), so one table serves every cap.

    Raises
    ------
    HTMPError
        When the smallest eigenvalue is below :data:`MIN_RELATIVE_EIGENVALUE` of
        the mean: the edge's posterior lies below it, where the normaliser's
        correction is not validated (and the mode search cannot reach it).
    """
    n = spectrum.n
    relative = float(np.min(spectrum.eigenvalues)) * (n - default_max_spikes(n))
    relative /= _anchor(spectrum)
    if relative < MIN_RELATIVE_EIGENVALUE:
        raise HTMPError(
            f"the data model cannot be evaluated on {spectrum.name!r}: its smallest "
            f"eigenvalue is {relative:.1e} of the mean, below "
            f"{MIN_RELATIVE_EIGENVALUE:.0e}, where the edge's normaliser is not "
            "validated (docs/model.md)"
        )
    out = _common_data(spectrum)
    cap = default_max_spikes(n) if spectrum.max_spikes is None else spectrum.max_spikes
    tab = edge_table(n, float(spectrum.n_cols), max(spike_limit(n), cap))
    out["edge"] = {"coef": jnp.asarray(tab.coef), "ratios": jnp.asarray(tab.ratios)}
    out["anchor"] = jnp.asarray(_anchor(spectrum))
    return out


def _unit_mean(kappa: Any, n: int, n_cols: Any) -> Any:
    """:math:`a_0 + \\kappa/2`: the HTMP mean eigenvalue at rate 1 (v's unit)."""
    return kappa * ((n_cols - n + 1.0) / (2.0 * n) + 0.5)


#: The posterior is drawn exactly (no MCMC, no quadrature).
EXACT_POSTERIOR = False


def model(
    eigenvalues: Array | None,
    *,
    table: dict[str, Array],
    edge: dict[str, Array],
    anchor: Array,
    sizes: tuple[int, ...],
    n_cols: Array,
) -> None:
    """The data-structure NumPyro program (spike count summed out)."""
    if eigenvalues is None:
        raise HTMPError("the data model needs the observed eigenvalues")
    log_kappa = numpyro.sample("log_kappa", box_prior(LOG_KAPPA))
    log_v = numpyro.sample("log_relative_edge", box_prior(LOG_EDGE))
    log_s = numpyro.sample(
        "log_relative_scale", dist.ImproperUniform(dist.constraints.real, (), ())
    )
    kappa = numpyro.deterministic("kappa", jnp.exp(log_kappa))
    v = numpyro.deterministic("relative_edge", jnp.exp(log_v))
    tab = as_table(sizes, table)
    n = sizes[0]
    energy = kappa * (n_cols - n + 1.0) / 2.0 + kappa * (n - 1.0) / 2.0
    # anchored on the bulk without the K largest values (K the first spike cap),
    # so a spike holding most of the trace does not push the mode out of the
    # search box
    rate = numpyro.deterministic("rate", energy / anchor * jnp.exp(-log_s))
    u = v * _unit_mean(kappa, n, n_cols)  # h' ϑ
    numpyro.deterministic("edge", u / rate)
    r = (n_cols - n + 1.0) / (2.0 * jnp.asarray(sizes, dtype=float))
    corr = edge_correction(edge["coef"], edge["ratios"], log_kappa, log_v, r)
    observe(eigenvalues, data_edge_bulk(tab, n_cols, kappa, u / rate, rate, corr), tab)


def postprocess(
    rng: np.random.Generator, samples: dict[str, np.ndarray], spectrum: Spectrum
) -> dict[str, np.ndarray]:
    """Spike count per draw and the HT-SR-style summaries."""
    kappa = np.asarray(samples["kappa"])
    return {
        "n_spikes": spike_counts(rng, samples),
        "kappa_over_gamma": kappa / spectrum.gamma,
    }


def _log_weight(x: Array, a: Array, u: Array) -> Array:
    return (a - 1.0) * jnp.log(x) - u / x - x


def simulate(
    rng: np.random.Generator, params: dict[str, float], spectrum: Spectrum
) -> np.ndarray:
    """One replicated spectrum: MCMC draw of the gas (``SIM_STEPS`` sweeps)."""
    k = int(params.get("n_spikes", 0))
    n = spectrum.n - k
    kappa = params["kappa"]
    a = kappa * (spectrum.n_cols - spectrum.n + 1.0) / (2.0 * n)
    u = params["relative_edge"] * float(_unit_mean(kappa, spectrum.n, spectrum.n_cols))
    start = sample_beta_laguerre(rng, n, kappa / n, a, 1.0)
    # lift the start above the edge; the factor keeps underflowed values distinct
    start = np.sqrt(np.sort(start) ** 2 + u) * np.exp(1e-6 * np.arange(n))
    x = sample_gas_mcmc(
        int(rng.integers(2**31)),
        n,
        kappa,
        _log_weight,
        start,
        steps=SIM_STEPS,
        weight_params=(a, u),
    )
    return add_spikes(rng, np.asarray(x) / params.get("rate", 1.0), k)


def sample_prior(rng: np.random.Generator, n: int) -> dict[str, float]:
    """One draw from the prior (rate fixed at 1: improper)."""
    log_kappa = float(rng.normal(*_loc_scale(LOG_KAPPA)))
    log_v = float(rng.normal(*_loc_scale(LOG_EDGE)))
    p = np.exp(spike_log_prior(spike_limit(n)))
    return {
        "log_kappa": log_kappa,
        "log_relative_edge": log_v,
        "kappa": math.exp(log_kappa),
        "relative_edge": math.exp(log_v),
        "rate": 1.0,
        "n_spikes": float(rng.choice(p.size, p=p)),
    }


def relative_scale(params: dict[str, float], spectrum: Spectrum) -> float:
    """``log_relative_scale`` of parameters ``params`` for ``spectrum``."""
    n, m = spectrum.n, spectrum.n_cols
    energy = params["kappa"] * ((m - n + 1.0) / 2.0 + (n - 1.0) / 2.0)
    return float(np.log(energy / (_anchor(spectrum) * params["rate"])))
