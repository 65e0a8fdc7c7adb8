"""A trained detector: ``nasforge.load("det.nasforge")("img.png")[0].boxes.xyxy``.

A :class:`Detector` is a :class:`~nasforge.estimate._model.TrainedNetwork` like the classifier
:class:`~nasforge.estimate.Model`: the same fields, ``.nasforge`` file (with ``task: detection`` in
its metadata, so :func:`nasforge.load` returns a Detector), ``save`` and preprocessing (the image
pipeline: reading, channel conversion, bilinear resizing to the network's input, normalisation).
Its call returns boxes, mapped back to each original image's pixels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nasforge.data._pipeline import as_images, image_files, is_url
from nasforge.detect._results import Results
from nasforge.errors import ConfigError, DataError
from nasforge.estimate._model import TrainedNetwork

# torch and the nn / detect modules (which import torch) are imported on first use, so that `import
# nasforge` stays light.
if TYPE_CHECKING:
    import torch

    from nasforge.data._pipeline import ImagePipeline

__all__ = ["Detector", "detect_images"]


@dataclass(repr=False)
class Detector(TrainedNetwork):
    """A trained detector with its preprocessing: call it on images to get :class:`Results`.

    :func:`~nasforge.estimate.train_detector` returns one, :func:`nasforge.load` reads one from a
    detector file. A call takes one source or a list: image paths, folders (their images, sorted),
    ``http(s)://`` URLs (downloaded into memory), PIL images, numpy arrays ``(H, W)`` /
    ``(H, W, C)`` / ``(N, H, W, C)`` and tensors
    ``(C, H, W)`` / ``(N, C, H, W)``, with pixels as uint8 or floats in [0, 1]. Each image is
    resized (bilinear, antialiased, no letterbox, as the training data was) to the network's input
    size.

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

    task: ClassVar[str] = "detection"

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

        self.module.eval()

        def forward(pixels: torch.Tensor) -> dict[str, torch.Tensor]:
            with torch.no_grad():
                out: dict[str, torch.Tensor] = self.module(self._on_device(self.pipeline.normalize(pixels)))
            return out

        return detect_images(
            forward,
            self.pipeline,
            self.names,
            self.stride,
            source,
            conf=conf,
            iou=iou,
            max_det=max_det,
            batch_size=batch_size,
        )

    @property
    def stride(self) -> int:
        """Input pixels per cell of the network's output maps."""
        return int(getattr(self.module, "stride", 1))

    def fuse(self) -> Detector:
        """Fold every RepVGG block's branches into one conv (:func:`nasforge.nn.reparameterize`), in
        place: the same boxes up to float rounding, faster inference. Returns self."""
        from nasforge.nn import reparameterize

        self.module.eval()
        reparameterize(self.module)
        return self

    def _score(self) -> str:
        score = self.metrics.get("test_map", self.metrics.get("val_map"))
        return f", mAP {score:.4f}" if isinstance(score, float) else ""


def detect_images(
    forward: Callable[[torch.Tensor], Mapping[str, Any]],
    pipeline: ImagePipeline,
    names: dict[int, str],
    stride: int,
    source: Any,
    *,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    batch_size: int = 32,
) -> list[Results]:
    """What a detector's call does, whatever runs its network: read and resize ``source`` with
    ``pipeline`` (no normalisation), ``forward`` each batch of pixels in [0, 1] to the output maps
    (``heatmap``, ``size``, ``offset``; tensors or arrays), decode them
    (:func:`~nasforge.detect.decode_centernet`) and map the boxes back to each original image.

    :class:`Detector` runs its PyTorch module, :class:`~nasforge.deploy.OnnxDetector` an exported
    ONNX file.
    """
    import torch

    from nasforge.detect._centernet import decode_centernet

    if not (isinstance(conf, int | float) and 0 <= conf <= 1) or isinstance(conf, bool):
        raise ConfigError(f"conf must be in [0, 1], got {conf=}")
    if not (isinstance(iou, int | float) and 0 < iou <= 1) or isinstance(iou, bool):
        raise ConfigError(f"iou must be in (0, 1], got {iou=}")
    if isinstance(max_det, bool) or not isinstance(max_det, int) or max_det < 1:
        raise ConfigError(f"max_det must be an integer >= 1, got {max_det=}")
    start = time.perf_counter()
    originals, sources = _read_sources(source)
    batch = torch.stack([pipeline.fit(t) for t in originals])
    t_pre = time.perf_counter()
    _, h, w = pipeline.input_shape
    outputs: list[dict[str, Any]] = []
    t_inf = 0.0
    for i in range(0, len(batch), batch_size):
        t0 = time.perf_counter()
        raw = forward(batch[i : i + batch_size])
        t_inf += time.perf_counter() - t0
        maps = {k: torch.as_tensor(v).cpu() for k, v in raw.items()}
        outputs.extend(
            decode_centernet(maps, stride, (h, w), max_dets=max_det, score_threshold=conf, iou_threshold=iou)
        )
    t_post = time.perf_counter() - t_pre - t_inf
    n = len(originals)
    speed = {
        "preprocess": 1000 * (t_pre - start) / n,
        "inference": 1000 * t_inf / n,
        "postprocess": 1000 * t_post / n,
    }
    results = []
    for image, where, det in zip(originals, sources, outputs, strict=True):
        oh, ow = int(image.shape[1]), int(image.shape[2])
        scale = torch.tensor([ow / w, oh / h, ow / w, oh / h])
        boxes = det["boxes"].float().cpu() * scale
        data = torch.cat(
            (boxes, det["scores"].float().cpu()[:, None], det["labels"].float().cpu()[:, None]), 1
        )
        results.append(Results(_to_hwc_uint8(image), where, names, data, speed))
    return results


def _read_sources(source: Any) -> tuple[list[torch.Tensor], list[str]]:
    """Any supported source -> original images as float (C, H, W) in [0, 1], and their names."""

    items = list(source) if isinstance(source, list | tuple) else [source]
    expanded: list[Any] = []
    for item in items:
        if is_url(item):  # downloaded by as_images
            expanded.append(item)
        elif isinstance(item, str | Path):
            if not Path(item).exists():
                raise DataError(f"no image file or folder {item}")
            files = image_files([item])
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
        batch = as_images(item, i)
        for j, t in enumerate(batch):
            images.append(t)
            names.append(str(item) if isinstance(item, str | Path) else f"image{i}" + (f"_{j}" if j else ""))
    return images, names


def _to_hwc_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8 RGB (grey repeated, alpha dropped)."""
    import torch

    t = t[:3] if t.shape[0] >= 3 else t[:1].repeat(3, 1, 1)
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
