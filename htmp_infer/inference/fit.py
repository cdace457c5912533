"""Fit a model to one spectrum (grid draws or NUTS) and return an ArviZ DataTree."""

from __future__ import annotations

import functools
import time
from typing import Any, Unpack, cast

import jax
import numpy as np
import xarray as xr
from scipy.special import logsumexp

from htmp_infer.errors import ArgumentError, SpectrumTypeError
from htmp_infer.inference._programs import latent_names
from htmp_infer.inference.diagnostics import check_convergence
from htmp_infer.inference.evidence import GridPosterior, evidence_and_grid
from htmp_infer.inference.grid import grid_diagnostics, grid_draws_tree
from htmp_infer.inference.nuts import run_nuts, to_datatree
from htmp_infer.inference.options import SamplerArgs, SamplerOptions, resolve_options
from htmp_infer.inference.predictive import posterior_predictive
from htmp_infer.inference.registry import available_models, load_model
from htmp_infer.inference.spike_caps import PROFILE_DRAWS, spike_profile
from htmp_infer.mechanisms.protocol import ExactModel, MechanismModel
from htmp_infer.mechanisms.spikes import adapt_cap, default_max_spikes, spike_limit
from htmp_infer.spectrum import Spectrum

__all__ = ["as_spectrum", "check_model", "fit"]


#: Old model names, with the name each now has.
RENAMED = {"temperature": "power_law"}


def check_model(model: object, what: str = "model") -> str:
    """``model`` if it names a registered model, else :class:`ArgumentError`."""
    known = available_models()
    if not isinstance(model, str):
        raise ArgumentError(
            f"{what} must be a model name (str), got {type(model).__name__}"
        )
    if model in RENAMED:
        raise ArgumentError(
            f"{what} {model!r} is now called {RENAMED[model]!r} (named after the "
            "shape it fits; docs/model.md)"
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
    options: SamplerOptions | None = None,
    progress: bool = True,
    grid: GridPosterior | None = None,
    **overrides: Unpack[SamplerArgs],
) -> xr.DataTree:
    """Sample the posterior of a model given one spectrum.

    Parameters
    ----------
    spectrum : Spectrum
        The eigenvalues and matrix shape.
    model : str, default "htmp"
        A name from ``models.REGISTRY``.
    options : SamplerOptions, optional
        How to draw the posterior
        (:class:`~htmp_infer.inference.options.SamplerOptions`): ``method``
        (default ``"grid"``: independent draws from the evidence quadrature grid,
        :mod:`htmp_infer.inference.grid`, no MCMC; or ``"nuts"``), ``chains``,
        ``draws``, ``warmup`` (NUTS only), ``seed`` (of every random number in
        the fit: same seed, same numbers) and ``ppc_draws``.
    progress : bool
        Show a progress bar while sampling.
    grid : GridPosterior, optional
        With ``method="grid"``, a grid already computed for this spectrum.
    **overrides
        Fields of :class:`~htmp_infer.inference.options.SamplerOptions`
        (``chains=4, draws=1000, seed=0``, ...), which replace those of
        ``options``.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (``kappa`` and the model's other parameters),
        ``sample_stats`` (NUTS only), ``log_likelihood`` (one joint term per spectrum),
        ``observed_data`` (``eigenvalues``), ``constant_data`` (``n``, ``n_cols``,
        ``gamma``, ``n_zero``) and ``posterior_predictive`` (replicated
        ``eigenvalues`` for a thinned set of draws). Attributes record the model,
        seed, timings and the convergence diagnostics (for grid draws, the
        quadrature error).

    Raises
    ------
    SpectrumTypeError
        When ``spectrum`` is not a :class:`Spectrum` (an array, say).
    ArgumentError
        An argument out of range
        (:class:`~htmp_infer.inference.options.SamplerOptions`) or an unknown
        model, before any work.

    Warns
    -----
    ConvergenceWarning
        NUTS only: when r-hat > 1.01, the ESS is low or a transition diverged
        (also recorded in the attributes).

    Notes
    -----
    Chains run vectorised in one XLA program: on a GPU when JAX sees one, else on
    the CPU. The log-likelihood is evaluated in float64 on cached sufficient
    statistics, :math:`O(N)` per evaluation.
    """
    spectrum = as_spectrum(spectrum, "fit")
    opts = resolve_options(options, overrides)
    method, chains, draws, warmup = opts.method, opts.chains, opts.draws, opts.warmup
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
    key_mcmc, key_rest = jax.random.split(jax.random.key(opts.seed))
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
        opts.seed,
        key_rest,
        opts.ppc_draws,
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
    averaged over 32 draws (:func:`~htmp_infer.inference.spike_caps.spike_profile`);
    while more than :data:`~htmp_infer.mechanisms.spikes.CAP_MASS` of it lies above
    the cap, the cap is raised and NUTS rerun
    (:func:`~htmp_infer.mechanisms.spikes.adapt_cap`).
    """
    chains, draws, warmup = lengths
    n = spectrum.n
    first = (
        default_max_spikes(n) if spectrum.max_spikes is None else spectrum.max_spikes
    )
    last: dict[int, tuple[xr.DataTree, Spectrum]] = {}  # the last run only

    def at(cap: int) -> np.ndarray | None:
        capped = spectrum.with_max_spikes(cap)
        static = module.static_kwargs(capped)
        run = run_nuts(
            functools.partial(module.model, **static),
            module.data_kwargs(capped),
            cache_key=(model, tuple(sorted(static.items()))),
            key=key,
            chains=chains,
            warmup=warmup,
            draws=draws,
            progress=progress,
            label=f"{model} on {capped.name}",
        )
        dt = to_datatree(
            run,
            log_likelihood=True,
            constant_data=_constant_data(capped),
            coords={"eig": np.arange(n)},
            dims={"eigenvalues": ["eig"]},
        )
        last.clear()
        last[cap] = dt, capped
        if not module.SPIKES_ADAPTIVE or cap >= spike_limit(n):
            return None
        post = dt["posterior"].dataset
        names = latent_names(model, capped)
        flat = np.stack([post[v].values.ravel() for v in names], axis=1)
        step = max(1, len(flat) // PROFILE_DRAWS)
        return spike_profile(capped, model, flat[::step][:PROFILE_DRAWS])

    return last[adapt_cap(at, first, n)]


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
