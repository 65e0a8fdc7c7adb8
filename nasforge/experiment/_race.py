"""The final race: the top few trials of a search trained with the final recipe before one is picked.

Why it is there: a search ranks its trials by a short, cheap training scored on the validation
split. On real data with a few hundred validation images that ranking is noisy: the best trial
is often the luckiest, not the best network (issue 21: validation 0.978, test 0.855, and the pick
was the first architecture sampled). The race (``final: {race: K}``, ``nasforge search --race K``)
takes the top ``K`` distinct completed trials by the search objective, trains each with the final
training's recipe for ``race_epochs`` (default a quarter of the final epochs,
:func:`nasforge.config.default_race_epochs`) with the same seed, and sends the one with the best
validation selection metric (the run's ``--metric``: the first objective when it is one of
``val_accuracy``, ``val_balanced_accuracy``, ``val_auc``, ``val_f1_macro``; else
``val_accuracy``) to the full final training. Ties go to the better search rank. When
``race_epochs`` equals the final epochs, the winner's race training *is* the final training
(trained once, then tested).

Small validation splits (:func:`check_validation`: fewer than :data:`SMALL_VAL_IMAGES` images, or
fewer than :data:`SMALL_VAL_PER_CLASS` in some class) are said in one line, and the race then
scores each candidate by stratified ``race_folds``-fold cross-validation on train + val, so the
pick does not rest on the few images of the validation split; the final model still trains on the
training split and is scored on validation and test as without a race.

The race never sees the test split: only the final model is tested.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.estimate._metrics import SELECTION_METRICS
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.config import FinalConfig
    from nasforge.data import Task
    from nasforge.estimate._final import FinalRun
    from nasforge.experiment._experiment import Experiment

__all__ = [
    "SMALL_VAL_IMAGES",
    "SMALL_VAL_PER_CLASS",
    "RaceResult",
    "ValidationCheck",
    "check_validation",
    "fold_tasks",
    "race_candidates",
    "race_cost",
    "race_metric",
    "race_scale",
    "reuses_winner",
    "run_race",
]

#: Below this many validation images a split is small: the standard error of an accuracy near 0.9
#: on 1,000 images is about 1 point (sqrt(0.9 * 0.1 / 1000)), on 300 about 1.7 points, so trials
#: a point or two apart cannot be told apart by it.
SMALL_VAL_IMAGES = 1000
#: ... or below this many in its smallest class: one image then moves that class's recall by 2
#: points or more, and balanced accuracy, macro F1 and AUC average over the classes.
SMALL_VAL_PER_CLASS = 50


@dataclass(frozen=True)
class ValidationCheck:
    """How large the validation split is, and whether it is too small to pick by (see the module)."""

    images: int
    smallest_class: int
    classes: int

    @property
    def small(self) -> bool:
        return self.images < SMALL_VAL_IMAGES or self.smallest_class < SMALL_VAL_PER_CLASS

    def line(self, *, race: int, folds: int) -> str:
        """One line for the output: the split is small, and what the run does about it."""
        moved = f"one image moves its accuracy by {100 / self.images:.2f} points" if self.images else ""
        head = (
            f"small validation set: {self.images:,} images, {self.smallest_class:,} in its smallest "
            f"class (under {SMALL_VAL_IMAGES:,}, or under {SMALL_VAL_PER_CLASS} per class"
            + (f"; {moved})" if moved else ")")
        )
        if race > 1:
            return (
                head + f"; the final race scores its candidates by {folds}-fold cross-validation on train+val"
            )
        return (
            head
            + "; the pick rests on it: --race 3 (final: {race: 3}) re-scores the top 3 by cross-validation"
        )

    def to_dict(self, *, race: int, folds: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "images": self.images,
            "smallest_class": self.smallest_class,
            "small": self.small,
            "small_below": {"images": SMALL_VAL_IMAGES, "per_class": SMALL_VAL_PER_CLASS},
        }
        if self.small:
            out["note"] = self.line(race=race, folds=folds)
        return out


def check_validation(task: Task) -> ValidationCheck:
    """The size of ``task``'s validation split and of its smallest class (0 for a class it lacks).

    Example:
        >>> from nasforge.data import load
        >>> check = check_validation(load("digits"))
        >>> check.images, check.smallest_class, check.small
        (360, 35, True)
    """
    counts = np.bincount(task.y_val.cpu().numpy(), minlength=task.num_classes)
    return ValidationCheck(
        images=int(counts.sum()),
        smallest_class=int(counts.min()) if counts.size else 0,
        classes=task.num_classes,
    )


def race_metric(objectives: Sequence[str]) -> str:
    """The validation metric a race picks by: the first objective when it is a selection metric
    (``val_accuracy``, ``val_balanced_accuracy``, ``val_auc``, ``val_f1_macro``), else ``val_accuracy``.

    Example:
        >>> race_metric(["val_auc", "-params"]), race_metric(["-params", "val_accuracy"])
        ('val_auc', 'val_accuracy')
    """
    first = objectives[0].lstrip("+-") if objectives else ""
    return first if first in {f"val_{m}" for m in SELECTION_METRICS} else "val_accuracy"


def race_candidates(exp: Experiment, k: int) -> list[Trial]:
    """The top ``k`` distinct (by architecture) completed feasible trials, best first, as
    :meth:`Experiment.leaderboard` ranks them; fewer when fewer completed."""
    seen: set[str] = set()
    out: list[Trial] = []
    for trial in exp.leaderboard():
        if trial.state is not TrialState.COMPLETE or not trial.feasible or trial.architecture.key in seen:
            continue
        seen.add(trial.architecture.key)
        out.append(trial)
        if len(out) == k:
            break
    return out


def race_scale(final: FinalConfig, task: Task, *, cross_validate: bool) -> float:
    """A race candidate's training data per epoch, in epochs of the final training: 1 on the
    validation split; with cross-validation ``race_folds`` trainings on ``(folds - 1) / folds`` of
    train + val each."""
    if not cross_validate:
        return 1.0
    n_train, n_val = len(task.y_train), len(task.y_val)
    return (final.race_folds - 1) * (n_train + n_val) / n_train


def race_cost(final: FinalConfig, task: Task, candidates: int, *, cross_validate: bool) -> float:
    """What a race of ``candidates`` adds to the final training, in its epochs (for the time budget).

    ``candidates x race_epochs x`` :func:`race_scale`; when the winner's race training is the final
    training (no cross-validation, ``race_epochs`` equal to the final epochs), one of them costs
    nothing extra.
    """
    if candidates < 2:
        return 0.0
    epochs = final.race_length()
    cost = candidates * epochs * race_scale(final, task, cross_validate=cross_validate)
    if reuses_winner(final, cross_validate=cross_validate):
        cost -= final.epochs
    return cost


def reuses_winner(final: FinalConfig, *, cross_validate: bool) -> bool:
    """Whether the race winner's training is the final model: no cross-validation, and the race
    trains as long as the final training (training it again would give the same network)."""
    return not cross_validate and final.race_length() == final.epochs


def fold_tasks(task: Task, folds: int, seed: int) -> list[Task]:
    """``folds`` tasks for stratified cross-validation on ``task``'s train + val: each holds one fold
    as its validation split, the others as its training split, and no test images.

    Example:
        >>> from nasforge.data import load
        >>> [t.describe() for t in fold_tasks(load("digits"), 3, seed=0)][0]
        'digits: 958 train / 479 val / 0 test, 1x8x8, 10 classes'
    """
    import torch

    from nasforge.data import stratified_split

    x = torch.cat([task.x_train, task.x_val])
    y = torch.cat([task.y_train, task.y_val])
    parts = stratified_split(y.numpy(), tuple(1 / folds for _ in range(folds)), seed)
    out = []
    for i, held in enumerate(parts):
        rest = torch.from_numpy(np.sort(np.concatenate([p for j, p in enumerate(parts) if j != i])))
        held_t = torch.from_numpy(held)
        out.append(
            replace(
                task,
                x_train=x[rest],
                y_train=y[rest],
                x_val=x[held_t],
                y_val=y[held_t],
                x_test=x[:0],
                y_test=y[:0],
            )
        )
    return out


@dataclass
class RaceResult:
    """What a final race did (``final.json``'s ``race``; :meth:`to_dict`)."""

    winner: Trial
    metric: str
    how: str  # "holdout" (the validation split) or "cross-validation"
    folds: int | None
    epochs: int  # epochs each candidate was to train
    entries: list[dict[str, Any]]
    seconds: float
    note: str | None = None
    time_limit: float | None = None  # seconds each candidate was allowed, under a time budget
    #: the winner's training when it is the final training (holdout, race epochs = final epochs)
    run: FinalRun | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "how": self.how,
            "folds": self.folds,
            "epochs": self.epochs,
            "winner": self.winner.number,
            "final_is_race_model": self.run is not None,
            "seconds": round(self.seconds, 3),
            "time_limit_s": None if self.time_limit is None else round(self.time_limit, 3),
            "note": self.note,
            "candidates": self.entries,
        }


def _score(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def run_race(
    candidates: Sequence[Trial],
    task: Task,
    *,
    metric: str,
    epochs: int,
    recipe: Mapping[str, Any],
    seed: int,
    folds: int | None = None,
    time_limit: float | None = None,
    keep_winner: bool = False,
    objective: str | None = None,
    note: str | None = None,
    on_candidate: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> RaceResult:
    """Train each candidate with ``recipe`` for ``epochs`` and pick the best by ``metric``.

    Args:
        candidates: the trials, best search rank first (:func:`race_candidates`).
        task: the task the final training uses.
        metric: the validation metric that picks (:func:`race_metric`).
        epochs: each candidate's epochs.
        recipe: the final training's other options (:func:`~nasforge.estimate._final.fit_final`'s
            batch_size, lr, ...; not epochs, seed, time_limit or on_epoch).
        seed: the one seed every candidate trains with (the final training's).
        folds: score by stratified cross-validation on train + val with this many folds; None
            scores on the validation split.
        time_limit: seconds each candidate may train (shared by its folds); a candidate cut
            short is marked ``cut``.
        keep_winner: keep the winner's trained network (``RaceResult.run``) to be the final
            model; only without ``folds``.
        objective: the search objective's name, recorded with each candidate's search value.
        note: a remark kept with the result (fewer candidates than asked for).
        on_candidate: called as ``on_candidate(done, total, entry)`` after each candidate.
    """
    from nasforge.estimate._final import fit_final

    start = time.perf_counter()
    tasks = fold_tasks(task, folds, seed) if folds is not None else [task]
    entries: list[dict[str, Any]] = []
    runs: list[FinalRun | None] = []
    best_index, best_score = 0, -math.inf
    for rank, trial in enumerate(candidates, start=1):
        began = time.perf_counter()
        scores: list[dict[str, float]] = []
        epochs_run: list[int] = []
        cut = False
        kept: FinalRun | None = None
        for fold in tasks:
            run = fit_final(
                trial.architecture,
                fold,
                epochs=epochs,
                seed=seed,
                time_limit=None if time_limit is None else time_limit / len(tasks),
                **recipe,
            )
            scores.append(run.validation())
            epochs_run.append(run.result.epochs)
            cut = cut or run.result.timed_out
            if keep_winner and folds is None:
                kept = run
        names = sorted({k for s in scores for k in s})
        mean = {k: float(np.nanmean([s.get(k, math.nan) for s in scores])) for k in names}
        entry: dict[str, Any] = {
            "rank": rank,
            "trial": trial.number,
            "architecture": dict(trial.architecture.params),  # final.json has the winner's in full
            "search": {objective: trial.metrics.get(objective)} if objective else {},
            "race": {k: round(v, 6) for k, v in mean.items()},
            "epochs": min(epochs_run),
            "seconds": round(time.perf_counter() - began, 3),
            "cut": cut,
        }
        if folds is not None:
            entry["folds"] = [{k: round(v, 6) for k, v in s.items()} for s in scores]
        score = _score(mean.get(metric))
        if score > best_score:  # strictly better: ties stay with the better search rank
            best_index, best_score = len(entries), score
            runs = [kept]
        entries.append(entry)
        if on_candidate is not None:
            on_candidate(rank, len(candidates), entry)
    for i, entry in enumerate(entries):
        entry["winner"] = i == best_index
    return RaceResult(
        winner=candidates[best_index],
        metric=metric,
        how="cross-validation" if folds is not None else "holdout",
        folds=folds,
        epochs=epochs,
        entries=entries,
        seconds=time.perf_counter() - start,
        note=note,
        time_limit=time_limit,
        run=runs[0] if runs else None,
    )
