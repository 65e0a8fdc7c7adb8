"""A search's time budget (``config.time``) applied to the loop and the final training, and the
expectation line a search with a trial count prints after its first trial."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nasforge._budget import (
    DETECTION_EVAL_COST,
    EVAL_COST,
    PROBED_SAFETY,
    SAFETY,
    TimePlan,
    epoch_seconds_from,
    expected_line,
    fit_epochs,
    split_time,
)
from nasforge._progress import format_duration
from nasforge.config import SearchConfig
from nasforge.data import DetectionTask, Task
from nasforge.errors import TrialFailed
from nasforge.estimate._model import TrainedNetwork
from nasforge.experiment._experiment import Callback, Experiment
from nasforge.experiment._prepare import PreparedSearch
from nasforge.trial import Trial, TrialState

__all__ = ["TimeBudget", "expectation"]


def _concurrency(config: SearchConfig) -> int:
    value = (config.executor or {}).get("concurrency") or 1
    return int(value) if isinstance(value, (int, float)) else 1


def _measured(exp: Experiment) -> list[Trial]:
    """Trials that ran their estimator (completed or stopped early), as cost measurements."""
    return [
        t
        for t in exp.trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.duration is not None and not t.screened
    ]


def _costs(trials: Iterable[Trial], config: SearchConfig, task: object) -> list[Mapping[str, Any]]:
    """The trials' metrics as :func:`~nasforge._budget.epoch_seconds_from` reads them: it takes a
    trial's epoch for a pass over the trial's data, as a final training's epoch is. A detection
    trial's epoch can be a few steps (``steps_per_epoch``: 8 of 32 images on shapes-det's 512
    by default, half a pass), so its ``train_seconds`` are scaled to a full pass; else the final
    training's epochs look that much cheaper, more of them are planned than fit, and the time
    limit cuts its one-cycle schedule short."""

    def positive(value: Any) -> float | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        return float(value) if ok else None

    batch = positive(config.estimator.get("batch_size"))
    out: list[Mapping[str, Any]] = []
    for t in trials:
        m = t.metrics
        steps, epochs, seconds = (positive(m.get(k)) for k in ("steps", "epochs", "train_seconds"))
        if isinstance(task, DetectionTask) and steps and epochs and seconds and batch:
            images = float(m.get("fraction") or 1.0) * len(task.x_train)  # a pass over the trial's data
            seen = steps / epochs * batch  # what a trial epoch trained on
            if seen < images:
                m = {**m, "train_seconds": seconds * images / seen}
        out.append(m)
    return out


def expectation(
    config: SearchConfig, prepared: PreparedSearch, say: Callable[[str], None], *, race_cost: float = 0.0
) -> Callback:
    """A callback that says, after the first measured trial, how long the rest should take
    (``race_cost``: a final race's, in final epochs)."""
    said: list[bool] = []

    def callback(exp: Experiment, trial: Trial) -> None:
        if said or config.trials is None:
            return
        measured = _measured(exp)
        if not measured:
            return
        said.append(True)
        epoch_s = epoch_seconds_from(
            _costs(measured, config, prepared.task), resolution=prepared.task.input_shape[1]
        )
        durations = [t.duration for t in measured if t.duration is not None]
        say(
            expected_line(
                trials_left=max(0, config.trials - exp.finished_count()),
                trial_seconds=statistics.median(durations),
                concurrency=_concurrency(config),
                final_epochs=config.final.epochs,
                epoch_seconds=epoch_s,
                race_epochs=race_cost,
            )
        )

    return callback


def _evaluation_seconds(task: object, epoch_seconds: float | None) -> float:
    """What the evaluation after a final (or race) training costs, as its time limit reserves it:
    for :func:`~nasforge.estimate._loop.fit` the validation images and the test images twice
    (accuracy and report) at :data:`~nasforge._budget.EVAL_COST` of a training image each; for
    :func:`~nasforge.estimate.train_detector` the validation and test images once (their mAP) at
    :data:`~nasforge._budget.DETECTION_EVAL_COST`; 0 without a measured epoch."""
    if not isinstance(task, Task | DetectionTask) or epoch_seconds is None or len(task.x_train) == 0:
        return 0.0
    per_image = epoch_seconds / len(task.x_train)
    if isinstance(task, DetectionTask):
        return DETECTION_EVAL_COST * per_image * (len(task.x_val) + len(task.x_test))
    return EVAL_COST * per_image * (len(task.x_val) + 2 * len(task.x_test))


class TimeBudget:
    """A time budget (``config.time``) from the start of :func:`run_search`; the rule that splits
    it is :func:`nasforge._budget.split_time`, this applies it to the loop and the final training."""

    def __init__(self, config: SearchConfig, total: float) -> None:
        self.config = config
        self.started = time.monotonic()
        self.total = total
        self.concurrency = _concurrency(config)
        #: the most epochs the final training may train (``max_epochs`` with a ``time_share``)
        self.final_cap = config.final.timed_epochs()
        self.race_cost = 0.0  # a final race's cost in final epochs (expect_race)
        self.plan = self._split()
        self.search_spent: float | None = None
        self.final_epochs = self.final_cap
        self.time_limit: float | None = None
        self.race_epochs: int | None = None  # what race() gave each candidate
        self.race_time_limit: float | None = None
        self.race_started: float | None = None
        self.race_spent: float | None = None
        self.probed_epoch_seconds: float | None = None  # final(probe=...): the measured epoch

    def expect_race(self, cost: float) -> None:
        """Plan for a final race costing ``cost`` epochs of the final training
        (:func:`nasforge.experiment._race.race_cost`); before the search, so the plan says it."""
        self.race_cost = cost
        if not self.plan.measured:
            self.plan = self._split()

    def _split(self, **measured: Any) -> TimePlan:
        return split_time(
            self.total,
            final_epochs=self.final_cap,
            concurrency=self.concurrency,
            race_epochs=self.race_cost,
            share=self.config.final.time_share,
            **measured,
        )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def measure(self, exp: Experiment, prepared: PreparedSearch) -> bool:
        """Re-split the budget from the trials' measured costs; False if there are none yet."""
        measured = _measured(exp)
        if not measured:
            return False
        durations = [t.duration for t in measured if t.duration is not None]
        self.plan = self._split(
            elapsed=self.elapsed(),
            epoch_seconds=epoch_seconds_from(
                _costs(measured, self.config, prepared.task), resolution=prepared.task.input_shape[1]
            ),
            trial_seconds=statistics.median(durations),
        )
        return True

    def _run(self, exp: Experiment, n_trials: int | None, run_kwargs: dict[str, Any]) -> None:
        left = self.plan.search - self.elapsed()
        if self.config.timeout is not None:
            left = min(left, self.config.timeout - self.elapsed())
        if left > 0 and (n_trials is None or exp.finished_count() < n_trials):
            exp.run(n_trials=n_trials, timeout=left, hard_timeout=True, **run_kwargs)
            run_kwargs.update(scheduler=None)  # attached now: keep its state

    def search(
        self,
        exp: Experiment,
        prepared: PreparedSearch,
        run_kwargs: dict[str, Any],
        say: Callable[[str], None],
    ) -> None:
        """The search's share: the first trial(s) under the fixed split, the rest under the measured one."""
        run_kwargs = dict(run_kwargs)
        if not self.measure(exp, prepared):  # a resumed run may have measured trials already
            say(self.plan.describe())
            first = exp.finished_count() + self.concurrency
            trials = self.config.trials
            self._run(exp, first if trials is None else min(first, trials), run_kwargs)
            self.measure(exp, prepared)
        if self.plan.measured or self.plan.trial_seconds is not None:
            say(self.plan.describe())
        self._run(exp, self.config.trials, run_kwargs)
        self.search_spent = self.elapsed()

    def best_cut(self, exp: Experiment) -> Trial | None:
        """When the budget cut every trial: the best of them on the metrics they reached, so the
        budget still buys a model (the cut trials are not comparable with completed ones)."""
        scored = []
        for t in exp.trials:
            if t.state is TrialState.PRUNED and t.metrics:
                try:
                    values = exp.objective.values(t.metrics)
                except TrialFailed:
                    continue
                scored.append(
                    dataclasses.replace(t, values=values, feasible=exp.objective.feasible(t.metrics))
                )
        return exp.objective.best(scored)

    def race(
        self,
        candidates: list[Trial],
        prepared: PreparedSearch,
        say: Callable[[str], None],
        *,
        epochs: int,
        scale: float,
        final_after: int,
    ) -> tuple[int, float]:
        """Epochs and time limit of each race candidate.

        The race gets the share of what is left that its work (``candidates x epochs x scale``,
        ``scale`` being a candidate's data per epoch against the final training's, folds included)
        is of the work still to do (``final_after``: the final training's epochs, 0 when the
        winner's race training is the final model); the candidates share it equally and all train
        as many epochs as fit at their measured speed, so they stay comparable.
        """
        self.race_started = self.elapsed()
        left = self.total - self.race_started
        work = len(candidates) * epochs * scale
        share = left * work / (work + final_after)
        per = share / len(candidates)
        resolution = prepared.task.input_shape[1]
        epoch_s = epoch_seconds_from(_costs(candidates, self.config, prepared.task), resolution=resolution)
        epoch_s = epoch_s or self.plan.epoch_seconds
        training = per - _evaluation_seconds(prepared.task, epoch_s)
        self.race_epochs = fit_epochs(training, epochs, None if epoch_s is None else epoch_s * scale)
        self.race_time_limit = max(per, 0.01 * self.total / len(candidates))
        if self.race_epochs < epochs:
            say(
                f"final race: {self.race_epochs} of the {epochs} epochs per candidate fit in the "
                f"{format_duration(share)} it gets of the {format_duration(left)} left"
            )
        return self.race_epochs, self.race_time_limit

    def race_done(self) -> None:
        if self.race_started is not None:
            self.race_spent = self.elapsed() - self.race_started

    def final(
        self,
        best: Trial,
        prepared: PreparedSearch,
        say: Callable[[str], None],
        probe: Callable[[], float] | None = None,
    ) -> tuple[int, float]:
        """Epochs and time limit of the final training: the rest of the budget, at the best
        trial's speed, or at the speed ``probe`` measures (seconds per final epoch; its own time
        counts against the budget), which a fixed ``time_share`` uses: it fills its share with
        epochs, so an estimate a quarter too slow would leave a quarter of it unused."""
        epoch_s = None
        if probe is not None:
            epoch_s = probe()
            self.probed_epoch_seconds = epoch_s
        left = self.total - self.elapsed()
        resolution = prepared.task.input_shape[1]
        epoch_s = (
            epoch_s
            or epoch_seconds_from(_costs([best], self.config, prepared.task), resolution=resolution)
            or self.plan.epoch_seconds
        )
        configured = self.final_cap
        # the epochs that fit with the evaluation after them, which the time limit covers too
        margin = SAFETY if self.probed_epoch_seconds is None else PROBED_SAFETY
        self.final_epochs = fit_epochs(
            left - _evaluation_seconds(prepared.task, epoch_s), configured, epoch_s, margin=margin
        )
        # at least a little: a model trained for a moment is more use than none
        self.time_limit = max(left, 0.01 * self.total)
        if self.config.final.time_share is not None:
            say(
                f"final training: {self.final_epochs} epochs (as many as fit in the "
                f"{format_duration(left)} left at ~{format_duration(epoch_s or 0)} each, up to {configured})"
            )
        elif self.final_epochs < configured:
            say(
                f"final training: {self.final_epochs} of the {configured} epochs fit in the "
                f"{format_duration(left)} left (~{format_duration(epoch_s or 0)} each)"
            )
        return self.final_epochs, self.time_limit

    def record(self, final: TrainedNetwork | None) -> dict[str, Any]:
        """What final.json keeps: the budget, the plan and what was spent."""
        out: dict[str, Any] = {
            "total_s": round(self.total, 3),
            "plan": self.plan.to_dict(),
            "search_s": None if self.search_spent is None else round(self.search_spent, 3),
            "final_epochs": self.final_epochs,
            "final_time_limit_s": None if self.time_limit is None else round(self.time_limit, 3),
            "final_epoch_seconds": None
            if self.probed_epoch_seconds is None
            else round(self.probed_epoch_seconds, 3),
            "spent_s": round(self.elapsed(), 3),
        }
        if self.race_epochs is not None:
            out["race_epochs"] = self.race_epochs
            out["race_time_limit_s"] = (
                None if self.race_time_limit is None else round(self.race_time_limit, 3)
            )
            out["race_s"] = None if self.race_spent is None else round(self.race_spent, 3)
        if final is not None:
            out["final_s"] = final.metrics.get("seconds")
            out["final_cut"] = bool(final.metrics.get("cut_by_time_limit", False))
        return out
