"""The protocol every mechanism model of :mod:`htmp_infer.models` follows."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from htmp_infer.spectrum import Spectrum

__all__ = ["ExactModel", "MechanismModel", "ScaledModel"]


class MechanismModel(Protocol):
    """A model module: a NumPyro program, its priors and its exact simulator.

    The inference engines use a model only through these names, so a new
    mechanism is a new module that provides them (and a line in
    ``htmp_infer.models.REGISTRY``).

    Attributes
    ----------
    EXACT_POSTERIOR : bool
        The posterior is a finite sum over the spike count alone (no continuous
        parameter): it is computed exactly, without MCMC or quadrature.
    SPIKES_ADAPTIVE : bool
        The cap on the spike count is raised until the posterior puts at most
        5% of its mass on it; otherwise the model's own cap is fixed.
    """

    EXACT_POSTERIOR: bool
    SPIKES_ADAPTIVE: bool

    def model(self, *args: Any, **kwargs: Any) -> None:
        """The NumPyro program (observed eigenvalues, static and traced data)."""

    def static_kwargs(self, spectrum: Spectrum) -> dict[str, Any]:
        """Static arguments of :meth:`model` (shapes) for ``spectrum``."""

    def data_kwargs(self, spectrum: Spectrum) -> dict[str, Any]:
        """Traced arguments of :meth:`model` (data, statistics, :math:`M`)."""

    def postprocess(
        self, rng: np.random.Generator, samples: dict[str, Any], spectrum: Spectrum
    ) -> dict[str, Any]:
        """Exact draws of the collapsed parameters for posterior ``samples``."""

    def simulate(
        self, rng: np.random.Generator, params: dict[str, float], spectrum: Spectrum
    ) -> np.ndarray:
        """A replicated spectrum of ``spectrum``'s shape at ``params``."""

    def sample_prior(self, rng: np.random.Generator, n: int) -> dict[str, float]:
        """One draw of the parameters from the prior (for calibration)."""


class ExactModel(MechanismModel, Protocol):
    """A model whose posterior is a finite sum (``EXACT_POSTERIOR = True``)."""

    def exact_logits(self, spectrum: Spectrum) -> np.ndarray:
        """Unnormalised log posterior of each spike count :math:`k`."""


class ScaledModel(MechanismModel, Protocol):
    """A model whose scale is sampled relative to a summary of the spectrum."""

    def relative_scale(self, params: dict[str, float], spectrum: Spectrum) -> float:
        """The true ``log_relative_scale`` of a spectrum simulated at ``params``."""
