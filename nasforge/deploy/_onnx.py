"""Running an exported detector: ``OnnxDetector("det.onnx")(images)`` gives the same Results as PyTorch.

The file :func:`nasforge.deploy.export` writes for a detector holds the fused network's output
maps (see :mod:`nasforge.hardware._export_det`) and, in its metadata, what decoding needs: class
names, input size, stride. :class:`OnnxDetector` reads them with ONNX Runtime (no PyTorch module,
no code from the file), runs the graph and decodes in Python with the PyTorch detector's own code
(:func:`~nasforge.estimate._detector.detect_images`), so both give the same :class:`Results`
objects. Classification ONNX files are not loaded here: ``nasforge.load`` reads ``.nasforge`` files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.data._pipeline import ImagePipeline
from nasforge.errors import CheckpointError

if TYPE_CHECKING:
    import torch

    from nasforge.detect import Results

__all__ = ["OnnxDetector"]


class OnnxDetector:
    """An exported detector ONNX file (fp32 or INT8), callable like :class:`~nasforge.deploy.Detector`.

    Args:
        path: a file written by ``nasforge export DET.nasforge`` / :func:`nasforge.deploy.export`.
        threads: ONNX Runtime intra-op threads (None: its default, every core).

    Attributes:
        path: the file.
        class_names, input_shape, stride: from the file's metadata.
        names: class names by id.

    Raises:
        CheckpointError: a missing file, one ONNX Runtime cannot load, or an ONNX file that is not
            a nasforge detector export (a classifier, or no nasforge metadata).

    Example:
        >>> det = OnnxDetector("det.onnx")  # doctest: +SKIP
        >>> det("img.png", conf=0.3)[0].boxes.xyxy  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(
                f"no ONNX file {str(path)!r}; export one with: nasforge export DET.nasforge"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise CheckpointError(f"{path} is not an ONNX model ONNX Runtime can load: {exc}") from None
        meta = self._session.get_modelmeta().custom_metadata_map
        task = meta.get("nasforge.task")
        if task != "detection":
            what = (
                "a classifier export" if task or "nasforge.class_names" in meta else "not a nasforge export"
            )
            raise CheckpointError(
                f"{path} is {what} (metadata nasforge.task={task!r}); OnnxDetector runs detector "
                "exports (nasforge export DET.nasforge --format onnx|int8)"
            )
        try:
            self.class_names = tuple(str(n) for n in json.loads(meta["nasforge.class_names"]))
            c, h, w = (int(v) for v in json.loads(meta["nasforge.input_shape"]))
            self.input_shape = (c, h, w)
            self.stride = int(meta["nasforge.stride"])
            self._outputs = list(json.loads(meta["nasforge.outputs"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"{path} has incomplete nasforge metadata ({exc}); export it again"
            ) from None
        # the graph normalises: the pipeline only converts channels and resizes
        self._pipeline = ImagePipeline(self.input_shape, (0.0,) * c, (1.0,) * c)

    @property
    def names(self) -> dict[int, str]:
        """Class names by id."""
        return dict(enumerate(self.class_names))

    def maps(self, pixels: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
        """The raw output maps (``heatmap`` logits, ``size``, ``offset``) of pixels ``(N, C, H, W)``
        in [0, 1]."""
        x = np.ascontiguousarray(np.asarray(pixels, dtype=np.float32))
        got = self._session.run(self._outputs, {"pixels": x})
        return dict(zip(self._outputs, got, strict=True))

    def __call__(
        self,
        source: Any,
        *,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        batch_size: int = 32,
    ) -> list[Results]:
        """Detect objects; one :class:`~nasforge.detect.Results` per image (see
        :meth:`Detector.__call__ <nasforge.deploy.Detector.__call__>`: the same sources and options)."""
        from nasforge.estimate._detector import detect_images

        return detect_images(
            self.maps,
            self._pipeline,
            self.names,
            self.stride,
            source,
            conf=conf,
            iou=iou,
            max_det=max_det,
            batch_size=batch_size,
        )

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return (
            f"OnnxDetector({self.path}; {c}x{h}x{w} -> {len(self.class_names)} classes, stride {self.stride})"
        )
