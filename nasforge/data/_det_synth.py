"""Built-in detection data, generated on the fly and seeded: ``shapes-det``, ``mnist-det``, ``fashion-det``.

**shapes-det** needs no files: filled circles, squares and triangles of random sizes and colours on a
noisy or gradient background (3 channels). **mnist-det** / **fashion-det** paste 1 to ``max_objects``
MNIST digits / Fashion-MNIST items, each cropped to its ink and resized so its longer side is
``min_size..max_size`` pixels, onto a black canvas. Test canvases use only the source's ``t10k``
images; training and validation canvases use disjoint parts of its training images.

Objects never overlap (they are placed with a one-pixel gap), so every box is tight around the
object's visible pixels. The same seed gives the same data, and each split has its own random
stream, so changing ``n_train`` leaves the validation and test canvases unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nasforge.data._detection import DetectionTask, Split, make_detection_task
from nasforge.data._idx import FASHION_MNIST, MNIST, IdxDataset, read_arrays
from nasforge.errors import ConfigError, DataError

# Pillow is imported where a digit is resized, so that `import nasforge` stays light.

__all__ = ["SHAPE_CLASSES", "load_fashion_det", "load_mnist_det", "load_shapes_det"]

SHAPE_CLASSES = ("circle", "square", "triangle")
_PLACEMENT_TRIES = 30
# A patch renderer: (rng) -> (class id, mask (h, w) bool, intensity (h, w) or None for a flat colour)
Patch = Callable[[np.random.Generator], tuple[int, np.ndarray, np.ndarray | None]]


def _check_int(what: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"{what} must be an integer >= {low}, got {what}={value!r}")
    return int(value)


def _check_sizes(size: int, min_size: int, max_size: int, max_objects: int) -> None:
    _check_int("size", size, 8)
    _check_int("min_size", min_size, 2)
    _check_int("max_size", max_size, 2)
    _check_int("max_objects", max_objects, 1)
    if min_size > max_size or max_size > size - 2:
        raise ConfigError(
            f"object sizes must satisfy min_size <= max_size <= size - 2, got min_size={min_size}, "
            f"max_size={max_size}, size={size}"
        )


def _check_counts(n_train: int, n_val: int, n_test: int) -> list[int]:
    """The image counts of the three splits, checked (at least one training image)."""
    return [
        _check_int(k, v, low)
        for k, v, low in (("n_train", n_train, 1), ("n_val", n_val, 0), ("n_test", n_test, 0))
    ]


def _split_rngs(seed: int | np.random.Generator) -> list[np.random.Generator]:
    """One independent generator per split (train, val, test), derived from ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer | np.random.Generator):
        raise ConfigError(f"seed must be an int or a numpy.random.Generator, got seed={seed!r}")
    parent = np.random.default_rng(seed)
    return [np.random.default_rng(int(s)) for s in parent.integers(0, 2**63 - 1, size=3)]


def _compose(
    rng: np.random.Generator,
    n: int,
    size: int,
    channels: int,
    max_objects: int,
    patch: Patch,
    background: Callable[[np.random.Generator], np.ndarray],
) -> Split:
    """Draw ``n`` canvases with 1..max_objects non-overlapping patches each; boxes tight to the masks."""
    images = np.empty((n, channels, size, size), np.float32)
    all_boxes, all_labels = [], []
    for i in range(n):
        canvas = background(rng)
        taken = np.zeros((size, size), bool)  # occupied pixels, grown by one so objects never touch
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            cls, mask, intensity = patch(rng)
            h, w = mask.shape
            for _ in range(_PLACEMENT_TRIES):
                y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
                if not taken[y : y + h, x : x + w].any():
                    break
            else:
                continue  # no room left on this canvas: it gets fewer objects
            taken[max(0, y - 1) : y + h + 1, max(0, x - 1) : x + w + 1] = True
            region = canvas[:, y : y + h, x : x + w]
            if intensity is None:  # a flat random colour with a little texture
                colour = rng.uniform(0.55, 1.0, (channels, 1, 1))
                texture = rng.normal(0.0, 0.03, (channels, h, w))
                region[:, mask] = np.clip(colour + texture, 0, 1)[:, mask]
            else:
                region[:, mask] = np.maximum(region[:, mask], intensity[:, mask])
            rows, cols = np.nonzero(mask)
            boxes.append([x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1])
            labels.append(cls)
        images[i] = canvas
        all_boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        all_labels.append(np.asarray(labels, np.int64))
    return images, all_boxes, all_labels


# --------------------------------------------------------------------------------------- shapes-det


def _shape_mask(cls: int, s: int) -> np.ndarray:
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5  # pixel centres
    c = s / 2
    if cls == 0:
        return (yy - c) ** 2 + (xx - c) ** 2 <= c * c
    if cls == 1:
        return np.ones((s, s), bool)
    return np.abs(xx - c) <= yy / 2  # apex at the top centre, base the full bottom row


def _shapes_background(size: int) -> Callable[[np.random.Generator], np.ndarray]:
    def draw(rng: np.random.Generator) -> np.ndarray:
        if rng.random() < 0.5:  # noise around a dark base colour
            base = rng.uniform(0.0, 0.35, (3, 1, 1))
            canvas = base + rng.normal(0.0, 0.05, (3, size, size))
        else:  # a linear gradient between two dark colours, in a random direction
            a, b = rng.uniform(0.0, 0.4, (2, 3, 1, 1))
            angle = rng.uniform(0, 2 * np.pi)
            yy, xx = np.mgrid[0:size, 0:size] / max(1, size - 1)
            t = (np.cos(angle) * xx + np.sin(angle) * yy)[None]
            t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
            canvas = a + (b - a) * t
        return np.clip(canvas, 0, 1).astype(np.float32)

    return draw


def load_shapes_det(
    root: str | Path | None = None,
    *,
    n_train: int = 512,
    n_val: int = 128,
    n_test: int = 128,
    size: int = 64,
    max_objects: int = 4,
    min_size: int = 8,
    max_size: int = 24,
    seed: int | np.random.Generator = 0,
) -> DetectionTask:
    """Generate ``shapes-det``: circles, squares and triangles on noisy or gradient backgrounds.

    Args:
        root: ignored (the data is generated); accepted so every detection loader has one signature.
        n_train: training images.
        n_val: validation images.
        n_test: test images.
        size: canvas side in pixels (RGB ``size`` x ``size``).
        max_objects: each image holds 1..max_objects shapes (fewer if they do not fit).
        min_size: smallest shape side in pixels.
        max_size: largest shape side in pixels.
        seed: an int or a ``numpy.random.Generator``.

    Returns:
        The DetectionTask; classes ``circle``, ``square``, ``triangle``.

    Raises:
        ConfigError: if a size or count is out of range.

    Example:
        >>> load_shapes_det(n_train=16, n_val=4, n_test=4).describe()  # doctest: +ELLIPSIS
        'shapes-det: 16 train / 4 val / 4 test, 3x64x64, 3 classes, ... boxes'
    """
    _check_sizes(size, min_size, max_size, max_objects)
    counts = _check_counts(n_train, n_val, n_test)

    def patch(rng: np.random.Generator) -> tuple[int, np.ndarray, None]:
        cls = int(rng.integers(0, len(SHAPE_CLASSES)))
        return cls, _shape_mask(cls, int(rng.integers(min_size, max_size + 1))), None

    background = _shapes_background(size)
    splits = {
        split: _compose(rng, n, size, 3, max_objects, patch, background)
        for split, n, rng in zip(("train", "val", "test"), counts, _split_rngs(seed), strict=True)
    }
    return make_detection_task("shapes-det", splits, SHAPE_CLASSES, "generated")


# -------------------------------------------------------------------------------- mnist / fashion-det


def _pasted_patch(
    images: np.ndarray, labels: np.ndarray, pool: np.ndarray, min_size: int, max_size: int
) -> Patch:
    from PIL import Image

    def patch(rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray]:
        for _ in range(_PLACEMENT_TRIES):
            index = int(pool[rng.integers(0, len(pool))])
            image = images[index]
            rows, cols = np.nonzero(image)
            if rows.size:
                break
        else:
            raise DataError("the source images are blank: no pixel above 0 in any image drawn")
        crop = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        side = int(rng.integers(min_size, max_size + 1))
        scale = side / max(crop.shape)
        h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
        resized = np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BILINEAR))
        mask = resized > 0
        if not mask.any():  # a faint speck shrunk to nothing: keep its brightest pixel
            mask = resized == resized.max()
        return int(labels[index]), mask, (resized.astype(np.float32) / 255.0)[None]

    return patch


def _pasted_loader(spec: IdxDataset, name: str, doc: str) -> Callable[..., DetectionTask]:
    """The loader of ``name``: ``spec``'s images pasted onto black canvases (one body for every source)."""

    def load(
        root: str | Path | None = None,
        *,
        n_train: int = 6000,
        n_val: int = 1000,
        n_test: int = 1000,
        size: int = 64,
        max_objects: int = 4,
        min_size: int = 12,
        max_size: int = 32,
        val_fraction: float = 0.1,
        seed: int | np.random.Generator = 0,
        download: bool = False,
    ) -> DetectionTask:
        _check_sizes(size, min_size, max_size, max_objects)
        counts = _check_counts(n_train, n_val, n_test)
        if not isinstance(val_fraction, float | int) or not 0 < val_fraction < 1:
            raise ConfigError(f"val_fraction must be a number in (0, 1), got val_fraction={val_fraction!r}")
        rngs = _split_rngs(seed)
        directory, (train_images, train_labels, test_images, test_labels) = read_arrays(spec, root, download)
        # Validation canvases draw from source images that training canvases never use.
        order = np.random.default_rng(rngs[1].integers(0, 2**63 - 1)).permutation(len(train_images))
        n_val_pool = max(1, round(val_fraction * len(order)))
        pools = [
            (train_images, train_labels, np.sort(order[n_val_pool:])),
            (train_images, train_labels, np.sort(order[:n_val_pool])),
            (test_images, test_labels, np.arange(len(test_images))),
        ]

        def blank(rng: np.random.Generator) -> np.ndarray:
            return np.zeros((1, size, size), np.float32)

        splits = {
            split: _compose(rng, n, size, 1, max_objects, _pasted_patch(*pool, min_size, max_size), blank)
            for split, n, rng, pool in zip(("train", "val", "test"), counts, rngs, pools, strict=True)
        }
        return make_detection_task(name, splits, spec.class_names, str(directory))

    load.__name__ = load.__qualname__ = "load_" + name.replace("-", "_")
    load.__doc__ = doc
    return load


load_mnist_det = _pasted_loader(
    MNIST,
    "mnist-det",
    """Generate ``mnist-det``: 1..max_objects MNIST digits pasted onto black ``size`` x ``size`` canvases.

    Args:
        root: the directory holding MNIST's IDX files (as for :func:`~nasforge.data.load`
            ``("mnist")``); if None, ``$NASFORGE_DATA_DIR/mnist`` or ``$NASFORGE_DATA_DIR``.
        n_train: training canvases (from the training images outside the validation pool).
        n_val: validation canvases (from the validation pool of the training images).
        n_test: test canvases (from the ``t10k`` images only).
        size: canvas side in pixels.
        max_objects: each canvas holds 1..max_objects digits (fewer if they do not fit).
        min_size: smallest longer side of a pasted digit, in pixels.
        max_size: largest longer side of a pasted digit, in pixels.
        val_fraction: share of the 60,000 training images reserved for validation canvases.
        seed: an int or a ``numpy.random.Generator``.
        download: fetch missing IDX files (checksums verified) instead of failing.

    Returns:
        The DetectionTask; classes ``"0"`` .. ``"9"``; boxes tight to each digit's nonzero pixels.

    Raises:
        ConfigError: if a size, count or fraction is out of range.
        DataError: if the IDX files are missing or corrupt.
    """,
)

load_fashion_det = _pasted_loader(
    FASHION_MNIST,
    "fashion-det",
    """Generate ``fashion-det``: Fashion-MNIST items pasted like :func:`load_mnist_det` pastes digits.

    Same arguments as :func:`load_mnist_det`; ``root`` holds Fashion-MNIST's IDX files. Class names
    are Fashion-MNIST's (``"T-shirt/top"`` .. ``"Ankle boot"``).
    """,
)
