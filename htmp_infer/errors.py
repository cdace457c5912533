"""Exceptions and warnings raised by htmp-infer."""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "ConvergenceWarning",
    "EvidenceWarning",
    "HTMPError",
    "OutputError",
    "SpectrumError",
    "SpectrumTypeError",
    "WeightsError",
]


class HTMPError(Exception):
    """Base class of the errors htmp-infer raises on bad input.

    The CLI reports these as a single line and exits with status 2.
    """


class SpectrumError(HTMPError, ValueError):
    """A spectrum (eigenvalues or matrix) that cannot be fitted."""


class SpectrumTypeError(HTMPError, TypeError):
    """Something other than a :class:`~htmp_infer.Spectrum` where one is needed.

    A bare eigenvalue array carries no matrix shape (``gamma = N/M``), so the API
    refuses it and says how to build a spectrum.
    """


class ArgumentError(HTMPError, ValueError):
    """An argument out of its range or of the wrong kind (seed, chains, model...)."""


class WeightsError(HTMPError, ValueError):
    """A checkpoint (weights file or directory) that cannot be read."""


class OutputError(HTMPError, ValueError):
    """An output path that cannot be written, or that would replace an input."""


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics (r-hat, ESS, divergences) crossed their thresholds."""


class EvidenceWarning(UserWarning):
    """An evidence whose quadrature error exceeds 0.1 nats (reported with it)."""


class CensoredSpikesWarning(EvidenceWarning):
    """The posterior presses against the largest spike count the prior allows.

    The posterior is exact for the model's prior; the warning says that prior
    may be too narrow for this spectrum (``cap_mass`` says by how much).
    """
