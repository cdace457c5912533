"""Exact finite-N Coulomb gases: normalisers, densities and samplers.

This subpackage owns the exact mathematics of the β-ensembles behind every model:
the closed-form Selberg normalisers of the β-Laguerre and β-Jacobi gases
(:mod:`~htmp_infer.ensembles.selberg`, :mod:`~htmp_infer.ensembles.jacobi`), the
log-likelihoods on sufficient statistics (:mod:`~htmp_infer.ensembles.likelihood`),
the NumPyro distributions built on them (:mod:`~htmp_infer.ensembles.distributions`),
and the exact samplers that serve as reference generators: the Dumitriu–Edelman
bidiagonal model (:mod:`~htmp_infer.ensembles.sampling`), the Edelman–Sutton CS model
(:mod:`~htmp_infer.ensembles.sampling_jacobi`) and an MCMC for any one-body weight
(:mod:`~htmp_infer.ensembles.gas_mcmc`). It depends only on the package base
(:mod:`htmp_infer.spectrum`, :mod:`htmp_infer.errors`).
"""

import htmp_infer._x64  # noqa: F401  (float64 before any JAX array)
