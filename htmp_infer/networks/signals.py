"""Interruptions of a scan: signals as exceptions, and sections they must not cut.

A scan stopped by Ctrl-C (``SIGINT``), ``timeout`` or a batch scheduler
(``SIGTERM``) or a closed terminal (``SIGHUP``) should stop at once, keep every
layer already saved, terminate its worker processes and say how to resume.
:func:`handling` turns those signals into :class:`Interrupted` (a
``KeyboardInterrupt``, so ``finally`` blocks and context managers clean up), and
:func:`deferred` holds a signal back while a layer's files are being written, so
an interruption never leaves a half-saved layer. :class:`ScanInterrupted` is what
:func:`htmp_infer.networks.scan.scan` raises: how many layers are saved, and where.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

__all__ = ["Interrupted", "ScanInterrupted", "deferred", "handling"]


class Interrupted(KeyboardInterrupt):
    """The command was stopped by a signal (``signum``; exit status 128 + signum)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        """What a shell reports for a process ended by the signal: 128 + signum."""
        return 128 + self.signum

    @property
    def name(self) -> str:
        """The signal's name (``SIGINT``, ``SIGTERM``, ...)."""
        return signal.Signals(self.signum).name


class ScanInterrupted(Interrupted):
    """A scan stopped by a signal, with what it kept.

    Attributes
    ----------
    saved : int
        Layers whose results are saved in ``out_dir/layers`` (resumed ones
        included); a rerun of the same scan skips them.
    total : int
        Layers the scan was to fit.
    out_dir : Path or None
    """

    def __init__(
        self, signum: int, saved: int, total: int, out_dir: Path | None
    ) -> None:
        super().__init__(signum)
        self.saved, self.total, self.out_dir = saved, total, out_dir


_depth = 0  # nesting of deferred() sections in the main thread
_pending: list[int] = []  # signals received inside a deferred() section


def _raise(signum: int, frame: FrameType | None) -> None:
    if _depth > 0:
        _pending.append(signum)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def handling(*signums: int) -> Iterator[None]:
    """Raise :class:`Interrupted` on ``SIGINT`` and on ``signums`` inside the block.

    Only in the main thread, and only for a signal left at its default action
    (Python's ``KeyboardInterrupt`` for ``SIGINT``): a signal that is ignored
    (``nohup``, a background job) or handled by the caller is left alone. The
    previous handlers are restored on exit. Blocks nest.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}
    for signum in (signal.SIGINT, *signums):
        current = signal.getsignal(signum)
        if signum in previous or current not in (
            signal.SIG_DFL,
            signal.default_int_handler,
            _raise,
        ):
            continue
        previous[signum] = current
        signal.signal(signum, _raise)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold back a signal that :func:`handling` turns into :class:`Interrupted`.

    A signal received inside the block is raised when the block ends, so what
    the block writes is either complete or not begun. Outside the main thread,
    or without :func:`handling`, the block runs unprotected.
    """
    global _depth
    main = threading.current_thread() is threading.main_thread()
    if main:
        _depth += 1
    try:
        yield
    finally:
        if main:
            _depth -= 1
            if _depth == 0 and _pending:
                signum = _pending[0]
                _pending.clear()
                raise Interrupted(signum)  # the interruption wins over an error
