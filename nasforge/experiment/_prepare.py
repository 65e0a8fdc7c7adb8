"""The components of a search, built once from a validated config before any trial runs."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._device import check_amp, check_device_and_amp, check_device_name, resolve_device
from nasforge._seeds import derive_seed, strategy_seed
from nasforge.config import SearchConfig
from nasforge.data import load_task
from nasforge.errors import ConfigError, InfeasibleError, SpaceError
from nasforge.estimate import Estimator
from nasforge.execute import make_executor
from nasforge.execute._base import Executor
from nasforge.experiment._experiment import Experiment
from nasforge.experiment._screening import impossible_constraint
from nasforge.objective import Objective
from nasforge.registry import ESTIMATORS, EXECUTORS, SCHEDULERS, SPACES, STRATEGIES, check_options
from nasforge.space import SearchSpace, space_from_config
from nasforge.strategy._base import Strategy
from nasforge.strategy._schedulers import Scheduler

if TYPE_CHECKING:
    from nasforge.track import Tracker

__all__ = ["PreparedSearch", "check_task_kinds", "prepare_search"]

#: ``on_epoch(epoch, epochs, record)`` of a one-shot strategy's supernet training
SupernetEpoch = Callable[[int, int, dict[str, Any]], None]


@dataclass
class PreparedSearch:
    """The components of a search, each built once from a validated config before any trial ran.

    The strategy is the exception: its seed comes from the experiment (and the worker's index on
    a shared database), so :meth:`build_strategy` builds it once the experiment is open; its
    option names are checked here already.
    """

    config: SearchConfig
    task: Any
    space: SearchSpace
    objective: Objective
    estimator: Estimator
    strategy_name: str
    strategy_options: dict[str, Any]  # device and amp filled in for a strategy that trains
    scheduler: Scheduler | None = None
    executor: Executor | None = None
    executor_options: dict[str, Any] | None = None  # what the executor was built with
    trackers: list[Tracker] = field(default_factory=list)

    def build_strategy(self, experiment: Experiment, on_epoch: SupernetEpoch | None = None) -> Strategy:
        """The strategy of the config, seeded for ``experiment`` as :meth:`Experiment.set_strategy`
        seeds one it creates by name (unless the options set a seed); a one-shot strategy reports
        each epoch of its supernet training to ``on_epoch(epoch, epochs, record)``."""
        options = dict(self.strategy_options)
        # another worker of a shared database gets its own seed, so it proposes other architectures
        options.setdefault("seed", strategy_seed(experiment.seed, experiment.worker_index))
        strategy: Strategy = STRATEGIES.create(self.strategy_name, **options)
        if on_epoch is not None:  # heard only by a strategy that trains before proposing (one-shot)
            strategy.on_epoch = on_epoch
        return strategy


def prepare_search(config: SearchConfig) -> PreparedSearch:
    """Load the data and build every component once (the strategy: see
    :meth:`PreparedSearch.build_strategy`); raises before any trial runs or any file is written.

    A detection dataset (:data:`nasforge.data.DETECTION_DATASETS`) loads a
    :class:`~nasforge.data.DetectionTask`; a space or estimator for the other kind of task is a
    :class:`~nasforge.errors.ConfigError` before the data is loaded.
    """
    check_task_kinds(config)
    exec_section = dict(config.executor or {})
    on_ray = exec_section.get("name") is not None and EXECUTORS.canonical_name(exec_section["name"]) == "ray"
    if not on_ray:  # a Ray driver may have no GPU where its workers do: they resolve the name
        check_device_and_amp(config.device, config.amp)
    data = config.data
    task = load_task(
        data.name, data.root, fraction=data.fraction, seed=data.seed, download=data.download, **data.options
    )
    if data.class_names is not None:
        task = task.with_class_names(data.class_names)
    space = space_from_config(config.space).bind(task.input_shape, task.num_classes)
    try:
        space.sample(np.random.default_rng(config.seed), max_tries=2000)
    except SpaceError as exc:
        raise ConfigError(f"space has no valid architecture for {task.describe()}: {exc}") from None
    objective = Objective(config.objectives, constraints=config.constraints)

    est_options = dict(config.estimator)
    est_name = est_options.pop("name")
    est_cls = ESTIMATORS.get(est_name)
    _where(est_cls, est_options, config)
    check_options("estimator", est_name, est_cls, {"task": task, **est_options})
    if on_ray:  # the driver may have no GPU: the name is checked here, resolved on each worker
        wanted: dict[str, Any] = {k: est_options.pop(k) for k in ("device", "amp") if k in est_options}
        estimator = est_cls(task=task, **est_options)
        if "device" in wanted:
            estimator.device = check_device_name(wanted["device"])
        if "amp" in wanted:
            estimator.amp = check_amp(wanted["amp"])
        est_options.update(wanted)
    else:
        estimator = est_cls(task=task, **est_options)
    impossible = impossible_constraint(space, objective, estimator)
    if impossible is not None:  # before the run directory exists
        raise InfeasibleError(impossible)

    strat_options = dict(config.strategy)
    strat_name = strat_options.pop("name")
    strat_cls = STRATEGIES.get(strat_name)
    _where(strat_cls, strat_options, config)
    check_options("strategy", strat_name, strat_cls, strat_options)

    scheduler: Scheduler | None = None
    if config.scheduler is not None:
        sched_options = dict(config.scheduler)
        sched_name = SCHEDULERS.canonical_name(sched_options.pop("name"))
        check_options("scheduler", sched_name, SCHEDULERS.get(sched_name), sched_options)
        if sched_name == "hyperband":  # as Experiment.set_scheduler seeds it (the experiment's
            sched_options.setdefault("seed", derive_seed(config.seed, 3))  # seed is config.seed)
        scheduler = SCHEDULERS.create(sched_name, **sched_options)

    executor: Executor | None = None
    exec_options: dict[str, Any] | None = None
    if config.executor is not None:
        exec_options = dict(config.executor)
        exec_name = EXECUTORS.canonical_name(exec_options.pop("name"))
        if exec_name == "process" and "gpus" not in exec_options and not _trials_rotate_gpus(est_options):
            exec_options["gpus"] = []  # CPU trials (or a fixed cuda:N): no GPU rotation
        executor = make_executor(exec_name, **exec_options)  # started by the run

    from nasforge.track import make_tracker

    trackers = []  # names, options and installed packages checked now; they open files on first use
    for entry in config.track:
        track_options = dict(entry)
        trackers.append(make_tracker(track_options.pop("name"), **track_options))
    return PreparedSearch(
        config=config,
        task=task,
        space=space,
        objective=objective,
        estimator=estimator,
        strategy_name=strat_name,
        strategy_options=strat_options,
        scheduler=scheduler,
        executor=executor,
        executor_options=exec_options,
        trackers=trackers,
    )


_CLASSIFICATION_METRICS = ("val_accuracy", "val_balanced_accuracy", "val_auc", "val_f1_macro")
_DETECTION_METRICS = ("val_map", "val_map_50", "val_map_75")


def check_task_kinds(config: SearchConfig) -> None:
    """Raise a one-line ConfigError when the space, the estimator or an objective is for another
    kind of task (classification, detection) than the config's dataset; nothing is loaded."""
    from nasforge.data import is_detection_dataset

    name = config.data.name
    detection = is_detection_dataset(name)
    kind = "detection" if detection else "classification"
    fix = (
        "for detection data use --space detector --estimator train_det (space: {name: detector}, "
        "estimator: {name: train_det} in a config), or leave both out to get them"
        if detection
        else "the detector space and the train_det estimator need a detection dataset ("
        + ", ".join(sorted(_detection_names()))
        + "); classification data searches e.g. --space chain_cnn --estimator train"
    )
    space_name = config.space.get("name")
    if isinstance(space_name, str) and space_name != "custom":
        kinds = getattr(SPACES.get(space_name), "task_kinds", ("classification",))
        if kind not in kinds:
            raise ConfigError(
                f"space '{space_name}' builds {' / '.join(kinds)} networks, but {name} is a {kind} "
                f"dataset; {fix}"
            )
    est_name = config.estimator.get("name")
    if isinstance(est_name, str):
        kinds = getattr(ESTIMATORS.get(est_name), "task_kinds", ("classification",))
        if kind not in kinds:
            raise ConfigError(
                f"estimator '{est_name}' estimates {' / '.join(kinds)} networks, but {name} is a {kind} "
                f"dataset; {fix}"
            )
    classifier_only = {"optimizer", "schedule", "augment", "label_smoothing", "warmup"}
    odd = sorted(classifier_only & config.final.model_fields_set) if detection else []
    if odd:
        raise ConfigError(
            f"final: {' and '.join(odd)}: classification only; a detector's final training uses AdamW "
            "with a one-cycle learning rate and no augmentation (set epochs, lr, batch_size, weight_decay)"
        )
    wrong = _CLASSIFICATION_METRICS if detection else _DETECTION_METRICS
    for objective in config.objectives:
        if objective.lstrip("+-") in wrong:
            right = "val_map (or val_map_50, val_map_75)" if detection else "val_accuracy"
            raise ConfigError(f"objective {objective} is not measured on {kind} data ({name}); use {right}")


def _detection_names() -> list[str]:
    from nasforge.data import DETECTION_DATASETS

    return list(DETECTION_DATASETS)


def _where(cls: Any, options: dict[str, Any], config: SearchConfig) -> None:
    """Give a component that trains (an estimator, a one-shot strategy) the config's ``device`` and
    ``amp`` unless its own options set them."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    for key in ("device", "amp"):
        if key in params and key not in options:
            options[key] = getattr(config, key)


def _trials_rotate_gpus(est_options: dict[str, Any]) -> bool:
    """Whether trials with these estimator options want the process executor's GPU rotation:
    ``auto`` or ``cuda`` (not a fixed ``cuda:N``) that means a CUDA GPU here."""
    name = check_device_name(est_options.get("device", "auto"))
    return name in ("auto", "cuda") and resolve_device(name).type == "cuda"
