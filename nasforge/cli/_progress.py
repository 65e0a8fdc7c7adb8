"""Progress on the terminal or in a log: live bars, or throttled lines with an ETA."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from nasforge.cli._app import err

__all__ = ["Reporter", "work_progress"]


@contextmanager
def work_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr for ``bench`` / ``rank``, fed by ``advance(done, total)``.

    It appears with the first finished unit, so bad input fails with no output but the error;
    Ctrl-C says nothing was written and exits with 130.
    """
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = progress.add_task(description, total=None)
    started: list[bool] = []

    def advance(done: int, total: int) -> None:
        if not started:
            progress.start()
            started.append(True)
        progress.update(task, completed=done, total=total)

    try:
        yield advance
    except KeyboardInterrupt:
        err.print("interrupted; nothing written")
        raise typer.Exit(130) from None
    finally:
        if started:
            progress.stop()


class Reporter:
    """Progress of long work (trials, epochs): live bars on a terminal, plain lines otherwise.

    The library reports through callbacks (``run_search``'s ``callbacks`` and ``on_epoch``,
    ``train_final``'s ``on_epoch``, ``tune_training``'s ``on_trial``); this turns them into rich
    bars with an ETA on a terminal, and into throttled lines with an ETA in a log file, a pipe or
    CI (:class:`nasforge._progress.ProgressLines`: at most one line per ``interval`` seconds and a
    still-working line after a minute of silence, so a log is neither flooded nor left silent).
    """

    def __init__(self, console: Console, *, enabled: bool = True, interval: float = 15.0) -> None:
        from nasforge._progress import ProgressLines

        self.console = console
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[text]}"),
            console=console,
            disable=not self.live,
        )
        self._lines = ProgressLines(self._write, interval=interval)
        self._tasks: dict[str, TaskID] = {}
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def _write(self, line: str) -> None:
        self.console.print(escape(line), highlight=False, soft_wrap=True)

    def __enter__(self) -> Reporter:
        self._stop.clear()
        if self.live:
            self._bars.start()
        elif self.enabled:  # a trial or an epoch can take many minutes: say it is still running
            self._timer = threading.Thread(target=self._tick, name="nasforge-progress", daemon=True)
            self._timer.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(2.0):
            self._lines.tick()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        self._bars.stop()

    def stage(self, key: str, label: str, total: int | None, *, done: int = 0, unit: str = "") -> None:
        """A new stage of ``total`` units (None: unknown), ``done`` of them already done."""
        if self.live and key in self._tasks:  # started again: its time per unit starts now
            self._bars.reset(self._tasks[key], total=total, completed=done, description=label, text="")
        elif self.live:
            self._tasks[key] = self._bars.add_task(label, total=total, completed=done, text="")
        elif self.enabled:
            self._lines.stage(key, total=total, done=done, unit=unit, label=label)

    def update(self, key: str, done: int, text: str = "") -> None:
        if self.live:
            self._bars.update(self._tasks[key], completed=done, text=text)
        elif self.enabled:
            self._lines.update(key, done, text)

    def note(self, markup: str) -> None:
        """A line that stays (a failed trial), above the bars on a terminal."""
        self.console.print(markup, highlight=False)
