"""Training-based estimation: :class:`TrainEstimator` trains each candidate briefly and scores it.

Final training of the pick is :func:`~nasforge.train_final` (:mod:`nasforge.estimate._final`);
what both set up alike (threads, budget, seeded networks) is in :mod:`nasforge.estimate._setup`.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from nasforge._defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LR,
    DEFAULT_OPTIMIZER,
    DEFAULT_SCHEDULE,
    DEFAULT_TRIAL_EPOCHS,
    DEFAULT_WEIGHT_DECAY,
    resolve_recipe,
)
from nasforge._device import check_device_and_amp, device_info, resolve_amp, resolve_device
from nasforge._threads import torch_threads
from nasforge.data import Task
from nasforge.errors import ConfigError, TrialPruned
from nasforge.estimate._base import TrialContext
from nasforge.estimate._metrics import validation_metrics
from nasforge.estimate._model import Model
from nasforge.estimate._setup import (
    TrainBudget,
    TrainingEstimator,
    default_threads,
    values_per_step,
)

if TYPE_CHECKING:
    from nasforge.space import Architecture

__all__ = ["TrainEstimator"]


class TrainEstimator(TrainingEstimator):
    """Trains each candidate on the task and reports its validation accuracy.

    Low fidelity is a matter of the settings: fewer ``epochs``, a smaller ``fraction`` of the
    training data, a lower input ``resolution`` and a narrower network (``width`` < 1) each make a
    trial cheaper; the fidelity is stored with every trial (metrics ``epochs``, ``fraction``,
    ``resolution``, ``width``). The architecture itself is unchanged: the final training builds it
    at full width and resolution. Test data is never touched here (only the final pick is tested,
    by :func:`train_final`).

    The part of the training recipe that depends on the data (``augment``, ``label_smoothing``,
    ``warmup``) comes from the table :data:`nasforge._defaults.RECIPES` for the task's dataset
    unless given: ``augment="auto"`` (default) and ``label_smoothing`` / ``warmup`` None take the
    table's trial values (:attr:`recipe` says what they came to).

    Metrics returned: ``val_accuracy``, ``val_loss``, ``train_loss``, ``params``, ``flops`` (forward
    pass, batch 1, of the network as trained; :class:`~nasforge.hardware.Profiler`), ``train_seconds``,
    ``images_per_second``, ``epochs``, ``fraction``, ``resolution``, ``width``, and the recipe used:
    ``augment``, ``label_smoothing``, ``warmup``. After every epoch the
    validation accuracy is reported (``ctx.report``) with the metrics so far, so a scheduler can stop
    the trial.

    Args:
        task: the dataset (:func:`nasforge.datasets.load`).
        epochs: training epochs per trial.
        fraction: share of the training split used (stratified, the same subset for every trial).
        val_fraction: share of the validation split the trials are scored on (stratified, the same
            subset for every trial): validating a large split after every epoch can cost more than
            training on a small fraction.
        resolution: train and validate on images resized to this many pixels per side (bilinear,
            antialiased); None keeps the task's size.
        width: width multiplier of the trained networks (channels times ``width``; spaces with a
            builder that supports it: chain_cnn, nb201).
        batch_size: mini-batch size.
        lr: peak learning rate (cosine-decayed by default).
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        weight_decay: weight decay.
        schedule: ``cosine`` or ``constant``.
        label_smoothing: label smoothing of the training loss, in [0, 1); None: the recipe's.
        augment: ``none``, ``shift`` (random shifts of up to 1/8 of the image), ``shift+flip``
            (also left-right flips: natural images only) or ``auto`` (the recipe's).
        warmup: epochs of linear learning-rate warm-up (fractions allowed, at most half of
            ``epochs``); None: the recipe's.
        threads: torch threads while training; default: one when a training step feeds at most
            8,192 input values (batch x channels x height x width, e.g. digits' 8x8 images in
            batches of 32), else every core this process may use (see
            :func:`~nasforge.estimate._setup.default_threads`).
        hardware: measure each trained network on this machine too, for hardware-aware
            objectives and constraints, e.g. ``{"runtimes": ["onnx", "int8"], "threads": 1}``
            (the options of :class:`~nasforge.hardware.Profiler`, which measures):
            ``runtimes`` from ``torch`` (eager), ``onnx`` (ONNX Runtime fp32), ``int8`` (static
            INT8 ONNX, calibrated on ``calibration`` training images, default 256); ``batch``
            (1), ``threads`` (1), ``warmup`` (5), ``repeats`` (20), ``eval_images`` (validation
            images for the INT8 accuracy, default 1000). Adds ``latency_<runtime>_ms`` (median),
            ``latency_ms`` (the last runtime listed) and with ``int8`` also
            ``int8_val_accuracy`` and ``int8_accuracy_drop`` (on the same validation images
            as the fp32 model's figure there); with ``onnx`` and ``int8``, ``int8_speedup``
            (fp32 / INT8 ONNX latency: a constraint such as ``int8_speedup >= 2`` keeps the
            search to architectures that INT8 really accelerates). These latencies are always
            measured on the CPU, also when training runs on a GPU.
        device: where trials train: ``auto`` (default: CUDA if available, then MPS, then CPU),
            ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. The task moves there once and stays; weights
            are initialised and batches drawn on the CPU as before, so ``cpu`` and ``auto`` on a
            machine without a GPU give exactly the trials of earlier versions. Under the process
            and ray executors ``auto``/``cuda`` mean the GPU the executor gave the trial.
        amp: mixed precision: ``auto`` (default: bf16 on a CUDA GPU that supports it, else off),
            ``off``, ``bf16`` or ``fp16`` (with loss scaling; GPUs only).

    Every trial records where it ran: ``device``, ``device_name``, ``amp``, ``torch_version``,
    ``cuda_version``.

    Example:
        >>> import nasforge as nf
        >>> est = nf.TrainEstimator(nf.datasets.load("digits"), epochs=3)
    """

    task: Task

    def __init__(
        self,
        task: Task,
        *,
        epochs: int = DEFAULT_TRIAL_EPOCHS,
        fraction: float = 1.0,
        val_fraction: float = 1.0,
        resolution: int | None = None,
        width: float = 1.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lr: float = DEFAULT_LR,
        optimizer: str = DEFAULT_OPTIMIZER,
        weight_decay: float = DEFAULT_WEIGHT_DECAY,
        schedule: str = DEFAULT_SCHEDULE,
        label_smoothing: float | None = None,
        threads: int | None = None,
        hardware: Mapping[str, Any] | None = None,
        device: str = "auto",
        amp: str = "auto",
        augment: str = "auto",
        warmup: float | None = None,
    ) -> None:
        from nasforge.hardware import Profiler

        if not isinstance(task, Task):
            raise ConfigError(
                f"TrainEstimator needs a Task (nasforge.datasets.load(...)), got {type(task).__name__}"
            )
        self.task = task
        self._set_fidelity(fraction, val_fraction, resolution, width)
        recipe = resolve_recipe(
            task.name, "trial", epochs=epochs, augment=augment, label_smoothing=label_smoothing, warmup=warmup
        )
        self.budget = TrainBudget(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            schedule=schedule,
            threads=threads,
            **recipe,
        )
        self.hardware = None if hardware is None else dict(hardware)
        self.profiler = None if hardware is None else Profiler.from_options(hardware)
        self.device, self.amp = check_device_and_amp(device, amp)

    @property
    def max_step(self) -> int:  # type: ignore[override]
        """The full budget in reported steps: the training epochs."""
        return self.budget.epochs

    def _threads(self) -> int:
        values = values_per_step(self._task().input_shape, self.budget.batch_size)
        return self.budget.threads or default_threads(values)

    @property
    def recipe(self) -> dict[str, Any]:
        """The recipe the trials train with, ``"auto"`` resolved: ``augment``, ``label_smoothing``,
        ``warmup``.

        Example:
            >>> import nasforge as nf
            >>> nf.TrainEstimator(nf.datasets.load("digits")).recipe
            {'augment': 'none', 'label_smoothing': 0.0, 'warmup': 0.0}
        """
        return self.budget.recipe()

    def _fidelity(self, task: Task) -> dict[str, Any]:  # type: ignore[override]
        out = super()._fidelity(task)
        if self.val_fraction < 1:
            out["val_fraction"] = self.val_fraction
        return {**out, **self.recipe}

    def cheap_metrics(self, arch: Architecture, names: AbstractSet[str]) -> dict[str, float]:
        """With ``hardware``: the latency metrics among ``names`` (``latency_ms``,
        ``latency_<runtime>_ms``, ``int8_speedup``), measured on the untrained network.

        Speed depends on the network's shape, not its weights, so a latency constraint is checked
        before any training: an architecture that violates it costs one measurement (about a
        second; an INT8 export a few more), not a training. The trained network is measured
        again, and that measurement is the one recorded and judged.
        """
        from nasforge.hardware._profiler import is_latency_metric

        wanted = {n for n in names if is_latency_metric(n)}
        if self.profiler is None or not wanted:
            return {}

        task = self._task()
        with torch_threads(self._threads()):
            module = self._network(arch, task, 0)
        measured = self.profiler.measure(Model.trained_on(task, arch, module), task, seed=0, accuracy=False)
        return {k: float(v) for k, v in measured.items() if k in wanted}

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        from nasforge.estimate._loop import fit

        device = resolve_device(self.device)  # here, in the trial's process: its GPU
        amp = resolve_amp(self.amp, device)
        task = self._task_on(device)
        with torch_threads(self._threads()):
            model = self._network(arch, task, ctx.seed)
            counts = self._counts(model, task)
            model.to(device)
            spent = 0.0

            def on_epoch(epoch: int, m: dict[str, float]) -> None:
                nonlocal spent
                spent += m["seconds"]
                partial = {
                    "val_accuracy": m["val_accuracy"],
                    "val_loss": m["val_loss"],
                    "train_loss": m["train_loss"],
                    **counts,
                    "train_seconds": round(spent, 4),
                    "epochs": epoch,
                    **self._fidelity(task),
                }
                ctx.report(epoch, m["val_accuracy"], partial)

            result = fit(
                model,
                task.x_train,
                task.y_train,
                x_val=task.x_val,
                y_val=task.y_val,
                seed=ctx.seed,
                on_epoch=on_epoch,
                amp=amp,
                # the search's hard time budget: stop in time for the last validation pass, which
                # gives every validation metric (val_proba: no second pass after it)
                time_limit=ctx.time_left(),
                val_proba=True,
                **self.budget.fit_kwargs(),
            )
            if result.timed_out:  # cut short: not comparable with trials that trained fully
                raise TrialPruned(f"stopped at epoch {result.epochs}: the search's time budget is spent")
            val_metrics = validation_metrics(model, task, proba=result.val_proba)
        metrics = {
            "val_accuracy": result.val_accuracy,
            "val_loss": result.val_loss,
            "train_loss": result.train_loss,
            **counts,
            "train_seconds": round(result.seconds, 4),
            "images_per_second": round(result.images_per_second, 1),
            "epochs": result.epochs,
            **self._fidelity(task),
            **device_info(device, amp),
            **val_metrics,
        }
        if self.profiler is not None:  # CPU latencies, measured on the CPU whatever trained the model
            task = self._task()
            metrics.update(
                self.profiler.measure(Model.trained_on(task, arch, model.cpu()), task, seed=ctx.seed)
            )
        return metrics
