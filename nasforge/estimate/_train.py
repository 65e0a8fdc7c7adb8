"""Training-based estimation (:class:`TrainEstimator`) and final training (:func:`train_final`)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError
from nasforge.estimate._base import Estimator, TrialContext

if TYPE_CHECKING:
    import torch

    from nasforge.data import Task
    from nasforge.space import Architecture

__all__ = ["TrainEstimator", "TrainedModel", "build_seeded", "default_threads", "train_final"]


def default_threads() -> int:
    """The torch thread count nasforge uses unless told otherwise: ``NASFORGE_THREADS`` if set (the
    process and ray executors set it to each trial's share of the cores), else the cores this
    process may use (its CPU affinity, capped by a container's CPU quota)."""
    from nasforge._threads import available_cpus

    env = os.environ.get("NASFORGE_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return available_cpus()


@dataclass(frozen=True)
class TrainBudget:
    """Training settings shared by search trials and final training (validated)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    optimizer: str = "adam"
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    threads: int | None = None

    def __post_init__(self) -> None:
        from nasforge.estimate._loop import OPTIMIZERS, SCHEDULES

        def bad(msg: str) -> None:
            raise ConfigError(msg)

        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            bad(f"epochs must be an integer >= 1, got epochs={self.epochs!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            bad(f"batch_size must be an integer >= 1, got batch_size={self.batch_size!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            bad(f"lr must be a positive number, got lr={self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            bad(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            bad(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            bad(f"weight_decay must be >= 0, got weight_decay={self.weight_decay!r}")
        if not 0 <= self.label_smoothing < 1:
            bad(f"label_smoothing must be in [0, 1), got label_smoothing={self.label_smoothing!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            bad(f"threads must be a positive integer, got threads={self.threads!r}")

    def fit_kwargs(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": float(self.lr),
            "optimizer": self.optimizer,
            "weight_decay": float(self.weight_decay),
            "schedule": self.schedule,
            "label_smoothing": float(self.label_smoothing),
        }


def _build(arch: Architecture, task: Task, seed: int) -> torch.nn.Module:
    return build_seeded(arch, task.input_shape, task.num_classes, seed)


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


class TrainEstimator(Estimator):
    """Trains each candidate on the task and reports its validation accuracy.

    Low fidelity is a matter of the settings: fewer ``epochs``, a smaller ``fraction`` of the
    training data, a lower input ``resolution`` and a narrower network (``width`` < 1) each make a
    trial cheaper; the fidelity is stored with every trial (metrics ``epochs``, ``fraction``,
    ``resolution``, ``width``). The architecture itself is unchanged: the final training builds it
    at full width and resolution. Test data is never touched here (only the final pick is tested,
    by :func:`train_final`).

    Metrics returned: ``val_accuracy``, ``val_loss``, ``train_loss``, ``params``, ``flops`` (forward
    pass, batch 1, of the network as trained), ``train_seconds``, ``images_per_second``,
    ``epochs``, ``fraction``, ``resolution``, ``width``. After every epoch the validation accuracy
    is reported (``ctx.report``) with the metrics so far, so a scheduler can stop the trial.

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
        label_smoothing: label smoothing of the training loss.
        threads: torch threads while training; default: every core this process may use.
        hardware: measure each trained network on this machine too, for hardware-aware
            objectives and constraints, e.g. ``{"runtimes": ["onnx", "int8"], "threads": 1}``:
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
        epochs: int = 10,
        fraction: float = 1.0,
        val_fraction: float = 1.0,
        resolution: int | None = None,
        width: float = 1.0,
        batch_size: int = 64,
        lr: float = 3e-3,
        optimizer: str = "adam",
        weight_decay: float = 5e-4,
        schedule: str = "cosine",
        label_smoothing: float = 0.0,
        threads: int | None = None,
        hardware: Mapping[str, Any] | None = None,
        device: str = "auto",
        amp: str = "auto",
    ) -> None:
        from nasforge._device import check_device_and_amp
        from nasforge.data import Task
        from nasforge.space._base import check_width

        if not isinstance(task, Task):
            raise ConfigError(
                f"TrainEstimator needs a Task (nasforge.datasets.load(...)), got {type(task).__name__}"
            )
        for name, value in (("fraction", fraction), ("val_fraction", val_fraction)):
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise ConfigError(f"{name} must be in (0, 1], got {name}={value!r}")
        if resolution is not None and (
            isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1
        ):
            raise ConfigError(
                f"resolution must be an integer >= 1 (pixels per side) or None, got {resolution=}"
            )
        self.task = task
        self.fraction = float(fraction)
        self.val_fraction = float(val_fraction)
        self.resolution = resolution
        self.width = check_width(width)
        self.budget = TrainBudget(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            schedule=schedule,
            label_smoothing=label_smoothing,
            threads=threads,
        )
        self._train_task: Task | None = None
        self._device_task: Task | None = None
        self.hardware = _check_hardware(hardware)
        self.device, self.amp = check_device_and_amp(device, amp)

    @property
    def max_step(self) -> int:  # type: ignore[override]
        """The full budget in reported steps: the training epochs."""
        return self.budget.epochs

    def _task(self) -> Task:
        if self._train_task is None:  # one fixed subset: trials are compared on the same data
            task = self.task if self.fraction >= 1 else self.task.with_fraction(self.fraction, seed=0)
            if self.val_fraction < 1:
                import dataclasses

                import torch

                from nasforge.data._task import subset_indices

                keep = torch.from_numpy(subset_indices(task.y_val.numpy(), self.val_fraction, 0))
                task = dataclasses.replace(task, x_val=task.x_val[keep], y_val=task.y_val[keep])
            self._train_task = task if self.resolution is None else task.with_resolution(self.resolution)
        return self._train_task

    def _task_on(self, device: torch.device) -> Task:
        """The trials' task on ``device``, moved once and kept (not pickled to other processes)."""
        task = self._task()
        if self._device_task is None or self._device_task.x_train.device != device:
            self._device_task = task.to(device)
        return self._device_task

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_device_task"] = None  # a GPU copy stays where it was made
        return state

    def _fidelity(self, task: Task) -> dict[str, Any]:
        out = {"fraction": self.fraction, "resolution": task.input_shape[1], "width": self.width}
        if self.val_fraction < 1:
            out["val_fraction"] = self.val_fraction
        return out

    def cheap_metrics(self, arch: Architecture, names: AbstractSet[str]) -> dict[str, float]:
        """With ``hardware``: the latency metrics among ``names`` (``latency_ms``,
        ``latency_<runtime>_ms``, ``int8_speedup``), measured on the untrained network.

        Speed depends on the network's shape, not its weights, so a latency constraint is checked
        before any training: an architecture that violates it costs one measurement (about a
        second; an INT8 export a few more), not a training. The trained network is measured
        again, and that measurement is the one recorded and judged.
        """
        wanted = {n for n in names if is_latency_metric(n)}
        if self.hardware is None or not wanted:
            return {}
        from nasforge.estimate._loop import torch_threads

        task = self._task()
        with torch_threads(self.budget.threads or default_threads()):
            model = build_seeded(arch, task.input_shape, task.num_classes, 0, width=self.width)
        measured = _measure(arch, model, task, self.hardware, 0, accuracy=False)
        return {k: float(v) for k, v in measured.items() if k in wanted}

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        from nasforge._device import device_info, resolve_amp, resolve_device
        from nasforge.estimate._loop import fit, torch_threads
        from nasforge.hardware import count_flops, count_params

        device = resolve_device(self.device)  # here, in the trial's process: its GPU
        amp = resolve_amp(self.amp, device)
        task = self._task_on(device)
        with torch_threads(self.budget.threads or default_threads()):
            model = build_seeded(arch, task.input_shape, task.num_classes, ctx.seed, width=self.width)
            params = count_params(model)
            flops = count_flops(model, task.input_shape)
            model.to(device)
            spent = 0.0

            def on_epoch(epoch: int, m: dict[str, float]) -> None:
                nonlocal spent
                spent += m["seconds"]
                partial = {
                    "val_accuracy": m["val_accuracy"],
                    "val_loss": m["val_loss"],
                    "train_loss": m["train_loss"],
                    "params": params,
                    "flops": flops,
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
                **self.budget.fit_kwargs(),
            )
            # inside the thread limit: a forked trial that starts a larger OpenMP pool than its
            # parent used can hang (docs/scale-out.md, Threads)
            val_metrics = _val_metrics(model, task)
        metrics = {
            "val_accuracy": result.val_accuracy,
            "val_loss": result.val_loss,
            "train_loss": result.train_loss,
            "params": params,
            "flops": flops,
            "train_seconds": round(result.seconds, 4),
            "images_per_second": round(result.images_per_second, 1),
            "epochs": result.epochs,
            **self._fidelity(task),
            **device_info(device, amp),
            **val_metrics,
        }
        if self.hardware is not None:  # CPU latencies, measured on the CPU whatever trained the model
            metrics.update(_measure(arch, model.cpu(), self._task(), self.hardware, ctx.seed))
        return metrics


@dataclass
class TrainedModel:
    """A trained network with what is needed to use it: architecture, preprocessing, metrics.

    Attributes:
        architecture: the architecture it was built from.
        module: the trained ``nn.Module`` (eval mode).
        task_name: the dataset it was trained on.
        input_shape: (C, H, W) it expects, after normalisation with ``mean`` / ``std``.
        class_names: label names, by class index.
        mean, std: per-channel normalisation applied to pixels in [0, 1].
        metrics: ``val_accuracy``, ``test_accuracy``, ``test_balanced_accuracy``, ``test_auc``,
            ``test_f1_macro``, ``params``, ``train_seconds``, ...
        test_report: after :func:`train_final`, the test split's per-class precision / recall /
            F1, confusion matrix and the training split's class counts (see
            :func:`~nasforge.estimate._metrics.classification_metrics`); None otherwise.
    """

    architecture: Architecture
    module: torch.nn.Module
    task_name: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    test_report: Mapping[str, Any] | None = None

    def save(self, path: str | Path, *, provenance: Mapping[str, Any] | None = None) -> Path:
        """Write a ``.nasforge`` model file: weights, architecture, preprocessing, class names,
        metrics and provenance in one safetensors file, loadable with :func:`nasforge.load`."""
        from nasforge.deploy import save_model

        return save_model(self, path, provenance=provenance)

    def save_weights(self, path: str | Path) -> Path:
        """Write the weights as safetensors (no pickle; loading runs no code)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.module.state_dict().items()}
        save_file(state, str(path), metadata={"architecture_key": self.architecture.key})
        return path


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


def train_final(
    arch: Architecture,
    task: Task,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 3e-3,
    optimizer: str = "adam",
    weight_decay: float = 5e-4,
    schedule: str = "cosine",
    label_smoothing: float = 0.0,
    threads: int | None = None,
    seed: int = 0,
    augment: str = "none",
    patience: int | None = None,
    init: torch.nn.Module | None = None,
    device: str = "auto",
    amp: str = "auto",
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
    time_limit: float | None = None,
) -> TrainedModel:
    """Train ``arch`` on the task's full training split and measure validation and test accuracy.

    This is the one place test data is used: on the final pick of a search.

    Args:
        augment: ``"none"``, ``"shift"`` or ``"shift+flip"`` (see :func:`nasforge.estimate._loop.fit`).
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
    from nasforge._device import check_device_and_amp, device_info, resolve_amp, resolve_device
    from nasforge.estimate._loop import evaluate, fit, torch_threads
    from nasforge.hardware import count_params

    where = resolve_device(check_device_and_amp(device, amp)[0])
    mode = resolve_amp(amp, where)

    budget = TrainBudget(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        weight_decay=weight_decay,
        schedule=schedule,
        label_smoothing=label_smoothing,
        threads=threads,
    )
    start = time.perf_counter()
    transferred: list[str] = []
    with torch_threads(budget.threads or default_threads()):
        model = _build(arch, task, seed)
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
            augment=augment,
            patience=patience if len(task.x_val) else None,
            amp=mode,
            on_epoch=None if on_epoch is None else lambda e, m: on_epoch(e, budget.epochs, m),
            time_limit=time_limit,
            **budget.fit_kwargs(),
        )
        test_accuracy, test_loss = evaluate(model, on_device.x_test, on_device.y_test, amp=mode)
        model.cpu()
        test_report = _test_report(model, task)
    metrics = {
        "val_accuracy": result.val_accuracy,
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "train_loss": result.train_loss,
        "params": count_params(model),
        "epochs": result.epochs,
        "train_seconds": round(result.seconds, 3),
        "seconds": round(time.perf_counter() - start, 3),
        **device_info(where, mode),
    }
    if test_report is not None:
        metrics.update({f"test_{k}": test_report[k] for k in ("balanced_accuracy", "f1_macro", "auc")})
    if patience is not None:
        metrics["best_epoch"] = result.best_epoch
    if time_limit is not None:
        metrics["cut_by_time_limit"] = result.timed_out
    if init is not None:
        metrics["transferred"] = len(transferred)
    return TrainedModel(
        architecture=arch,
        module=model,
        task_name=task.name,
        input_shape=task.input_shape,
        class_names=task.class_names,
        mean=task.mean,
        std=task.std,
        metrics=metrics,
        test_report=test_report,
    )


def _val_metrics(model: torch.nn.Module, task: Task) -> dict[str, float]:
    """``val_balanced_accuracy``, ``val_f1_macro`` and ``val_auc`` of a trained trial (one more
    forward pass over the validation split), so a search can select by them (``--metric``)."""
    from nasforge.estimate._metrics import classification_metrics, predict_proba

    if len(task.x_val) == 0:
        return {}
    report = classification_metrics(task.y_val.cpu().numpy(), predict_proba(model, task.x_val))
    return {f"val_{k}": report[k] for k in ("balanced_accuracy", "f1_macro", "auc")}


def _test_report(model: torch.nn.Module, task: Task) -> dict[str, Any] | None:
    """Every test metric of the final model (:func:`~nasforge.estimate._metrics.classification_metrics`)
    and the training split's class counts; None without test images."""
    import torch

    from nasforge.estimate._metrics import classification_metrics, imbalance, predict_proba

    if len(task.x_test) == 0:
        return None
    report = classification_metrics(task.y_test.numpy(), predict_proba(model, task.x_test), task.class_names)
    counts = torch.bincount(task.y_train, minlength=len(task.class_names)).tolist()
    report["train_class_counts"] = counts
    report["train_imbalance"] = imbalance(counts)
    return report


HARDWARE_RUNTIMES = ("torch", "onnx", "int8")
_HARDWARE_DEFAULTS: dict[str, Any] = {
    "runtimes": ["onnx"],
    "batch": 1,
    "threads": 1,
    "warmup": 5,
    "repeats": 20,
    "calibration": 256,
    "eval_images": 1000,
}


def _check_hardware(hardware: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if hardware is None:
        return None
    if not isinstance(hardware, Mapping):
        raise ConfigError(f"hardware must be a mapping such as {{runtimes: [int8]}}, got {hardware!r}")
    unknown = sorted(set(hardware) - set(_HARDWARE_DEFAULTS))
    if unknown:
        raise ConfigError(f"hardware has no option {unknown}; valid: {', '.join(_HARDWARE_DEFAULTS)}")
    out = {**_HARDWARE_DEFAULTS, **dict(hardware)}
    runtimes = out["runtimes"]
    if isinstance(runtimes, str):
        runtimes = [runtimes]
    if not runtimes or any(r not in HARDWARE_RUNTIMES for r in runtimes):
        raise ConfigError(
            f"hardware runtimes must be from {list(HARDWARE_RUNTIMES)}, got {out['runtimes']!r}"
        )
    out["runtimes"] = list(runtimes)
    for key in ("batch", "threads", "repeats", "calibration", "eval_images"):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < (2 if key == "repeats" else 1):
            raise ConfigError(f"hardware {key} must be a positive integer, got {value!r}")
    if isinstance(out["warmup"], bool) or not isinstance(out["warmup"], int) or out["warmup"] < 0:
        raise ConfigError(f"hardware warmup must be an integer >= 0, got {out['warmup']!r}")
    return out


def is_latency_metric(name: str) -> bool:
    """``latency_ms``, ``latency_<runtime>_ms`` or ``int8_speedup``: what the network's shape fixes,
    whatever its weights."""
    return name == "int8_speedup" or (name.startswith("latency_") and name.endswith("_ms"))


def _measure(
    arch: Architecture,
    model: torch.nn.Module,
    task: Task,
    hw: Mapping[str, Any],
    seed: int,
    *,
    accuracy: bool = True,
) -> dict[str, Any]:
    """Latency of the trained ``model`` per runtime, and (int8, with ``accuracy``) the quantised
    model's validation accuracy."""
    import tempfile

    import torch

    from nasforge.deploy import Model
    from nasforge.hardware import measure_latency

    model.eval()
    mean = torch.tensor(task.mean).view(1, -1, 1, 1)
    std = torch.tensor(task.std).view(1, -1, 1, 1)
    wrapped = Model(
        module=model,
        architecture=arch,
        input_shape=task.input_shape,
        class_names=task.class_names,
        mean=task.mean,
        std=task.std,
    )
    shape = task.input_shape
    timing = {
        "batch_size": hw["batch"],
        "threads": hw["threads"],
        "warmup": hw["warmup"],
        "repeats": hw["repeats"],
    }
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in hw["runtimes"]:
            if runtime == "torch":
                target: Any = model
            elif runtime == "onnx":
                target = Path(tmp) / "m.onnx"
                wrapped.export(target, format="onnx")
            else:
                gen = torch.Generator().manual_seed(seed)
                calib_idx = torch.randperm(len(task.x_train), generator=gen)[: hw["calibration"]]
                calibration = (task.x_train[calib_idx] * std + mean).clamp(0, 1)
                target = Path(tmp) / "m.int8.onnx"
                if not accuracy:  # latency only: the export's own output check on calibration images
                    wrapped.export(target, format="int8", calibration=calibration)
                else:
                    x_val = task.x_val[: hw["eval_images"]]
                    y_val = task.y_val[: hw["eval_images"]]
                    report = wrapped.export(
                        target,
                        format="int8",
                        calibration=calibration,
                        eval_images=(x_val * std + mean).clamp(0, 1),
                        eval_labels=y_val.numpy(),
                    )
                    fp32 = report.accuracy.get("pytorch", float("nan"))  # the images of the export check
                    out["int8_val_accuracy"] = report.accuracy.get("exported", float("nan"))
                    out["int8_accuracy_drop"] = round(fp32 - out["int8_val_accuracy"], 6)
            rep = measure_latency(target, shape, **timing)
            out[f"latency_{runtime}_ms"] = round(rep.median_ms, 5)
            out["latency_ms"] = out[f"latency_{runtime}_ms"]
    if "latency_onnx_ms" in out and "latency_int8_ms" in out and out["latency_int8_ms"] > 0:
        out["int8_speedup"] = round(out["latency_onnx_ms"] / out["latency_int8_ms"], 4)
    return out
