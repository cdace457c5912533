"""htmp-infer: posterior inference for the high-temperature Marchenko–Pastur model.

The root holds the public API; everything is imported on first use, so
``import htmp_infer`` is cheap. The subpackages, in the direction of their imports:
:mod:`~htmp_infer.ensembles` (exact gases and samplers), :mod:`~htmp_infer.limit`
(limit laws), :mod:`~htmp_infer.meanfield`, :mod:`~htmp_infer.mechanisms` (the
pieces of the models), :mod:`htmp_infer.models` (the NumPyro programs and priors),
:mod:`~htmp_infer.inference` (engines), :mod:`~htmp_infer.validation`,
:mod:`~htmp_infer.plotting`, :mod:`~htmp_infer.networks` (checkpoints and the scan)
and :mod:`~htmp_infer.cli`.

JAX's float64 mode is turned on when the first module that uses JAX is imported:
the Coulomb-gas likelihoods are wrong in float32 for :math:`N \\gtrsim 10^3`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from htmp_infer.errors import (
    ArgumentError,
    CensoredSpikesWarning,
    ConvergenceWarning,
    EvidenceWarning,
    HTMPError,
    OutputError,
    SpectrumError,
    SpectrumTypeError,
    WeightsError,
)

try:
    __version__ = version("htmp-infer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: Public name -> the module that defines it (imported on first access).
_LAZY = {
    "Spectrum": "htmp_infer.spectrum",
    "simulate": "htmp_infer.ensembles.simulate",
    "fit": "htmp_infer.inference.fit",
    "compare": "htmp_infer.inference.comparison",
    "Comparison": "htmp_infer.inference.comparison",
    "SamplerOptions": "htmp_infer.inference.options",
    "summarize": "htmp_infer.inference.summary",
    "scan": "htmp_infer.networks.scan",
    "ScanOptions": "htmp_infer.networks.scan",
    "ScanResult": "htmp_infer.networks.scan",
    "plot_esd": "htmp_infer.plotting.esd",
    "plot_kappa_forest": "htmp_infer.plotting.scan",
    "plot_mechanisms": "htmp_infer.plotting.scan",
    "plot_esd_grid": "htmp_infer.plotting.scan",
}

if TYPE_CHECKING:
    from htmp_infer.ensembles.simulate import simulate
    from htmp_infer.inference.comparison import Comparison, compare
    from htmp_infer.inference.fit import fit
    from htmp_infer.inference.options import SamplerOptions
    from htmp_infer.inference.summary import summarize
    from htmp_infer.networks.scan import ScanOptions, ScanResult, scan
    from htmp_infer.plotting.esd import plot_esd
    from htmp_infer.plotting.scan import (
        plot_esd_grid,
        plot_kappa_forest,
        plot_mechanisms,
    )
    from htmp_infer.spectrum import Spectrum


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'htmp_infer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArgumentError",
    "CensoredSpikesWarning",
    "Comparison",
    "ConvergenceWarning",
    "EvidenceWarning",
    "HTMPError",
    "OutputError",
    "SamplerOptions",
    "ScanOptions",
    "ScanResult",
    "Spectrum",
    "SpectrumError",
    "SpectrumTypeError",
    "WeightsError",
    "__version__",
    "compare",
    "fit",
    "plot_esd",
    "plot_esd_grid",
    "plot_kappa_forest",
    "plot_mechanisms",
    "scan",
    "simulate",
    "summarize",
]
