"""Run :func:`htmp_infer.scan.scan_layer` over layers, serially or in processes.

Layers are independent tasks (a pure function of the layer spectrum and the
options), so they can run in parallel worker processes: ``jobs`` processes started
with ``spawn`` (JAX is not fork-safe), each importing htmp-infer, reusing JAX's
persistent compilation cache when the parent has one, and compiling its own
programs otherwise. Results are identical to a serial run: every layer's
randomness comes from ``options.seed`` alone. The parent receives the results as
they complete and writes them (atomically), so a kill loses only layers in flight.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

import xarray as xr

from htmp_infer.errors import HTMPError

if TYPE_CHECKING:
    from htmp_infer.bundle import LayerSpectrum
    from htmp_infer.scan import ScanOptions

__all__ = ["LayerOutcome", "run_layers"]

#: ``(row, tree)`` of a fitted layer, or the message of the HTMPError that stopped it.
LayerOutcome = tuple[dict[str, Any], xr.DataTree] | str


def _outcome(
    fn: Callable[[LayerSpectrum, ScanOptions], tuple[dict[str, Any], xr.DataTree]],
    layer: LayerSpectrum,
    options: ScanOptions,
) -> LayerOutcome:
    try:
        return fn(layer, options)
    except HTMPError as exc:
        return str(exc)


def _worker_init(cache_dir: str | None) -> None:
    import jax

    import htmp_infer  # noqa: F401  (float64 on, as in the parent)

    if cache_dir:
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _scan_layer(layer: LayerSpectrum, options: ScanOptions) -> LayerOutcome:
    from htmp_infer.scan import scan_layer

    return _outcome(scan_layer, layer, options)


def run_layers(
    todo: Sequence[tuple[int, LayerSpectrum]], options: ScanOptions, jobs: int
) -> Iterator[tuple[int, LayerOutcome]]:
    """Yield ``(index, outcome)`` for every ``(index, layer)`` of ``todo``.

    Serial (in order) when ``jobs == 1`` or there is at most one layer; else in
    ``jobs`` spawned processes, in order of completion.
    """
    if jobs < 1:
        raise HTMPError(f"jobs must be >= 1, got {jobs}")
    if jobs == 1 or len(todo) <= 1:
        for i, layer in todo:
            yield i, _scan_layer(layer, options)
        return
    import jax

    cache_dir = jax.config.jax_compilation_cache_dir
    ctx = multiprocessing.get_context("spawn")
    workers = min(jobs, len(todo))
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(cache_dir,),
    ) as pool:
        futures = {pool.submit(_scan_layer, layer, options): i for i, layer in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()
