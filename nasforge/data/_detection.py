"""The :class:`DetectionTask` record every detection loader returns, and the loader lookup.

Boxes are ``xyxy`` in pixels of the stored (possibly resized) image, with pixel ``i`` covering
``[i, i + 1)``: a box tight around the pixels of columns 3..7 is ``x1 = 3, x2 = 8``. Images are
normalised like :class:`~nasforge.data.Task` images: ``(pixel / max - mean) / std`` per channel.

Not yet wired into the search loop or the CLI (see ``docs/detection.md``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.data._pipeline import normalize
from nasforge.data._task import ImageSplits, check_fraction
from nasforge.errors import ConfigError, DataError, UnknownComponentError
from nasforge.registry import check_options, suggest

if TYPE_CHECKING:  # torch is imported on first use, so that `import nasforge` stays light
    import torch

__all__ = ["DETECTION_DATASETS", "DetectionTask", "load_detection", "make_detection_task"]

_SPLITS = ("train", "val", "test")
_BOX_SLACK = 1e-3  # pixels; float rounding of normalised YOLO / COCO boxes must not fail a load


def _described(value: Any) -> str:
    """``float32 of shape (3, 4)`` for a tensor, else the type's name (for messages)."""
    import torch

    return (
        f"{value.dtype} of shape {tuple(value.shape)}"
        if isinstance(value, torch.Tensor)
        else type(value).__name__
    )


@dataclass(frozen=True, eq=False, repr=False)
class DetectionTask(ImageSplits):
    """An object-detection dataset split into train / val / test: images plus boxes and labels per image.

    Args:
        name: the dataset name (``"shapes-det"``).
        x_train: training images, float32 ``(N, C, H, W)``, normalised with ``mean`` / ``std``.
        boxes_train: one float32 ``(K, 4)`` tensor per training image, ``xyxy`` in pixels,
            ``0 <= x1 <= x2 <= W`` and ``0 <= y1 <= y2 <= H``; ``K`` may be 0.
        labels_train: one int64 ``(K,)`` tensor per training image, in ``[0, num_classes)``.
        x_val: validation images (may hold zero images).
        boxes_val: validation boxes.
        labels_val: validation labels.
        x_test: test images (may hold zero images).
        boxes_test: test boxes.
        labels_test: test labels.
        class_names: one name per class; label ``i`` means ``class_names[i]``.
        mean: per-channel mean subtracted from pixels in [0, 1].
        std: per-channel standard deviation the centred pixels were divided by.
        source: where the data came from (a directory, a file, or ``"generated"``).

    Raises:
        DataError: if shapes, dtypes, boxes, labels or the normalisation constants are inconsistent;
            the message names the split and the image.

    Example:
        >>> from nasforge.data import load_detection
        >>> task = load_detection("shapes-det", n_train=8, n_val=4, n_test=4, seed=0)
        >>> task.input_shape, task.class_names
        ((3, 64, 64), ('circle', 'square', 'triangle'))
        >>> x, boxes, labels = task.split("val")
        >>> boxes[0].shape[1], labels[0].dtype
        (4, torch.int64)
    """

    name: str
    x_train: torch.Tensor
    boxes_train: tuple[torch.Tensor, ...]
    labels_train: tuple[torch.Tensor, ...]
    x_val: torch.Tensor
    boxes_val: tuple[torch.Tensor, ...]
    labels_val: tuple[torch.Tensor, ...]
    x_test: torch.Tensor
    boxes_test: tuple[torch.Tensor, ...]
    labels_test: tuple[torch.Tensor, ...]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""

    def __post_init__(self) -> None:
        try:
            for split in _SPLITS:
                for field in ("boxes", "labels"):
                    key = f"{field}_{split}"
                    object.__setattr__(self, key, tuple(getattr(self, key)))
            self._freeze_names_and_stats()
        except (TypeError, ValueError):
            raise self._fail(
                "boxes_* and labels_* must be sequences of tensors, class_names a sequence of strings and "
                f"mean / std sequences of numbers, got class_names={self.class_names!r}, "
                f"mean={self.mean!r}, std={self.std!r}"
            ) from None
        self._validate()

    def _validate(self) -> None:
        import torch

        self._check_name()
        self._check_class_names()
        image_shape: tuple[int, ...] | None = None
        for split in _SPLITS:
            x = getattr(self, f"x_{split}")
            if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.dim() != 4:
                raise self._fail(
                    f"x_{split} must be a float32 tensor of shape (N, C, H, W), got {_described(x)}"
                )
            image_shape = self._check_images(split, x, image_shape)
            self._validate_targets(split, x.shape[0], int(x.shape[2]), int(x.shape[3]))
        if self.x_train.shape[0] == 0:
            raise self._fail("the training split is empty")
        self._check_normalisation()

    def _validate_targets(self, split: str, n: int, height: int, width: int) -> None:
        import torch

        boxes, labels = getattr(self, f"boxes_{split}"), getattr(self, f"labels_{split}")
        if len(boxes) != n or len(labels) != n:
            raise self._fail(
                f"x_{split} has {n:,} images but boxes_{split} has {len(boxes):,} entries and "
                f"labels_{split} {len(labels):,} (one per image, empty for an image without objects)"
            )
        for i, (b, y) in enumerate(zip(boxes, labels, strict=True)):
            where = f"{split} image {i}"
            if not isinstance(b, torch.Tensor) or b.dtype != torch.float32 or b.dim() != 2 or b.shape[1] != 4:
                raise self._fail(
                    f"{where}: boxes must be a float32 tensor of shape (K, 4), got {_described(b)}"
                )
            if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.dim() != 1:
                raise self._fail(
                    f"{where}: labels must be an int64 tensor of shape (K,), got {_described(y)}"
                )
            if y.shape[0] != b.shape[0]:
                raise self._fail(f"{where}: {b.shape[0]} boxes but {y.shape[0]} labels")
        if n == 0:
            return
        # The value checks run on all boxes of the split at once: per image they cost ~1 s for 8,000 images.
        all_boxes, all_labels = torch.cat(boxes), torch.cat(labels)
        counts = torch.tensor([len(y) for y in labels])
        owner = torch.repeat_interleave(torch.arange(n), counts)
        starts = torch.cumsum(counts, 0) - counts
        bad_label = (all_labels < 0) | (all_labels >= len(self.class_names))
        if bool(bad_label.any()):
            i = int(owner[int(torch.nonzero(bad_label)[0, 0])])
            y = labels[i]
            raise self._fail(
                f"{split} image {i}: labels {int(y.min())}..{int(y.max())}, but there are "
                f"{len(self.class_names)} classes (labels must be in 0..{len(self.class_names) - 1})"
            )
        limit = torch.tensor([width, height, width, height], dtype=torch.float32) + _BOX_SLACK
        bad = (
            ~torch.isfinite(all_boxes).all(dim=1)
            | (all_boxes < -_BOX_SLACK).any(dim=1)
            | (all_boxes > limit).any(dim=1)
            | (all_boxes[:, 2] < all_boxes[:, 0])
            | (all_boxes[:, 3] < all_boxes[:, 1])
        )
        if bool(bad.any()):
            first = int(torch.nonzero(bad)[0, 0])
            i = int(owner[first])
            k = first - int(starts[i])
            box = [round(float(v), 3) for v in boxes[i][k]]
            raise self._fail(
                f"{split} image {i}: box {k} = {box} is not xyxy inside the {width}x{height} image "
                f"(need 0 <= x1 <= x2 <= {width}, 0 <= y1 <= y2 <= {height})"
            )

    def split(self, name: str) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """Return ``(images, boxes, labels)`` of the split ``"train"``, ``"val"`` or ``"test"``.

        Raises:
            ValueError: if ``name`` is not a split name.
        """
        if name not in _SPLITS:
            raise ValueError(f"split must be one of {', '.join(_SPLITS)}, got {name!r}")
        return getattr(self, f"x_{name}"), getattr(self, f"boxes_{name}"), getattr(self, f"labels_{name}")

    def with_fraction(self, fraction: float, *, seed: int = 0) -> DetectionTask:
        """Return a DetectionTask whose training split is a seeded random ``fraction`` of this one's.

        Raises:
            ConfigError: if ``fraction`` is not in (0, 1].
        """
        return self._subset("train", "fraction", fraction, seed)

    def with_val_fraction(self, fraction: float, *, seed: int = 0) -> DetectionTask:
        """Return a DetectionTask whose validation split is a seeded random ``fraction`` of this
        one's (at least one image), e.g. to score search trials on fewer images.

        Raises:
            ConfigError: if ``fraction`` is not in (0, 1].
        """
        return self._subset("val", "val_fraction", fraction, seed)

    def _subset(self, split: str, what: str, fraction: float, seed: int) -> DetectionTask:
        check_fraction(what, fraction, allow_zero=False, allow_one=True)
        x = getattr(self, f"x_{split}")
        n = x.shape[0]
        if fraction == 1 or n == 0:
            return self
        keep = np.sort(np.random.default_rng(seed).permutation(n)[: max(1, round(fraction * n))])
        boxes, labels = getattr(self, f"boxes_{split}"), getattr(self, f"labels_{split}")
        changes = {
            f"x_{split}": x[keep],
            f"boxes_{split}": tuple(boxes[i] for i in keep),
            f"labels_{split}": tuple(labels[i] for i in keep),
        }
        return dataclasses.replace(self, **changes)

    def with_resolution(self, size: int | tuple[int, int]) -> DetectionTask:
        """Return a DetectionTask whose images (every split) are resized to ``size``, boxes scaled with them.

        Bilinear interpolation with antialiasing of the normalised images, as
        :meth:`Task.with_resolution <nasforge.data.Task.with_resolution>`; a lower resolution is a
        cheaper, lower-fidelity version of the task. The same size returns this DetectionTask.

        Args:
            size: ``height = width``, or ``(height, width)``, in pixels.

        Raises:
            ConfigError: if ``size`` is not a positive int or a pair of them.
        """
        hw = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
        if (
            not isinstance(hw, tuple)
            or len(hw) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in hw)
        ):
            raise ConfigError(f"resolution must be an int or (height, width) of ints >= 1, got {size!r}")
        _, h, w = self.input_shape
        if hw == (h, w):
            return self
        import torch

        scale = torch.tensor([hw[1] / w, hw[0] / h, hw[1] / w, hw[0] / h], dtype=torch.float32)
        limit = torch.tensor([hw[1], hw[0], hw[1], hw[0]], dtype=torch.float32)
        changes: dict[str, Any] = self._resized_images(hw)
        for split in _SPLITS:
            changes[f"boxes_{split}"] = tuple(
                torch.minimum(b * scale, limit) for b in getattr(self, f"boxes_{split}")
            )
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line: ``shapes-det: 512 train / 128 val / 128 test, 3x64x64, 3 classes, 1,904 boxes``."""
        c, h, w = self.input_shape
        n_boxes = sum(int(b.shape[0]) for s in _SPLITS for b in getattr(self, f"boxes_{s}"))
        return (
            f"{self.name}: {self.x_train.shape[0]:,} train / {self.x_val.shape[0]:,} val / "
            f"{self.x_test.shape[0]:,} test, {c}x{h}x{w}, {self.num_classes} classes, {n_boxes:,} boxes"
        )

    def __repr__(self) -> str:
        return f"DetectionTask({self.describe()!r}, source={self.source!r})"


Split = tuple[np.ndarray, Sequence[np.ndarray], Sequence[np.ndarray]]
"""One split before normalisation: float [0, 1] images ``(N, C, H, W)``, boxes ``(K, 4)``, labels ``(K,)``."""


def make_detection_task(
    name: str, splits: dict[str, Split], class_names: Sequence[str], source: str
) -> DetectionTask:
    """Normalise float [0, 1] images with the training split's per-channel statistics and build the Task.

    Args:
        name: the dataset name.
        splits: ``"train"``, ``"val"`` and ``"test"`` each mapped to ``(images, boxes, labels)`` as numpy
            arrays (images float in [0, 1], ``(N, C, H, W)``).
        class_names: one name per class.
        source: where the data came from.

    Returns:
        The validated DetectionTask.

    Raises:
        DataError: if the data is inconsistent (see :class:`DetectionTask`).
    """
    import torch

    x_train = splits["train"][0]
    if x_train.ndim != 4 or len(x_train) == 0:
        raise DataError(f"{name}: the training split is empty or not (N, C, H, W), got shape {x_train.shape}")
    mean = x_train.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x_train.std(axis=(0, 2, 3), dtype=np.float64)
    std[std == 0] = 1.0
    fields: dict[str, Any] = {}
    for split in _SPLITS:
        x, boxes, labels = splits[split]
        if len(x) == 0:
            fields[f"x_{split}"] = torch.zeros((0, *x_train.shape[1:]), dtype=torch.float32)
        else:
            pixels = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            fields[f"x_{split}"] = normalize(pixels, mean.tolist(), std.tolist()).contiguous()
        fields[f"boxes_{split}"] = tuple(
            torch.from_numpy(np.asarray(b, np.float32).reshape(-1, 4).copy()) for b in boxes
        )
        fields[f"labels_{split}"] = tuple(
            torch.from_numpy(np.asarray(y, np.int64).reshape(-1).copy()) for y in labels
        )
    return DetectionTask(
        name=name,
        class_names=tuple(class_names),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        source=source,
        **fields,
    )


DETECTION_DATASETS: dict[str, str] = {
    "shapes-det": "nasforge.data._det_synth:load_shapes_det",
    "mnist-det": "nasforge.data._det_synth:load_mnist_det",
    "fashion-det": "nasforge.data._det_synth:load_fashion_det",
    "yolo": "nasforge.data._det_own:load_yolo_folder",
    "coco": "nasforge.data._det_own:load_coco_json",
}
"""Detection dataset names mapped to their loaders, imported on first use.

Kept apart from :data:`nasforge.registry.DATASETS` until detection is wired into the experiment:
everything resolved there is expected to return a classification :class:`~nasforge.data.Task`.
"""


def load_detection(name: str, root: str | Path | None = None, **options: Any) -> DetectionTask:
    """Load the detection dataset registered as ``name`` (see :data:`DETECTION_DATASETS`).

    Args:
        name: ``"shapes-det"``, ``"mnist-det"``, ``"fashion-det"``, ``"yolo"`` or ``"coco"``.
        root: the data location: the IDX directory for ``mnist-det`` / ``fashion-det`` (else
            ``$NASFORGE_DATA_DIR``), the folder for ``yolo``, the JSON file for ``coco``; ignored by
            ``shapes-det``.
        **options: keyword arguments of that loader (``seed``, ``n_train``, ``size``, ...).

    Returns:
        The DetectionTask.

    Raises:
        UnknownComponentError: if ``name`` is not a detection dataset.
        ConfigError: if an option is unknown or out of range, or a label file is malformed.
        DataError: if the data is missing or inconsistent.
    """
    target = DETECTION_DATASETS.get(name) if isinstance(name, str) else None
    if target is None:
        valid = sorted(DETECTION_DATASETS)
        hint = suggest(name, valid) if isinstance(name, str) else ""
        raise UnknownComponentError(
            f"unknown detection dataset {name!r}.{hint} Valid detection datasets: {', '.join(valid)}."
        )
    module, _, attr = target.partition(":")
    loader: Callable[..., DetectionTask] = getattr(importlib.import_module(module), attr)
    check_options("detection dataset", name, loader, options)
    return loader(root, **options)
