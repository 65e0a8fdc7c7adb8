"""The trained model: one type from training to deployment.

:func:`nasforge.train_final` and :meth:`Trial.train` return a :class:`Model`; :meth:`Model.save`
writes it as a ``.nasforge`` file and :func:`nasforge.load` reads it back as the same type; calling
it classifies images with the preprocessing its training data went through. A detector
(:class:`nasforge.deploy.Detector`) is the other kind of :class:`TrainedNetwork`: the same fields,
file and methods, a call that returns boxes.

Example:
    >>> import numpy as np
    >>> import nasforge as nf
    >>> task = nf.datasets.load("digits")
    >>> space = nf.spaces.ChainCNN(depth=1).bind(task.input_shape, task.num_classes)
    >>> model = nf.train_final(space.sample(np.random.default_rng(0)), task, epochs=1, threads=1)
    >>> model(task.pipeline.denormalize(task.x_test[:2]))[0].top1 in task.class_names
    True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from nasforge.data._pipeline import ImagePipeline
from nasforge.estimate._model_file import save_model

if TYPE_CHECKING:
    import torch

    from nasforge.data._task import ImageSplits
    from nasforge.hardware._export import ExportReport
    from nasforge.hardware._export_det import DetectionExportReport
    from nasforge.space import Architecture

__all__ = ["Model", "Prediction", "Predictions", "TrainedNetwork"]

_Self = TypeVar("_Self", bound="TrainedNetwork")


@dataclass(repr=False)
class TrainedNetwork(ABC):
    """A trained network with what is needed to use it: architecture, weights, preprocessing,
    class names, metrics and provenance. Subclasses implement :meth:`__call__`: what the network
    says about images (:class:`Model`: class probabilities; :class:`~nasforge.deploy.Detector`:
    boxes).

    Attributes:
        module: the trained ``torch.nn.Module`` (eval mode).
        architecture: the architecture it was built from.
        input_shape: ``(C, H, W)`` it takes.
        class_names: label names, by class index.
        mean, std: per-channel normalisation of pixels in [0, 1] (:attr:`pipeline`).
        metrics: what training measured (``val_accuracy``, ``test_accuracy``, ``params``, ...).
        provenance: where it came from: ``dataset`` always; from a file also ``seed``, the
            nasforge / torch versions, the creation time, what produced it.
        path: the file it was loaded from (None if made in memory).
        task: ``"classification"`` or ``"detection"`` (the file records it).
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

    task: ClassVar[str] = "classification"

    def __post_init__(self) -> None:
        c, h, w = (int(v) for v in self.input_shape)
        self.input_shape = (c, h, w)
        self.class_names = tuple(str(n) for n in self.class_names)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        self.metrics = dict(self.metrics)
        self.provenance = dict(self.provenance)

    @classmethod
    def trained_on(
        cls: type[_Self],
        task: ImageSplits,
        architecture: Architecture,
        module: torch.nn.Module,
        **fields: Any,
    ) -> _Self:
        """The model of ``module`` trained on ``task``: its preprocessing, class names and dataset.

        Args:
            task: the (detection) task the network was trained on.
            architecture: the architecture it was built from.
            module: the network.
            **fields: ``metrics`` and the other attributes.
        """
        return cls(
            module=module,
            architecture=architecture,
            input_shape=task.input_shape,
            class_names=task.class_names,
            mean=task.mean,
            std=task.std,
            provenance={"dataset": task.name},
            **fields,
        )

    @classmethod
    def from_trained(cls: type[_Self], trained: TrainedNetwork) -> _Self:
        """A copy of ``trained`` as this type, sharing its module (put in eval mode)."""
        trained.module.eval()
        return cls(**{f.name: getattr(trained, f.name) for f in fields(cls) if hasattr(trained, f.name)})

    @property
    def task_name(self) -> str:
        """The dataset it was trained on (``provenance["dataset"]``)."""
        return str(self.provenance.get("dataset", ""))

    @property
    def pipeline(self) -> ImagePipeline:
        """Its preprocessing: the image pipeline of the data it was trained on."""
        return ImagePipeline(self.input_shape, self.mean, self.std)

    def save(self, path: str | Path, *, provenance: Mapping[str, Any] | None = None) -> Path:
        """Write a ``.nasforge`` file: weights, architecture, preprocessing, class names, metrics
        and provenance in one safetensors file, loadable with :func:`nasforge.load`.

        Args:
            path: where to write; any name works, ``.nasforge`` is the convention.
            provenance: facts to record besides :attr:`provenance` (seed, command, ...); the
                dataset, the versions and the creation time are always recorded.

        Raises:
            ConfigError: ``path`` cannot be written (a directory, below a file, read-only).
        """
        kept = {k: v for k, v in self.provenance.items() if k not in ("dataset", "created")}
        return save_model(self, path, provenance={**kept, **dict(provenance or {})})

    def save_weights(self, path: str | Path) -> Path:
        """Write the weights alone as safetensors (no pickle; loading runs no code)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.module.state_dict().items()}
        save_file(state, str(path), metadata={"architecture_key": self.architecture.key})
        return path

    def export(
        self, path: str | Path, format: str = "onnx", **options: Any
    ) -> ExportReport | DetectionExportReport:
        """Export to ONNX, INT8 ONNX or TorchScript (a detector: ONNX or INT8 ONNX) and check it:
        :func:`nasforge.deploy.export`."""
        from nasforge.hardware._export import export

        return export(self, path, format=format, **options)

    @abstractmethod
    def __call__(self, images: Any, /) -> Any:
        """Run the network on ``images`` (paths, folders, PIL images, arrays or tensors of
        pixels), preprocessed by :attr:`pipeline`."""

    def _on_device(self, batch: torch.Tensor) -> torch.Tensor:
        """``batch`` where the module is (a model loaded with ``device="cuda"`` runs there)."""
        param = next(self.module.parameters(), None)
        return batch if param is None else batch.to(param.device)

    def _score(self) -> str:
        """The headline metric for :func:`repr` (``", test accuracy 0.9722"``), or ""."""
        return ""

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        arch = self.architecture.space.describe(self.architecture)
        where = f" from {self.path}" if self.path else ""
        return (
            f"{type(self).__name__}({arch}; {c}x{h}x{w} -> {len(self.class_names)} classes"
            f"{self._score()}{where})"
        )


# ----------------------------------------------------------------------------------------- classification
@dataclass(frozen=True)
class Prediction:
    """What the model says about one image.

    Attributes:
        names: the class names, by index.
        probs: the probability of each class (sums to 1).
        source: where the image came from (a path, or ``"input[3]"`` for the 4th input).
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


@dataclass(repr=False)
class Model(TrainedNetwork):
    """A trained classifier with its preprocessing: call it on images.

    :func:`nasforge.train_final` returns one, :func:`nasforge.load` reads one from a file. Calling
    it takes one image or a list: file paths (PNG, JPEG, ...), ``http(s)://`` URLs (downloaded into
    memory; an unreachable one is a :class:`~nasforge.errors.DataError`), PIL images, numpy arrays or torch
    tensors, with pixels as ``uint8`` 0..255 or floats in [0, 1]. numpy arrays follow the numpy /
    PIL layout: ``(H, W)``, ``(H, W, C)`` with C = 1, 3 or 4, or a batch ``(N, H, W)`` /
    ``(N, H, W, C)``; tensors follow torch's: ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)``. Each
    image is converted to the model's channels (grey from RGB by luminance, RGB from grey by
    repetition, alpha dropped), resized to its input size (bilinear, antialiased) and normalised
    with its mean and standard deviation, exactly as its training data was (:attr:`pipeline`).
    Images far from the input size (a 1-pixel side, smaller, or more than 2x larger on a side) are
    resized too, with one :class:`~nasforge.deploy.ImageSizeWarning` per call.

    Attributes:
        test_report: after :func:`~nasforge.train_final`, the test split's per-class precision /
            recall / F1, confusion matrix and the training split's class counts (see
            :func:`~nasforge.estimate._metrics.classification_metrics`); None otherwise (a
            file does not keep it).

    The other attributes are :class:`TrainedNetwork`'s.
    """

    test_report: dict[str, Any] | None = None

    task: ClassVar[str] = "classification"

    def preprocess(self, images: Any, *, stacklevel: int = 1) -> tuple[torch.Tensor, list[str]]:
        """The normalised ``(N, C, H, W)`` float batch the network sees, and each image's source."""
        return self.pipeline(images, stacklevel=stacklevel + 1)

    def __call__(self, images: Any, *, batch_size: int = 256) -> Predictions:
        """Classify ``images`` (one or a list; see the class docstring); one Prediction each."""
        import torch

        batch, sources = self.preprocess(images, stacklevel=2)
        self.module.eval()
        batch = self._on_device(batch)
        probs = []
        with torch.no_grad():
            for i in range(0, len(batch), batch_size):
                probs.append(torch.softmax(self.module(batch[i : i + batch_size]).float(), dim=1).cpu())
        p = torch.cat(probs).numpy().astype(np.float64) if probs else np.zeros((0, len(self.class_names)))
        return Predictions(Prediction(self.class_names, p[i], sources[i]) for i in range(len(sources)))

    def _score(self) -> str:
        acc = self.metrics.get("test_accuracy")
        return f", test accuracy {acc:.4f}" if isinstance(acc, float) else ""
