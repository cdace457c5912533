r"""Power-law confinement (``power_law``): a β-prime gas with a power-law upper tail.

The model was called ``temperature``, after the Master Model's tempered
likelihood it was derived from (below). It was renamed after its shape, because
no test shows that it measures the training temperature: on a network trained
here at four batch sizes (the SGD temperature lr/B over a factor 64) its
reading :math:`\rho m/2` does not move monotonically with lr/B beyond its
uncertainty in any layer (``benchmarks/temperature_manipulation.py``,
``docs/validation.md``). Asking for ``temperature`` is an error that names the
new key.

Generative story
----------------
The Master Model raises the readout's marginal likelihood to the power
:math:`\rho = \tau/\eta`; for a Gaussian readout prior that factor is
:math:`\det(I + \Phi^\top\Phi/c)^{-\rho m/2} = \prod_i(1+\lambda_i/c)^{-\rho m/2}`
(``docs/model.md``). With a flat feature prior the eigenvalues form the β-prime
(Jacobi) Coulomb gas, exactly normalised by the Selberg integral:

.. math::

    p(\lambda\mid\kappa,b',c) \propto \prod_{i<j}|\lambda_i-\lambda_j|^{\kappa/N}
    \prod_i \lambda_i^{a-1}(1+\lambda_i/c)^{-\rho m/2},
    \qquad \rho m/2 = a + b' + \beta(N-1),

with the hard-edge exponent :math:`a = \beta(M-N+1)/2` of the matrix shape, plus
:math:`k` spikes. The limit density has a power-law *upper* tail
:math:`\lambda^{-b'-1}`: ``alpha_tail`` :math:`= b'+1`.

Identifiability: only the product :math:`\rho m/2` (reported as
``confinement_power``) enters; the temperature ratio :math:`\rho` and the number
of outputs :math:`m` cannot be told apart from one spectrum, so neither is
reported alone.

Priors
------
- ``kappa``: as :mod:`htmp_infer.models.htmp` (log-normal, median 4, log-sd 3);
- ``tail`` :math:`b'`: log-normal, median 3, log-sd 1.5 (HT-SR α = b'+1 from ~1.2
  to ~60 within ±2σ);
- scale :math:`c`: scale-invariant, :math:`d\log c` (improper, as every model's
  scale; ``docs/model.md``), sampled as ``log_relative_scale``
  :math:`= \log\bigl(c/(\bar\lambda\,\rho m/2)\bigr)`: with :math:`c = s\,\rho m/2`,
  :math:`(1+\lambda/c)^{-\rho m/2}\to e^{-\lambda/s}` as :math:`b'\to\infty`, so the
  HTMP limit lies along the ``log_tail`` axis at fixed :math:`s` instead of on a
  curved ridge (the Jacobian of this reparameterisation is 1 in
  :math:`d\log c` at fixed :math:`(\kappa, b')`);
- spikes: :math:`P(k)\propto 2^{-k}`, Gamma(2, 1) Pareto index.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array

from htmp_infer.errors import HTMPError
from htmp_infer.mechanisms.bulk import as_table, betaprime_bulk
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
LOG_TAIL_LOC = math.log(3.0)
LOG_TAIL_SCALE = 1.5


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
    """The power-law confinement NumPyro program (spike count summed out)."""
    if eigenvalues is None:
        raise HTMPError("the power_law model needs the observed eigenvalues")
    log_kappa = numpyro.sample("log_kappa", dist.Normal(LOG_KAPPA_LOC, LOG_KAPPA_SCALE))
    log_tail = numpyro.sample("log_tail", dist.Normal(LOG_TAIL_LOC, LOG_TAIL_SCALE))
    log_s = numpyro.sample(
        "log_relative_scale", dist.ImproperUniform(dist.constraints.real, (), ())
    )
    kappa = numpyro.deterministic("kappa", jnp.exp(log_kappa))
    tail = numpyro.deterministic("tail", jnp.exp(log_tail))
    tab = as_table(sizes, table)
    n = sizes[0]
    beta = kappa / n
    power = beta * (n_cols - n + 1.0) / 2.0 + tail + beta * (n - 1.0)
    unit = tab.total[0] / n  # mean eigenvalue: s is relative to it
    scale = numpyro.deterministic("scale", jnp.exp(log_s) * unit * power)
    observe(
        eigenvalues, betaprime_bulk(tab, eigenvalues, n_cols, kappa, tail, scale), tab
    )


def postprocess(
    rng: np.random.Generator, samples: dict[str, np.ndarray], spectrum: Spectrum
) -> dict[str, np.ndarray]:
    """Spike count per draw and the identified combinations."""
    kappa = np.asarray(samples["kappa"])
    tail = np.asarray(samples["tail"])
    k = spike_counts(rng, samples)
    n = np.asarray(spike_table(spectrum).n)[k]
    beta = kappa / n
    a = beta * (spectrum.n_cols - k - n + 1.0) / 2.0
    return {
        "n_spikes": k,
        "alpha_tail": tail + 1.0,
        "confinement_power": a + tail + beta * (n - 1.0),
        "kappa_over_gamma": kappa / spectrum.gamma,
    }


def simulate(
    rng: np.random.Generator, params: dict[str, float], spectrum: Spectrum
) -> np.ndarray:
    """One exact replicated spectrum (β-prime bulk by the β-Jacobi matrix model)."""
    from htmp_infer.ensembles.sampling_jacobi import sample_betaprime

    k = int(params.get("n_spikes", 0))
    n = spectrum.n - k
    beta = params["kappa"] / n
    a = beta * (spectrum.n_cols - k - n + 1.0) / 2.0
    bulk = sample_betaprime(rng, n, beta, a, params["tail"], params["scale"])
    return add_spikes(rng, np.asarray(bulk), k)


def sample_prior(rng: np.random.Generator, n: int) -> dict[str, float]:
    """One draw of the parameters from the prior (scale fixed at 1: improper)."""
    log_kappa = rng.normal(LOG_KAPPA_LOC, LOG_KAPPA_SCALE)
    log_tail = rng.normal(LOG_TAIL_LOC, LOG_TAIL_SCALE)
    p = np.exp(spike_log_prior(spike_limit(n)))
    return {
        "log_kappa": log_kappa,
        "kappa": float(np.exp(log_kappa)),
        "log_tail": log_tail,
        "tail": float(np.exp(log_tail)),
        "scale": 1.0,
        "n_spikes": float(rng.choice(p.size, p=p)),
    }


def relative_scale(params: dict[str, float], spectrum: Spectrum) -> float:
    """``log_relative_scale`` of parameters ``params`` for ``spectrum``."""
    n = spectrum.n
    beta = params["kappa"] / n
    power = beta * (spectrum.n_cols - n + 1.0) / 2.0 + params["tail"] + beta * (n - 1)
    mean = spectrum.stats.total / n
    return float(np.log(params["scale"] / (mean * power)))
