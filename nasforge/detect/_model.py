"""A loaded detector: ``nasforge.load("det.nasforge")("img.png")[0].boxes.xyxy``.

The ``.nasforge`` file of a detector is the classification model file (safetensors weights and
JSON metadata, written by :func:`nasforge.deploy.save_model`, read by :func:`nasforge.load`) with
``task: detection`` in its metadata; :func:`nasforge.load` then returns a :class:`Detector`.
Images go through the classification pipeline of :mod:`nasforge.deploy` (reading, channel
conversion, bilinear resizing to the network's input, normalisation), and the boxes are mapped
back to each original image's pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.detect._results import Results
from nasforge.errors import CheckpointError, ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from nasforge.estimate._detection import TrainedDetector
    from nasforge.space import Architecture

__all__ = ["Detector", "load_detector"]


@dataclass
class Detector:
    """A trained detector with its preprocessing: call it on images to get :class:`Results`.

    Create one with :func:`nasforge.load` on a detector file (or :meth:`from_trained`). A call
    takes one source or a list: image paths, folders (their images, sorted), PIL images, numpy
    arrays ``(H, W)`` / ``(H, W, C)`` / ``(N, H, W, C)`` and tensors ``(C, H, W)`` / ``(N, C, H, W)``,
    with pixels as uint8 or floats in [0, 1]. Each image is resized (bilinear, antialiased, no
    letterbox, as the training data was) to the network's input size.

    Attributes:
        module: the detector network (a :class:`~nasforge.detect.CenterNet`, eval mode).
        architecture, input_shape, class_names, mean, std, metrics, provenance, path: as in
            :class:`nasforge.deploy.Model`.
        task: ``"detection"``.

    Example:
        >>> model = nasforge.load("det.nasforge")  # doctest: +SKIP
        >>> results = model("img.png", conf=0.3)  # doctest: +SKIP
        >>> results[0].boxes.xyxy, results[0].boxes.cls  # doctest: +SKIP
    """

    module: torch.nn.Module
    architecture: Architecture
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    task = "detection"

    @classmethod
    def from_trained(cls, trained: TrainedDetector) -> Detector:
        """Wrap a :class:`~nasforge.estimate.TrainedDetector` (no file involved)."""
        trained.module.eval()
        return cls(
            module=trained.module,
            architecture=trained.architecture,
            input_shape=tuple(trained.input_shape),  # type: ignore[arg-type]
            class_names=tuple(trained.class_names),
            mean=tuple(trained.mean),
            std=tuple(trained.std),
            metrics=dict(trained.metrics),
            provenance={"dataset": trained.task_name},
        )

    @property
    def names(self) -> dict[int, str]:
        """Class names by id."""
        return dict(enumerate(self.class_names))

    def __call__(
        self,
        source: Any,
        *,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        batch_size: int = 32,
    ) -> list[Results]:
        """Detect objects; one :class:`Results` per image, in input order.

        Args:
            source: image(s), see the class docstring.
            conf: minimum confidence of a kept box.
            iou: IoU threshold of the class-wise non-maximum suppression.
            max_det: at most this many boxes per image.
            batch_size: images per forward pass.
        """
        import torch

        if not (isinstance(conf, int | float) and 0 <= conf <= 1) or isinstance(conf, bool):
            raise ConfigError(f"conf must be in [0, 1], got {conf=}")
        if not (isinstance(iou, int | float) and 0 < iou <= 1) or isinstance(iou, bool):
            raise ConfigError(f"iou must be in (0, 1], got {iou=}")
        if isinstance(max_det, bool) or not isinstance(max_det, int) or max_det < 1:
            raise ConfigError(f"max_det must be an integer >= 1, got {max_det=}")
        start = time.perf_counter()
        originals, sources = _read_sources(source)
        batch = self._preprocess(originals)
        t_pre = time.perf_counter()
        self.module.eval()
        outputs: list[dict[str, torch.Tensor]] = []
        t_inf = 0.0
        for i in range(0, len(batch), batch_size):
            t0 = time.perf_counter()
            with torch.no_grad():
                raw = self.module(batch[i : i + batch_size])
            t_inf += time.perf_counter() - t0
            outputs.extend(self._decode(raw, conf, iou, max_det))
        t_post = time.perf_counter() - t_pre - t_inf
        n = len(originals)
        speed = {
            "preprocess": 1000 * (t_pre - start) / n,
            "inference": 1000 * t_inf / n,
            "postprocess": 1000 * t_post / n,
        }
        _, h, w = self.input_shape
        results = []
        for image, where, det in zip(originals, sources, outputs, strict=True):
            oh, ow = int(image.shape[1]), int(image.shape[2])
            scale = torch.tensor([ow / w, oh / h, ow / w, oh / h])
            boxes = det["boxes"].float().cpu() * scale
            data = torch.cat(
                (boxes, det["scores"].float().cpu()[:, None], det["labels"].float().cpu()[:, None]), 1
            )
            results.append(Results(_to_hwc_uint8(image), where, self.names, data, speed))
        return results

    def _preprocess(self, originals: list[torch.Tensor]) -> torch.Tensor:
        import torch

        from nasforge.deploy._model import _fit

        pixels = torch.stack([_fit(t, self.input_shape) for t in originals])
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        batch = (pixels - mean) / std
        param = next(self.module.parameters(), None)
        return batch if param is None else batch.to(param.device)

    def _decode(
        self, raw: dict[str, torch.Tensor], conf: float, iou: float, max_det: int
    ) -> list[dict[str, Any]]:
        from nasforge.detect._centernet import decode_centernet

        _, h, w = self.input_shape
        stride = int(getattr(self.module, "stride", 1))
        return decode_centernet(
            raw, stride, (h, w), max_dets=max_det, score_threshold=conf, iou_threshold=iou
        )

    def fuse(self) -> Detector:
        """Fold every RepVGG block's branches into one conv (:func:`nasforge.nn.reparameterize`), in
        place: the same boxes up to float rounding, faster inference. Returns self."""
        from nasforge.nn import reparameterize

        self.module.eval()
        reparameterize(self.module)
        return self

    def export(self, path: str | Path, format: str = "onnx", **options: Any) -> Any:
        """:func:`nasforge.deploy.export`, which does not take detectors yet (a ConfigError says so)."""
        from nasforge.deploy import export

        return export(self, path, format=format, **options)  # type: ignore[arg-type]

    def save(self, path: str | Path) -> Path:
        """Write this detector to a ``.nasforge`` file."""
        from nasforge.estimate._detection import TrainedDetector

        trained = TrainedDetector(
            architecture=self.architecture,
            module=self.module,
            task_name=str(self.provenance.get("dataset", "")),
            input_shape=self.input_shape,
            class_names=self.class_names,
            mean=self.mean,
            std=self.std,
            metrics=self.metrics,
        )
        extra = {k: v for k, v in self.provenance.items() if k not in ("dataset", "created")}
        return trained.save(path, provenance=extra)

    def __repr__(self) -> str:
        score = self.metrics.get("test_map", self.metrics.get("val_map"))
        c, h, w = self.input_shape
        describe = getattr(self.architecture.space, "describe", None)
        arch = describe(self.architecture) if callable(describe) else self.architecture.key
        score_s = f", mAP {score:.4f}" if isinstance(score, float) else ""
        where = f" from {self.path}" if self.path else ""
        return f"Detector({arch}; {c}x{h}x{w} -> {len(self.class_names)} classes{score_s}{where})"


def load_detector(source: str | Path) -> Detector:
    """:func:`nasforge.load`, checking that the file holds a detector.

    Raises:
        CheckpointError: the file cannot be read, or holds a classification model.
    """
    from nasforge.deploy import load

    model = load(source)
    if not isinstance(model, Detector):
        raise CheckpointError(
            f"{source} is a classification model ({len(model.class_names)} classes, task: classification), "
            "not a detector: call it for class probabilities (model(images)[0].top1), or give a detector "
            "file (TrainedDetector.save / train_detector)"
        )
    return model


def _read_sources(source: Any) -> tuple[list[torch.Tensor], list[str]]:
    """Any supported source -> original images as float (C, H, W) in [0, 1], and their names."""
    from nasforge.deploy._model import _as_chw_batch, describe_sources

    items = list(source) if isinstance(source, list | tuple) else [source]
    expanded: list[Any] = []
    for item in items:
        if isinstance(item, str | Path):
            if not Path(item).exists():
                raise DataError(f"no image file or folder {item}")
            files = describe_sources([str(item)])
            if Path(item).is_dir() and not files:
                raise DataError(f"no image files (PNG, JPEG, ...) in the folder {item}")
            expanded.extend(files)
        else:
            expanded.append(item)
    if not expanded:
        raise DataError("no images given")
    images: list[torch.Tensor] = []
    names: list[str] = []
    for i, item in enumerate(expanded):
        batch = list(_as_chw_batch(item, i))
        for j, t in enumerate(batch):
            images.append(t)
            names.append(str(item) if isinstance(item, str | Path) else f"image{i}" + (f"_{j}" if j else ""))
    return images, names


def _to_hwc_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8 RGB (grey repeated, alpha dropped)."""
    import torch

    t = t[:3] if t.shape[0] >= 3 else t[:1].repeat(3, 1, 1)
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
