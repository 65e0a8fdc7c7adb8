"""The :class:`Task` record every dataset loader returns, and the seeded stratified split they share."""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from nasforge.data._pipeline import ImagePipeline, resize
from nasforge.errors import ConfigError, DataError

if TYPE_CHECKING:  # torch is imported on first use, so that `import nasforge` stays light
    import torch

__all__ = ["Task", "stratified_split"]

_SPLITS = ("train", "val", "test")
_Splits = TypeVar("_Splits", bound="ImageSplits")


class ImageSplits:
    """What :class:`Task` and :class:`~nasforge.data.DetectionTask` share: train / val / test images
    ``x_<split>``, normalised with ``mean`` / ``std``, and the ``class_names`` of their labels.

    The checks here keep the messages of both records alike: they name the record's type and name.
    """

    name: str
    x_train: torch.Tensor
    x_val: torch.Tensor
    x_test: torch.Tensor
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def _fail(self, problem: str) -> DataError:
        return DataError(f"{type(self).__name__} '{self.name}': {problem}")

    def _freeze_names_and_stats(self) -> None:
        """Tuples, so a record built from lists stays immutable (TypeError / ValueError if not sequences)."""
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    def _check_name(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DataError(f"{type(self).__name__} name must be a non-empty string, got {self.name!r}")

    def _check_class_names(self) -> None:
        if not self.class_names or not all(isinstance(c, str) for c in self.class_names):
            raise self._fail(f"class_names must be a non-empty tuple of strings, got {self.class_names!r}")

    def _check_images(self, split: str, x: Any, image_shape: tuple[int, ...] | None) -> tuple[int, ...]:
        """Raise unless ``x`` has the shape of the earlier splits' images; return that shape."""
        if image_shape is not None and tuple(x.shape[1:]) != image_shape:
            raise self._fail(
                f"x_{split} images have shape {tuple(x.shape[1:])}, but x_train images have {image_shape}"
            )
        return tuple(x.shape[1:])

    def _check_normalisation(self) -> None:
        channels = self.x_train.shape[1]
        if len(self.mean) != channels or len(self.std) != channels:
            raise self._fail(
                f"mean and std need one value per channel ({channels}), got mean={self.mean} std={self.std}"
            )
        if not all(math.isfinite(m) for m in self.mean) or not all(
            math.isfinite(s) and s > 0 for s in self.std
        ):
            raise self._fail(
                f"mean must be finite and std finite and > 0, got mean={self.mean} std={self.std}"
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image, ``(C, H, W)``."""
        _, c, h, w = self.x_train.shape
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        """The number of classes (``len(class_names)``)."""
        return len(self.class_names)

    @property
    def pipeline(self) -> ImagePipeline:
        """The preprocessing these images went through (input shape, mean, std): a model trained
        on them applies the same to every image it is called on."""
        return ImagePipeline(self.input_shape, self.mean, self.std)

    def calibration_images(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` seeded random training images (all if fewer) as pixels in [0, 1]: what INT8
        quantization is calibrated on (:meth:`ImagePipeline.denormalize` of the stored images)."""
        import torch

        order = torch.randperm(len(self.x_train), generator=torch.Generator().manual_seed(seed))
        return self.pipeline.denormalize(self.x_train[order[:n]])

    def with_class_names(self: _Splits, names: Sequence[str]) -> _Splits:
        """Return this record (a Task or a DetectionTask) with its classes named ``names`` (label
        ``i`` is ``names[i]``).

        For data whose files carry no names (an ``.npz`` without ``class_names``): the names go
        into the trained model and its predictions.

        Raises:
            ConfigError: if there is not exactly one non-empty, distinct name per class.
        """
        names = [str(n).strip() for n in names]
        n = self.num_classes
        if len(names) != n:
            raise ConfigError(
                f"class names: got {len(names)} ({', '.join(names)[:80]}) for the {n} classes of "
                f"{self.name}; give one name per class, in label order (0..{n - 1})"
            )
        if not all(names):
            raise ConfigError(f"class names must not be empty, got {names!r}")
        repeated = sorted({x for x in names if names.count(x) > 1})
        if repeated:
            raise ConfigError(f"class names must differ, got {', '.join(repeated)} more than once")
        return dataclasses.replace(self, class_names=tuple(names))  # type: ignore[type-var]

    def _resized_images(self, size: tuple[int, int]) -> dict[str, Any]:
        """Every split's images resized to ``size`` (:func:`~nasforge.data._pipeline.resize`)."""
        return {f"x_{split}": resize(getattr(self, f"x_{split}"), size) for split in _SPLITS}


@dataclass(frozen=True, eq=False, repr=False)
class Task(ImageSplits):
    """An image-classification dataset, split into train / val / test tensors ready for training.

    Images are float32 of shape ``(N, C, H, W)``, already normalised per channel with ``mean`` and
    ``std`` (raw pixels scaled to [0, 1] first); labels are int64 in ``[0, num_classes)``. Export and
    inference apply the same preprocessing: :attr:`pipeline`.

    Args:
        name: the dataset name (``"digits"``, ``"fashion-mnist"``).
        x_train: training images, float32 ``(N, C, H, W)``.
        y_train: training labels, int64 ``(N,)``.
        x_val: validation images (may hold zero images).
        y_val: validation labels.
        x_test: test images (may hold zero images).
        y_test: test labels.
        class_names: one name per class; label ``i`` means ``class_names[i]``.
        mean: per-channel mean subtracted from pixels in [0, 1].
        std: per-channel standard deviation the centred pixels were divided by.
        source: where the data came from (a directory, or a package name).

    Raises:
        DataError: if shapes, dtypes, labels or the normalisation constants are inconsistent.

    Example:
        >>> from nasforge.data import load
        >>> task = load("digits")
        >>> task.input_shape, task.num_classes
        ((1, 8, 8), 10)
        >>> task.with_fraction(0.1, seed=1).describe()
        'digits: 108 train / 360 val / 360 test, 1x8x8, 10 classes'
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""

    def __post_init__(self) -> None:
        try:
            self._freeze_names_and_stats()
        except (TypeError, ValueError):
            raise self._fail(
                f"class_names must be a sequence of strings and mean / std sequences of numbers, got "
                f"class_names={self.class_names!r}, mean={self.mean!r}, std={self.std!r}"
            ) from None
        self._validate()

    def _validate(self) -> None:
        import torch

        self._check_name()
        image_shape: tuple[int, ...] | None = None
        for split in _SPLITS:
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
                raise self._fail(
                    f"x_{split} and y_{split} must be torch.Tensor, got "
                    f"{type(x).__name__} and {type(y).__name__}"
                )
            if x.dtype != torch.float32 or x.dim() != 4:
                raise self._fail(
                    f"x_{split} must be float32 of shape (N, C, H, W), got {x.dtype} of shape "
                    f"{tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.dim() != 1:
                raise self._fail(
                    f"y_{split} must be int64 of shape (N,), got {y.dtype} of shape {tuple(y.shape)}"
                )
            if x.shape[0] != y.shape[0]:
                raise self._fail(
                    f"x_{split} has {x.shape[0]:,} images but y_{split} has {y.shape[0]:,} labels"
                )
            image_shape = self._check_images(split, x, image_shape)
        if self.x_train.shape[0] == 0:
            raise self._fail("the training split is empty")
        self._check_class_names()
        for split in _SPLITS:
            y = getattr(self, f"y_{split}")
            if y.numel() == 0:
                continue
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= len(self.class_names):
                raise self._fail(
                    f"y_{split} holds labels {low}..{high}, but there are {len(self.class_names)} "
                    f"class names (labels must be in 0..{len(self.class_names) - 1})"
                )
        self._check_normalisation()

    def with_fraction(self, fraction: float, *, seed: int = 0) -> Task:
        """Return a Task whose training split is a stratified random ``fraction`` of this one's.

        Each class keeps about ``fraction`` of its training examples, and at least one. The
        validation and test splits, class names and normalisation are unchanged.

        Args:
            fraction: the share of training examples to keep, in (0, 1]; 1 returns this Task.
            seed: seeds the subset choice (``numpy.random.default_rng``).

        Returns:
            The smaller Task.

        Raises:
            ConfigError: if ``fraction`` is not in (0, 1].
        """
        return self._subset("train", "fraction", fraction, seed)

    def with_val_fraction(self, fraction: float, *, seed: int = 0) -> Task:
        """Return a Task whose validation split is a stratified random ``fraction`` of this one's.

        Each class keeps about ``fraction`` of its validation examples, and at least one: search
        trials scored on it are compared on the same, smaller split.

        Raises:
            ConfigError: if ``fraction`` is not in (0, 1].
        """
        return self._subset("val", "val_fraction", fraction, seed)

    def _subset(self, split: str, what: str, fraction: float, seed: int) -> Task:
        check_fraction(what, fraction, allow_zero=False, allow_one=True)
        if fraction == 1:
            return self
        import torch

        x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
        index = torch.from_numpy(subset_indices(y.numpy(), fraction, seed))
        return dataclasses.replace(self, **{f"x_{split}": x[index], f"y_{split}": y[index]})

    def with_resolution(self, size: int) -> Task:
        """Return a Task whose images (every split) are resized to ``size`` x ``size``.

        Bilinear interpolation with antialiasing of the normalised images (the pipeline's
        :func:`~nasforge.data._pipeline.resize`, which inference uses too); a lower resolution is a
        cheaper, lower-fidelity version of the task. The same size returns this Task.

        Raises:
            ConfigError: if ``size`` is not an integer >= 1.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"resolution must be an integer >= 1 (pixels per side), got {size!r}")
        _, h, w = self.input_shape
        if (h, w) == (size, size):
            return self
        return dataclasses.replace(self, **self._resized_images((size, size)))

    def to(self, device: Any) -> Task:
        """Return a Task whose tensors (every split) are on ``device``; this Task if they are there.

        Training moves its task to the device once and keeps it there (the datasets nasforge trains
        on fit in a GPU's memory). Subsets and resizing (:meth:`with_fraction`,
        :meth:`with_resolution`) are made on the CPU copy first.
        """
        import torch

        device = torch.device(device)
        if self.x_train.device == device:
            return self
        moved = copy.copy(self)  # the same validated data: no second validation (it reads labels back)
        for split in _SPLITS:
            for kind in ("x", "y"):
                name = f"{kind}_{split}"
                object.__setattr__(moved, name, getattr(self, name).to(device))
        return moved

    def describe(self) -> str:
        """One line: ``digits: 1,077 train / 360 val / 360 test, 1x8x8, 10 classes``."""
        c, h, w = self.input_shape
        return (
            f"{self.name}: {len(self.y_train):,} train / {len(self.y_val):,} val / "
            f"{len(self.y_test):,} test, {c}x{h}x{w}, {self.num_classes} classes"
        )

    def __repr__(self) -> str:
        return f"Task({self.describe()!r}, source={self.source!r})"


def check_fraction(what: str, value: float, *, allow_zero: bool, allow_one: bool) -> None:
    """Raise ConfigError unless ``value`` is a number in the interval ``what`` allows.

    Args:
        what: the argument's name, for the message.
        value: the value to check.
        allow_zero: whether 0 is allowed.
        allow_one: whether 1 is allowed.

    Raises:
        ConfigError: naming the argument, the value received and the allowed interval.
    """
    interval = f"{'[' if allow_zero else '('}0, 1{']' if allow_one else ')'}"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0) and (value <= 1 if allow_one else value < 1)
    if not ok:
        raise ConfigError(f"{what} must be a number in {interval}, got {what}={value!r}")


def subset_indices(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The sorted indices of a stratified random ``fraction`` of ``y``, at least one per class.

    This is what :meth:`Task.with_fraction` keeps; loaders call it before converting images, so a
    small fraction does not pay for normalising the whole training split.

    Args:
        y: class labels, one-dimensional.
        fraction: the share to keep, in (0, 1].
        seed: seeds ``numpy.random.default_rng``.

    Returns:
        Sorted int64 indices into ``y``.

    Raises:
        ConfigError: if ``fraction`` is not in (0, 1].
    """
    check_fraction("fraction", fraction, allow_zero=False, allow_one=True)
    if fraction == 1:
        return np.arange(len(y), dtype=np.int64)
    rest, keep = stratified_split(y, (1.0 - fraction, fraction), seed)
    missing = np.setdiff1d(np.unique(y), y[keep])
    if missing.size:
        # Tiny fractions round some classes to zero; keep one random example of each of them.
        rng = np.random.default_rng(seed)
        extra = [rng.choice(rest[y[rest] == c]) for c in missing]
        keep = np.sort(np.concatenate([keep, np.asarray(extra, dtype=keep.dtype)]))
    return keep


def stratified_split(y: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split example indices into parts of the given fractions, each class split proportionally.

    Parts after the first get ``ceil(fraction * len(y))`` examples and the first gets the rest
    (like scikit-learn's ``train_test_split``: 1,797 digits at (0.6, 0.2, 0.2) give 1,077 / 360 / 360).
    Each part's examples are shared out among the classes in proportion to the class sizes (largest
    remainder), and which examples of a class go where is random.

    Args:
        y: class labels, one-dimensional.
        fractions: the share of each part; non-negative, summing to 1.
        seed: seeds ``numpy.random.default_rng``; the same seed gives the same split.

    Returns:
        One sorted int64 index array per part; together they hold every index once.

    Raises:
        ConfigError: if ``fractions`` is empty, negative or does not sum to 1.
        DataError: if ``y`` is not one-dimensional.

    Example:
        >>> import numpy as np
        >>> train, val = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), (0.5, 0.5), seed=0)
        >>> len(train), len(val)
        (4, 4)
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"labels must be one-dimensional, got shape {y.shape}")
    shares = np.asarray(fractions, dtype=np.float64)
    if shares.ndim != 1 or shares.size == 0 or not np.all(np.isfinite(shares)) or np.any(shares < 0):
        raise ConfigError(f"fractions must be one or more non-negative numbers, got {fractions!r}")
    if abs(float(shares.sum()) - 1.0) > 1e-6:
        raise ConfigError(f"fractions must sum to 1, got {fractions!r} (sum {float(shares.sum()):g})")

    sizes = _part_sizes(len(y), shares)
    if len(y) == 0:
        return [np.zeros(0, np.int64) for _ in sizes]
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    per_class = np.zeros((len(classes), len(sizes)), dtype=np.int64)
    remaining = counts.astype(np.int64)
    for part in range(1, len(sizes)):
        per_class[:, part] = _apportion(remaining, sizes[part])
        remaining = remaining - per_class[:, part]
    per_class[:, 0] = remaining

    rng = np.random.default_rng(seed)
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    pieces: list[list[np.ndarray]] = [[] for _ in sizes]
    for c, members in enumerate(by_class):
        shuffled = rng.permutation(members)
        for part, piece in enumerate(np.split(shuffled, np.cumsum(per_class[c])[:-1])):
            pieces[part].append(piece)
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in pieces]


def _part_sizes(n: int, shares: np.ndarray) -> list[int]:
    # The tolerance keeps 0.1 * 60000 = 6000.000000000001 from becoming 6001.
    sizes = [0] + [math.ceil(float(s) * n - 1e-9) for s in shares[1:]]
    excess = max(0, sum(sizes) - n)  # only possible for tiny n: then shrink the last parts
    for part in range(len(sizes) - 1, 0, -1):
        cut = min(excess, sizes[part])
        sizes[part] -= cut
        excess -= cut
    sizes[0] = n - sum(sizes)
    return sizes


def _apportion(counts: np.ndarray, total: int) -> np.ndarray:
    """Share ``total`` among classes in proportion to ``counts`` (largest remainder, exact integers)."""
    pool = int(counts.sum())
    if pool == 0 or total == 0:
        return np.zeros_like(counts)
    quota, remainder = np.divmod(counts * total, pool)
    leftover = total - int(quota.sum())
    # A positive remainder means quota < exact share <= count, so quota + 1 never exceeds the class size.
    quota[np.argsort(-remainder, kind="stable")[:leftover]] += 1
    return quota
