"""Fit a model to one spectrum with NUTS and return an ArviZ DataTree."""

from __future__ import annotations

import functools
import time
from typing import Any, Literal, cast

import jax
import numpy as np
import xarray as xr
from scipy.special import logsumexp

from htmp_infer.ensembles.sampling import check_seed
from htmp_infer.errors import ArgumentError, SpectrumTypeError
from htmp_infer.inference._programs import latent_names
from htmp_infer.inference.diagnostics import check_convergence
from htmp_infer.inference.evidence import (
    PROFILE_DRAWS,
    GridPosterior,
    evidence_and_grid,
    spike_profile,
)
from htmp_infer.inference.grid import grid_diagnostics, grid_draws_tree
from htmp_infer.inference.nuts import run_nuts, to_datatree
from htmp_infer.inference.predictive import posterior_predictive
from htmp_infer.inference.registry import available_models, load_model
from htmp_infer.mechanisms.protocol import ExactModel, MechanismModel
from htmp_infer.mechanisms.spikes import cap_for, default_max_spikes, spike_limit
from htmp_infer.spectrum import Spectrum

__all__ = [
    "MAX_CHAINS",
    "MAX_ITERATIONS",
    "MAX_PPC_DRAWS",
    "as_spectrum",
    "check_model",
    "check_run_args",
    "fit",
]

#: Bounds of a run. Every iteration of every chain keeps its position and four
#: NUTS statistics in memory until the end (float64): 10**7 iterations are about
#: half a GiB; each replicated spectrum costs an O(N^2) eigenproblem and N floats.
MAX_CHAINS = 1024
MAX_ITERATIONS = 10_000_000
MAX_PPC_DRAWS = 10_000


def _count(value: object, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ArgumentError(f"{what} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ArgumentError(f"{what} must be >= {low}, got {value}")
    return int(value)


def check_run_args(
    *,
    chains: object,
    draws: object,
    warmup: object,
    seed: object,
    ppc_draws: object,
    method: object,
) -> None:
    """Range-check the arguments of :func:`fit` and :func:`~htmp_infer.compare`.

    Raises
    ------
    ArgumentError
        Naming the first argument that is not an integer in its range (bounds:
        :data:`MAX_CHAINS`, :data:`MAX_ITERATIONS` for ``chains * (warmup +
        draws)``, :data:`MAX_PPC_DRAWS`, seeds in ``[0, 2**32)``) or a method
        other than ``"nuts"`` and ``"grid"``.
    """
    n_chains = _count(chains, "chains", 1)
    n_draws = _count(draws, "draws", 1)
    n_warmup = _count(warmup, "warmup", 0)
    n_ppc = _count(ppc_draws, "ppc_draws", 0)
    if n_chains > MAX_CHAINS:
        raise ArgumentError(f"chains must be <= {MAX_CHAINS}, got {n_chains}")
    total = n_chains * (n_warmup + n_draws)
    if total > MAX_ITERATIONS:
        raise ArgumentError(
            f"chains x (warmup + draws) = {total} iterations, at most "
            f"{MAX_ITERATIONS} (every one is kept in memory)"
        )
    if n_ppc > MAX_PPC_DRAWS:
        raise ArgumentError(f"ppc_draws must be <= {MAX_PPC_DRAWS}, got {n_ppc}")
    check_seed(seed)
    if not isinstance(method, str) or method not in ("nuts", "grid"):
        raise ArgumentError(f"method must be 'nuts' or 'grid', got {method!r}")


def check_model(model: object, what: str = "model") -> str:
    """``model`` if it names a registered model, else :class:`ArgumentError`."""
    known = available_models()
    if not isinstance(model, str):
        raise ArgumentError(
            f"{what} must be a model name (str), got {type(model).__name__}"
        )
    if model not in known:
        raise ArgumentError(
            f"unknown {what} {model!r}; choose one of {', '.join(known)}"
        )
    return model


def as_spectrum(obj: object, where: str) -> Spectrum:
    """``obj`` if it is a :class:`Spectrum`, else :class:`SpectrumTypeError`."""
    if isinstance(obj, Spectrum):
        return obj
    raise SpectrumTypeError(
        f"{where}() needs a Spectrum, got {type(obj).__name__}: eigenvalues alone do "
        "not say the matrix shape; build one with "
        "Spectrum.from_eigenvalues(lam, gamma=N/M) or Spectrum.from_matrix(W)"
    )


def fit(
    spectrum: Spectrum,
    model: str = "htmp",
    *,
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed: int = 0,
    progress: bool = True,
    ppc_draws: int = 40,
    method: Literal["nuts", "grid"] = "nuts",
    grid: GridPosterior | None = None,
) -> xr.DataTree:
    """Sample the posterior of a model given one spectrum.

    Parameters
    ----------
    spectrum : Spectrum
        The eigenvalues and matrix shape.
    model : str, default "htmp"
        A name from ``models.REGISTRY``.
    chains, draws, warmup : int
        NUTS chains and iterations per chain after and before adaptation.
    seed : int
        Seed of every random number in the fit (NUTS, collapsed parameters,
        posterior predictive). Same seed, same numbers.
    progress : bool
        Show a progress bar while sampling.
    ppc_draws : int, default 40
        Number of exact replicated spectra in ``posterior_predictive`` (0 to skip);
        each costs one :math:`O(N^2)` tridiagonal eigenproblem.
    method : {"nuts", "grid"}, default "nuts"
        ``"grid"`` draws independently from the evidence quadrature grid
        (:mod:`htmp_infer.inference.grid`; no MCMC, ``warmup`` unused, ``sample_stats``
        absent, diagnostics replaced by the quadrature error).
    grid : GridPosterior, optional
        With ``method="grid"``, a grid already computed for this spectrum.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (``kappa`` and the model's other parameters),
        ``sample_stats``, ``log_likelihood`` (one joint term per spectrum),
        ``observed_data`` (``eigenvalues``), ``constant_data`` (``n``, ``n_cols``,
        ``gamma``, ``n_zero``) and ``posterior_predictive`` (replicated
        ``eigenvalues`` for a thinned set of draws). Attributes record the model,
        seed, timings and the convergence diagnostics.

    Raises
    ------
    SpectrumTypeError
        When ``spectrum`` is not a :class:`Spectrum` (an array, say).
    ArgumentError
        An argument out of range (:func:`check_run_args`) or an unknown model,
        before any work.

    Warns
    -----
    ConvergenceWarning
        When r-hat > 1.01, the ESS is low or a transition diverged (also recorded
        in the attributes).

    Notes
    -----
    Chains run vectorised in one XLA program: on a GPU when JAX sees one, else on
    the CPU. The log-likelihood is evaluated in float64 on cached sufficient
    statistics, :math:`O(N)` per evaluation.
    """
    spectrum = as_spectrum(spectrum, "fit")
    check_run_args(
        chains=chains,
        draws=draws,
        warmup=warmup,
        seed=seed,
        ppc_draws=ppc_draws,
        method=method,
    )
    chains, draws, warmup = int(chains), int(draws), int(warmup)
    seed, ppc_draws = int(seed), int(ppc_draws)
    if grid is not None and not isinstance(grid, GridPosterior):
        raise ArgumentError(f"grid must be a GridPosterior, got {type(grid).__name__}")
    module = load_model(check_model(model))
    exact = module.EXACT_POSTERIOR
    if grid is None and (exact or method == "grid"):
        ev, grid = evidence_and_grid(spectrum, model)  # the spike cap, and the grid
        spectrum = spectrum.with_max_spikes(ev.spike_cap)
    if grid is not None:
        spectrum = spectrum.with_max_spikes(grid.evidence.spike_cap)

    t0 = time.perf_counter()
    _ = spectrum.stats  # the O(N^2) precomputation, once per spectrum
    t_stats = time.perf_counter() - t0
    key_mcmc, key_rest = jax.random.split(jax.random.key(seed))
    t0 = time.perf_counter()
    diag = None
    if exact:
        dt = _exact_fit(cast(ExactModel, module), spectrum, chains, draws)
    elif method == "grid":
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key_mcmc)).tolist())
        dt, grid = grid_draws_tree(
            spectrum,
            model,
            chains=chains,
            draws=draws,
            rng=rng,
            grid=grid,
            constant_data=_constant_data(spectrum),
        )
        diag = grid_diagnostics(grid, chains * draws)
        warmup = 0
    else:
        dt, spectrum = _nuts_fit(
            module, spectrum, model, key_mcmc, (chains, draws, warmup), progress
        )
    t_sample = time.perf_counter() - t0
    return _finish(
        module,
        dt,
        spectrum,
        model,
        seed,
        key_rest,
        ppc_draws,
        (chains, draws, warmup),
        (t_stats, t_sample),
        diag=diag,
    )


def _nuts_fit(
    module: MechanismModel,
    spectrum: Spectrum,
    model: str,
    key: jax.Array,
    lengths: tuple[int, int, int],
    progress: bool,
) -> tuple[xr.DataTree, Spectrum]:
    """NUTS at the spike cap of ``spectrum``, raised and rerun while it binds.

    After each run, :math:`p(k\\mid\\theta,\\lambda)` for every :math:`k \\le L` is
    averaged over 32 draws (:func:`~htmp_infer.inference.evidence.spike_profile`);
    while more than :data:`~htmp_infer.mechanisms.spikes.CAP_MASS` of it lies above the
    cap,
    the cap is raised (:func:`~htmp_infer.mechanisms.spikes.cap_for`) and NUTS rerun.
    """
    chains, draws, warmup = lengths
    n = spectrum.n
    cap = default_max_spikes(n) if spectrum.max_spikes is None else spectrum.max_spikes
    adaptive = module.SPIKES_ADAPTIVE
    while True:
        spectrum = spectrum.with_max_spikes(cap)
        static = module.static_kwargs(spectrum)
        run = run_nuts(
            functools.partial(module.model, **static),
            module.data_kwargs(spectrum),
            cache_key=(model, tuple(sorted(static.items()))),
            key=key,
            chains=chains,
            warmup=warmup,
            draws=draws,
            progress=progress,
            label=f"{model} on {spectrum.name}",
        )
        dt = to_datatree(
            run,
            log_likelihood=True,
            constant_data=_constant_data(spectrum),
            coords={"eig": np.arange(n)},
            dims={"eigenvalues": ["eig"]},
        )
        if not adaptive or cap >= spike_limit(n):
            return dt, spectrum
        post = dt["posterior"].dataset
        names = latent_names(model, spectrum)
        flat = np.stack([post[v].values.ravel() for v in names], axis=1)
        step = max(1, len(flat) // PROFILE_DRAWS)
        profile = spike_profile(spectrum, model, flat[::step][:PROFILE_DRAWS])
        needed = cap_for(profile, cap, n)
        if needed == cap:
            return dt, spectrum
        cap = needed


def _constant_data(spectrum: Spectrum) -> dict[str, np.ndarray]:
    return {
        "n": np.asarray(spectrum.n),
        "n_cols": np.asarray(spectrum.n_cols),
        "gamma": np.asarray(spectrum.gamma),
        "n_zero": np.asarray(spectrum.n_zero),
    }


def _exact_fit(
    module: ExactModel,
    spectrum: Spectrum,
    chains: int,
    draws: int,
) -> xr.DataTree:
    """Posterior of a model without continuous parameters (exact, no MCMC)."""
    logits = np.asarray(module.exact_logits(spectrum))
    log_lik = float(logsumexp(logits))
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    post = xr.Dataset(
        {
            "spike_logits": (
                ("chain", "draw", "spike_count"),
                np.broadcast_to(logits, (chains, draws, logits.size)),
            )
        },
        coords=coords,
    )
    ll = xr.Dataset(
        {"eigenvalues": (("chain", "draw"), np.full((chains, draws), log_lik))},
        coords=coords,
    )
    obs = xr.Dataset(
        {"eigenvalues": (("eig",), np.asarray(spectrum.eigenvalues))},
        coords={"eig": np.arange(spectrum.n)},
    )
    const = xr.Dataset({k: ((), v) for k, v in _constant_data(spectrum).items()})
    return xr.DataTree.from_dict(
        {
            "posterior": post,
            "log_likelihood": ll,
            "observed_data": obs,
            "constant_data": const,
        }
    )


def _finish(
    module: MechanismModel,
    dt: xr.DataTree,
    spectrum: Spectrum,
    model: str,
    seed: int,
    key_rest: jax.Array,
    ppc_draws: int,
    lengths: tuple[int, int, int],
    seconds: tuple[float, float],
    diag: dict[str, Any] | None = None,
) -> xr.DataTree:
    """Collapsed parameters, posterior predictive, diagnostics and attributes."""
    chains, draws, warmup = lengths
    t_stats, t_sample = seconds
    exact = module.EXACT_POSTERIOR
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key_rest)).tolist())
    post = dt["posterior"].dataset
    samples = {str(v): post[v].values for v in post.data_vars}
    extra = module.postprocess(rng, samples, spectrum)
    post = post.assign({k: (("chain", "draw"), v) for k, v in extra.items()})
    post = post.drop_vars(["spike_logits"], errors="ignore")
    dt["posterior"] = xr.DataTree(post)
    t0 = time.perf_counter()
    if ppc_draws:
        dt["posterior_predictive"] = xr.DataTree(
            posterior_predictive(
                module, dt["posterior"].dataset, spectrum, total=ppc_draws, rng=rng
            )
        )
    t_ppc = time.perf_counter() - t0
    if diag is None:
        diag = {"exact": 1} if exact else check_convergence(dt, ["kappa"])
    dt.attrs.update(
        {
            "model": model,
            "spectrum": spectrum.name,
            "seed": seed,
            "spike_cap": int(spectrum.max_spikes or 0),
            "chains": chains,
            "draws": draws,
            "warmup": warmup,
            "backend": "exact" if exact else jax.default_backend(),
            "method": "exact" if exact else str(diag.get("method", "nuts")),
            "seconds_stats": t_stats,
            "seconds_sampling": t_sample,
            "seconds_ppc": t_ppc,
            **{f"diag_{k}": v for k, v in diag.items()},
        }
    )
    return dt
