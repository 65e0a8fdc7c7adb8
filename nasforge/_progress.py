"""Plain-text progress for output that is not a terminal (a log file, ``| tee``, CI).

A live bar needs a terminal; a log needs lines, but not one per event: a search of 30 one-second
trials must not print 30 lines, and one of 30 twenty-minute trials must not stay silent for an
hour. :class:`ProgressLines` prints an event (a trial or an epoch done) only when ``interval``
seconds have passed since its last line, but always the first unit of a stage (an early ETA)
and the last; fed :meth:`~ProgressLines.tick` by a timer, it says it is still working after
``quiet_after`` seconds without a line. Each line carries ``done/total``, the mean time per unit
and an ETA.

The clock is injected, so the rule is tested without waiting.

Example:
    >>> lines = []
    >>> now = [0.0]
    >>> p = ProgressLines(lines.append, interval=10, clock=lambda: now[0])
    >>> p.stage("trials", total=30, unit="trial")
    >>> for done in range(1, 31):  # one trial a second
    ...     now[0] += 1.0
    ...     p.update("trials", done)
    >>> len(lines)  # the first trial, one every 10 seconds, and the last
    4
    >>> lines[0]
    'trials 1/30, 1s per trial, elapsed 1s, ETA 29s'
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressLines", "format_duration"]


def format_duration(seconds: float) -> str:
    """``40ms``, ``2.5s``, ``42s``, ``3m05s``, ``1h07m``: short, and exact enough for an estimate."""
    if not math.isfinite(seconds):
        return "?"
    s = max(0, round(seconds))
    if seconds < 0.995:
        return f"{max(0.0, seconds) * 1000:.0f}ms"
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s".replace(".0s", "s")
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass
class _Stage:
    label: str
    total: int | None
    unit: str
    started: float
    done0: int
    done: int
    text: str = ""
    eta: float | None = None  # seconds left as estimated at the last update
    updated: float = 0.0
    ended: bool = False
    printed: bool = False


class ProgressLines:
    """Throttled progress lines with an ETA, one stage (trials, epochs, ...) or several in turn.

    Args:
        write: called with each line (no newline).
        interval: at most one line per ``interval`` seconds, besides a stage's first and last.
        quiet_after: :meth:`tick` prints a still-working line after this many seconds without one.
        clock: seconds, monotonic (default :func:`time.monotonic`).
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        interval: float = 15.0,
        quiet_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write = write
        self.interval = interval
        self.quiet_after = quiet_after
        self.clock = clock
        self._stages: dict[str, _Stage] = {}
        self._current: str | None = None
        self._last_line = -math.inf
        self._lock = threading.Lock()

    def stage(self, key: str, *, total: int | None, done: int = 0, unit: str = "", label: str = "") -> None:
        """Start a stage: ``total`` units to do (None if unknown), ``done`` of them done already
        (a resumed search; they do not count towards the time per unit)."""
        now = self.clock()
        with self._lock:
            self._stages[key] = _Stage(label or key, total, unit, now, done, done, updated=now)
            self._current = key

    def update(self, key: str, done: int, text: str = "") -> None:
        """``done`` units of stage ``key`` are finished; ``text`` goes at the end of the line."""
        now = self.clock()
        with self._lock:
            st = self._stages[key]
            st.done, st.updated, self._current = done, now, key
            if text:
                st.text = text
            counted = done - st.done0
            if st.total is not None and counted > 0:
                st.eta = (now - st.started) / counted * max(0, st.total - done)
            last = st.total is not None and done >= st.total
            if last and st.ended:
                return
            first = not st.printed and counted > 0  # a stage's first unit gives its ETA early
            if first or last or now - self._last_line >= self.interval:
                st.printed = True
                st.ended = last
                self._emit(st, now)

    def tick(self) -> None:
        """Called every few seconds by a timer: after ``quiet_after`` silent seconds, one line
        saying the current stage is still running, with its ETA counted down."""
        now = self.clock()
        with self._lock:
            if self._current is None:
                return
            st = self._stages[self._current]
            if st.ended or now - max(self._last_line, st.started) < max(self.quiet_after, self.interval):
                return
            self._emit(st, now, still=True)

    def _emit(self, st: _Stage, now: float, *, still: bool = False) -> None:
        self._last_line = now
        self.write(self._line(st, now, still=still))

    def _line(self, st: _Stage, now: float, *, still: bool) -> str:
        total = f"/{st.total}" if st.total is not None else ""
        parts = [f"{st.label} {st.done}{total}"]
        counted = st.done - st.done0
        elapsed = now - st.started
        if counted > 0 and st.unit:
            parts.append(f"{format_duration((st.updated - st.started) / counted)} per {st.unit}")
        if still:
            last = f"the last {st.unit}" if st.unit and st.done > st.done0 else "the start"
            parts.append(f"{format_duration(now - st.updated)} since {last}")
        parts.append(f"elapsed {format_duration(elapsed)}")
        if st.total is not None and st.done >= st.total:
            parts[-1] = f"done in {format_duration(elapsed)}"
        elif st.eta is not None:
            parts.append(f"ETA {format_duration(max(0.0, st.eta - (now - st.updated)))}")
        line = ", ".join(parts)
        return f"{line}; {st.text}" if st.text else line
