r"""What one spectrum identifies: posterior contraction of each parameter.

A parameter whose posterior is its prior was not learnt from the spectrum; its
"estimate" echoes the prior. For every model with continuous parameters and
every coordinate :math:`\theta_j` with a proper prior, :func:`identification`
reports the posterior contraction (Betancourt 2018, "Calibrating model-based
inferences and decisions"; Schad, Betancourt & Vasishth 2021)

.. math::

    c_j = 1 - \frac{V_{\rm post}(\theta_j)}{V_{\rm prior}(\theta_j)},

computed exactly from the quadrature grid (weighted moments, the cell variance
included), and a verdict:

Whether the spectrum bounds a coordinate at all is read from the likelihood,
not from the posterior, because a thin prior tail can make a posterior narrow
where the likelihood is flat. The grid extends along each coordinate until the
posterior has dropped by 25 nats; on its nodes the log likelihood (relative to
its maximum) is the log posterior minus the log prior. A side of
:math:`\theta_j` is *free* when some node beyond the posterior's 5% (95%)
quantile by two posterior sd has a likelihood within :data:`FREE_NATS` (2 nats,
the 95% likelihood-ratio level of one parameter) of the maximum: out there the
prior, not the data, makes the posterior small. Where the likelihood bounds the
coordinate, it has dropped by about :math:`3.6^2/2 \approx 6.5` nats at that
distance (3.3 if prior and likelihood are equally wide). The verdicts:

- ``identified``: both sides bounded and :math:`c_j \ge 0.75` (posterior sd
  at most half the prior's);
- ``upper bound only`` / ``lower bound only``: one side free. This is how a
  mechanism that the spectrum cannot tell from its absence looks: the ``data``
  edge v → 0 and the ``power_law`` tail index b' → ∞ are their models'
  HTMP limits;
- ``prior-dominated``: both sides free (the likelihood is flat over the grid);
- ``weakly identified``: both sides bounded but :math:`c_j < 0.75`;
- ``unresolved``: the grid's weight sits on fewer than 3 nodes (effective
  number :math:`1/\sum w^2`; a degenerate posterior, e.g. far outside a
  model's table), so nothing can be read from it.

**Combinations.** Two parameters that one spectrum cannot tell apart can still
have an identified combination (a product, i.e. a sum of logs). In prior-sd
units the posterior covariance has an eigen-direction of small variance that is
not one coordinate. Among the coordinates that are not identified on their own
(at least two), every such eigen-direction with posterior sd at most a quarter
of the prior's whose largest component is below 0.95 (of a unit vector) is
reported as a row ``a·x + b·y`` (in the model's own coordinates, the largest
coefficient 1), with verdict ``identified combination``. (Between identified
coordinates a correlated posterior has such directions too; they add nothing.)
Covariances summarise curved posteriors only roughly; the rows name the
direction, the grid has the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpyro.distributions import ImproperUniform
from scipy.optimize import brentq

from htmp_infer.inference._programs import prior_distributions
from htmp_infer.inference.evidence import GridPosterior
from htmp_infer.spectrum import Spectrum

__all__ = ["COLUMNS", "identification", "verdict"]

IDENTIFIED = 0.75
"""Contraction at and above which a bounded parameter counts as identified."""
FREE_NATS = 2.0
"""Log-likelihood drop below which a side of a coordinate is not excluded."""
BEYOND = 2.0
"""Posterior sd beyond the 5% / 95% quantiles where a free side is looked for."""
COMBINATION_SD = 0.25
"""Posterior sd (in prior sd) at or below which a direction is identified."""
COLUMNS = (
    "model",
    "parameter",
    "prior_sd",
    "mean",
    "sd",
    "q05",
    "q95",
    "contraction",
    "verdict",
)


def verdict(contraction: float, lower_free: bool, upper_free: bool) -> str:
    """The verdict of one coordinate (see the module docstring)."""
    if lower_free and upper_free:
        return "prior-dominated"
    if lower_free:
        return "upper bound only"
    if upper_free:
        return "lower bound only"
    if contraction >= IDENTIFIED:
        return "identified"
    return "weakly identified"


def identification(
    spectrum: Spectrum, grids: Mapping[str, GridPosterior]
) -> pd.DataFrame:
    """Posterior contraction and verdict of every proper-prior parameter.

    Parameters
    ----------
    spectrum : Spectrum
        The spectrum the grids were computed for.
    grids : mapping of str to GridPosterior
        Model name to its quadrature posterior (:func:`htmp_infer.compare`
        returns them as ``Comparison.grids``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, one row per model and parameter, then one per
        identified combination. Coordinates with an improper prior (the
        scales) are left out: any proper posterior contracts them.
    """
    rows: list[dict[str, Any]] = []
    for model, grid in grids.items():
        priors = prior_distributions(model, spectrum)
        proper = [n for n in grid.names if not isinstance(priors[n], ImproperUniform)]
        if not proper:
            continue
        cols = [grid.names.index(n) for n in proper]
        w = grid.weights / grid.weights.sum()
        x = grid.points[:, cols]
        mean = w @ x
        cov = (x - mean).T @ ((x - mean) * w[:, None]) + np.diag(
            grid.bandwidth[cols] ** 2
        )
        prior_sd = np.sqrt([float(priors[n].variance) for n in proper])
        log_prior = sum(
            np.asarray(priors[n].log_prob(x[:, j])) for j, n in enumerate(proper)
        )
        with np.errstate(divide="ignore"):
            log_lik = np.log(w) - log_prior
        log_lik = log_lik - np.max(log_lik)
        for j, name in enumerate(proper):
            sd = float(np.sqrt(cov[j, j]))
            c = 1.0 - (sd / prior_sd[j]) ** 2
            if 1.0 / np.sum(w**2) < 3.0:
                q05 = q95 = float(mean[j])
                v = "unresolved"
            else:
                q05, q95 = (_quantile(grid, name, q) for q in (0.05, 0.95))
                far = BEYOND * sd
                v = verdict(
                    c,
                    _free(log_lik[x[:, j] <= q05 - far]),
                    _free(log_lik[x[:, j] >= q95 + far]),
                )
            rows.append(
                {
                    "model": model,
                    "parameter": name,
                    "prior_sd": prior_sd[j],
                    "mean": float(mean[j]),
                    "sd": sd,
                    "q05": q05,
                    "q95": q95,
                    "contraction": c,
                    "verdict": v,
                }
            )
        own = rows[-len(proper) :]
        vague = [
            j
            for j, r in enumerate(own)
            if r["verdict"] not in ("identified", "unresolved")
        ]
        names = [proper[j] for j in vague]
        sub = cov[np.ix_(vague, vague)]
        rows.extend(_combinations(model, names, mean[vague], sub, prior_sd[vague]))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _free(log_lik: np.ndarray) -> bool:
    """Whether some node of a side's tail has a likelihood near the maximum."""
    return bool(log_lik.size) and bool(np.max(log_lik) > -FREE_NATS)


def _combinations(
    model: str,
    names: list[str],
    mean: np.ndarray,
    cov: np.ndarray,
    prior_sd: np.ndarray,
) -> list[dict[str, Any]]:
    """Identified directions of the posterior that mix coordinates."""
    if len(names) < 2:
        return []
    std = cov / np.outer(prior_sd, prior_sd)
    var, vec = np.linalg.eigh(std)
    out = []
    for v_std, u in zip(var, vec.T, strict=True):
        if v_std > COMBINATION_SD**2 or np.max(np.abs(u)) >= 0.95:
            continue
        coef = u / prior_sd  # the direction in the model's own coordinates
        coef = coef / coef[np.argmax(np.abs(coef))]
        sd = float(np.sqrt(coef @ cov @ coef))
        prior = float(np.sqrt(np.sum((coef * prior_sd) ** 2)))
        out.append(
            {
                "model": model,
                "parameter": _linear_name(coef, names),
                "prior_sd": prior,
                "mean": float(coef @ mean),
                "sd": sd,
                "q05": np.nan,
                "q95": np.nan,
                "contraction": 1.0 - (sd / prior) ** 2,
                "verdict": "identified combination",
            }
        )
    return out


def _linear_name(coef: np.ndarray, names: list[str]) -> str:
    terms = []
    for c, n in zip(coef, names, strict=True):
        if abs(c) < 0.005:
            continue
        sign = "-" if c < 0 else "+"
        mag = "" if abs(abs(c) - 1.0) < 0.005 else f"{abs(c):.2f}·"
        terms.append(f"{sign} {mag}{n}")
    text = " ".join(terms)
    return text[2:] if text.startswith("+ ") else text


def _quantile(grid: GridPosterior, name: str, q: float) -> float:
    """Quantile of the smoothed grid posterior (its CDF inverted by bisection).

    Importance-sampling posteriors have no cell width (a bandwidth of 1e-300):
    their weighted empirical quantile is used.
    """
    j = grid.names.index(name)
    pts = grid.points[:, j]
    b = float(grid.bandwidth[j])
    if not b > 1e-12 * max(1.0, float(np.ptp(pts))):
        order = np.argsort(pts)
        cum = np.cumsum(grid.weights[order]) / np.sum(grid.weights)
        i = min(int(np.searchsorted(cum, q)), pts.size - 1)
        return float(pts[order][i])
    lo, hi = float(pts.min()) - 10.0 * b, float(pts.max()) + 10.0 * b
    return float(brentq(lambda v: grid.cdf(name, v) - q, lo, hi, xtol=1e-10))
