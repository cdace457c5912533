r"""MP: the classical real Wishart (β = 1) null model, with spikes.

Generative story
----------------
:math:`W` has i.i.d. Gaussian entries: the eigenvalues of :math:`W^\top W` form the
β = 1 Laguerre ensemble (:math:`\kappa = N`, eigenvectors Haar: maximal
eigenvector entropy, the random-like phase), whose limit is Marchenko–Pastur:

.. math::

    p(\vartheta) \propto 1/\vartheta, \qquad
    \lambda \mid \vartheta, k \sim \mathrm{Laguerre}_{\beta=1}
    \bigl(N-k, \alpha = (M-N+1)/2, \vartheta\bigr) \oplus k \text{ spikes}.

Priors
------
- spikes: :math:`P(k)\propto 2^{-k}` on :math:`0..K`, Pareto ratios above the bulk
  with index :math:`\nu\sim\mathrm{Gamma}(2,1)` (:mod:`htmp_infer.mechanisms.spikes`);
- rate: scale-invariant (Jeffreys), integrated out exactly.

There is no continuous parameter left: the posterior of the spike count and the
rate are exact, so :func:`htmp_infer.fit` draws them independently (no MCMC), and
the evidence is a finite sum.
"""

from __future__ import annotations

import numpy as np
from jax import Array

from htmp_infer.ensembles.sampling import sample_beta_laguerre
from htmp_infer.mechanisms.bulk import as_table, laguerre_bulk, spiked_data
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

EXACT_POSTERIOR = True
"""No continuous parameter: fit draws the posterior exactly, without NUTS."""

#: The spike cap is raised until the posterior leaves it.
SPIKES_ADAPTIVE = True


def model(
    eigenvalues: Array | None,
    *,
    table: dict[str, Array],
    sizes: tuple[int, ...],
    n_cols: Array,
) -> None:
    """The MP NumPyro program (rate integrated, spike count summed out)."""
    tab = as_table(sizes, table)
    observe(eigenvalues, laguerre_bulk(tab, n_cols, beta=1.0), tab)


def exact_logits(spectrum: Spectrum) -> np.ndarray:
    """Log posterior weights (unnormalised) of each spike count."""
    static, data = spiked_data(spectrum)
    tab = as_table(static["sizes"], data["table"])
    bulk = laguerre_bulk(tab, data["n_cols"], beta=1.0)
    return np.asarray(bulk + tab.spike_log_density + tab.log_prior)


def postprocess(
    rng: np.random.Generator, samples: dict[str, np.ndarray], spectrum: Spectrum
) -> dict[str, np.ndarray]:
    r"""Draw the spike count, then the rate from :math:`\mathrm{Gamma}(E, S)`."""
    k = spike_counts(rng, samples)
    tab = spike_table(spectrum)
    n = np.asarray(tab.n)[k]
    shape = (spectrum.n_cols - k - n + 1.0) / 2.0
    energy = n * shape + n * (n - 1.0) / 2.0
    rate = rng.gamma(energy) / tab.total[k]
    return {
        "kappa": n.astype(float),
        "n_spikes": k,
        "rate": rate,
        "scale": (spectrum.n_cols - k) / (2.0 * rate),
    }


def simulate(
    rng: np.random.Generator, params: dict[str, float], spectrum: Spectrum
) -> np.ndarray:
    """One exact replicated spectrum (bulk and spikes) at the given draw."""
    k = int(params.get("n_spikes", 0))
    n = spectrum.n - k
    alpha = (spectrum.n_cols - k - n + 1.0) / 2.0
    rate = (spectrum.n_cols - k) / (2.0 * params["scale"])
    bulk = np.asarray(sample_beta_laguerre(rng, n, 1.0, alpha, rate))
    return add_spikes(rng, bulk, k)


def sample_prior(rng: np.random.Generator, n: int) -> dict[str, float]:
    """One draw of the parameters from the prior (scale fixed at 1: improper)."""
    p = np.exp(spike_log_prior(spike_limit(n)))
    return {"scale": 1.0, "n_spikes": float(rng.choice(p.size, p=p))}
