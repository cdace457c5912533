"""htmp-infer: posterior inference for the high-temperature Marchenko–Pastur model.

The package enables JAX's float64 mode on import: the Coulomb-gas likelihoods
cancel terms of order :math:`\\kappa N` and are wrong in float32 for
:math:`N \\gtrsim 10^3`.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

from htmp_infer.comparison import Comparison, compare  # noqa: E402
from htmp_infer.distributions import HTMP, BetaLaguerre, ScaleFreeHTMP  # noqa: E402
from htmp_infer.errors import (  # noqa: E402
    ConvergenceWarning,
    HTMPError,
    SpectrumError,
    WeightsError,
)
from htmp_infer.inference import fit  # noqa: E402
from htmp_infer.sampling import sample_beta_laguerre, sample_htmp  # noqa: E402
from htmp_infer.spectrum import Spectrum, SufficientStats  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "HTMP",
    "BetaLaguerre",
    "Comparison",
    "ConvergenceWarning",
    "HTMPError",
    "ScaleFreeHTMP",
    "Spectrum",
    "SpectrumError",
    "SufficientStats",
    "WeightsError",
    "__version__",
    "compare",
    "fit",
    "sample_beta_laguerre",
    "sample_htmp",
]
