"""The Profiler: cheap hardware metrics of a network, and the constraint filter built on them.

Parameters, FLOPs, peak activation memory and measured latency are what a network's *shape*
fixes, whatever its weights. The :class:`Profiler` computes every one of them for nasforge:

- before the estimator, on an untrained network: :meth:`Profiler.screen` is the constraint filter
  of a search (NNI's ``Filter`` middleware): it counts what the constraints name on a network
  built on the ``meta`` device (no memory, no compute), asks a lookup for the rest (a table's
  latency, a latency measured by the estimator), and says which constraints are violated, so an
  infeasible architecture is never trained;
- after training: :class:`~nasforge.TrainEstimator` (``hardware=``) records the trained network's
  counts and latencies per runtime (:meth:`Profiler.count`, :meth:`Profiler.measure`);
- on a saved model: ``nasforge profile`` (:meth:`Profiler.profile`).

Latency is measured on this machine's CPU (:func:`~nasforge.hardware.measure_latency`) for PyTorch
eager (``torch``), ONNX Runtime fp32 (``onnx``) and static INT8 ONNX (``int8``, calibrated on
training images); the ONNX graphs are the files :func:`nasforge.deploy.export` writes, normalisation
included.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from nasforge.data import DetectionTask, Task
    from nasforge.hardware._export import Exportable, ExportReport
    from nasforge.hardware._export_det import DetectionExportReport
    from nasforge.objective import MetricConstraint
    from nasforge.space import Architecture

__all__ = ["COUNTS", "LATENCY_RUNTIMES", "SCREEN_COUNTS", "ModelProfile", "Profiler", "is_latency_metric"]

log = logging.getLogger(__name__)

#: the latency runtimes: PyTorch eager, ONNX Runtime fp32, static INT8 ONNX
LATENCY_RUNTIMES = ("torch", "onnx", "int8")
#: what :meth:`Profiler.count` counts on a built network (``peak_activation_bytes``: float32, batch 1)
COUNTS = ("params", "flops", "peak_activation_bytes")
#: what :meth:`Profiler.screen` counts itself: the counts a training estimator records as well, so
#: a constraint judges the same metric before and after training
SCREEN_COUNTS = frozenset({"params", "flops"})
#: the labels of ``nasforge profile``'s rows, by runtime
_PROFILE_LABELS = {"torch": "torch_eager", "onnx": "onnx_fp32", "int8": "onnx_int8"}
#: the options of ``TrainEstimator(hardware=...)``: the Profiler's latency settings
_OPTIONS = ("runtimes", "batch", "threads", "warmup", "repeats", "calibration", "eval_images")

Lookup = Callable[["Architecture", AbstractSet[str]], Mapping[str, float]]


def is_latency_metric(name: str) -> bool:
    """``latency_ms``, ``latency_<runtime>_ms`` or ``int8_speedup``: what the network's shape fixes,
    whatever its weights."""
    return name == "int8_speedup" or (name.startswith("latency_") and name.endswith("_ms"))


class Profiler:
    """Counts and times networks: parameters, FLOPs, peak activation memory, latency per runtime.

    Args:
        runtimes: what :meth:`measure` times, in order, from ``torch`` (PyTorch eager), ``onnx``
            (ONNX Runtime fp32) and ``int8`` (static INT8 ONNX); one name or a sequence.
        batch: images per timed call.
        threads: intra-op threads while timing (fixed and recorded).
        warmup: untimed calls before each measurement.
        repeats: timed calls per measurement (the median is the figure), at least 2.
        calibration: training images INT8 quantization is calibrated on.
        eval_images: validation images the INT8 model's accuracy is measured on.
        width: width multiplier of the networks built from architectures (an estimator's).
        device: where architectures are built for counting: ``"meta"`` (no memory, no compute) or
            ``"cpu"`` (real weights: cheaper when the meta device's one-off import cost dominates).
        lookup: metrics known without building a network, ``lookup(arch, names) -> {name: value}``
            (an estimator's :meth:`~nasforge.estimate.Estimator.cheap_metrics`: a table's latency,
            a latency measured on the untrained network); :meth:`screen` asks it first.

    Raises:
        ConfigError: an unknown runtime or a count out of range (the messages name the
            ``hardware`` option of :class:`~nasforge.TrainEstimator`).

    Example:
        >>> import numpy as np
        >>> import nasforge as nf
        >>> space = nf.spaces.ChainCNN(depth=2).bind((1, 8, 8), 10)
        >>> arch = space.sample(np.random.default_rng(0))
        >>> counts = Profiler().count(arch)
        >>> sorted(counts), counts["params"] == space.count_params(arch)
        (['flops', 'params'], True)
        >>> metrics, violated = Profiler().screen(arch, [nf.objective.MetricConstraint.parse("params <= 10")])
        >>> violated
        ['params <= 10']
    """

    def __init__(
        self,
        *,
        runtimes: str | Sequence[str] = ("onnx",),
        batch: int = 1,
        threads: int = 1,
        warmup: int = 5,
        repeats: int = 20,
        calibration: int = 256,
        eval_images: int = 1000,
        width: float = 1.0,
        device: str = "meta",
        lookup: Lookup | None = None,
    ) -> None:
        from nasforge.space._architecture import check_width

        names = [runtimes] if isinstance(runtimes, str) else list(runtimes)
        if not names or any(r not in LATENCY_RUNTIMES for r in names):
            raise ConfigError(f"hardware runtimes must be from {list(LATENCY_RUNTIMES)}, got {runtimes!r}")
        for key, value in (
            ("batch", batch),
            ("threads", threads),
            ("repeats", repeats),
            ("calibration", calibration),
            ("eval_images", eval_images),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (2 if key == "repeats" else 1)
            ):
                raise ConfigError(f"hardware {key} must be a positive integer, got {value!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ConfigError(f"hardware warmup must be an integer >= 0, got {warmup!r}")
        if device not in ("meta", "cpu"):
            raise ConfigError(f"the Profiler builds networks on 'meta' or 'cpu', got device={device!r}")
        self.runtimes = names
        self.batch = batch
        self.threads = threads
        self.warmup = warmup
        self.repeats = repeats
        self.calibration = calibration
        self.eval_images = eval_images
        self.width = check_width(width)
        self.device = device
        self.lookup = lookup

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Profiler:
        """The Profiler of ``TrainEstimator(hardware=options)``: ``runtimes``, ``batch``,
        ``threads``, ``warmup``, ``repeats``, ``calibration``, ``eval_images``.

        Raises:
            ConfigError: not a mapping, an unknown option, or a bad value.
        """
        if not isinstance(options, Mapping):
            raise ConfigError(f"hardware must be a mapping such as {{runtimes: [int8]}}, got {options!r}")
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigError(f"hardware has no option {unknown}; valid: {', '.join(_OPTIONS)}")
        return cls(**options)

    # ----------------------------------------------------------------------------------- counts
    def count(
        self,
        network: torch.nn.Module | Architecture,
        names: Iterable[str] = ("params", "flops"),
        *,
        input_shape: Sequence[int] | None = None,
    ) -> dict[str, int]:
        """Count ``names`` (from :data:`COUNTS`) on a network, in that order of :data:`COUNTS`.

        Args:
            network: a built module, or an architecture, built here for its space's bound task
                (on :attr:`device`, at :attr:`width`, leaving torch's random generator as it was).
            names: ``params`` (trainable), ``flops`` (one forward pass, batch 1),
                ``peak_activation_bytes`` (float32, batch 1).
            input_shape: ``(C, H, W)`` of one input of a module, required for its FLOPs and
                memory (an architecture's is its space's).

        Raises:
            ConfigError: an unknown name, or a module without ``input_shape``.
            SpaceError: an architecture whose space is not bound to a task.
        """
        return dict(self._counts(network, set(names), input_shape))

    def _counts(
        self, network: Any, names: AbstractSet[str], input_shape: Sequence[int] | None
    ) -> Iterator[tuple[str, int]]:
        from torch import nn

        from nasforge.hardware._count import count_flops, count_params
        from nasforge.hardware._latency import peak_activation_bytes

        unknown = sorted(set(names) - set(COUNTS))
        if unknown:
            raise ConfigError(f"the Profiler counts {', '.join(COUNTS)}; got {unknown}")
        if isinstance(network, nn.Module):
            module = network
        else:
            import torch

            input_shape = network.space.input_shape
            with torch.random.fork_rng(devices=[]):  # initial weights are not wanted; keep the caller's RNG
                module = network.build(device=self.device, width=self.width)
        if "params" in names:
            yield "params", count_params(module)
        if names - {"params"} and input_shape is None:
            raise ConfigError("counting FLOPs or activation memory needs the input shape (C, H, W)")
        shape = tuple(int(d) for d in input_shape or ())
        if "flops" in names:
            yield "flops", count_flops(module, shape)
        if "peak_activation_bytes" in names:
            yield "peak_activation_bytes", peak_activation_bytes(module, shape)

    # ----------------------------------------------------------------------------------- filter
    def screen(
        self, arch: Architecture, constraints: Sequence[MetricConstraint]
    ) -> tuple[dict[str, Any], list[str]]:
        """The constraint filter: the metrics ``constraints`` name that are known before training,
        and the constraints they violate.

        :attr:`lookup` answers first; ``params`` and ``flops`` it did not give are counted on
        ``arch``'s network (:data:`SCREEN_COUNTS`, built on :attr:`device` at :attr:`width`) when
        its space is bound to a task. A lookup or a build that fails leaves its metrics out: those
        constraints are then judged on the estimator's results.

        Returns:
            ``(metrics, violated)``: the values found, and ``str(c)`` of each violated constraint
            (empty: the architecture may be evaluated).
        """
        names = {c.metric for c in constraints}
        metrics: dict[str, Any] = {}
        if not names:
            return metrics, []
        if self.lookup is not None:
            try:
                metrics.update(self.lookup(arch, frozenset(names)))
            except Exception:  # the lookup cannot tell: the constraints are checked on the results
                log.debug("the lookup failed for %s", arch.key, exc_info=True)
        wanted = (names & SCREEN_COUNTS) - metrics.keys()
        space = arch.space
        if wanted and space.input_shape is not None and space.num_classes is not None:
            try:
                for name, value in self._counts(arch, wanted, None):
                    metrics[name] = value
            except Exception:  # a space that cannot build here: the constraint is checked after training
                log.debug("cannot count %s on the %s device", arch.key, self.device, exc_info=True)
        violated = [str(c) for c in constraints if c.metric in metrics and not c.holds(metrics)]
        return metrics, violated

    # ----------------------------------------------------------------------------------- latency
    def measure(
        self,
        model: Exportable,
        task: Task | DetectionTask | None = None,
        *,
        seed: int = 0,
        accuracy: bool = True,
    ) -> dict[str, float]:
        """Time ``model`` in each of :attr:`runtimes`, on the CPU.

        Args:
            model: a model with its preprocessing (a trained or loaded model); its module is
                timed as it is (move it to the CPU first).
            task: the data it was trained on: INT8 is calibrated on :attr:`calibration` of its
                training images (seeded by ``seed``), and its accuracy measured on the first
                :attr:`eval_images` validation images. Required for ``int8``.
            seed: seeds the choice of calibration images.
            accuracy: measure the INT8 model's accuracy (else time it only).

        Returns:
            ``latency_<runtime>_ms`` (median) per runtime, ``latency_ms`` (the last runtime's);
            with ``int8`` and ``accuracy``, ``int8_val_accuracy`` and ``int8_accuracy_drop``
            (the PyTorch model's accuracy on the same images minus it; for a detector and its
            :class:`~nasforge.data.DetectionTask`, ``int8_val_map`` and ``int8_map_drop``); with ``onnx`` and
            ``int8``, ``int8_speedup`` (fp32 / INT8 ONNX latency).

        Raises:
            ConfigError: ``int8`` without a task, or an fp32 export that does not match PyTorch.
        """
        import tempfile

        from nasforge.hardware._latency import measure_latency

        model.module.eval()
        out: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for runtime in self.runtimes:
                calibration, evaluation = None, {}
                if runtime == "int8":
                    if task is None:
                        raise ConfigError(
                            "INT8 latency needs calibration images: give the task they come from"
                        )
                    calibration = task.calibration_images(self.calibration, seed)
                    if accuracy:
                        evaluation = _evaluation(task, self.eval_images)
                target, report = self._target(model, runtime, Path(tmp), calibration, evaluation)
                if report is not None and evaluation:
                    out.update(_int8_quality(report))
                rep = measure_latency(target, model.pipeline.input_shape, **self._timing(self.batch))
                out[f"latency_{runtime}_ms"] = round(rep.median_ms, 5)
                out["latency_ms"] = out[f"latency_{runtime}_ms"]
        if "latency_onnx_ms" in out and "latency_int8_ms" in out and out["latency_int8_ms"] > 0:
            out["int8_speedup"] = round(out["latency_onnx_ms"] / out["latency_int8_ms"], 4)
        return out

    def _timing(self, batch: int) -> dict[str, int]:
        return {"batch_size": batch, "threads": self.threads, "warmup": self.warmup, "repeats": self.repeats}

    def _target(
        self,
        model: Exportable,
        runtime: str,
        tmp: Path,
        calibration: torch.Tensor | None,
        evaluation: Mapping[str, Any],
    ) -> tuple[Any, Any]:
        """What :func:`measure_latency` times for ``runtime`` (the module, or an exported file in
        ``tmp``), and the export's report (None for ``torch``)."""
        from nasforge.hardware._export import export
        from nasforge.hardware._export_det import ExportQualityWarning

        if runtime == "torch":
            return model.module, None
        if runtime == "onnx":
            path = tmp / "m.onnx"
            return path, export(model, path, format="onnx")
        if calibration is None:
            raise ConfigError("INT8 latency needs calibration images (pixels of training images)")
        path = tmp / "m.int8.onnx"
        with warnings.catch_warnings():  # timing: the quality goes to the metrics, not to a warning
            warnings.simplefilter("ignore", ExportQualityWarning)
            return path, export(model, path, format="int8", calibration=calibration, **evaluation)

    def profile(
        self,
        model: Exportable,
        *,
        batches: Sequence[int] = (1,),
        calibration: torch.Tensor | None = None,
        device: torch.device | None = None,
    ) -> dict[str, Any]:
        """What ``nasforge profile`` reports of a saved model: its counts and a latency row per
        runtime and batch size.

        Args:
            model: a loaded model (:func:`nasforge.load`), on the CPU.
            batches: batch sizes to time.
            calibration: pixels ``(N, C, H, W)`` in [0, 1] INT8 is calibrated on (with ``int8``).
            device: a GPU (``cuda``, ``mps``) to time PyTorch eager on as well, in its own row
                ``torch_eager_<type>`` (synchronised timing; never "the" latency).

        Returns:
            ``input_shape``, ``params``, ``flops``, ``peak_activation_bytes`` (batch 1, float32),
            ``threads``, ``latency`` (one :meth:`LatencyReport.to_dict
            <nasforge.hardware.LatencyReport.to_dict>` per row, with its ``runtime``: ``torch_eager``,
            ``onnx_fp32``, ``onnx_int8``) and, with a GPU, ``gpu`` (where it ran).
        """
        import copy
        import tempfile

        from nasforge._device import device_info
        from nasforge.hardware._latency import measure_latency

        shape = model.pipeline.input_shape
        result: dict[str, Any] = {
            "input_shape": list(shape),
            **self.count(model.module, COUNTS, input_shape=shape),
            "threads": self.threads,
            "latency": [],
        }
        gpu: tuple[str, torch.nn.Module] | None = None
        if device is not None and device.type != "cpu":
            gpu = (f"torch_eager_{device.type}", copy.deepcopy(model.module).to(device))
            result["gpu"] = device_info(device)
        with tempfile.TemporaryDirectory() as tmp:
            targets = [
                (_PROFILE_LABELS[r], self._target(model, r, Path(tmp), calibration, {})[0])
                for r in self.runtimes
            ]
            if gpu is not None:  # timed on the GPU, synchronised; its own row, never "the" latency
                targets.append(gpu)
            for batch in batches:
                for label, target in targets:
                    rep = measure_latency(target, shape, **self._timing(batch))
                    result["latency"].append({"runtime": label, **rep.to_dict()})
        return result

    def __repr__(self) -> str:
        return (
            f"Profiler(runtimes={self.runtimes}, batch={self.batch}, threads={self.threads}, "
            f"width={self.width}, device={self.device!r})"
        )


def _evaluation(task: Task | DetectionTask, n: int) -> dict[str, Any]:
    """The export check's labelled images: the first ``n`` validation images of ``task`` with their
    labels, or for a detection task their boxes."""
    from nasforge.data import DetectionTask

    images = task.pipeline.denormalize(task.x_val[:n])
    if isinstance(task, DetectionTask):
        targets = [
            {"boxes": b, "labels": y} for b, y in zip(task.boxes_val[:n], task.labels_val[:n], strict=True)
        ]
        return {"eval_images": images, "eval_targets": targets}
    return {"eval_images": images, "eval_labels": task.y_val[:n].numpy()}


def _int8_quality(report: ExportReport | DetectionExportReport) -> dict[str, float]:
    """What an INT8 export's check says of its quality, as trial metrics."""
    from nasforge.hardware._export_det import DetectionExportReport

    nan = float("nan")
    if isinstance(report, DetectionExportReport):
        if not report.map:
            return {}
        got = report.map["exported"]["map"]
        return {"int8_val_map": got, "int8_map_drop": round(report.map["pytorch"]["map"] - got, 6)}
    fp32 = report.accuracy.get("pytorch", nan)  # the images of the export check
    got = report.accuracy.get("exported", nan)
    return {"int8_val_accuracy": got, "int8_accuracy_drop": round(fp32 - got, 6)}


@dataclass
class ModelProfile:
    """What :meth:`Profiler.profile` measured of a saved model, as ``nasforge profile`` prints it.

    Attributes:
        model: what was profiled (a file or zoo name, for the record).
        input_shape: (C, H, W) of one input.
        params: parameters; flops: FLOPs of one input; peak_activation_bytes: the largest
            activation memory alive at once (batch 1, float32).
        threads: intra-op threads of the timings.
        latency: one row per runtime and batch size: ``runtime`` (``torch_eager``, ``onnx_fp32``,
            ``onnx_int8``, or ``torch_eager_cuda`` / ``torch_eager_mps``)
            and the fields of :meth:`LatencyReport.to_dict`.
        gpu: the GPU's :func:`nasforge._device.device_info` when a GPU row was timed, else None.
        repeats / warmup: timed and untimed calls per measurement.
    """

    model: str
    input_shape: tuple[int, ...]
    params: int
    flops: int
    peak_activation_bytes: int
    threads: int
    repeats: int
    warmup: int
    latency: list[dict[str, Any]] = field(default_factory=list)
    gpu: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``nasforge profile --json``."""
        out: dict[str, Any] = {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "params": self.params,
            "flops": self.flops,
            "peak_activation_bytes": self.peak_activation_bytes,
            "threads": self.threads,
            "latency": self.latency,
        }
        if self.gpu is not None:
            out["gpu"] = self.gpu
        return out
