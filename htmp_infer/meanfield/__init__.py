"""Mean-field (high-temperature) free energies of one-body Coulomb gases.

This subpackage owns the normalisers that have no closed form: the mean-field free
energy of a general one-body gas (:mod:`~htmp_infer.meanfield.free_energy`, solved on
a grid by :mod:`~htmp_infer.meanfield._solver`) and the tabulated normaliser of the
data-structure gas (:mod:`~htmp_infer.meanfield.data_edge`). It sits above
:mod:`htmp_infer.ensembles` and below the mechanism models that use it.
"""

import htmp_infer._x64  # noqa: F401  (float64 before any JAX array)
