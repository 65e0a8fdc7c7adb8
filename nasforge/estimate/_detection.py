"""Training detectors: :class:`DetectionTrainEstimator` (search trials) and :func:`train_detector` (final).

A detector network (the :class:`~nasforge.space.DetectorSpace` builds a
:class:`~nasforge.detect.CenterNet`) has its own loss and decoding, so it is trained by its own
small loop rather than the classification :func:`~nasforge.estimate._loop.fit`: AdamW with a
one-cycle learning rate over all steps, mini-batches drawn without replacement each epoch from a
seeded generator, the network's ``loss(images, boxes, labels)``. Quality is COCO box mAP
(:func:`nasforge.detect.coco_map`) on the validation split: ``val_map`` (mAP@[.5:.95], the
selection metric, as Ultralytics' fitness) and ``val_map_50``.

``train_det`` is a separate estimator rather than ``train`` switching on the task's type: a
constructor that returns another class depending on its argument is the kind of hidden magic
nasforge avoids, and the two take different options and report different metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nasforge._defaults import DEFAULT_FINAL_EPOCHS
from nasforge._threads import torch_threads
from nasforge.data import DetectionTask, Task
from nasforge.errors import ConfigError, TrialFailed
from nasforge.estimate._base import TrialContext
from nasforge.estimate._detector import Detector
from nasforge.estimate._setup import (
    TrainingEstimator,
    build_seeded,
    check_count,
    check_optimizer_numbers,
    default_threads,
)

if TYPE_CHECKING:
    import torch

    from nasforge.space import Architecture

__all__ = ["DetectionTrainEstimator", "TrainedDetector", "evaluate_detector", "train_detector"]

#: what detector training returned before it returned a :class:`~nasforge.deploy.Detector`: the same type
TrainedDetector = Detector


def _check_task(task: Any, who: str) -> None:
    if not isinstance(task, DetectionTask):
        hint = (
            "; a classification Task trains with TrainEstimator ('train')"
            if isinstance(task, Task)
            else " (nasforge.data.load_detection('shapes-det'), ...)"
        )
        raise ConfigError(f"{who} needs a DetectionTask{hint}, got {type(task).__name__}")


def evaluate_detector(
    model: torch.nn.Module,
    images: torch.Tensor,
    boxes: tuple[torch.Tensor, ...],
    labels: tuple[torch.Tensor, ...],
    num_classes: int,
    *,
    batch_size: int = 64,
    score_threshold: float = 0.01,
    max_dets: int = 100,
) -> dict[str, Any]:
    """COCO mAP of ``model.predict`` on images with their ground truth (numpy backend, deterministic).

    Returns:
        :func:`nasforge.detect.coco_map`'s ``map``, ``map_50``, ``map_75`` and ``per_class``.
    """
    from nasforge.detect import coco_map

    predictions: list[dict[str, Any]] = []
    for i in range(0, len(images), batch_size):
        predictions.extend(
            model.predict(images[i : i + batch_size], score_threshold=score_threshold, max_dets=max_dets)  # type: ignore[operator]
        )
    targets = [{"boxes": b, "labels": y} for b, y in zip(boxes, labels, strict=True)]
    return coco_map(predictions, targets, num_classes, max_dets=max_dets, backend="numpy")


def _fit_detector(
    model: torch.nn.Module,
    task: DetectionTask,
    *,
    epochs: int,
    steps_per_epoch: int | None,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> tuple[float, float]:
    """Train in place, calling ``on_epoch(epoch, mean_loss, seconds)``; return (last loss, seconds)."""
    import torch

    n = len(task.x_train)
    per_epoch = math.ceil(n / batch_size)
    steps = per_epoch if steps_per_epoch is None else min(per_epoch, steps_per_epoch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(2, epochs * steps))
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    loss_value = float("nan")
    model.train()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        losses = []
        for step in range(steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            parts = model.loss(  # type: ignore[operator]
                task.x_train[idx], [task.boxes_train[j] for j in idx], [task.labels_train[j] for j in idx]
            )
            loss = parts["loss"]
            if not torch.isfinite(loss):
                raise TrialFailed(f"the detection loss is {loss.item()} at epoch {epoch}, step {step + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched.last_epoch + 1 < sched.total_steps:
                sched.step()
            losses.append(float(loss.detach()))
        loss_value = sum(losses) / len(losses)
        seconds = time.perf_counter() - start
        total += seconds
        if on_epoch is not None:
            on_epoch(epoch, loss_value, seconds)
    model.eval()
    return loss_value, total


class DetectionTrainEstimator(TrainingEstimator):
    """Trains each candidate detector briefly, scores its validation COCO mAP (registered ``train_det``).

    Low fidelity, as for :class:`~nasforge.estimate.TrainEstimator`: fewer ``epochs`` or
    ``steps_per_epoch``, a ``fraction`` of the training images, a lower ``resolution``
    (:meth:`DetectionTask.with_resolution <nasforge.data.DetectionTask.with_resolution>`, boxes
    scaled with the images) or a narrower network (``width`` < 1). The same data subset serves every
    trial. Test data is never touched.

    Metrics returned: ``val_map`` (mAP@[.5:.95]; the one to maximise), ``val_map_50``,
    ``val_map_75``, ``train_loss``, ``params``, ``flops`` (one image at the trained resolution),
    ``train_seconds``, ``epochs``, ``steps``, ``fraction``, ``resolution``, ``width``. After each
    epoch ``val_map`` is reported through ``ctx.report`` with the metrics so far, so schedulers
    (successive halving, median stopping) can stop a trial.

    Args:
        task: a :class:`~nasforge.data.DetectionTask` (:func:`nasforge.data.load_detection`).
        epochs: training epochs per trial.
        steps_per_epoch: at most this many mini-batches per epoch (None: one pass over the data).
        fraction: share of the training images used.
        val_fraction: share of the validation images scored (a seeded subset, the same each trial).
        resolution: train and validate at this many pixels per side; None keeps the task's size.
        width: channel multiplier of the trained networks.
        batch_size: images per step.
        lr: peak learning rate of the one-cycle schedule (AdamW).
        weight_decay: AdamW weight decay.
        threads: torch threads while training; default every core this process may use.

    Example:
        >>> from nasforge.data import load_detection
        >>> est = DetectionTrainEstimator(load_detection("shapes-det", n_train=16, n_val=8), epochs=1)
    """

    def __init__(
        self,
        task: DetectionTask,
        *,
        epochs: int = 5,
        steps_per_epoch: int | None = None,
        fraction: float = 1.0,
        val_fraction: float = 1.0,
        resolution: int | None = None,
        width: float = 1.0,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        threads: int | None = None,
    ) -> None:
        _check_task(task, "DetectionTrainEstimator")
        check_count("epochs", epochs)
        check_count("steps_per_epoch", steps_per_epoch, allow_none=True)
        check_count("batch_size", batch_size)
        check_count("threads", threads, allow_none=True)
        check_optimizer_numbers(lr, weight_decay)
        self.task = task  # the experiment reads input_shape / num_classes
        self._set_fidelity(fraction, val_fraction, resolution, width)
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.threads = threads

    @property
    def max_step(self) -> int:  # type: ignore[override]
        """The full budget in reported steps: the training epochs."""
        return self.epochs

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        task: DetectionTask = self._task()
        if len(task.x_val) == 0:
            raise ConfigError(f"{task.name} has no validation images to score detectors on")
        with torch_threads(self._threads()):
            model = self._network(arch, task, ctx.seed)
            counts = self._counts(model, task)
            steps = math.ceil(len(task.x_train) / self.batch_size)
            steps = steps if self.steps_per_epoch is None else min(steps, self.steps_per_epoch)
            spent = 0.0
            last: dict[str, Any] = {}

            def on_epoch(epoch: int, loss: float, seconds: float) -> None:
                nonlocal spent, last
                spent += seconds
                scores = evaluate_detector(model, *task.split("val"), task.num_classes)
                model.train()
                last = {
                    "val_map": round(float(scores["map"]), 6),
                    "val_map_50": round(float(scores["map_50"]), 6),
                    "val_map_75": round(float(scores["map_75"]), 6),
                    "train_loss": round(loss, 6),
                    **counts,
                    "train_seconds": round(spent, 4),
                    "epochs": epoch,
                    "steps": epoch * steps,
                    **self._fidelity(task),
                }
                ctx.report(epoch, last["val_map"], last)

            _fit_detector(
                model,
                task,
                epochs=self.epochs,
                steps_per_epoch=self.steps_per_epoch,
                batch_size=self.batch_size,
                lr=self.lr,
                weight_decay=self.weight_decay,
                seed=ctx.seed,
                on_epoch=on_epoch,
            )
        return last

    def __repr__(self) -> str:
        return f"DetectionTrainEstimator({self.task.name if self.task else None}, epochs={self.epochs})"


def train_detector(
    arch: Architecture,
    task: DetectionTask,
    *,
    epochs: int = DEFAULT_FINAL_EPOCHS,
    steps_per_epoch: int | None = None,
    batch_size: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    threads: int | None = None,
    seed: int = 0,
) -> Detector:
    """Train ``arch`` on the task's whole training split; measure validation and test mAP (the one
    place detection test data is used). The result is the deployable :class:`~nasforge.deploy.Detector`."""
    from nasforge.hardware import Profiler

    _check_task(task, "train_detector")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        check_count(name, value)
    start = time.perf_counter()
    metrics: dict[str, Any] = {}
    with torch_threads(threads or default_threads()):
        model = build_seeded(arch, task.input_shape, task.num_classes, seed)
        loss, seconds = _fit_detector(
            model,
            task,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
        )
        for split in ("val", "test"):
            x, boxes, labels = task.split(split)
            if len(x):
                scores = evaluate_detector(model, x, boxes, labels, task.num_classes)
                metrics[f"{split}_map"] = round(float(scores["map"]), 6)
                metrics[f"{split}_map_50"] = round(float(scores["map_50"]), 6)
    metrics.update(
        {
            "train_loss": round(loss, 6),
            "params": Profiler().count(model, ("params",))["params"],
            "epochs": epochs,
            "train_seconds": round(seconds, 3),
            "seconds": round(time.perf_counter() - start, 3),
        }
    )
    return Detector.trained_on(task, arch, model.eval(), metrics=metrics)
