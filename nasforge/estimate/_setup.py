"""What every training in nasforge sets up the same way: the thread count, the checked training
settings, a network seeded without touching torch's global generator, weights carried over.

Search trials (:class:`~nasforge.TrainEstimator`, the detection estimator), final training
(:func:`~nasforge.train_final`, :func:`~nasforge.estimate.train_detector`) and tuning share these.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasforge._defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LR,
    DEFAULT_OPTIMIZER,
    DEFAULT_SCHEDULE,
    DEFAULT_TRIAL_EPOCHS,
    DEFAULT_WEIGHT_DECAY,
)
from nasforge._threads import available_cpus
from nasforge.errors import ConfigError
from nasforge.estimate._base import Estimator
from nasforge.space._architecture import check_width

if TYPE_CHECKING:
    import torch

    from nasforge.data import DetectionTask, Task
    from nasforge.space import Architecture

__all__ = [
    "SMALL_STEP_VALUES",
    "TrainBudget",
    "TrainingEstimator",
    "build_seeded",
    "check_count",
    "check_optimizer_numbers",
    "check_share",
    "default_threads",
    "transfer_weights",
    "values_per_step",
]


#: Training steps that feed at most this many input values (batch x channels x height x width)
#: run on one thread unless the user chose a count. At digits' scale (8x8 images in batches of 32:
#: 2,048 values) each operation is too small for two threads to share well: the README's search took
#: the same time on one thread as on two on a quiet machine, and beside one busy process per core it
#: slowed 2.4x on one thread against 2.9x on two (docs/benchmarks.md, issue 19). A 28x28 batch of
#: 128 (100,352 values) trained 1.4-1.7x faster on two threads and keeps every core.
SMALL_STEP_VALUES = 8_192


def default_threads(step_values: int | None = None) -> int:
    """The torch thread count nasforge uses unless told otherwise.

    ``NASFORGE_THREADS`` if set (the process and ray executors set it to each trial's share of the
    cores); else 1 when a training step feeds at most :data:`SMALL_STEP_VALUES` input values
    (``step_values``, batch x channels x height x width; the choice depends only on the data and
    the batch, so a search's results do not depend on the machine's load); else the cores this
    process may use (its CPU affinity, capped by a container's CPU quota).
    """
    env = os.environ.get("NASFORGE_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if step_values is not None and step_values <= SMALL_STEP_VALUES:
        return 1
    return available_cpus()


def values_per_step(input_shape: tuple[int, ...], batch_size: int) -> int:
    """Input values one training step feeds: ``batch_size`` x the product of ``input_shape``."""
    return batch_size * math.prod(input_shape)


def check_count(name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raise ConfigError unless ``value`` is an integer >= 1 (or None when allowed)."""
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{name} must be an integer >= 1{' or None' if allow_none else ''}, got {name}={value!r}"
        )


def check_share(name: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is a number in (0, 1] (a share of a data split)."""
    if isinstance(value, bool) or not (isinstance(value, int | float) and 0 < value <= 1):
        raise ConfigError(f"{name} must be in (0, 1], got {name}={value!r}")


def check_optimizer_numbers(lr: Any, weight_decay: Any) -> None:
    """Raise ConfigError unless ``lr`` is a positive finite number and ``weight_decay`` >= 0."""
    if isinstance(lr, bool) or not (isinstance(lr, int | float) and lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"lr must be a positive number, got lr={lr!r}")
    if not (isinstance(weight_decay, int | float) and weight_decay >= 0):
        raise ConfigError(f"weight_decay must be >= 0, got weight_decay={weight_decay!r}")


@dataclass(frozen=True)
class TrainBudget:
    """Training settings shared by search trials and final training (validated).

    ``augment``, ``label_smoothing`` and ``warmup`` are the data's recipe, resolved already
    (:func:`nasforge._defaults.resolve_recipe` turns ``"auto"`` into the table's values).
    """

    epochs: int = DEFAULT_TRIAL_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    optimizer: str = DEFAULT_OPTIMIZER
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    schedule: str = DEFAULT_SCHEDULE
    label_smoothing: float = 0.0
    threads: int | None = None
    augment: str = "none"
    warmup: float = 0.0

    def __post_init__(self) -> None:
        from nasforge.estimate._loop import AUGMENTATIONS, OPTIMIZERS, SCHEDULES, warmup_problem

        check_count("epochs", self.epochs)
        check_count("batch_size", self.batch_size)
        check_optimizer_numbers(self.lr, self.weight_decay)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        smoothing = self.label_smoothing
        if isinstance(smoothing, bool) or not (isinstance(smoothing, int | float) and 0 <= smoothing < 1):
            raise ConfigError(f"label_smoothing must be in [0, 1), got label_smoothing={smoothing!r}")
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(
                f"augment must be one of {', '.join(AUGMENTATIONS)} or auto (the recipe for the "
                f"data, nasforge._defaults.RECIPES), got augment={self.augment!r}"
            )
        problem = warmup_problem(self.warmup, self.epochs)
        if problem is not None:
            raise ConfigError(problem)
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ConfigError(f"threads must be a positive integer, got threads={self.threads!r}")

    def fit_kwargs(self) -> dict[str, Any]:
        """The settings :func:`~nasforge.estimate._loop.fit` takes."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": float(self.lr),
            "optimizer": self.optimizer,
            "weight_decay": float(self.weight_decay),
            "schedule": self.schedule,
            "label_smoothing": float(self.label_smoothing),
            "augment": self.augment,
            "warmup": float(self.warmup),
        }

    def recipe(self) -> dict[str, Any]:
        """The data's recipe in these settings: ``augment``, ``label_smoothing``, ``warmup``."""
        return {
            "augment": self.augment,
            "label_smoothing": float(self.label_smoothing),
            "warmup": float(self.warmup),
        }


def build_seeded(
    arch: Architecture, input_shape: tuple[int, ...], num_classes: int, seed: int, *, width: float = 1.0
) -> torch.nn.Module:
    """Build ``arch``'s network with weights initialised from ``seed``, leaving torch's RNG alone."""
    import torch

    # Weight init draws from torch's global CPU generator (networks are built on the CPU, then moved);
    # fork it so the library seeds nothing globally. Only the CPU generator is seeded:
    # torch.manual_seed would also (lazily) seed every GPU's, which fork_rng cannot restore.
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        return arch.build(input_shape, num_classes, width=width)


def transfer_weights(source: torch.nn.Module, target: torch.nn.Module) -> list[str]:
    """Copy every tensor of ``source``'s state into ``target`` where the name and shape match.

    Returns:
        the names copied (the others keep ``target``'s values).
    """
    import torch

    src = source.state_dict()
    dst = target.state_dict()
    copied = [k for k, v in dst.items() if k in src and src[k].shape == v.shape]
    with torch.no_grad():
        for k in copied:
            dst[k].copy_(src[k])
    return copied


class TrainingEstimator(Estimator):
    """What the estimators that train each candidate share: a low-fidelity copy of the task made
    once, the network built from the trial's seed, its counts, the thread limit.

    Low fidelity is a matter of settings: a ``fraction`` of the training split, a ``val_fraction``
    of the validation split (both seeded, the same subset for every trial), a lower
    ``resolution`` and a narrower network (``width`` < 1). Subclasses call :meth:`_set_fidelity`
    in their constructor and implement :meth:`evaluate`.
    """

    task: Any
    #: torch threads while training (None: :func:`default_threads`)
    threads: int | None = None

    def _set_fidelity(self, fraction: Any, val_fraction: Any, resolution: Any, width: Any) -> None:
        check_share("fraction", fraction)
        check_share("val_fraction", val_fraction)
        if resolution is not None and (
            isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1
        ):
            raise ConfigError(
                f"resolution must be an integer >= 1 (pixels per side) or None, got {resolution=}"
            )
        self.fraction = float(fraction)
        self.val_fraction = float(val_fraction)
        self.resolution = resolution
        self.width = check_width(width)
        self._train_task: Task | DetectionTask | None = None
        self._device_task: Task | DetectionTask | None = None

    def _task(self) -> Any:
        """The task at this estimator's fidelity, made once: trials are compared on the same data."""
        if self._train_task is None:
            task = self.task.with_fraction(self.fraction, seed=0).with_val_fraction(self.val_fraction, seed=0)
            self._train_task = task if self.resolution is None else task.with_resolution(self.resolution)
        return self._train_task

    def _task_on(self, device: torch.device) -> Any:
        """:meth:`_task` on ``device``, moved once and kept (not pickled to other processes)."""
        task = self._task()
        if self._device_task is None or self._device_task.x_train.device != device:
            self._device_task = task.to(device)
        return self._device_task

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_device_task"] = None  # a GPU copy stays where it was made
        return state

    def _fidelity(self, task: Task | DetectionTask) -> dict[str, Any]:
        """The fidelity a trial records: ``fraction``, ``resolution``, ``width``."""
        return {"fraction": self.fraction, "resolution": task.input_shape[1], "width": self.width}

    def _threads(self) -> int:
        return self.threads or default_threads()

    def _network(self, arch: Architecture, task: Task | DetectionTask, seed: int) -> torch.nn.Module:
        """``arch``'s network for ``task`` at this estimator's width, initialised from ``seed``."""
        return build_seeded(arch, task.input_shape, task.num_classes, seed, width=self.width)

    @staticmethod
    def _counts(module: torch.nn.Module, task: Task | DetectionTask) -> dict[str, int]:
        """``params`` and ``flops`` (one input of the task's shape) of a built network."""
        from nasforge.hardware import Profiler

        return Profiler().count(module, ("params", "flops"), input_shape=task.input_shape)
