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
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasforge._budget import DETECTION_EVAL_COST
from nasforge._defaults import DEFAULT_FINAL_EPOCHS
from nasforge._threads import torch_threads
from nasforge.data import DetectionTask, Task
from nasforge.errors import ConfigError, TrialFailed, TrialPruned
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


@dataclass(frozen=True)
class _Trained:
    """What :func:`_fit_detector` did: the last epoch's mean loss, the training seconds (scoring
    excluded), the epochs and steps run, and whether ``time_limit`` cut the training."""

    loss: float
    seconds: float
    epochs: int
    steps: int
    timed_out: bool


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
    on_epoch: Callable[[int, float, float, int], None] | None = None,
    time_limit: float | None = None,
    eval_seconds: Callable[[float], float] | None = None,
) -> _Trained:
    """Train in place, calling ``on_epoch(epoch, mean_loss, seconds, steps_so_far)`` after each epoch.

    ``time_limit`` covers the training *and* the scoring after it, as
    :func:`~nasforge.estimate._loop.fit`'s does: training stops after the step at which what is
    left would no longer pay for ``eval_seconds(seconds per training image so far)`` (0 without
    it) — at an epoch's last step, for that and for the epoch's ``on_epoch`` call and one more
    step — and at the latest after the step during which the limit passed (at least one step
    runs). That epoch counts as the last (``on_epoch`` is called for it) and ``timed_out`` is True.
    """
    import torch

    deadline = None if time_limit is None else time.perf_counter() + time_limit
    n = len(task.x_train)
    per_epoch = math.ceil(n / batch_size)
    steps = per_epoch if steps_per_epoch is None else min(per_epoch, steps_per_epoch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(2, epochs * steps))
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    loss_value = float("nan")
    done = steps_done = images = 0
    timed_out = False
    hook: float | None = None  # seconds of the last on_epoch call
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
            steps_done += 1
            images += len(idx)
            if deadline is not None:
                now = time.perf_counter()
                per_image = (total + now - start) / images
                need = eval_seconds(per_image) if eval_seconds is not None else 0.0
                if step == steps - 1 and epoch < epochs:
                    # going on past an epoch's end costs its on_epoch (a search trial's validation
                    # pass; until measured, taken to cost the scoring), then at least one step
                    need += (hook if hook is not None else need) + per_image * batch_size
                if now + need >= deadline:
                    timed_out = True
                    break
        loss_value = sum(losses) / len(losses)
        seconds = time.perf_counter() - start
        total += seconds
        done = epoch
        if on_epoch is not None:
            began = time.perf_counter()
            on_epoch(epoch, loss_value, seconds, steps_done)
            hook = time.perf_counter() - began
        if timed_out:
            break
    model.eval()
    return _Trained(loss_value, total, done, steps_done, timed_out)


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
    (successive halving, median stopping) can stop a trial. Under a search's time budget
    (``ctx.deadline``) a trial stops between two steps early enough for its validation pass
    (the last one's measured time, or before the first an estimate from the training speed) to
    end by the deadline, reports that epoch and is pruned
    (:class:`~nasforge.errors.TrialPruned`), as a :class:`~nasforge.TrainEstimator` trial is.

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
        hardware: measure each trained network on this machine too, as
            :class:`~nasforge.TrainEstimator`'s ``hardware`` (the options of
            :class:`~nasforge.hardware.Profiler`): adds ``latency_<runtime>_ms`` (the network's
            forward pass, decoding excluded), ``latency_ms`` and with ``int8`` also ``int8_val_map``,
            ``int8_map_drop`` and ``int8_speedup``, so ``-latency_ms`` objectives and
            ``latency_ms <= X`` constraints work for detectors (checked before training by
            :meth:`cheap_metrics`).

    Example:
        >>> from nasforge.data import load_detection
        >>> est = DetectionTrainEstimator(load_detection("shapes-det", n_train=16, n_val=8), epochs=1)
    """

    task_kinds = ("detection",)

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
        hardware: Mapping[str, Any] | None = None,
    ) -> None:
        from nasforge.hardware import Profiler

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
        self.hardware = None if hardware is None else dict(hardware)
        self.profiler = None if hardware is None else Profiler.from_options(hardware)

    @property
    def max_step(self) -> int:  # type: ignore[override]
        """The full budget in reported steps: the training epochs."""
        return self.epochs

    def cheap_metrics(self, arch: Architecture, names: AbstractSet[str]) -> dict[str, float]:
        """With ``hardware``: the latency metrics among ``names``, measured on the untrained network
        (speed depends on the shape, not the weights; as :meth:`TrainEstimator.cheap_metrics
        <nasforge.TrainEstimator.cheap_metrics>`)."""
        from nasforge.hardware._profiler import is_latency_metric

        wanted = {n for n in names if is_latency_metric(n)}
        if self.profiler is None or not wanted:
            return {}
        from nasforge._threads import torch_threads

        task = self._task()
        with torch_threads(self._threads()):
            module = self._network(arch, task, 0)
        measured = self.profiler.measure(
            Detector.trained_on(task, arch, module), task, seed=0, accuracy=False
        )
        return {k: float(v) for k, v in measured.items() if k in wanted}

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        task: DetectionTask = self._task()
        if len(task.x_val) == 0:
            raise ConfigError(f"{task.name} has no validation images to score detectors on")
        with torch_threads(self._threads()):
            model = self._network(arch, task, ctx.seed)
            counts = self._counts(model, task)
            spent = 0.0
            scoring: float | None = None  # seconds of the last validation pass, once measured
            last: dict[str, Any] = {}

            def on_epoch(epoch: int, loss: float, seconds: float, steps: int) -> None:
                nonlocal spent, scoring, last
                spent += seconds
                began = time.perf_counter()
                scores = evaluate_detector(model, *task.split("val"), task.num_classes)
                scoring = time.perf_counter() - began
                model.train()
                last = {
                    "val_map": round(float(scores["map"]), 6),
                    "val_map_50": round(float(scores["map_50"]), 6),
                    "val_map_75": round(float(scores["map_75"]), 6),
                    "train_loss": round(loss, 6),
                    **counts,
                    "train_seconds": round(spent, 4),
                    "epochs": epoch,
                    "steps": steps,
                    **self._fidelity(task),
                }
                ctx.report(epoch, last["val_map"], last)

            def validation_seconds(per_image: float) -> float:
                # the last pass's time once there was one (the mAP matching costs what the
                # boxes found cost, which no training speed tells), before it an estimate
                if scoring is not None:
                    return scoring
                return DETECTION_EVAL_COST * per_image * len(task.x_val)

            trained = _fit_detector(
                model,
                task,
                epochs=self.epochs,
                steps_per_epoch=self.steps_per_epoch,
                batch_size=self.batch_size,
                lr=self.lr,
                weight_decay=self.weight_decay,
                seed=ctx.seed,
                on_epoch=on_epoch,
                # the search's hard time budget: stop between steps in time for the validation pass
                time_limit=ctx.time_left(),
                eval_seconds=validation_seconds,
            )
        if trained.timed_out:  # cut short: not comparable with trials that trained fully
            raise TrialPruned(f"stopped at epoch {trained.epochs}: the search's time budget is spent")
        if self.profiler is not None:  # the trained network, on the CPU
            last.update(
                self.profiler.measure(Detector.trained_on(task, arch, model.eval()), task, seed=ctx.seed)
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
    on_epoch: Callable[[int, int, dict[str, Any]], None] | None = None,
    time_limit: float | None = None,
) -> Detector:
    """Train ``arch`` on the task's whole training split; measure validation and test mAP (the one
    place detection test data is used). The result is the deployable :class:`~nasforge.deploy.Detector`.

    Args:
        arch: the architecture (of the ``detector`` space).
        task: the :class:`~nasforge.data.DetectionTask`.
        epochs: training epochs (AdamW, one-cycle learning rate over all of them).
        steps_per_epoch: at most this many mini-batches per epoch (None: one pass over the data).
        batch_size: images per step.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        threads: torch threads; default every core this process may use.
        seed: seeds the network's initial weights and the batch order.
        on_epoch: called after each epoch as ``on_epoch(epoch, epochs, {"train_loss", "seconds"})``
            (a progress bar; the CLI's final training).
        time_limit: seconds for the training and the validation and test mAP after it (a
            search's time budget): training stops between two steps early enough for the
            scoring to end in time (its cost estimated from the training speed,
            :data:`nasforge._budget.DETECTION_EVAL_COST` of a training image per image scored);
            the weights so far are kept, ``metrics["epochs"]`` says how many epochs ran (the cut
            one included) and ``metrics["cut_by_time_limit"]`` whether the limit cut the training.

    Returns:
        the Detector; its ``metrics``: ``val_map``, ``val_map_50``, ``test_map``, ``test_map_50``
        (for the splits that have images), ``train_loss``, ``params``, ``epochs``,
        ``train_seconds``, ``seconds``.
    """
    from nasforge.hardware import Profiler

    _check_task(task, "train_detector")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        check_count(name, value)
    start = time.perf_counter()
    metrics: dict[str, Any] = {}
    with torch_threads(threads or default_threads()):
        model = build_seeded(arch, task.input_shape, task.num_classes, seed)

        def report(epoch: int, loss: float, seconds: float, steps: int) -> None:
            if on_epoch is not None:
                on_epoch(epoch, epochs, {"train_loss": loss, "seconds": seconds})

        scored = len(task.x_val) + len(task.x_test)  # scored after training, within the time limit
        trained = _fit_detector(
            model,
            task,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            on_epoch=report,
            time_limit=time_limit,
            eval_seconds=lambda per_image: DETECTION_EVAL_COST * per_image * scored,
        )
        for split in ("val", "test"):
            x, boxes, labels = task.split(split)
            if len(x):
                scores = evaluate_detector(model, x, boxes, labels, task.num_classes)
                metrics[f"{split}_map"] = round(float(scores["map"]), 6)
                metrics[f"{split}_map_50"] = round(float(scores["map_50"]), 6)
    metrics.update(
        {
            "train_loss": round(trained.loss, 6),
            "params": Profiler().count(model, ("params",))["params"],
            "epochs": trained.epochs,
            "train_seconds": round(trained.seconds, 3),
            "seconds": round(time.perf_counter() - start, 3),
        }
    )
    if time_limit is not None:
        metrics["cut_by_time_limit"] = trained.timed_out
    return Detector.trained_on(task, arch, model.eval(), metrics=metrics)
