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
    \lambda \mid \kappa, \vartheta \sim \mathrm{HTMP}_{N,M}(\kappa, \vartheta).

Priors
------
- ``kappa``: log-normal, median 4, with :math:`\pm 2.8\sigma` at
  :math:`\kappa = 10^{-3}` (rank collapse) and :math:`\kappa \approx 1.8\times10^4`
  (beyond :math:`\kappa = N`, the real Gaussian matrix :math:`\beta = 1`, for
  :math:`N` up to :math:`10^4`; the limit law is Marchenko–Pastur already for
  :math:`\kappa \gtrsim 10^2`).
- rate :math:`\vartheta`: scale-invariant (Jeffreys). Eigenvalue units carry no
  information, so inference does not depend on how a spectrum is scaled.

Parameterisation
----------------
The rate enters as :math:`\vartheta^E e^{-\vartheta S}` (:math:`E = N\alpha +
\beta N(N-1)/2`, :math:`S = \sum\lambda_i`), so it is integrated out exactly
(:func:`htmp_infer.likelihood.laguerre_log_marginal`) and NUTS samples the single
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
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array

from htmp_infer import ScaleFreeHTMP, Spectrum
from htmp_infer.likelihood import htmp_beta_shape
from htmp_infer.sampling import sample_htmp
from htmp_infer.selberg import laguerre_energy

LOG_KAPPA_LOC = math.log(4.0)
LOG_KAPPA_SCALE = 3.0


def model(
    eigenvalues: Array | None,
    *,
    log_vandermonde: Array | None = None,
    n: int,
    n_cols: float,
) -> None:
    """The HTMP NumPyro program (scale integrated out)."""
    log_kappa = numpyro.sample("log_kappa", dist.Normal(LOG_KAPPA_LOC, LOG_KAPPA_SCALE))
    kappa = numpyro.deterministic("kappa", jnp.exp(log_kappa))
    numpyro.sample(
        "eigenvalues",
        ScaleFreeHTMP(kappa, n=n, n_cols=n_cols, log_vandermonde=log_vandermonde),
        obs=eigenvalues,
    )


def static_kwargs(spectrum: Spectrum) -> dict[str, Any]:
    """Arguments fixed at compile time (shapes)."""
    return {"n": spectrum.n, "n_cols": spectrum.n_cols}


def data_kwargs(spectrum: Spectrum) -> dict[str, Any]:
    """Traced arguments: the data and its cached log-Vandermonde sum."""
    return {
        "eigenvalues": jnp.asarray(spectrum.eigenvalues),
        "log_vandermonde": jnp.asarray(spectrum.log_vandermonde),
    }


def postprocess(
    rng: np.random.Generator, samples: dict[str, np.ndarray], spectrum: Spectrum
) -> dict[str, np.ndarray]:
    r"""Draw the rate exactly from :math:`\mathrm{Gamma}(E(\kappa), S)` per draw."""
    kappa = np.asarray(samples["kappa"])
    beta, shape = htmp_beta_shape(kappa, spectrum.n, spectrum.n_cols)
    energy = np.asarray(laguerre_energy(spectrum.n, beta, shape))
    rate = rng.gamma(energy) / spectrum.stats.total
    scale = np.asarray(beta) * spectrum.n_cols / (2.0 * rate)
    return {"rate": rate, "scale": scale, "kappa_over_gamma": kappa / spectrum.gamma}


def simulate(
    rng: np.random.Generator, params: dict[str, float], spectrum: Spectrum
) -> np.ndarray:
    """One exact replicated spectrum at the given posterior draw."""
    return sample_htmp(
        rng,
        spectrum.n,
        params["kappa"],
        n_cols=spectrum.n_cols,
        scale=params["scale"],
    )
