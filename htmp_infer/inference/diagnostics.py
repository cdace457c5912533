"""Convergence diagnostics of a fit, recorded and warned about."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr
from arviz_stats import ess, rhat

from htmp_infer.errors import ConvergenceWarning

__all__ = ["RHAT_MAX", "check_convergence"]

RHAT_MAX = 1.01
ESS_MIN_PER_CHAIN = 100


def check_convergence(dt: xr.DataTree, var_names: list[str]) -> dict[str, Any]:
    """Compute r-hat, bulk/tail ESS and divergences; warn when they fail.

    Thresholds: rank-normalised r-hat > 1.01, bulk or tail ESS below 100 per
    chain (Vehtari et al. 2021), any divergent transition.

    Returns
    -------
    dict
        ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``divergences``,
        ``mean_steps`` and ``warnings`` (a "; "-joined string, empty when clean),
        suitable for DataTree attributes.
    """
    post = dt["posterior"].dataset[var_names]
    n_chains = post.sizes["chain"]
    r = rhat(post)
    eb = ess(post, method="bulk")
    et = ess(post, method="tail")
    r_max = float(max(float(r[v].max()) for v in var_names))
    eb_min = float(min(float(eb[v].min()) for v in var_names))
    et_min = float(min(float(et[v].min()) for v in var_names))
    stats = dt["sample_stats"].dataset
    div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    steps_var = next((v for v in ("n_steps", "num_steps") if v in stats), None)
    mean_steps = float(stats[steps_var].mean()) if steps_var else float("nan")
    problems = []
    if n_chains > 1 and not r_max <= RHAT_MAX:
        problems.append(f"r_hat {r_max:.3f} > {RHAT_MAX}")
    floor = ESS_MIN_PER_CHAIN * n_chains
    if not min(eb_min, et_min) >= floor:
        problems.append(f"ESS {min(eb_min, et_min):.0f} < {floor}")
    if div:
        problems.append(f"{div} divergent transition(s)")
    message = "; ".join(problems)
    if message:
        warnings.warn(f"MCMC diagnostics: {message}", ConvergenceWarning, stacklevel=3)
    return {
        "r_hat_max": r_max,
        "ess_bulk_min": eb_min,
        "ess_tail_min": et_min,
        "divergences": div,
        "mean_steps": mean_steps if np.isfinite(mean_steps) else -1.0,
        "warnings": message,
    }
