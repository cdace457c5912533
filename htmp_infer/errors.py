"""Exceptions and warnings raised by htmp-infer, and the policy they follow.

- A failure of the domain (a spectrum no model can integrate, a file that is not
  a checkpoint, a posterior that cannot be summarised) is an :class:`HTMPError`.
- A bad argument (out of range, of the wrong type, an unknown name) is an
  :class:`ArgumentError`: an ``HTMPError`` that is also a ``ValueError``
  (:class:`SpectrumError`, :class:`WeightsError` and :class:`OutputError` are
  the bad-argument errors of spectra, checkpoints and output paths).
- Control flow is not an error: a signal between two parts of the package
  (such as :class:`htmp_infer.inference._grid_rule.HigherNode`) subclasses
  ``Exception`` only, so no caller reports it as a failure.

The CLI reports every ``HTMPError`` as one line and exits with status 2; a scan
lists a layer that raised one and goes on. ``RuntimeError`` is not used for
either kind.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "CensoredSpikesWarning",
    "ConvergenceWarning",
    "EvidenceWarning",
    "HTMPError",
    "OutputError",
    "SpectrumError",
    "SpectrumTypeError",
    "WeightsError",
]


class HTMPError(Exception):
    """Base class of the errors htmp-infer raises: bad input, or a domain failure.

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
