"""The ``.nasforge`` model file: one safetensors file that a trained model is saved to and read from.

The file holds the weights as tensors, and in its metadata (the ``"nasforge"`` key, a JSON string)
everything else needed to use them:

- ``format``: ``"nasforge-model/1"``;
- ``task``: ``"classification"`` (also when absent) or ``"detection"``; a detection file reads as
  a :class:`nasforge.deploy.Detector`, whose call returns boxes;
- ``architecture``: :meth:`Architecture.to_dict` (the space's description and the params), from
  which the network is rebuilt;
- ``input_shape`` (C, H, W), ``mean`` and ``std`` (per-channel normalisation of pixels in [0, 1]),
  ``class_names``;
- ``metrics`` (validation and test accuracy, parameters, ...) and ``provenance`` (dataset, seed,
  nasforge and torch versions, creation time, what produced it).

Reading uses JSON and raw tensors only (safetensors and ``json``): it never executes code, unlike
``torch.load`` of a pickle. A file that is truncated, of another format, or whose weights do not fit
the recorded architecture is a :class:`~nasforge.errors.CheckpointError` saying which.
:func:`nasforge.load` reads a file (or a zoo model) with :func:`read_model`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._paths import check_writable_file
from nasforge._version import __version__
from nasforge.errors import CheckpointError
from nasforge.space import Architecture

if TYPE_CHECKING:  # torch and safetensors are imported on first use, so that `import nasforge` stays light
    from nasforge.estimate._model import TrainedNetwork

__all__ = ["FORMAT", "read_model", "save_model"]

FORMAT = "nasforge-model/1"
META_KEY = "nasforge"
TASKS = ("classification", "detection")


def save_model(
    model: TrainedNetwork, path: str | Path, *, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` as a ``.nasforge`` model file (see the module docstring); returns the path.

    :meth:`TrainedNetwork.save` is the usual way in: it keeps the model's own provenance.

    Args:
        model: the trained model (:func:`nasforge.train_final`, :meth:`Trial.train`,
            :func:`nasforge.load`).
        path: where to write; any name works, ``.nasforge`` is the convention.
        provenance: facts to record (seed, command, ...); the dataset (:attr:`task_name
            <TrainedNetwork.task_name>`), the versions and the creation time are always recorded.

    Raises:
        ConfigError: ``path`` cannot be written (a directory, below a file, read-only).
    """
    import torch
    from safetensors.torch import save_file

    path = check_writable_file(path, what="model file")
    meta = {
        "format": FORMAT,
        "task": model.task,
        "architecture": model.architecture.to_dict(),
        "input_shape": list(model.input_shape),
        "mean": list(model.mean),
        "std": list(model.std),
        "class_names": list(model.class_names),
        "metrics": _plain(dict(model.metrics)),
        "provenance": {
            "dataset": model.task_name,
            "nasforge_version": __version__,
            "torch_version": torch.__version__.split("+")[0],
            "cuda_version": torch.version.cuda,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **_plain(dict(provenance or {})),
        },
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.module.state_dict().items()}
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


def read_model(path: Path) -> TrainedNetwork:
    """Read a ``.nasforge`` file: a :class:`~nasforge.estimate.Model`, or a
    :class:`~nasforge.deploy.Detector` for ``task: detection``; on the CPU, in eval mode.

    Raises:
        CheckpointError: the file is unreadable, of another format, has malformed metadata, or
            its weights do not fit its architecture.
    """
    import torch
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
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
    fields = _fields(path, header[META_KEY])
    arch, shape, names = fields["architecture"], fields["input_shape"], fields["class_names"]
    with torch.random.fork_rng(devices=[]):  # initial weights are overwritten; keep the caller's RNG
        module = arch.build(shape, len(names))
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
    task = fields.pop("task")
    # A duck-typed probe of the built module, on purpose: any registered builder (a user's too) made
    # it, and a network that decodes boxes has a predict method; the file's "task" must agree.
    if (task == "detection") != callable(getattr(module, "predict", None)):
        raise CheckpointError(
            f"{path}: its metadata says task {task!r}, but its architecture "
            f"({arch.space.name}) builds a {'classifier' if task == 'detection' else 'detector'}; "
            "the file is damaged or its metadata was edited"
        )
    kind: type[TrainedNetwork]
    if task == "detection":  # here, not at the top: _model and _detector import this module
        from nasforge.estimate._detector import Detector

        kind = Detector
    else:
        from nasforge.estimate._model import Model

        kind = Model
    return kind(module=module, path=path, **fields)


def _fields(path: Path, text: str) -> dict[str, Any]:
    """The metadata of ``path`` as model fields (and ``task``), checked."""
    try:
        meta = json.loads(text)
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
        if task not in TASKS:
            raise ValueError(f"task {task!r} is neither 'classification' nor 'detection'")
        return {
            "task": task,
            "architecture": arch,
            "input_shape": shape,
            "class_names": names,
            "mean": mean,
            "std": std,
            "metrics": dict(meta.get("metrics") or {}),
            "provenance": dict(meta.get("provenance") or {}),
        }
    except Exception as exc:  # any malformed entry: report it as a bad file, not a crash
        raise CheckpointError(f"{path} has malformed nasforge metadata: {exc}") from None
