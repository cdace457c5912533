"""Turn on JAX's float64 mode; imported first by every module that uses JAX.

The Coulomb-gas likelihoods cancel terms of order :math:`\\kappa N` and are wrong
in float32 for :math:`N \\gtrsim 10^3`, so the package never runs without it.
Importing :mod:`htmp_infer` itself does not import JAX: the switch happens when
the first module that needs JAX is imported.
"""

import jax

jax.config.update("jax_enable_x64", True)
