"""Your own detection data: a YOLO-format folder or a COCO-JSON file, read into a :class:`DetectionTask`.

**YOLO folder** (``load_detection("yolo", root=DIR)``)::

    DIR/data.yaml            names: [cat, dog] (or {0: cat, 1: dog}); or DIR/classes.txt, one name a line
    DIR/images/<name>.png    and DIR/labels/<name>.txt, one object a line: ``cls cx cy w h``
                             (box centre and size divided by the image width / height)

or with split sub-folders ``images/train``, ``images/val`` (or ``valid``), ``images/test`` and the
same under ``labels/``. An image without a label file has no objects. Missing splits are drawn
from the training images (seeded).

**COCO JSON** (``load_detection("coco", root=FILE)``): ``images`` (``id``, ``file_name``, optional
``width`` / ``height``), ``annotations`` (``image_id``, ``category_id``, ``bbox = [x, y, w, h]`` in
pixels) and ``categories`` (``id``, ``name``); images are looked up relative to ``images_dir``
(default: the JSON file's folder). Categories become labels ``0..C-1`` in order of their ids.
``iscrowd`` annotations are skipped. The file is split into train / val / test (seeded).

Images are converted to grey when every image is grey, else to RGB (``channels=`` forces either),
and images of another size than the most common one (or ``size=``) are resized, boxes with them.
A malformed label (wrong column count, class out of range, box outside the image) or a missing
image raises :class:`~nasforge.errors.ConfigError` naming the file and line (or annotation).
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nasforge.data._detection import DetectionTask, Split, make_detection_task
from nasforge.data._own import DataNotice, _mode, _read_images, _stack
from nasforge.data._pipeline import IMAGE_SUFFIXES
from nasforge.data._task import check_fraction
from nasforge.errors import ConfigError, DataError

# Pillow is imported where an image is read, so that `import nasforge` stays light.

__all__ = ["load_coco_json", "load_yolo_folder"]

_SLACK = 1e-3  # normalised YOLO coordinates are written with a few decimals
_SPLIT_DIRS = {"train": ("train",), "val": ("val", "valid"), "test": ("test",)}

# One image before stacking: its path, boxes (K, 4) xyxy normalised to [0, 1], labels (K,).
Item = tuple[Path, np.ndarray, np.ndarray]


def _root(root: str | Path | None, what: str, *, file: bool) -> Path:
    if root is None:
        raise ConfigError(f"the {what} dataset needs its location: pass root=... (CLI: --data-dir)")
    path = Path(root).expanduser()
    if not (path.is_file() if file else path.is_dir()):
        kind = "file" if file else "folder"
        raise DataError(f"{path} is not a {kind}; give the {what} {kind} with root=...")
    return path


def _check_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in hw):
        raise ConfigError(f"size must be an int or (height, width) of ints >= 1, got size={size!r}")
    return (int(hw[0]), int(hw[1]))


def _finish(
    name: str,
    parts: dict[str, list[Item]],
    class_names: Sequence[str],
    source: str,
    *,
    size: tuple[int, int] | None,
    channels: int | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> DetectionTask:
    """Draw missing splits from train, read and resize the images, scale boxes to pixels."""
    check_fraction("val_fraction", val_fraction, allow_zero=True, allow_one=False)
    check_fraction("test_fraction", test_fraction, allow_zero=True, allow_one=False)
    train = parts.get("train", [])
    want = {s: f for s, f in (("val", val_fraction), ("test", test_fraction)) if s not in parts}
    if want and sum(want.values()) >= 1:
        raise ConfigError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(train))
    start = 0
    for split, fraction in want.items():
        n = math.ceil(fraction * len(train) - 1e-9)
        parts[split] = [train[i] for i in sorted(order[start : start + n])]
        start += n
    parts["train"] = [train[i] for i in sorted(order[start:])]
    if not parts["train"]:
        raise DataError(f"{source}: no training images left (found {len(train)} in all)")

    files = [path for split in ("train", "val", "test") for path, _, _ in parts[split]]
    mode = _mode(files, channels)
    arrays = _read_images(files, mode)
    if size is None:
        size = Counter(a.shape[:2] for a in arrays).most_common(1)[0][0]
    stacked, resized = _stack(arrays, size, source)
    if resized:
        warnings.warn(
            f"{source}: {resized} of {len(arrays)} images resized to {size[0]}x{size[1]}",
            DataNotice,
            stacklevel=3,
        )
    scale = np.array([size[1], size[0], size[1], size[0]], np.float32)
    splits: dict[str, Split] = {}
    start = 0
    for split in ("train", "val", "test"):
        items = parts[split]
        boxes = [np.clip(b, 0, 1) * scale for _, b, _ in items]
        splits[split] = (stacked[start : start + len(items)], boxes, [y for _, _, y in items])
        start += len(items)
    return make_detection_task(name, splits, class_names, source)


# -------------------------------------------------------------------------------------------- YOLO


def _yolo_names(root: Path) -> list[str]:
    yaml_path = next((p for p in (root / "data.yaml", root / "dataset.yaml") if p.is_file()), None)
    if yaml_path is not None:
        try:
            data = yaml.safe_load(yaml_path.read_text())
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{yaml_path}: not readable YAML ({exc})".replace("\n", " ")) from None
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict) and sorted(names) == list(range(len(names))):
            return [str(names[i]) for i in range(len(names))]
        if isinstance(names, list) and names:
            return [str(n) for n in names]
        raise ConfigError(
            f"{yaml_path}: 'names' must be a list of class names or a mapping 0..C-1 -> name, got {names!r}"
        )
    classes_txt = root / "classes.txt"
    if classes_txt.is_file():
        names = [line.strip() for line in classes_txt.read_text().splitlines() if line.strip()]
        if names:
            return names
        raise ConfigError(f"{classes_txt}: holds no class names (one name a line)")
    raise ConfigError(
        f"{root}: no class names; add data.yaml with 'names: [...]' or classes.txt (one name a line)"
    )


def _parse_yolo_labels(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    boxes, labels = [], []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}:1: not a readable text file ({exc})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) != 5:
            raise ConfigError(
                f"{where}: expected 5 columns 'cls cx cy w h', got {len(fields)} ({line.strip()!r}); "
                "segmentation polygons are not supported"
            )
        try:
            cls_value = float(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            raise ConfigError(f"{where}: columns must be numbers, got {line.strip()!r}") from None
        if not cls_value.is_integer() or not 0 <= cls_value < num_classes:
            raise ConfigError(f"{where}: class {fields[0]} is not an integer in 0..{num_classes - 1}")
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if (
            not all(math.isfinite(v) for v in box)
            or w <= 0
            or h <= 0
            or min(box) < -_SLACK
            or max(box) > 1 + _SLACK
        ):
            raise ConfigError(
                f"{where}: box cx={cx:g} cy={cy:g} w={w:g} h={h:g} is outside the image "
                "(values are fractions of the image size: need w, h > 0 and the box within 0..1)"
            )
        boxes.append(box)
        labels.append(int(cls_value))
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def _yolo_split(images_dir: Path, labels_dir: Path, num_classes: int) -> list[Item]:
    images = {
        p.stem: p for p in sorted(images_dir.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }
    if labels_dir.is_dir():
        for label in sorted(labels_dir.glob("*.txt")):
            if label.stem not in images:
                raise ConfigError(f"{label}:1: no image named {label.stem}.* in {images_dir}")
    items = []
    for stem, image in images.items():
        label = labels_dir / f"{stem}.txt"
        if label.is_file():
            items.append((image, *_parse_yolo_labels(label, num_classes)))
        else:  # YOLO convention: an image without a label file shows only background
            items.append((image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64)))
    return items


def load_yolo_folder(
    root: str | Path | None = None,
    *,
    size: int | Sequence[int] | None = None,
    channels: int | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DetectionTask:
    """Load a YOLO-format detection folder (see the module docstring for the layout).

    Args:
        root: the folder holding ``images/``, ``labels/`` and ``data.yaml`` or ``classes.txt``.
        size: resize every image to ``size`` (int or ``(height, width)``); default the most common size.
        channels: 1 (grey) or 3 (RGB); default grey if every image is grey.
        val_fraction: share of the training images held out for validation when there is no val split.
        test_fraction: likewise for the test split.
        seed: seeds those hold-outs.

    Returns:
        The DetectionTask, named after the folder.

    Raises:
        ConfigError: on a malformed label line, a label file without its image, or missing class names;
            the message names the file and line.
        DataError: if the folder is missing, holds no images, or an image cannot be read.
    """
    path = _root(root, "yolo", file=False)
    names = _yolo_names(path)
    images_dir, labels_dir = path / "images", path / "labels"
    if not images_dir.is_dir():
        raise DataError(
            f"{path} has no images/ folder; lay the data out as images/<name>.png + labels/<name>.txt"
        )
    parts: dict[str, list[Item]] = {}
    for split, dirnames in _SPLIT_DIRS.items():
        for dirname in dirnames:
            if (images_dir / dirname).is_dir():
                parts[split] = _yolo_split(images_dir / dirname, labels_dir / dirname, len(names))
                break
    if not parts:
        parts["train"] = _yolo_split(images_dir, labels_dir, len(names))
    if not parts.get("train"):
        raise DataError(f"{images_dir} holds no training images ({', '.join(IMAGE_SUFFIXES)})")
    return _finish(
        path.name, parts, names, str(path), size=_check_size(size), channels=channels,
        val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
    )  # fmt: skip


# -------------------------------------------------------------------------------------------- COCO


def _coco_items(path: Path, data: Any, images_dir: Path) -> tuple[list[Item], list[str]]:
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise ConfigError(f"{path}: a COCO file needs the lists 'images', 'annotations' and 'categories'")
    try:
        categories = sorted((int(c["id"]), str(c["name"])) for c in data["categories"])
        label_of = {cid: i for i, (cid, _) in enumerate(categories)}
        images = {int(im["id"]): im for im in data["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path}: every category needs 'id' and 'name', every image 'id' ({exc!r})"
        ) from None
    if not categories:
        raise ConfigError(f"{path}: 'categories' is empty")
    sizes: dict[int, tuple[float, float]] = {}
    files: dict[int, Path] = {}
    for image_id, im in images.items():
        file = images_dir / str(im.get("file_name", ""))
        if not im.get("file_name") or not file.is_file():
            raise ConfigError(
                f"{path}: image id {image_id}: file {file} does not exist (images_dir={images_dir})"
            )
        files[image_id] = file
        if "width" in im and "height" in im:
            try:
                sizes[image_id] = (float(im["width"]), float(im["height"]))
            except (TypeError, ValueError):
                sizes[image_id] = (0.0, 0.0)
            if min(sizes[image_id]) <= 0:
                raise ConfigError(
                    f"{path}: image id {image_id}: width and height must be positive numbers, got "
                    f"{im['width']!r} x {im['height']!r}"
                )
        else:
            from PIL import Image

            with Image.open(file) as img:
                sizes[image_id] = (float(img.width), float(img.height))
    boxes: dict[int, list[list[float]]] = {i: [] for i in images}
    labels: dict[int, list[int]] = {i: [] for i in images}
    for index, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{index}] (id {ann.get('id', '?') if isinstance(ann, dict) else '?'})"
        if not isinstance(ann, dict) or ann.get("iscrowd", 0):
            continue
        ann_image, cid, bbox = ann.get("image_id"), ann.get("category_id"), ann.get("bbox")
        if ann_image not in images:
            raise ConfigError(f"{where}: image_id {ann_image!r} is not in 'images'")
        image_id = int(ann_image)
        if cid not in label_of:
            raise ConfigError(f"{where}: category_id {cid!r} is not in 'categories' (ids {sorted(label_of)})")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, int | float) for v in bbox):
            raise ConfigError(f"{where}: bbox must be [x, y, width, height] in pixels, got {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        width, height = sizes[image_id]
        if w <= 0 or h <= 0 or x < -0.5 or y < -0.5 or x + w > width + 0.5 or y + h > height + 0.5:
            raise ConfigError(
                f"{where}: bbox {bbox} is outside the {width:g}x{height:g} image {files[image_id].name}"
            )
        boxes[image_id].append([x / width, y / height, (x + w) / width, (y + h) / height])
        labels[image_id].append(label_of[cid])
    items = [
        (files[i], np.asarray(boxes[i], np.float32).reshape(-1, 4), np.asarray(labels[i], np.int64))
        for i in sorted(images)
    ]
    return items, [name for _, name in categories]


def load_coco_json(
    root: str | Path | None = None,
    *,
    images_dir: str | Path | None = None,
    size: int | Sequence[int] | None = None,
    channels: int | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DetectionTask:
    """Load a COCO-format detection file (see the module docstring) and split it train / val / test.

    Args:
        root: the JSON file.
        images_dir: the folder ``file_name`` is relative to; default the JSON file's folder.
        size: resize every image to ``size`` (int or ``(height, width)``); default the most common size.
        channels: 1 (grey) or 3 (RGB); default grey if every image is grey.
        val_fraction: share of the images held out for validation.
        test_fraction: share of the images held out for testing.
        seed: seeds the split.

    Returns:
        The DetectionTask, named after the file.

    Raises:
        ConfigError: on malformed JSON, an annotation with an unknown image or category or a box
            outside its image, or a missing image file; the message names the file and annotation.
        DataError: if the file is missing or an image cannot be read.
    """
    path = _root(root, "coco", file=True)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    directory = Path(images_dir).expanduser() if images_dir is not None else path.parent
    items, names = _coco_items(path, data, directory)
    if not items:
        raise DataError(f"{path}: 'images' is empty")
    return _finish(
        path.stem, {"train": items}, names, str(path), size=_check_size(size), channels=channels,
        val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
    )  # fmt: skip
