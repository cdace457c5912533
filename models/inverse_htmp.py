r"""Inverse HTMP: kernel (NTK, CK) and Hessian spectra, with spikes.

Generative story
----------------
A kernel :math:`K = \Phi\Phi^\top` whose features were trained under the Master
Model has an inverse-Wishart-like law (``docs/model.md``): the reciprocals
:math:`1/\mu_i` of its :math:`N` positive eigenvalues form the HTMP gas,

.. math::

    \log\kappa \sim \mathcal N(\log 4,\ 3^2), \qquad
    p(\vartheta) \propto 1/\vartheta, \qquad
    1/\mu \mid \kappa, \vartheta, k \sim \mathrm{HTMP}_{N-k,M-k}(\kappa, \vartheta)
    \oplus k \text{ spikes (on } \mu\text{)}.

Its upper tail is a power law, density :math:`\mu^{-\alpha}` with
:math:`\alpha = 1 + \kappa(1-\gamma)/(2\gamma)` (the HT-SR / WeightWatcher α,
reported as ``alpha_tail``), and its lower edge is inverse-Gamma.

Priors
------
As :mod:`htmp_infer.models.htmp`: log-normal κ, Jeffreys rate (integrated out exactly:
it
multiplies :math:`\sum_i 1/\mu_i`), spikes :math:`P(k)\propto 2^{-k}` with
Gamma(2, 1) Pareto index.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array

from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.limit import kappa_to_delta
from htmp_infer.mechanisms.bulk import as_table, inverse_laguerre_bulk
from htmp_infer.mechanisms.spikes import (
    add_spikes,
    spike_limit,
    spike_log_prior,
    spike_table,
)
from htmp_infer.models._common import data_kwargs as data_kwargs
from htmp_infer.models._common import observe, spike_counts
from htmp_infer.models._common import static_kwargs as static_kwargs
from htmp_infer.spectrum import Spectrum

LOG_KAPPA_LOC = math.log(4.0)
LOG_KAPPA_SCALE = 3.0


#: The posterior is drawn exactly (no MCMC, no quadrature).
EXACT_POSTERIOR = False
#: The spike cap is raised until the posterior leaves it.
SPIKES_ADAPTIVE = True


def model(
    eigenvalues: Array | None,
    *,
    table: dict[str, Array],
    sizes: tuple[int, ...],
    n_cols: Array,
) -> None:
    """The inverse-HTMP NumPyro program (rate integrated, spikes summed out)."""
    log_kappa = numpyro.sample("log_kappa", dist.Normal(LOG_KAPPA_LOC, LOG_KAPPA_SCALE))
    kappa = numpyro.deterministic("kappa", jnp.exp(log_kappa))
    tab = as_table(sizes, table)
    observe(eigenvalues, inverse_laguerre_bulk(tab, n_cols, kappa), tab)


def postprocess(
    rng: np.random.Generator, samples: dict[str, np.ndarray], spectrum: Spectrum
) -> dict[str, np.ndarray]:
    r"""Spike count, then the rate from :math:`\mathrm{Gamma}(E, \sum 1/\mu)`."""
    kappa = np.asarray(samples["kappa"])
    k = spike_counts(rng, samples)
    tab = spike_table(spectrum)
    n = np.asarray(tab.n)[k]
    beta = kappa / n
    shape = beta * (spectrum.n_cols - k - n + 1.0) / 2.0
    energy = n * shape + beta * n * (n - 1.0) / 2.0
    rate = rng.gamma(energy) / tab.sum_inv[k]
    gamma = spectrum.gamma
    return {
        "n_spikes": k,
        "rate": rate,
        "scale": beta * (spectrum.n_cols - k) / (2.0 * rate),
        "alpha_tail": 1.0 + kappa_to_delta(kappa, gamma),
        "edge_exponent": np.full(kappa.shape, np.inf),  # soft lower edge
        "kappa_over_gamma": kappa / gamma,
    }


def simulate(
    rng: np.random.Generator, params: dict[str, float], spectrum: Spectrum
) -> np.ndarray:
    """One exact replicated kernel spectrum: reciprocals of an HTMP draw, + spikes."""
    k = int(params.get("n_spikes", 0))
    lam = sample_htmp(
        rng,
        spectrum.n - k,
        params["kappa"],
        n_cols=spectrum.n_cols - k,
        scale=params["scale"],
    )
    return add_spikes(rng, np.sort(1.0 / lam), k)


def sample_prior(rng: np.random.Generator, n: int) -> dict[str, float]:
    """One draw of the parameters from the prior (scale fixed at 1: improper)."""
    log_kappa = rng.normal(LOG_KAPPA_LOC, LOG_KAPPA_SCALE)
    p = np.exp(spike_log_prior(spike_limit(n)))
    return {
        "log_kappa": log_kappa,
        "kappa": float(np.exp(log_kappa)),
        "scale": 1.0,
        "n_spikes": float(rng.choice(p.size, p=p)),
    }
