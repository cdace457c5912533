r"""HTMP: the finite-N high-temperature Marchenko–Pastur Coulomb gas.

Generative story
----------------
The :math:`N` positive eigenvalues of :math:`W^\top W` (:math:`W` of shape
:math:`N\times M`, :math:`\gamma = N/M`) form a β-Laguerre Coulomb gas with Dyson
index :math:`\beta = \kappa/N`, one-body exponent :math:`\alpha = \beta(M-N+1)/2`
and rate :math:`\vartheta`:

.. math::

    \log\kappa \sim \mathcal N(\log 4,\ 3^2), \qquad
    p(\vartheta) \propto 1/\vartheta, \qquad
    \lambda \mid \kappa, \vartheta, k \sim \mathrm{HTMP}_{N-k,M-k}(\kappa, \vartheta)
    \oplus k \text{ spikes}.

The :math:`k` spikes (outliers above the bulk, :mod:`htmp_infer.mechanisms.spikes`) are
summed
out exactly; ``n_spikes`` is drawn from its conditional posterior per draw.

Priors
------
- ``kappa``: log-normal, median 4, with :math:`\pm 2.8\sigma` at
  :math:`\kappa = 10^{-3}` (rank collapse) and :math:`\kappa \approx 1.8\times10^4`
  (beyond :math:`\kappa = N`, the real Gaussian matrix :math:`\beta = 1`, for
  :math:`N` up to :math:`10^4`; the limit law is Marchenko–Pastur already for
  :math:`\kappa \gtrsim 10^2`).
- spikes: :math:`P(k)\propto 2^{-k}` on :math:`0..K`, Pareto ratios above the bulk
  with index :math:`\nu\sim\mathrm{Gamma}(2,1)` (:mod:`htmp_infer.mechanisms.spikes`).
- rate :math:`\vartheta`: scale-invariant (Jeffreys). Eigenvalue units carry no
  information, so inference does not depend on how a spectrum is scaled.

Parameterisation
----------------
The rate enters as :math:`\vartheta^E e^{-\vartheta S}` (:math:`E = N\alpha +
\beta N(N-1)/2`, :math:`S = \sum\lambda_i`), so it is integrated out exactly
(:func:`htmp_infer.ensembles.likelihood.laguerre_log_marginal`) and NUTS samples the
single
unconstrained coordinate ``log_kappa``. The plain :math:`(\beta, \alpha, s)`
parameterisation has a posterior ridge (β and the scale are strongly
anti-correlated) that costs NUTS ~32 leapfrog steps per iteration at
:math:`N = 4096`; the collapsed one-dimensional posterior costs about 3 at every
:math:`N`. The rate is then drawn exactly from its conditional posterior
:math:`\vartheta\mid\kappa,\lambda \sim \mathrm{Gamma}(E, S)` for every draw
(:func:`postprocess`), and reported as ``scale`` :math:`= \beta M/(2\vartheta)`,
the expected mean eigenvalue.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array

from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.mechanisms.bulk import as_table, laguerre_bulk
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
    """The HTMP NumPyro program (rate integrated, spike count summed out)."""
    log_kappa = numpyro.sample("log_kappa", dist.Normal(LOG_KAPPA_LOC, LOG_KAPPA_SCALE))
    kappa = numpyro.deterministic("kappa", jnp.exp(log_kappa))
    tab = as_table(sizes, table)
    observe(eigenvalues, laguerre_bulk(tab, n_cols, kappa), tab)


def postprocess(
    rng: np.random.Generator, samples: dict[str, np.ndarray], spectrum: Spectrum
) -> dict[str, np.ndarray]:
    r"""Draw the spike count, then the rate from :math:`\mathrm{Gamma}(E, S)`."""
    kappa = np.asarray(samples["kappa"])
    k = spike_counts(rng, samples)
    tab = spike_table(spectrum)
    n = np.asarray(tab.n)[k]
    beta = kappa / n
    shape = beta * (spectrum.n_cols - k - n + 1.0) / 2.0
    energy = n * shape + beta * n * (n - 1.0) / 2.0  # laguerre_energy, per draw
    rate = rng.gamma(energy) / tab.total[k]
    scale = beta * (spectrum.n_cols - k) / (2.0 * rate)
    return {
        "n_spikes": k,
        "rate": rate,
        "scale": scale,
        "kappa_over_gamma": kappa / spectrum.gamma,
    }


def simulate(
    rng: np.random.Generator, params: dict[str, float], spectrum: Spectrum
) -> np.ndarray:
    """One exact replicated spectrum (bulk and spikes) at the given draw."""
    k = int(params.get("n_spikes", 0))
    bulk = sample_htmp(
        rng,
        spectrum.n - k,
        params["kappa"],
        n_cols=spectrum.n_cols - k,
        scale=params["scale"],
    )
    return add_spikes(rng, bulk, k)


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
