"""Ctrl-C and SIGTERM while a search runs: remembered, and never let loose inside a database write.

A ``KeyboardInterrupt`` raised in the middle of an SQLAlchemy transaction can leave that
connection holding SQLite's write lock with a half-written trial; every later write of the process
(the ones that mark its running trials interrupted) then fails with "database is locked", and a
trial stays RUNNING. So while :func:`remember_interrupts` is on, a signal that arrives inside a
:func:`held` block (a storage operation) is handled when the block ends, a few milliseconds later.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["held", "remember_interrupts"]

_depth = 0  # held blocks open in the main thread
_pending: list[Callable[[], None]] = []  # handlers deferred until the outermost block ends


def _main() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Run the block without a signal handler cutting it; a signal that came meanwhile is handled
    (so Ctrl-C raises ``KeyboardInterrupt``) as soon as the outermost block ends. Only the main
    thread receives signals; in other threads this does nothing."""
    global _depth
    if not _main():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            calls = list(_pending)
            _pending.clear()
            calls[0]()  # the first signal decides (Ctrl-C vs SIGTERM); it raises


@contextlib.contextmanager
def remember_interrupts() -> Iterator[list[int]]:
    """Record Ctrl-C (and a SIGTERM handled as one) while a search runs.

    The handlers already in place still raise ``KeyboardInterrupt`` (later, when the signal comes
    inside a :func:`held` block); the signal is also written down, because Python ignores an
    exception raised inside a finaliser (a SQLAlchemy weakref callback, a ``__del__``) and the
    interrupt would then be lost. The run loop checks the list. Only in the main thread (the only
    one that receives signals), and only for signals with a Python handler: an ignored or default
    signal is left alone.
    """
    seen: list[int] = []
    if not _main():
        yield seen
        return
    previous: dict[int, Callable[[int, Any], Any]] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if callable(handler):
            previous[sig] = handler

            def remember(signum: int, frame: Any, _handler: Callable[[int, Any], Any] = handler) -> None:
                seen.append(signum)
                if _depth:
                    _pending.append(lambda: _handler(signum, None))
                    return
                _handler(signum, frame)

            signal.signal(sig, remember)
    try:
        yield seen
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        _pending.clear()
