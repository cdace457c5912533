r"""Hard edge: the HTMP Coulomb gas with its one-body (hard-edge) exponent free.

Generative story
----------------
The :math:`N` positive eigenvalues form a β-Laguerre Coulomb gas with Dyson index
:math:`\beta = \kappa/N` as in :mod:`htmp_infer.models.htmp`, but the exponent
:math:`a` of the one-body weight :math:`\lambda^{a-1}` is a parameter of its own
instead of the matrix shape's :math:`\beta(M-N+1)/2`:

.. math::

    p(\lambda\mid\kappa, a, \vartheta) = \frac{N!}{Z_N}
    \prod_{i<j}|\lambda_i-\lambda_j|^{\beta}
    \prod_i \lambda_i^{a-1}e^{-\vartheta\lambda_i},
    \qquad \beta = \kappa/N,

.. math::

    \log\kappa \sim \mathcal N(\log 4,\ 3^2), \qquad
    \log a \sim \mathcal N(\log\tfrac12,\ 3^2), \qquad
    p(\vartheta) \propto 1/\vartheta, \qquad
    \lambda \mid \kappa, a, \vartheta, k \sim
    \mathrm{Laguerre}_{N-k}(\beta_k, a, \vartheta) \oplus k \text{ spikes},

with :math:`\beta_k = \kappa/(N-k)` and the same :math:`a` for every spike count
:math:`k` (spikes as in every model, :mod:`htmp_infer.mechanisms.spikes`, summed
out exactly). :math:`Z_N` is the exact Selberg (Laguerre) normaliser, valid for
every :math:`a > 0`
(:func:`htmp_infer.ensembles.selberg.laguerre_shape_log_normalizer_sizes`).

Why the exponent is free
------------------------
The exponent sets the density at the lower (hard) edge,
:math:`\rho(\lambda)\propto\lambda^{a-1}` near 0 at finite :math:`N`. HTMP ties it
to the shape: :math:`a = \kappa(M-N+1)/(2N)`, which is
:math:`\kappa/(2N)\approx 0.005` for a square matrix at :math:`\kappa = 4`,
:math:`N = 384`. Such a gas puts 2.4% of its eigenvalues below
:math:`10^{-10}` of the mean (8% at :math:`\kappa = 1`); square weight matrices
of trained networks have their smallest eigenvalue near
:math:`10^{-5}\ldots10^{-9}` of the mean, and a 384×384 real Gaussian matrix
(β = 1, :math:`a = (M-N+1)/2 = 1/2`) has a soft :math:`\lambda^{-1/2}` edge.
With :math:`a` free the data decide.

Relation to HTMP
----------------
The model contains HTMP: at :math:`a = \beta(M-N+1)/2` it is
:mod:`~htmp_infer.models.htmp` (for each :math:`k`, with that :math:`k`'s
:math:`a`). Any :math:`a` is the HTMP exponent of an *effective* column count
:math:`M_{\rm eff} = 2a/\beta + N - 1` (real, not necessarily :math:`\ge N`),
and for :math:`N\to\infty` at fixed :math:`\kappa` and :math:`a`,
:math:`a = \kappa(1-\gamma_{\rm eff})/(2\gamma_{\rm eff})`: the limit law is HTMP
at the effective aspect ratio

.. math::

    \gamma_{\rm eff} = \frac{\kappa}{\kappa + 2a}.

A square matrix whose fitted :math:`a` is :math:`O(1)` therefore has the bulk
shape of a rectangular HTMP matrix. The likelihood and the simulator do not use
:math:`M` at all: the matrix shape enters only the reported
``tied_edge_exponent`` and ``kappa_over_gamma``. The two models are nested, so
their evidence ratio charges the extra coordinate its Occam factor: on spectra
drawn from HTMP, ``hard_edge`` loses (``benchmarks/hard_edge_nested.py``).

Identifiability
---------------
At :math:`\gamma = 1` the tied exponent is :math:`\kappa/(2N)`, and the lower
edge tells :math:`a` and :math:`\kappa` apart (posterior correlation of
:math:`\log a` and :math:`\log\kappa` about :math:`-0.3`, sd of :math:`\log a`
about 0.8 on HTMP draws at :math:`N = 384`). For rectangular matrices the tied
:math:`a \approx \kappa(1-\gamma)/(2\gamma)` is :math:`O(\kappa)`
(:math:`1.5\kappa` at :math:`\gamma = 1/4`): the edge is soft, the bulk's shape
fixes mainly :math:`\gamma_{\rm eff}`, and :math:`a` is confounded with
:math:`\kappa` (correlation 0.97–0.996 at :math:`\gamma = 1/2` and
:math:`1/4`, :math:`N = 384`), agreeing with the tie: the exponent is then no
separate reading of the spectrum.

Priors
------
- ``kappa``: as :mod:`htmp_infer.models.htmp` (log-normal, median 4, log-sd 3);
- ``edge_exponent`` :math:`a`: log-normal, median :math:`1/2` (the real Gaussian
  square matrix), log-sd 3. Within :math:`\pm 3\sigma`
  (:math:`6\times10^{-5}\ldots4\times10^{3}`) lie the tied HTMP values from
  :math:`\kappa/(2N)` at :math:`\gamma = 1` (:math:`5\times10^{-3}` at
  :math:`\kappa = 4`, :math:`N = 384`) to :math:`\approx1.5\kappa` at
  :math:`\gamma = 1/4`, for the usual :math:`\kappa`;
- rate :math:`\vartheta`: scale-invariant :math:`d\vartheta/\vartheta`, integrated
  out exactly as in HTMP: :math:`\vartheta^E e^{-\vartheta S}` with
  :math:`E = Na + \beta N(N-1)/2`, :math:`S = \sum\lambda_i`;
- spikes: :math:`P(k)\propto 2^{-k}`, Gamma(2, 1) Pareto index, cap adapted
  (``SPIKES_ADAPTIVE``).

NUTS and the quadrature see the two coordinates ``log_kappa`` and
``log_edge_exponent``. :func:`postprocess` draws the spike count, then the rate
from its exact conditional :math:`\mathrm{Gamma}(E, S_k)`, and reports ``scale``
:math:`= \mathbb E[\bar\lambda] = E/(n\vartheta) = (a + \beta(n-1)/2)/\vartheta`
(:math:`n = N-k`; at the tie this is HTMP's :math:`\beta(M-k)/(2\vartheta)`),
``kappa_over_gamma`` and ``tied_edge_exponent`` :math:`= \beta(M-N+1)/2`, the HTMP
value at the drawn :math:`\kappa`, for comparison with ``edge_exponent``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array

from htmp_infer.ensembles.sampling import sample_beta_laguerre
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
LOG_EDGE_LOC = math.log(0.5)
LOG_EDGE_SCALE = 3.0


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
    """The hard-edge NumPyro program (rate integrated, spike count summed out)."""
    log_kappa = numpyro.sample("log_kappa", dist.Normal(LOG_KAPPA_LOC, LOG_KAPPA_SCALE))
    log_edge = numpyro.sample(
        "log_edge_exponent", dist.Normal(LOG_EDGE_LOC, LOG_EDGE_SCALE)
    )
    kappa = numpyro.deterministic("kappa", jnp.exp(log_kappa))
    edge = numpyro.deterministic("edge_exponent", jnp.exp(log_edge))
    tab = as_table(sizes, table)
    observe(eigenvalues, laguerre_bulk(tab, n_cols, kappa, exponent=edge), tab)


def postprocess(
    rng: np.random.Generator, samples: dict[str, np.ndarray], spectrum: Spectrum
) -> dict[str, np.ndarray]:
    r"""Draw the spike count, then the rate from :math:`\mathrm{Gamma}(E, S)`."""
    kappa = np.asarray(samples["kappa"])
    edge = np.asarray(samples["edge_exponent"])
    k = spike_counts(rng, samples)
    tab = spike_table(spectrum)
    n = np.asarray(tab.n)[k]
    beta = kappa / n
    energy = n * edge + beta * n * (n - 1.0) / 2.0
    rate = rng.gamma(energy) / tab.total[k]
    return {
        "n_spikes": k,
        "rate": rate,
        "scale": energy / (n * rate),
        "kappa_over_gamma": kappa / spectrum.gamma,
        "tied_edge_exponent": beta * (spectrum.n_cols - spectrum.n + 1.0) / 2.0,
    }


def simulate(
    rng: np.random.Generator, params: dict[str, float], spectrum: Spectrum
) -> np.ndarray:
    r"""One exact replicated spectrum (bulk and spikes) at the given draw.

    The bulk is the Dumitriu–Edelman bidiagonal model
    (:func:`~htmp_infer.ensembles.sampling.sample_beta_laguerre`) with exponent
    :math:`a`: the HTMP sampler at the real column count
    :math:`M_{\rm eff} = 2a/\beta + n - 1`, its χ degrees of freedom
    :math:`2a + \beta(n-1-i)` real, not rounded.
    """
    k = int(params.get("n_spikes", 0))
    n = spectrum.n - k
    beta = params["kappa"] / n
    edge = params["edge_exponent"]
    rate = (edge + beta * (n - 1.0) / 2.0) / params["scale"]
    bulk = sample_beta_laguerre(rng, n, beta, edge, rate)
    return add_spikes(rng, np.asarray(bulk), k)


def sample_prior(rng: np.random.Generator, n: int) -> dict[str, float]:
    """One draw of the parameters from the prior (scale fixed at 1: improper)."""
    log_kappa = rng.normal(LOG_KAPPA_LOC, LOG_KAPPA_SCALE)
    log_edge = rng.normal(LOG_EDGE_LOC, LOG_EDGE_SCALE)
    p = np.exp(spike_log_prior(spike_limit(n)))
    return {
        "log_kappa": log_kappa,
        "kappa": float(np.exp(log_kappa)),
        "log_edge_exponent": log_edge,
        "edge_exponent": float(np.exp(log_edge)),
        "scale": 1.0,
        "n_spikes": float(rng.choice(p.size, p=p)),
    }
