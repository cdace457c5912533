"""Run a layer function over layers, serially or in worker processes.

Layers are independent tasks (a pure function of the layer spectrum and the
options), so they can run in parallel worker processes: ``jobs`` processes started
with ``spawn`` (JAX is not fork-safe), each importing htmp-infer, reusing JAX's
persistent compilation cache when the parent has one, and compiling its own
programs otherwise. Results are identical to a serial run: every layer's
randomness comes from ``options.seed`` alone. The parent receives the results as
they complete and writes them (atomically), so a kill loses only layers in flight.

The workers live no longer than the parent:

* they ignore ``SIGINT`` (a Ctrl-C reaches the whole process group; the parent
  decides), and the parent terminates them as soon as it is interrupted or fails,
  so it exits within a second or two of the signal;
* on Linux they ask the kernel to kill them when the parent dies
  (``PR_SET_PDEATHSIG``), and everywhere a watchdog thread exits when their
  parent changes, so a parent killed with ``SIGKILL`` leaves no worker computing.

Warnings a worker raises are recorded and issued again in the parent, through its
filters and ``warnings.showwarning``, as a serial scan would issue them.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

import xarray as xr

from htmp_infer.errors import HTMPError

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from htmp_infer.networks.bundle import LayerSpectrum
    from htmp_infer.networks.scan import ScanOptions

__all__ = ["LayerOutcome", "run_layers"]

#: ``(row, tree)`` of a fitted layer, or the message of the HTMPError that stopped it.
LayerOutcome = tuple[dict[str, Any], xr.DataTree] | str
#: A warning recorded in a worker: message, category, file name, line number.
Caught = tuple[str, type[Warning], str, int]
#: Seconds a terminated worker gets before it is killed.
_GRACE = 1.0


def _outcome(
    fn: Callable[[LayerSpectrum, ScanOptions], tuple[dict[str, Any], xr.DataTree]],
    layer: LayerSpectrum,
    options: ScanOptions,
) -> LayerOutcome:
    try:
        return fn(layer, options)
    except HTMPError as exc:
        return str(exc)


#: The function a pool runs on each layer (a module-level function, so that it
#: travels to spawned workers by reference).
LayerFn = Callable[["LayerSpectrum", "ScanOptions"], tuple[dict[str, Any], xr.DataTree]]


def run_layers(
    fn: LayerFn,
    todo: Sequence[tuple[int, LayerSpectrum]],
    options: ScanOptions,
    jobs: int,
) -> Generator[tuple[int, LayerOutcome], None, None]:
    """Yield ``(index, fn(layer, options))`` for every ``(index, layer)`` of ``todo``.

    Serial (in order) when ``jobs == 1`` or there is at most one layer; else in
    ``jobs`` spawned processes, in order of completion. Closing the generator
    (or an exception, ``KeyboardInterrupt`` included, inside it) terminates the
    workers at once.
    """
    if jobs < 1:
        raise HTMPError(f"jobs must be >= 1, got {jobs}")
    if jobs == 1 or len(todo) <= 1:
        for i, layer in todo:
            yield i, _outcome(fn, layer, options)
        return
    yield from _Pool(min(jobs, len(todo))).run(fn, todo, options)


class _Pool:
    """Worker processes, one task at a time each, over one pipe each."""

    def __init__(self, size: int) -> None:
        import jax

        self.size = size
        self.cache_dir: str | None = jax.config.jax_compilation_cache_dir
        self.ctx = multiprocessing.get_context("spawn")
        self.busy: dict[Connection, tuple[BaseProcess, int]] = {}
        self.registries: dict[str, dict[Any, Any]] = {}

    def _spawn(self) -> tuple[BaseProcess, Connection]:
        ours, theirs = self.ctx.Pipe()
        proc = self.ctx.Process(
            target=_worker,
            args=(theirs, os.getpid(), self.cache_dir),
            daemon=True,
            name="htmp-infer-scan-worker",
        )
        with _sigint_ignored():  # inherited through exec: a Ctrl-C is the parent's
            proc.start()
        theirs.close()
        return proc, ours

    def run(
        self,
        fn: LayerFn,
        todo: Sequence[tuple[int, LayerSpectrum]],
        options: ScanOptions,
    ) -> Iterator[tuple[int, LayerOutcome]]:
        pending = list(reversed(todo))
        idle: list[tuple[BaseProcess, Connection]] = []
        done = False
        try:
            for _ in range(self.size):
                idle.append(self._spawn())
            while pending or self.busy:
                while idle and pending:
                    proc, conn = idle.pop()
                    i, layer = pending.pop()
                    self.busy[conn] = (proc, i)
                    with contextlib.suppress(OSError):  # a dead worker: EOF below
                        conn.send((fn, i, layer, options))
                for ready in wait(list(self.busy)):
                    assert isinstance(ready, Connection)
                    proc, i = self.busy.pop(ready)
                    try:
                        message = ready.recv()
                    except (EOFError, OSError):  # it died (out of memory, killed)
                        ready.close()
                        proc.join(_GRACE)
                        yield i, f"worker process died ({_died(proc.exitcode)})"
                        if pending:
                            idle.append(self._spawn())
                        continue
                    idle.append((proc, ready))
                    yield self._received(i, message)
            for _proc, conn in idle:
                with contextlib.suppress(OSError):
                    conn.send(None)
            done = True
        finally:
            procs = [p for p, _ in idle] + [p for p, _ in self.busy.values()]
            _stop(procs, graceful=done)
            for conn in [c for _, c in idle] + list(self.busy):
                conn.close()
            self.busy.clear()

    def _received(self, i: int, message: Any) -> tuple[int, LayerOutcome]:
        j, outcome, caught = message
        assert j == i
        for text, category, filename, lineno in caught:
            warnings.warn_explicit(
                text,
                category,
                filename,
                lineno,
                registry=self.registries.setdefault(filename, {}),
            )
        if isinstance(outcome, _Failure):
            outcome.reraise()
        return i, outcome


def _stop(procs: list[BaseProcess], *, graceful: bool) -> None:
    """Let finished workers exit (``graceful``) or terminate them at once; kill
    those still alive after :data:`_GRACE` seconds."""
    deadline = time.monotonic() + _GRACE
    if not graceful:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()


def _died(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit status {code}"


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Failure:
    """An unexpected exception in a worker, raised again in the parent."""

    def __init__(self, exc: BaseException) -> None:
        self.text = "".join(traceback.format_exception(exc))
        try:
            import pickle

            pickle.loads(pickle.dumps(exc))
            self.exc: BaseException = exc
        except Exception:
            self.exc = RuntimeError(f"{type(exc).__name__}: {exc}")

    def reraise(self) -> None:
        self.exc.add_note(f"in a scan worker process:\n{self.text}")
        raise self.exc


def _worker(conn: Connection, parent: int, cache_dir: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    _init_jax(cache_dir)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, i, layer, options = task
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the parent's filters decide
            try:
                outcome: LayerOutcome | _Failure = _outcome(fn, layer, options)
            except Exception as exc:
                outcome = _Failure(exc)
        records: list[Caught] = [
            (str(w.message), w.category, w.filename, w.lineno) for w in caught
        ]
        conn.send((i, outcome, records))


def _die_with_parent(parent: int) -> None:
    """Exit when the parent process dies, whatever kills it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent,), daemon=True, name="parent-watchdog"
    ).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _init_jax(cache_dir: str | None) -> None:
    import jax

    import htmp_infer._x64  # noqa: F401  (float64 on, as in the parent)

    if cache_dir:
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
