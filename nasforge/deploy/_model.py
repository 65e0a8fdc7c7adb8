"""The ``.nasforge`` model file and one-line inference: ``nasforge.load(path)(images)``.

A model file is one safetensors file: the weights as tensors, and in its metadata (the
``"nasforge"`` key, a JSON string) everything else needed to use them:

- ``format``: ``"nasforge-model/1"``;
- ``task``: ``"classification"`` (also when absent) or ``"detection"``; a detection file loads as a
  :class:`nasforge.detect.Detector` (:mod:`nasforge.detect._model`), whose call returns boxes;
- ``architecture``: :meth:`Architecture.to_dict` (the space's description and the params), from
  which the network is rebuilt;
- ``input_shape`` (C, H, W), ``mean`` and ``std`` (per-channel normalisation of pixels in [0, 1]),
  ``class_names``;
- ``metrics`` (validation and test accuracy, parameters, ...) and ``provenance`` (dataset, seed,
  nasforge and torch versions, creation time, what produced it).

Loading reads JSON and raw tensors only (safetensors and ``json``): it never executes code, unlike
``torch.load`` of a pickle. A file that is truncated, of another format, or whose weights do not fit
the recorded architecture is a :class:`~nasforge.errors.CheckpointError` saying which.

Example:
    >>> import nasforge as nf  # doctest: +SKIP
    >>> model = nf.load("runs/digits-evolution/model.nasforge")  # doctest: +SKIP
    >>> model("seven.png")[0].top1  # doctest: +SKIP
    '7'
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._paths import check_writable_file
from nasforge.errors import CheckpointError, DataError

if TYPE_CHECKING:
    import torch

    from nasforge.deploy._export import ExportReport
    from nasforge.estimate import TrainedModel
    from nasforge.space import Architecture

__all__ = ["FORMAT", "ImageSizeWarning", "Model", "Prediction", "Predictions", "load", "save_model"]

FORMAT = "nasforge-model/1"
META_KEY = "nasforge"
SUFFIX = ".nasforge"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


# ----------------------------------------------------------------------------------------- saving
def save_model(
    trained: TrainedModel, path: str | Path, *, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write ``trained`` as a ``.nasforge`` model file (see the module docstring); returns the path.

    Args:
        trained: the trained model (:func:`nasforge.train_final`, :meth:`Trial.train`).
        path: where to write; any name works, ``.nasforge`` is the convention.
        provenance: extra facts to record (seed, command, ...); dataset, versions and the creation
            time are always recorded.

    Raises:
        ConfigError: ``path`` cannot be written (a directory, below a file, read-only).
    """
    import torch
    from safetensors.torch import save_file

    import nasforge

    path = check_writable_file(path, what="model file")
    meta = {
        "format": FORMAT,
        "task": getattr(trained, "task", "classification"),  # a TrainedDetector says "detection"
        "architecture": trained.architecture.to_dict(),
        "input_shape": list(trained.input_shape),
        "mean": list(trained.mean),
        "std": list(trained.std),
        "class_names": list(trained.class_names),
        "metrics": _plain(dict(trained.metrics)),
        "provenance": {
            "dataset": trained.task_name,
            "nasforge_version": nasforge.__version__,
            "torch_version": torch.__version__.split("+")[0],
            "cuda_version": torch.version.cuda,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **_plain(dict(provenance or {})),
        },
    }
    state = {k: v.detach().contiguous().cpu() for k, v in trained.module.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={META_KEY: json.dumps(meta)})
    tmp.replace(path)  # a reader never sees a half-written model
    return path


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Prediction:
    """What the model says about one image.

    Attributes:
        names: the class names, by index.
        probs: the probability of each class (sums to 1).
        source: where the image came from (a path, or ``"array[3]"`` for the 4th input).
    """

    names: tuple[str, ...]
    probs: np.ndarray
    source: str = ""

    @property
    def top1(self) -> str:
        """The most probable class name."""
        return self.names[int(np.argmax(self.probs))]

    @property
    def top1_prob(self) -> float:
        return float(np.max(self.probs))

    @property
    def top5(self) -> list[tuple[str, float]]:
        """The (at most) five most probable classes with their probabilities, best first."""
        return self.top(5)

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes with their probabilities, best first."""
        order = np.argsort(-self.probs, kind="stable")[:k]
        return [(self.names[int(i)], float(self.probs[int(i)])) for i in order]

    def to_dict(self, k: int = 5) -> dict[str, Any]:
        return {
            "source": self.source,
            "top1": self.top1,
            "top1_prob": round(self.top1_prob, 6),
            "top": [{"name": n, "prob": round(p, 6)} for n, p in self.top(k)],
        }

    def __str__(self) -> str:
        rest = ", ".join(f"{n} {p:.1%}" for n, p in self.top5[1:])
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.top1} ({self.top1_prob:.1%})" + (f"; then {rest}" if rest else "")

    def __repr__(self) -> str:
        return f"Prediction({self})"


class Predictions(list[Prediction]):
    """The predictions of a call, one per image, in input order (a list that prints readably)."""

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self)

    def __repr__(self) -> str:
        return f"Predictions([{', '.join(repr(p) for p in self)}])"


# ----------------------------------------------------------------------------------------- the model
@dataclass
class Model:
    """A trained nasforge network with its preprocessing: call it on images.

    Create one with :func:`nasforge.load`. Calling it takes one image or a list: file paths (PNG,
    JPEG, ...), PIL images, numpy arrays or torch tensors, with pixels as ``uint8`` 0..255 or floats
    in [0, 1]. numpy arrays follow the numpy / PIL layout: ``(H, W)``, ``(H, W, C)`` with C = 1, 3
    or 4, or a batch ``(N, H, W)`` / ``(N, H, W, C)``; tensors follow torch's: ``(H, W)``,
    ``(C, H, W)`` or ``(N, C, H, W)``. Each image is converted to the model's channels (grey from
    RGB by luminance, RGB from grey by repetition, alpha dropped), resized to its input size
    (bilinear, antialiased) and normalised with its mean and standard deviation, exactly as its
    training data was. Images far from the input size (a 1-pixel side, smaller, or more than 2x
    larger on a side) are resized too, with one :class:`ImageSizeWarning` per call.

    Attributes:
        module: the ``torch.nn.Module`` (eval mode).
        architecture: the architecture it was built from.
        input_shape: (C, H, W) it expects.
        class_names, mean, std, metrics, provenance: as recorded in the file.
        path: the file it was loaded from (None if made in memory).
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

    @classmethod
    def from_trained(cls, trained: TrainedModel) -> Model:
        """Wrap a :class:`~nasforge.estimate.TrainedModel` (no file involved)."""
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

    def preprocess(self, images: Any) -> tuple[torch.Tensor, list[str]]:
        """The normalised ``(N, C, H, W)`` float batch the network sees, and each image's source."""
        import torch

        pixels, sources = _to_pixels(images, self.input_shape)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return (pixels - mean) / std, sources

    def __call__(self, images: Any, *, batch_size: int = 256) -> Predictions:
        """Classify ``images`` (one or a list; see the class docstring); one Prediction each."""
        import torch

        batch, sources = self.preprocess(images)
        self.module.eval()
        probs = []
        param = next(self.module.parameters(), None)
        if param is not None:  # a model loaded onto a GPU (load(..., device="cuda")) runs there
            batch = batch.to(param.device)
        with torch.no_grad():
            for i in range(0, len(batch), batch_size):
                probs.append(torch.softmax(self.module(batch[i : i + batch_size]).float(), dim=1).cpu())
        p = torch.cat(probs).numpy().astype(np.float64) if probs else np.zeros((0, len(self.class_names)))
        return Predictions(Prediction(self.class_names, p[i], sources[i]) for i in range(len(sources)))

    def export(self, path: str | Path, format: str = "onnx", **options: Any) -> ExportReport:
        """Export to ONNX, INT8 ONNX or TorchScript and check it: :func:`nasforge.deploy.export`."""
        from nasforge.deploy._export import export

        return export(self, path, format=format, **options)

    def save(self, path: str | Path) -> Path:
        """Write this model to a ``.nasforge`` file."""
        from nasforge.estimate import TrainedModel

        trained = TrainedModel(
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
        return save_model(trained, path, provenance=extra)

    def __repr__(self) -> str:
        acc = self.metrics.get("test_accuracy")
        where = f" from {self.path}" if self.path else ""
        acc_s = f", test accuracy {acc:.4f}" if isinstance(acc, float) else ""
        c, h, w = self.input_shape
        describe = getattr(self.architecture.space, "describe", None)
        arch = describe(self.architecture) if callable(describe) else self.architecture.key
        return f"Model({arch}; {c}x{h}x{w} -> {len(self.class_names)} classes{acc_s}{where})"


# ----------------------------------------------------------------------------------------- loading
def load(source: str | Path, *, device: str = "cpu") -> Model:
    """Load a model from a ``.nasforge`` file or by zoo name.

    Args:
        source: a path (a search writes ``<run_dir>/model.nasforge``), or the name of a model in
            the zoo shipped with nasforge (``"digits-s"``, ``"mnist-s"``, ``"fashion-mnist-s"``;
            ``nasforge zoo`` lists them). An existing file of that name wins over a zoo name.
        device: where the network runs: ``cpu`` (default: export and CPU profiling expect it),
            ``auto``, ``cuda``, ``cuda:N`` or ``mps``; images are moved there and the
            predictions come back to the CPU.

    Raises:
        ConfigError: a device this machine does not have (before the file is read).
        CheckpointError: the file is missing (and no zoo model has that name), truncated, of
            another format, or its weights do not fit its architecture.
    """
    from nasforge import zoo
    from nasforge._device import resolve_device

    where = resolve_device(device)
    path = Path(source)
    if not path.is_file():
        zoo_path = zoo.path_of(str(source))
        if zoo_path is not None:
            return _to(_read(zoo_path), where)
        names = ", ".join(e.name for e in zoo.entries()) or "none installed"
        raise CheckpointError(
            f"no model file {str(source)!r} and no zoo model of that name; give the path of a "
            f"'.nasforge' file (a search with a final training writes <run_dir>/model.nasforge) "
            f"or a zoo name ({names})"
        )
    return _to(_read(path), where)


def _to(model: Model, device: torch.device) -> Model:
    if device.type != "cpu":
        model.module.to(device)
    return model


def _read(path: Path) -> Model:
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from nasforge.space import Architecture

    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a readable nasforge model file ({exc}); it may be truncated or another format"
        ) from None
    if META_KEY not in header:
        raise CheckpointError(
            f"{path} is a safetensors file without nasforge metadata (plain weights?); "
            "save models with TrainedModel.save() or let `nasforge search` / `nasforge train` write them"
        )
    try:
        meta = json.loads(header[META_KEY])
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise ValueError(f"format {found!r}, expected {FORMAT!r}")
        arch = Architecture.from_dict(meta["architecture"])
        shape = tuple(int(v) for v in meta["input_shape"])
        if len(shape) != 3:
            raise ValueError(f"input_shape {list(shape)} is not (C, H, W)")
        names = tuple(str(n) for n in meta["class_names"])
        mean = tuple(float(v) for v in meta["mean"])
        std = tuple(float(v) for v in meta["std"])
        if len(mean) != shape[0] or len(std) != shape[0]:
            raise ValueError(f"mean/std have {len(mean)}/{len(std)} values for {shape[0]} channels")
        task = meta.get("task", "classification")  # files written before detection have no task
        if task not in ("classification", "detection"):
            raise ValueError(f"task {task!r} is neither 'classification' nor 'detection'")
    except CheckpointError:
        raise
    except Exception as exc:  # any malformed entry: report it as a bad file, not a crash
        raise CheckpointError(f"{path} has malformed nasforge metadata: {exc}") from None
    with torch.random.fork_rng(devices=[]):  # initial weights are overwritten; keep the caller's RNG
        module = arch.build((shape[0], shape[1], shape[2]), len(names))
    expected = module.state_dict()
    for key, tensor in state.items():  # load_state_dict would raise a long RuntimeError on a shape
        if key in expected and tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{path}: weights do not match the architecture in its metadata (first mismatch: "
                f"{key} is {list(tensor.shape)} in the file, the architecture needs "
                f"{list(expected[key].shape)}); the file is damaged or its metadata was edited"
            )
    result = module.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{path}: the weights do not fit the recorded architecture (missing "
            f"{list(result.missing_keys)[:3]}, unexpected {list(result.unexpected_keys)[:3]}); "
            "the file is damaged or was edited"
        )
    module.eval()
    if (task == "detection") != callable(getattr(module, "predict", None)):  # a detector decodes boxes
        raise CheckpointError(
            f"{path}: its metadata says task {task!r}, but its architecture "
            f"({arch.space.name}) builds a {'classifier' if task == 'detection' else 'detector'}; "
            "the file is damaged or its metadata was edited"
        )
    kind: Any = Model  # load() returns Model | Detector; both take the same fields
    if task == "detection":
        from nasforge.detect._model import Detector

        kind = Detector
    return kind(
        module=module,
        architecture=arch,
        input_shape=(shape[0], shape[1], shape[2]),
        class_names=names,
        mean=mean,
        std=std,
        metrics=dict(meta.get("metrics") or {}),
        provenance=dict(meta.get("provenance") or {}),
        path=path,
    )


# ----------------------------------------------------------------------------------------- images
def _to_pixels(images: Any, input_shape: tuple[int, int, int]) -> tuple[torch.Tensor, list[str]]:
    """Images in any supported form -> float32 (N, C, H, W) pixels in [0, 1], and their sources."""
    import torch

    items = list(images) if isinstance(images, list | tuple) else [images]
    if not items:
        raise DataError("no images given")
    out: list[torch.Tensor] = []
    sources: list[str] = []
    far: list[tuple[str, int, int]] = []  # images whose size is far from the model's input
    for i, item in enumerate(items):
        for j, t in enumerate(_as_chw_batch(item, i)):
            source = str(item) if isinstance(item, str | Path) else f"input[{i}]" + (f"[{j}]" if j else "")
            if _size_problem(t.shape[1], t.shape[2], input_shape[1], input_shape[2]):
                far.append((source, int(t.shape[1]), int(t.shape[2])))
            out.append(_fit(t, input_shape))
            sources.append(source)
    if far:
        _warn_far_sizes(far, len(out), input_shape)
    return torch.stack(out), sources


class ImageSizeWarning(UserWarning):
    """An input image was resized from a size far from the model's input: the prediction may be
    meaningless (a 1-pixel side, an upscaled image, or one shrunk more than 2x on a side)."""


def _size_problem(height: int, width: int, h: int, w: int) -> str:
    """Why resizing a ``height`` x ``width`` image to the model's ``h`` x ``w`` is doubtful ("" if not).

    Bilinear resizing keeps the content of an image of about the model's size; a side of one
    pixel carries no shape, upscaling invents detail, and shrinking by more than 2x on a side
    throws most of it away (a 28x28 digit fed to an 8x8 model), so those are reported.
    """
    if min(height, width) <= 1 < min(h, w):
        return "a side of 1 pixel"
    if height < h or width < w:
        return "smaller than the model's input, so it is upscaled"
    if height > 2 * h or width > 2 * w:
        return f"{max(height / h, width / w):.1f}x larger on a side, so most of its detail is lost"
    return ""


def _warn_far_sizes(far: list[tuple[str, int, int]], total: int, input_shape: tuple[int, int, int]) -> None:
    import warnings

    _, h, w = input_shape
    source, height, width = far[0]
    which = (
        f"{source} is {height}x{width}"
        if len(far) == 1
        else (f"{len(far)} of {total} images, e.g. {source} at {height}x{width}")
    )
    warnings.warn(
        f"{which}: {_size_problem(height, width, h, w)}; resized to the model's {h}x{w} input, the "
        f"prediction may be meaningless. Give images of about {h}x{w} pixels (up to {2 * h}x{2 * w})",
        ImageSizeWarning,
        stacklevel=5,  # the caller of Model.__call__
    )


def _as_chw_batch(item: Any, index: int) -> Iterable[torch.Tensor]:
    """One input -> float (C, H, W) tensors in [0, 1] (several for a batched array or tensor)."""
    import torch

    if isinstance(item, str | Path):
        return [_from_pil(_open_image(Path(item)))]
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None  # type: ignore[assignment]
    if Image is not None and isinstance(item, Image.Image):
        return [_from_pil(item)]
    if isinstance(item, torch.Tensor):
        t = item.detach().cpu()
        if t.dim() == 2:
            t = t[None]
        if t.dim() == 3:
            return [_scale(t)]
        if t.dim() == 4:
            return list(_scale(t))
        raise DataError(
            f"input[{index}]: a tensor image must be (H, W), (C, H, W) or (N, C, H, W), got {tuple(t.shape)}"
        )
    if isinstance(item, np.ndarray):
        a = item
        if a.ndim == 2:  # (H, W) grey
            return [_scale(torch.from_numpy(np.ascontiguousarray(a))[None])]
        if a.ndim == 3:
            if a.shape[-1] in (1, 3, 4):  # (H, W, C), the numpy / PIL convention
                return [_scale(torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))))]
            return [_scale(torch.from_numpy(np.ascontiguousarray(x))[None]) for x in a]  # (N, H, W)
        if a.ndim == 4:
            if a.shape[-1] in (1, 3, 4):  # (N, H, W, C)
                a = a.transpose(0, 3, 1, 2)
            return list(_scale(torch.from_numpy(np.ascontiguousarray(a))))
        raise DataError(f"input[{index}]: an array image must have 2 to 4 dimensions, got shape {a.shape}")
    raise DataError(
        f"input[{index}] is a {type(item).__name__}; give image file paths, PIL images, numpy arrays "
        "or torch tensors"
    )


def _scale(t: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> [0, 1]; floats must be in [0, 1] already (not normalised)."""
    import torch

    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if t.dtype == torch.bool or not t.is_floating_point():
        raise DataError(f"image pixels must be uint8 (0..255) or floats in [0, 1], got {t.dtype}")
    t = t.float()
    if t.numel() and (float(t.min()) < -1e-3 or float(t.max()) > 1 + 1e-3):
        raise DataError(
            f"float pixels must be in [0, 1], got values in [{float(t.min()):.3g}, {float(t.max()):.3g}]; "
            "pass raw pixels (uint8 0..255 or floats in [0, 1]): the model normalises them itself"
        )
    return t


def _open_image(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"no image file {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def _from_pil(img: Any) -> torch.Tensor:
    import torch

    if img.mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    a = np.array(img, dtype=np.uint8)  # a writable copy
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float() / 255.0


def _fit(t: torch.Tensor, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """(C', H', W') in [0, 1] -> the model's (C, H, W): channels converted, then resized."""
    import torch
    import torch.nn.functional as F

    c, h, w = input_shape
    if t.shape[0] == 4:  # drop alpha
        t = t[:3]
    if t.shape[0] == 3 and c == 1:  # luminance, as PIL's "L" conversion
        t = (0.299 * t[0] + 0.587 * t[1] + 0.114 * t[2])[None]
    elif t.shape[0] == 1 and c == 3:
        t = t.repeat(3, 1, 1)
    if t.shape[0] != c:
        raise DataError(f"an image with {t.shape[0]} channels cannot feed a model that takes {c}")
    if tuple(t.shape[1:]) != (h, w):
        t = F.interpolate(t[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
    return t.clamp(0.0, 1.0) if t.dtype == torch.float32 else t.float()


def describe_sources(paths: Sequence[str]) -> list[Path]:
    """Expand directories into their image files (sorted); keep files as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out
