"""Final training of a chosen architecture: :func:`train_final`, the one place test data is used."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasforge._defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FINAL_EPOCHS,
    DEFAULT_LR,
    DEFAULT_OPTIMIZER,
    DEFAULT_SCHEDULE,
    DEFAULT_WEIGHT_DECAY,
    resolve_recipe,
)
from nasforge._device import check_device_and_amp, device_info, resolve_amp, resolve_device
from nasforge._threads import torch_threads
from nasforge.estimate._metrics import classification_metrics, imbalance, predict_proba
from nasforge.estimate._model import Model
from nasforge.estimate._setup import (
    TrainBudget,
    build_seeded,
    default_threads,
    transfer_weights,
    values_per_step,
)

# torch, the training loop and the hardware layer (which import torch) are imported on first use, so
# that `import nasforge` stays light.
if TYPE_CHECKING:
    import torch

    from nasforge.data import Task
    from nasforge.estimate._loop import FitResult
    from nasforge.space import Architecture

__all__ = ["FinalRun", "TrainedModel", "epoch_seconds", "fit_final", "train_final"]

#: what training returned before it returned a :class:`~nasforge.estimate.Model`: the same type
TrainedModel = Model


def train_final(
    arch: Architecture,
    task: Task,
    *,
    epochs: int = DEFAULT_FINAL_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    optimizer: str = DEFAULT_OPTIMIZER,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    schedule: str = DEFAULT_SCHEDULE,
    label_smoothing: float | None = None,
    threads: int | None = None,
    seed: int = 0,
    augment: str = "auto",
    patience: int | None = None,
    init: torch.nn.Module | None = None,
    device: str = "auto",
    amp: str = "auto",
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
    time_limit: float | None = None,
    warmup: float | None = None,
) -> Model:
    """Train ``arch`` on the task's full training split and measure validation and test accuracy.

    This is the one place test data is used: on the final pick of a search. The result is the
    deployable :class:`~nasforge.estimate.Model`: save it (``.save("m.nasforge")``), export it,
    or call it on images.

    The part of the recipe that depends on the data (``augment``, ``label_smoothing``,
    ``warmup``) comes from the table :data:`nasforge._defaults.RECIPES` for the task's dataset,
    its final-training values, unless given; the model's metrics record what was used.

    Args:
        augment: ``"none"``, ``"shift"``, ``"shift+flip"`` (see :func:`nasforge.estimate._loop.fit`)
            or ``"auto"`` (default: the recipe's).
        label_smoothing: label smoothing of the training loss, in [0, 1); None: the recipe's.
        warmup: epochs of linear learning-rate warm-up before the cosine (fractions allowed, at
            most half of ``epochs``); None: the recipe's.
        patience: early stopping on the validation accuracy (the best epoch's weights are kept).
        init: start from this network's weights instead of a fresh initialisation (fine-tuning):
            every tensor whose name and shape match is copied, the rest (a new classifier for
            other classes, a first layer for other channels) stays freshly initialised; the names
            copied go to the metrics as ``transferred``.
        device: where to train (see :class:`TrainEstimator`); the trained module is returned on
            the CPU, ready to save or export, and the metrics record where it was trained
            (``device``, ``device_name``, ``amp``, ``torch_version``, ``cuda_version``).
        amp: mixed precision: ``auto``, ``off``, ``bf16`` or ``fp16`` (see :class:`TrainEstimator`).
        on_epoch: called after each epoch as ``on_epoch(epoch, epochs, metrics)`` (for progress;
            ``metrics`` as in :attr:`~nasforge.estimate._loop.FitResult.history`, validation
            metrics nan but for the last epoch unless ``patience`` is set).
        time_limit: seconds of training at most (a search's time budget); when it cuts the
            training, the last weights are kept and ``metrics["cut_by_time_limit"]`` is True.
    """
    return fit_final(
        arch,
        task,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        weight_decay=weight_decay,
        schedule=schedule,
        label_smoothing=label_smoothing,
        threads=threads,
        seed=seed,
        augment=augment,
        patience=patience,
        init=init,
        device=device,
        amp=amp,
        on_epoch=on_epoch,
        time_limit=time_limit,
        warmup=warmup,
    ).tested()


@dataclass(frozen=True, eq=False)
class FinalRun:
    """A network trained by :func:`fit_final` and not yet tested: what a final race compares.

    :meth:`validation` scores it on the task's validation split; :meth:`tested` scores it once on
    the test split and returns the :class:`~nasforge.estimate.Model` that :func:`train_final` returns.
    """

    arch: Architecture
    task: Task
    module: torch.nn.Module  # on the CPU, in eval mode
    result: FitResult
    device: torch.device
    amp: str
    threads: int
    train_seconds: float  # wall time of building and training, before any scoring
    recipe: dict[str, Any]  # augment, label_smoothing, warmup: as trained
    patience: int | None
    time_limit: float | None
    transferred: int | None

    def validation(self) -> dict[str, float]:
        """``val_accuracy`` (:func:`~nasforge.estimate._loop.fit`'s) and ``val_balanced_accuracy``,
        ``val_f1_macro``, ``val_auc``; an empty dict without validation images."""
        from nasforge.estimate._metrics import validation_metrics

        if len(self.task.x_val) == 0:
            return {}
        with torch_threads(self.threads):
            return {"val_accuracy": self.result.val_accuracy, **validation_metrics(self.module, self.task)}

    def tested(self) -> Model:
        """The model, tested once on the test split: metrics, test report and where it trained."""
        from nasforge.estimate._loop import evaluate
        from nasforge.hardware import Profiler

        start = time.perf_counter()
        task, model, result = self.task, self.module, self.result
        with torch_threads(self.threads):
            on_device = task.to(self.device)
            model.to(self.device)
            test_accuracy, test_loss = evaluate(model, on_device.x_test, on_device.y_test, amp=self.amp)
            model.cpu()
            test_report = _test_report(model, task)
        metrics = {
            "val_accuracy": result.val_accuracy,
            "test_accuracy": test_accuracy,
            "test_loss": test_loss,
            "train_loss": result.train_loss,
            "params": Profiler().count(model, ("params",))["params"],
            "epochs": result.epochs,
            "train_seconds": round(result.seconds, 3),
            "seconds": round(self.train_seconds + time.perf_counter() - start, 3),
            **self.recipe,
            **device_info(self.device, self.amp),
        }
        if test_report is not None:
            metrics.update({f"test_{k}": test_report[k] for k in ("balanced_accuracy", "f1_macro", "auc")})
        if self.patience is not None:
            metrics["best_epoch"] = result.best_epoch
        if self.time_limit is not None:
            metrics["cut_by_time_limit"] = result.timed_out
        if self.transferred is not None:
            metrics["transferred"] = self.transferred
        return Model.trained_on(task, self.arch, model, metrics=metrics, test_report=test_report)


#: mini-batches :func:`epoch_seconds` times an epoch on, after :data:`PROBE_WARMUP` untimed ones
PROBE_BATCHES = 16
#: the first mini-batches of a training are slower (allocation, caches): left out of the timing
PROBE_WARMUP = 4


def epoch_seconds(arch: Architecture, task: Task, *, seed: int = 0, **options: Any) -> float:
    """Seconds one epoch of :func:`fit_final` (same ``options``) over the task's training images
    takes on this machine, in a few seconds: so that a time budget's final training plans its
    epochs on its own speed rather than on the trials' (a trial on 10% of the images pays a
    per-epoch overhead the final training does not).

    Two trainings of one epoch on stratified slices of the training images, with nothing to
    validate or test, of :data:`PROBE_WARMUP` and ``PROBE_WARMUP + PROBE_BATCHES`` mini-batches:
    the difference of their training times is :data:`PROBE_BATCHES` mini-batches at the steady
    speed, without the slower first ones (which were a sixth more on Fashion-MNIST's 20-batch
    probe than the epoch's average).
    """
    n = len(task.x_train)
    batch = int(options.get("batch_size", DEFAULT_BATCH_SIZE))
    options = {k: v for k, v in options.items() if k not in ("epochs", "time_limit", "on_epoch", "warmup")}
    timed: list[float] = []
    images: list[int] = []
    for batches in (PROBE_WARMUP, PROBE_WARMUP + PROBE_BATCHES):
        part = task.with_fraction(min(1.0, batches * batch / max(1, n)), seed=seed)
        empty = {f"{x}_{split}": getattr(part, f"{x}_{split}")[:0] for x in "xy" for split in ("val", "test")}
        run = fit_final(arch, dataclasses.replace(part, **empty), epochs=1, seed=seed, **options)
        timed.append(run.result.seconds)
        images.append(len(part.x_train))
    steady = timed[1] - timed[0]
    if images[1] > images[0] and steady > 0:
        return n * steady / (images[1] - images[0])
    return n * timed[1] / max(1, images[1])  # the task is too small to tell the two apart


def fit_final(
    arch: Architecture,
    task: Task,
    *,
    epochs: int = DEFAULT_FINAL_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    optimizer: str = DEFAULT_OPTIMIZER,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    schedule: str = DEFAULT_SCHEDULE,
    label_smoothing: float | None = None,
    threads: int | None = None,
    seed: int = 0,
    augment: str = "auto",
    patience: int | None = None,
    init: torch.nn.Module | None = None,
    device: str = "auto",
    amp: str = "auto",
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
    time_limit: float | None = None,
    warmup: float | None = None,
) -> FinalRun:
    """The training half of :func:`train_final` (same arguments): train ``arch`` on the task's
    training split, validate it, and leave the test split alone.

    A final race (:mod:`nasforge.experiment._race`) trains each candidate with it, compares
    :meth:`FinalRun.validation`, and tests only the one that goes on (:meth:`FinalRun.tested`).
    """
    from nasforge.estimate._loop import fit

    where = resolve_device(check_device_and_amp(device, amp)[0])
    mode = resolve_amp(amp, where)

    recipe = resolve_recipe(
        task.name, "final", epochs=epochs, augment=augment, label_smoothing=label_smoothing, warmup=warmup
    )
    budget = TrainBudget(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        weight_decay=weight_decay,
        schedule=schedule,
        threads=threads,
        **recipe,
    )
    start = time.perf_counter()
    transferred: list[str] = []
    n_threads = budget.threads or default_threads(values_per_step(task.input_shape, budget.batch_size))
    with torch_threads(n_threads):
        model = build_seeded(arch, task.input_shape, task.num_classes, seed)
        if init is not None:
            transferred = transfer_weights(init, model)
        on_device = task.to(where)
        model.to(where)
        result = fit(
            model,
            on_device.x_train,
            on_device.y_train,
            x_val=on_device.x_val,
            y_val=on_device.y_val,
            seed=seed,
            evaluate_every_epoch=False,
            patience=patience if len(task.x_val) else None,
            amp=mode,
            on_epoch=None if on_epoch is None else lambda e, m: on_epoch(e, budget.epochs, m),
            time_limit=time_limit,
            # what follows within the time limit: the validation metrics, the test split's
            # accuracy and its report (two passes)
            eval_after=len(task.x_val) + 2 * len(task.x_test),
            **budget.fit_kwargs(),
        )
        model.cpu()
    return FinalRun(
        arch=arch,
        task=task,
        module=model,
        result=result,
        device=where,
        amp=mode,
        threads=n_threads,
        train_seconds=time.perf_counter() - start,
        recipe=budget.recipe(),
        patience=patience,
        time_limit=time_limit,
        transferred=None if init is None else len(transferred),
    )


def _test_report(model: torch.nn.Module, task: Task) -> dict[str, Any] | None:
    """Every test metric of the final model (:func:`~nasforge.estimate._metrics.classification_metrics`)
    and the training split's class counts; None without test images."""
    import torch

    if len(task.x_test) == 0:
        return None
    report = classification_metrics(task.y_test.numpy(), predict_proba(model, task.x_test), task.class_names)
    counts = torch.bincount(task.y_train, minlength=len(task.class_names)).tolist()
    report["train_class_counts"] = counts
    report["train_imbalance"] = imbalance(counts)
    return report
