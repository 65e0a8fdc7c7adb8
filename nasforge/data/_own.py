"""Your own images without code: an image folder (one sub-folder per class) or a ``.npz`` file.

**Image folder** (``load("folder", root=DIR)``): ``DIR/<class name>/<image>`` with PNG, JPEG, BMP,
GIF, TIFF or WebP files (read with Pillow); class names are the sub-folder names, sorted. If
``DIR`` holds ``train/`` and ``test/`` and/or ``val/`` (also spelled ``valid/`` or ``validation/``),
each with the class sub-folders, those are the splits, and a missing validation or test split is
drawn from ``train``; otherwise one seeded stratified split makes train / val / test.
Images are converted to grey when every image is grey, else to RGB (``channels=`` forces either);
images of different sizes are resized (bilinear, antialiased) to the most common size, or to
``size=``, with a notice saying how many.

**npz arrays** (``load("npz", root=FILE)``): ``x_train`` / ``y_train`` (and optionally ``x_val`` /
``y_val``, ``x_test`` / ``y_test``), or MedMNIST's ``train_images`` / ``train_labels`` /
``val_images`` / ``val_labels`` / ``test_images`` / ``test_labels``; images ``(N, H, W)`` or
``(N, H, W, C)``, ``uint8`` 0..255 or floats in [0, 1]; labels ``(N,)`` or ``(N, 1)`` integers.
An optional ``class_names`` array names the classes. Missing splits are drawn from the training
images (stratified, seeded).

Both normalise each channel with the training split's mean and standard deviation, like the
built-in datasets, and fail with one clear line on an empty class folder, an unreadable file, a
missing key or too few images per class for the split.
"""

from __future__ import annotations

import warnings
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nasforge.data._pipeline import IMAGE_SUFFIXES, normalize, resize
from nasforge.data._task import Task, check_fraction, stratified_split
from nasforge.errors import ConfigError, DataError

# torch and Pillow are imported on first use, so that `import nasforge` stays light.

__all__ = ["load_image_folder", "load_npz"]


class DataNotice(UserWarning):
    """Something about the data was adjusted (e.g. images resized); the load went on."""


# ----------------------------------------------------------------------------------------- shared
def _check_root(root: str | Path | None, what: str) -> Path:
    if root is None:
        raise ConfigError(f"the {what} dataset needs its location: pass root=... (CLI: --data-dir)")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist; give the {what} location with root=... (CLI: --data-dir)")
    return path


def _split_sizes_ok(y: np.ndarray, names: Sequence[str], parts: int, where: str) -> None:
    counts = np.bincount(y, minlength=len(names))
    few = [(names[c], int(n)) for c, n in enumerate(counts) if n < parts]
    if few:
        listed = ", ".join(f"{n!r} ({k})" for n, k in few[:5])
        raise DataError(
            f"{where}: too few images per class for a {parts}-way split: {listed}; each class needs at "
            f"least {parts} (add images, or lower val_fraction / test_fraction to 0)"
        )


def _to_unit(x: np.ndarray, where: str) -> np.ndarray:
    """uint8 0..255 -> float32 [0, 1]; floats must already be in [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255)
    if not np.issubdtype(x.dtype, np.floating):
        if np.issubdtype(x.dtype, np.integer) and x.size and x.min() >= 0 and x.max() <= 255:
            return x.astype(np.float32) / np.float32(255)
        raise DataError(f"{where}: images must be uint8 0..255 or floats in [0, 1], got {x.dtype}")
    x = x.astype(np.float32)
    if x.size and (float(x.min()) < 0 or float(x.max()) > 1):
        raise DataError(
            f"{where}: float images must be in [0, 1], got values in "
            f"[{float(x.min()):.3g}, {float(x.max()):.3g}]"
        )
    return x


def _nchw(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)
        return x[:, :3] if x.shape[1] == 4 else x
    raise DataError(f"{where}: images must be (N, H, W) or (N, H, W, C) with C = 1, 3 or 4, got {x.shape}")


def _make_task(
    name: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    source: str,
    fraction: float,
    seed: int,
) -> Task:
    """Float [0, 1] NCHW images per split -> a normalised Task."""
    import torch

    x_train = splits["train"][0]
    mean = x_train.mean(axis=(0, 2, 3)).astype(np.float64)
    std = x_train.std(axis=(0, 2, 3)).astype(np.float64)
    std[std == 0] = 1.0

    def tensors(part: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = splits[part]
        if len(x) == 0:
            empty = torch.zeros((0, *x_train.shape[1:]), dtype=torch.float32)
            return empty, torch.zeros(0, dtype=torch.int64)
        norm = normalize(torch.from_numpy(np.ascontiguousarray(x)), mean.tolist(), std.tolist())
        return norm.contiguous(), torch.from_numpy(y.astype(np.int64))

    (xtr, ytr), (xva, yva), (xte, yte) = tensors("train"), tensors("val"), tensors("test")
    task = Task(
        name=name,
        x_train=xtr,
        y_train=ytr,
        x_val=xva,
        y_val=yva,
        x_test=xte,
        y_test=yte,
        class_names=tuple(class_names),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        source=source,
    )
    return task.with_fraction(fraction, seed=seed)


def _fill_splits(
    x: np.ndarray,
    y: np.ndarray,
    have: dict[str, tuple[np.ndarray, np.ndarray]],
    val_fraction: float,
    test_fraction: float,
    names: Sequence[str],
    seed: int,
    where: str,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Draw the missing val / test splits from (x, y), stratified; the rest is train."""
    want = {
        "val": val_fraction if "val" not in have else 0.0,
        "test": test_fraction if "test" not in have else 0.0,
    }
    parts = 1 + sum(1 for f in want.values() if f > 0)
    if want["val"] + want["test"] >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1, got {val_fraction} + {test_fraction}"
        )
    _split_sizes_ok(y, names, parts, where)
    train, val, test = stratified_split(y, (1 - want["val"] - want["test"], want["val"], want["test"]), seed)
    out = dict(have)
    out["train"] = (x[train], y[train])
    for part, idx in (("val", val), ("test", test)):
        if part not in out:
            out[part] = (x[idx], y[idx])
    return out


# ----------------------------------------------------------------------------------------- folder
def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DataError(f"{root} has no class sub-folders; lay images out as {root}/<class name>/<image>.png")
    return dirs


def _read_images(files: list[Path], mode: str) -> list[np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    out = []
    for f in files:
        try:
            with Image.open(f) as img:
                out.append(np.array(img.convert(mode), dtype=np.uint8))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"cannot read image {f}: {exc}; remove or replace the file") from None
    return out


def _scan(root: Path, names: Sequence[str] | None) -> tuple[list[Path], np.ndarray, list[str]]:
    dirs = _class_dirs(root)
    found = [d.name for d in dirs]
    if names is not None and found != list(names):
        raise DataError(f"{root} has the classes {found}, but the training folder has {list(names)}")
    files: list[Path] = []
    labels: list[int] = []
    for c, d in enumerate(dirs):
        imgs = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not imgs:
            raise DataError(
                f"class folder {d} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                "add some or remove the folder"
            )
        files += imgs
        labels += [c] * len(imgs)
    return files, np.array(labels, dtype=np.int64), found


_VAL_DIRS = ("val", "valid", "validation")


def _split_dirs(root: Path) -> dict[str, Path]:
    """The folder's own splits: ``train/`` with ``test/`` and/or a validation folder; {} if none."""
    if not (root / "train").is_dir():
        return {}
    found = {"train": root / "train"}
    vals = [root / n for n in _VAL_DIRS if (root / n).is_dir()]
    if len(vals) > 1:
        names = ", ".join(v.name for v in vals)
        raise DataError(f"{root} has several validation folders ({names}); keep one")
    if vals:
        found["val"] = vals[0]
    if (root / "test").is_dir():
        found["test"] = root / "test"
    return found if len(found) > 1 else {}


def _mode(files: list[Path], channels: int | None) -> str:
    from PIL import Image

    if channels is not None:
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
        return "L" if channels == 1 else "RGB"
    for f in files:
        try:
            with Image.open(f) as img:
                if img.mode not in ("L", "1", "I", "I;16", "F", "LA"):
                    return "RGB"
        except (OSError, ValueError):
            continue  # reported when read
    return "L"


def _stack(images: list[np.ndarray], size: tuple[int, int], where: str) -> tuple[np.ndarray, int]:
    """Same-size float NCHW array; images of another size are resized (count returned)."""
    import torch

    resized = 0
    out = []
    for a in images:
        x = _nchw(_to_unit(a[None], where), where)
        if x.shape[2:] != size:
            x = resize(torch.from_numpy(x), size).numpy()
            resized += 1
        out.append(x[0])
    return np.stack(out).clip(0, 1), resized


def load_image_folder(
    root: str | Path | None = None,
    *,
    fraction: float = 1.0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    download: bool = False,
    size: int | Sequence[int] | None = None,
    channels: int | None = None,
) -> Task:
    """Load an image folder (module docstring) as a :class:`Task`.

    Args:
        root: the folder.
        fraction: keep this stratified share of the training split.
        val_fraction, test_fraction: shares drawn for validation and test (each ignored when the
            folder has its own ``val/`` or ``test/``).
        seed: seeds the splits.
        download: ignored (nothing to download).
        size: resize every image to ``size`` (an int for square, or (H, W)); default the most
            common size among the images.
        channels: 1 (grey) or 3 (RGB); default grey only if every image is grey.

    Raises:
        DataError: missing folder, no class folders, an empty class folder, an unreadable image,
            too few images per class for the split.
    """
    del download
    check_fraction("fraction", fraction, allow_zero=False, allow_one=True)
    check_fraction("val_fraction", val_fraction, allow_zero=True, allow_one=False)
    check_fraction("test_fraction", test_fraction, allow_zero=True, allow_one=False)
    path = _check_root(root, "image-folder")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; lay images out as <folder>/<class name>/<image>.png")
    split_dirs = _split_dirs(path)
    if split_dirs:
        files, y, names = _scan(split_dirs["train"], None)
        other = {part: _scan(d, names)[:2] for part, d in split_dirs.items() if part != "train"}
    else:
        files, y, names = _scan(path, None)
        other = {}
    mode = _mode(files + [f for fs, _ in other.values() for f in fs], channels)
    images = _read_images(files, mode)
    other_images = {part: _read_images(fs, mode) for part, (fs, _) in other.items()}
    everything = images + [a for imgs in other_images.values() for a in imgs]
    if size is None:
        common = Counter(a.shape[:2] for a in everything).most_common(1)[0][0]
        hw = (int(common[0]), int(common[1]))
    else:
        hw = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if len(hw) != 2 or min(hw) < 1:
            raise ConfigError(f"size must be a positive int or (H, W), got {size!r}")
    x, resized = _stack(images, hw, str(path))
    have: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part, imgs in other_images.items():
        x_part, n = _stack(imgs, hw, str(split_dirs[part]))
        have[part] = (x_part, other[part][1])
        resized += n
    if resized:
        why = "the requested size" if size is not None else "the most common size; set size= to choose"
        warnings.warn(
            f"{path}: {resized} of {len(everything)} images were resized to {hw[0]}x{hw[1]} ({why})",
            DataNotice,
            stacklevel=2,
        )
    splits = _fill_splits(x, y, have, val_fraction, test_fraction, names, seed, str(path))
    return _make_task(path.name, splits, names, str(path), fraction, seed)


# ----------------------------------------------------------------------------------------- npz
_KEYS = {
    "train": (("x_train", "y_train"), ("train_images", "train_labels")),
    "val": (("x_val", "y_val"), ("val_images", "val_labels")),
    "test": (("x_test", "y_test"), ("test_images", "test_labels")),
}


def load_npz(
    root: str | Path | None = None,
    *,
    fraction: float = 1.0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    download: bool = False,
) -> Task:
    """Load a ``.npz`` file of arrays (module docstring) as a :class:`Task`.

    Args:
        root: the ``.npz`` file.
        fraction: keep this stratified share of the training split.
        val_fraction, test_fraction: shares drawn from the training arrays for the splits the
            file does not have.
        seed: seeds those splits.
        download: ignored.

    Raises:
        DataError: missing or unreadable file, missing keys, bad shapes, labels or pixel values.
    """
    del download
    check_fraction("fraction", fraction, allow_zero=False, allow_one=True)
    check_fraction("val_fraction", val_fraction, allow_zero=True, allow_one=False)
    check_fraction("test_fraction", test_fraction, allow_zero=True, allow_one=False)
    path = _check_root(root, "npz")
    arrays = _read_npz(path)
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part, options in _KEYS.items():
        for xk, yk in options:
            if xk in arrays and yk in arrays:
                x = _nchw(_to_unit(arrays[xk], f"{path}:{xk}"), f"{path}:{xk}")
                y = np.asarray(arrays[yk]).reshape(len(arrays[yk]), -1)
                if y.shape[1] != 1 or not np.issubdtype(y.dtype, np.integer) or len(y) != len(x):
                    raise DataError(
                        f"{path}:{yk} must hold one integer label per image, got shape {arrays[yk].shape}"
                    )
                found[part] = (x, y[:, 0].astype(np.int64))
                break
    if "train" not in found:
        raise DataError(
            f"{path} has the keys {sorted(arrays)}; it needs x_train and y_train (or MedMNIST's "
            "train_images and train_labels)"
        )
    x, y = found.pop("train")
    labels = np.concatenate([y] + [v[1] for v in found.values()])
    if labels.size and labels.min() < 0:
        raise DataError(f"{path}: labels must be >= 0, got {int(labels.min())}")
    n_classes = int(labels.max()) + 1 if labels.size else 0
    if "class_names" in arrays:
        names = [str(n) for n in np.asarray(arrays["class_names"]).reshape(-1)]
        if len(names) < n_classes:
            raise DataError(f"{path}: class_names has {len(names)} names for labels up to {n_classes - 1}")
    else:
        names = [str(i) for i in range(n_classes)]
    shapes = {a.shape[1:] for a in [x] + [v[0] for v in found.values()]}
    if len(shapes) > 1:
        raise DataError(f"{path}: the splits' images differ in shape: {sorted(shapes)}")
    splits = _fill_splits(x, y, found, val_fraction, test_fraction, names, seed, str(path))
    return _make_task(path.stem, splits, names, str(path), fraction, seed)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` archive; never unpickles (numpy's own errors would advise doing so)."""
    if not zipfile.is_zipfile(path):  # numpy would try it as a pickle and suggest allow_pickle=True
        raise DataError(
            f"{path} is not a valid .npz archive (a zip of arrays, as numpy.savez writes); "
            "save x_train and y_train with numpy.savez, or give an image folder instead"
        )
    try:
        with np.load(path, allow_pickle=False) as data:  # never unpickle
            return {k: data[k] for k in data.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(
                f"{path} holds object arrays (pickled Python objects), which nasforge never loads; "
                "save numeric arrays (and class_names as strings) with numpy.savez"
            ) from None
        raise DataError(f"cannot read {path} as a .npz archive of arrays: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as a .npz archive of arrays: {exc}") from None
