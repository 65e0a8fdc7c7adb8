"""The tracker base class: a callback that must never stop a search."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import warnings
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from nasforge.errors import ConfigError
from nasforge.registry import TRACKERS

if TYPE_CHECKING:
    from nasforge.experiment import Experiment, Trial

__all__ = ["Tracker", "TrackingWarning", "make_tracker"]

K = TypeVar("K")


class TrackingWarning(UserWarning):
    """A tracker could not write (a bad URI, a full disk, ...) and was switched off; the search went on."""


class Tracker:
    """A callback that sends every finished trial somewhere else to look at (TensorBoard, MLflow).

    Pass it to ``Experiment.run(..., callbacks=[tracker])``: the experiment calls
    ``tracker(experiment, trial)`` after each finished trial. Subclasses implement :meth:`log`,
    called with the same arguments, and optionally :meth:`finish`, called once by :meth:`close`.
    Their constructors only store their arguments and check that the optional package is installed;
    files, connections and runs are opened by the first :meth:`log`.

    A tracker must never stop a search: when :meth:`log` raises, the tracker warns once
    (:class:`TrackingWarning`), switches itself off and the search goes on.

    Example:
        >>> from nasforge.track import TensorBoardCallback
        >>> with TensorBoardCallback("runs/tb") as tb:  # doctest: +SKIP
        ...     exp.run(strategy="evolution", estimator=est, n_trials=20, callbacks=[tb])
    """

    name: ClassVar[str] = "tracker"
    extra: ClassVar[str] = ""  # the pip extra that installs what it needs
    module: ClassVar[str] = ""  # the package it imports, checked when constructed

    def __init__(self) -> None:
        if self.module:
            require(self.module, self.extra, self.name)
        self.failed: str | None = None  # why the tracker was switched off, if it was
        self._closed = False

    def __call__(self, exp: Experiment, trial: Trial) -> None:
        if self.failed is not None or self._closed:
            return
        try:
            self.log(exp, trial)
        except Exception as exc:
            self._fail(exc, f"at trial {trial.number}")

    def log(self, exp: Experiment, trial: Trial) -> None:
        """Record one finished trial (called in the order trials finish, not by number)."""
        raise NotImplementedError

    def finish(self, failed: bool) -> None:
        """Flush and close what :meth:`log` opened; ``failed`` if the search stopped with an error."""

    def close(self, failed: bool = False) -> None:
        """Flush and close; the tracker logs nothing afterwards. Safe to call twice.

        Args:
            failed: the search ended with an error or Ctrl-C (MLflow marks its run KILLED).
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.finish(failed)
        except Exception as exc:
            if self.failed is None:
                self._fail(exc, "when closing")

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(failed=exc_type is not None)

    def _fail(self, exc: Exception, where: str) -> None:
        lines = str(exc).strip().splitlines()
        self.failed = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
        warnings.warn(
            f"{self.name} tracking failed {where} and is off for the rest of this run "
            f"(the search goes on): {self.failed}",
            TrackingWarning,
            stacklevel=3,
        )
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):  # the first failure is reported; a second says nothing new
                self.finish(True)


def require(module: str, extra: str, what: str) -> None:
    """Raise ConfigError with the install command if ``module`` cannot be imported (without importing it)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(f"the {what} tracker needs the '{module}' package: pip install 'nasforge[{extra}]'")


def finite_metrics(metrics: Mapping[K, Any]) -> dict[K, float]:
    """The values that are finite numbers, as floats (NaN, inf, text and None are left out)."""
    out: dict[K, float] = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[key] = float(value)
    return out


def describe(exp: Experiment, trial: Trial) -> str:
    """The space's short text for the trial's architecture (``conv3x16-relu > maxpool``,
    :meth:`SearchSpace.describe <nasforge.space.SearchSpace.describe>`)."""
    return exp.space.describe(trial.architecture)


def error_line(trial: Trial) -> str | None:
    """The failure reason in one line: the last line of the stored error (the exception and message)."""
    if not trial.error:
        return None
    lines = [line for line in trial.error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def make_tracker(name: str, /, **options: Any) -> Tracker:
    """A tracker by registered name (``tensorboard``, ``mlflow``) with its options.

    Raises:
        UnknownComponentError: for an unknown name (the message lists the valid ones).
        ConfigError: for an unknown option, or when the tracker's package is not installed.

    Example:
        >>> from nasforge.track import make_tracker
        >>> tb = make_tracker("tensorboard", log_dir="runs/tb")  # doctest: +SKIP
    """
    tracker: Tracker = TRACKERS.create(TRACKERS.canonical_name(name), **options)
    return tracker
