r"""Compare the mechanism models on one spectrum: evidence, weights and phases.

Method
------
The weight of model :math:`\mathcal M_j` is its posterior probability under equal
prior model probabilities,

.. math::

    w_j = \frac{p(\lambda\mid\mathcal M_j)}{\sum_i p(\lambda\mid\mathcal M_i)},

with the evidence :math:`p(\lambda\mid\mathcal M)` of the *joint* density of the
spectrum (the exact Coulomb-gas likelihood, spike count summed out), computed by
deterministic quadrature (:mod:`htmp_infer.inference.evidence`). Evidence rather than
LOO:
the eigenvalues of one spectrum are one exchangeable, strongly dependent draw, so
leave-one-eigenvalue-out predictive densities are not the unit a user wants to
predict, while the joint evidence is exact and well defined (every model has the
same improper :math:`d\log(\text{scale})` prior on its one scale parameter, which
cancels in the ratios).

Every model's grid also says what the spectrum identifies: the posterior
contraction of each parameter and whether the likelihood bounds it on both
sides, one side (a mechanism the spectrum cannot tell from its absence) or
neither (:mod:`htmp_infer.inference.identification`).

Every model with a non-negligible weight is then fitted (by default independent
draws from the same quadrature grid that gives its evidence,
:mod:`htmp_infer.inference.grid`; NUTS with ``method="nuts"``) and checked
against its own replicated spectra; the readings and the phase posterior come
from the models that pass (:mod:`htmp_infer.inference.readings`,
:mod:`htmp_infer.inference.phases`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Unpack

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import softmax

from htmp_infer.errors import ArgumentError, EvidenceWarning, HTMPError
from htmp_infer.inference.evidence import Evidence, GridPosterior, evidence_and_grid
from htmp_infer.inference.fit import as_spectrum, check_model, fit
from htmp_infer.inference.identification import identification
from htmp_infer.inference.options import SamplerArgs, SamplerOptions, resolve_options
from htmp_infer.inference.predictive import ppc_pvalue
from htmp_infer.inference.readings import Reading, candidates, read
from htmp_infer.inference.registry import available_models
from htmp_infer.spectrum import Spectrum

__all__ = ["Comparison", "compare", "weights_of"]

DEFAULT_MODELS = ("mp", "htmp", "hard_edge", "inverse_htmp", "power_law")


@dataclass
class Comparison:
    """Result of :func:`compare`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model: ``log_evidence``, its numerical ``error``, ``weight``
        (posterior model probability), ``ppc_p`` (the model's own
        posterior-predictive p-value; NaN when it was not fitted or no
        replicates were drawn), ``dim`` (continuous parameters), ``method``
        and ``seconds``; sorted by weight.
    phases : xarray.DataArray
        Posterior probability of each of the 5+1 phases, averaged over the
        models that pass their check (:mod:`htmp_infer.inference.readings`).
    fits : dict of str to xarray.DataTree
        The posterior fits that were run: every model with weight at least
        0.01, and ``fit_models``.
    grids : dict of str to GridPosterior
        The quadrature grid of every model with continuous parameters.
    identification : pandas.DataFrame
        What the spectrum identifies: per model and parameter, the posterior
        contraction and a verdict (``identified``, ``upper bound only``, ...;
        :mod:`htmp_infer.inference.identification`).
    reading : Reading
        What the spectrum reads as, and from which model
        (:mod:`htmp_infer.inference.readings`).
    """

    table: pd.DataFrame
    phases: xr.DataArray
    fits: dict[str, xr.DataTree] = field(default_factory=dict)
    grids: dict[str, GridPosterior] = field(default_factory=dict)
    identification: pd.DataFrame = field(default_factory=pd.DataFrame)
    reading: Reading | None = None

    @property
    def best(self) -> str:
        """The model with the largest weight."""
        return str(self.table.index[0])

    def phase_table(self) -> pd.DataFrame:
        """The phase probabilities as a one-column table."""
        return self.phases.to_series().to_frame("probability")


def compare(
    spectrum: Spectrum,
    models: Sequence[str] | None = None,
    *,
    fit_models: Sequence[str] = (),
    options: SamplerOptions | None = None,
    progress: bool = True,
    **overrides: Unpack[SamplerArgs],
) -> Comparison:
    """Weigh the mechanism models for one spectrum and give its phase posterior.

    Parameters
    ----------
    spectrum : Spectrum
        The observed spectrum.
    models : sequence of str, optional
        Models to compare; default :data:`DEFAULT_MODELS` (``mp, htmp, hard_edge,
        inverse_htmp, power_law``).
    fit_models : sequence of str
        Models whose posterior DataTrees are also returned; every model with a
        weight of at least 0.01 is fitted anyway, with its own
        posterior-predictive check.
    options : SamplerOptions, optional
        How the fits draw their posteriors
        (:class:`~htmp_infer.inference.options.SamplerOptions`, as for
        :func:`htmp_infer.fit`); its ``seed`` also seeds the evidence mode search.
        With the default ``method="grid"`` the draws come independently from the
        evidence grid (no extra likelihood evaluations;
        :mod:`htmp_infer.inference.grid`); ``"nuts"`` runs NUTS.
    progress : bool
        Show a progress bar while sampling (NUTS).
    **overrides
        Fields of :class:`~htmp_infer.inference.options.SamplerOptions`
        (``seed=0, draws=1000``, ...), which replace those of ``options``.

    Returns
    -------
    Comparison

    Raises
    ------
    SpectrumTypeError
        When ``spectrum`` is not a :class:`Spectrum` (an array, say).
    ArgumentError
        An unknown, repeated or missing model name, or a run argument out of
        range (:class:`~htmp_infer.inference.options.SamplerOptions`), before any
        work.
    """
    spectrum = as_spectrum(spectrum, "compare")
    opts = resolve_options(options, overrides)
    models = _model_list(DEFAULT_MODELS if models is None else models, "models")
    fit_models = _model_list(fit_models, "fit_models", empty=True)
    rows = []
    grids: dict[str, GridPosterior] = {}
    for m in models:
        t0 = time.perf_counter()
        try:
            ev, grid = evidence_and_grid(spectrum, m, seed=opts.seed)
        except HTMPError as e:
            if len(models) == 1:
                raise
            # one model that cannot be integrated does not stop the comparison:
            # it is listed with weight 0 and the reason, and a warning is shown
            warnings.warn(EvidenceWarning(f"{e}; {m!r} gets weight 0"), stacklevel=2)
            ev, grid = Evidence(m, -math.inf, math.nan, 0, f"failed: {e}", 0), None
        if grid is not None:
            grids[m] = grid
        rows.append({**ev._asdict(), "seconds": time.perf_counter() - t0})
    if all(r["log_evidence"] == -math.inf for r in rows):
        raise HTMPError("no model's evidence could be computed for this spectrum")
    table = pd.DataFrame(rows).set_index("model")
    table.insert(2, "weight", weights_of(table["log_evidence"].to_numpy()))
    table = table.sort_values("weight", ascending=False)
    fits: dict[str, xr.DataTree] = {}
    for m in dict.fromkeys([*candidates(table), *fit_models]):
        fits[m] = fit(spectrum, m, options=opts, progress=progress, grid=grids.get(m))
    table.insert(
        3,
        "ppc_p",
        [
            ppc_pvalue(fits[m]) if m in fits and opts.ppc_draws else math.nan
            for m in table.index
        ],
    )
    reading = read(table, fits)
    return Comparison(
        table,
        reading.phases,
        fits,
        grids,
        identification(spectrum, grids),
        reading,
    )


def _model_list(names: object, what: str, *, empty: bool = False) -> list[str]:
    """Model names as a list: a sequence of known names, each once (or one str)."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Sequence | set | frozenset):
        raise ArgumentError(
            f"{what} must be a list of model names, got {type(names).__name__}"
        )
    out = [check_model(m, f"model in {what}") for m in names]
    repeated = sorted({m for m in out if out.count(m) > 1})
    if repeated:
        raise ArgumentError(f"{what} names {', '.join(repeated)} more than once")
    if not out and not empty:
        raise ArgumentError(
            f"{what} is empty; choose from {', '.join(available_models())}"
        )
    return out


def weights_of(log_evidences: Sequence[float] | np.ndarray) -> np.ndarray:
    r"""Posterior model probabilities from log evidences (equal prior weights).

    :math:`w_j = e^{\log Z_j - \max_i \log Z_i} / \sum_k e^{\log Z_k - \max_i
    \log Z_i}`: the one place model weights are computed (:func:`compare`, the
    confusion matrix of :mod:`htmp_infer.validation.calibration`). A model whose
    evidence is ``-inf`` (it could not be computed) gets weight 0.
    """
    return np.asarray(softmax(np.asarray(log_evidences, dtype=np.float64)))
