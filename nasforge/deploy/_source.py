"""``nasforge train``: where the architecture, the data and the model file come from, and the training.

A source is a run directory (its best architecture and its data), an architecture JSON, a
``.nasforge`` model or a zoo model name (its architecture, trained from scratch), or with
``from_model`` a model whose weights are fine-tuned on other data.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge._defaults import RECIPE_KEYS, resolve_recipe
from nasforge._paths import check_writable_file, ensure_writable_dir, next_free_path
from nasforge.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import torch

    from nasforge.data import DetectionTask, Task
    from nasforge.deploy._train import TuneResult
    from nasforge.estimate._model import TrainedNetwork
    from nasforge.space import Architecture

__all__ = ["TrainHooks", "TrainOutcome", "TrainSource", "resolve_source", "train_from_source"]


@dataclass(frozen=True)
class TrainSource:
    """What ``nasforge train`` trains, on what, and where the model goes.

    Attributes:
        architecture: the architecture to train.
        task: the data, class names applied.
        out_path: the model file to write.
        kept: the default model file that already existed and was kept (``out_path`` is then the
            next free name, ``trained-2.nasforge``, ...), else None.
        init: the network whose weights training starts from (fine-tuning), else None.
        fine_tuned_from: the model ``init`` came from.
    """

    architecture: Architecture
    task: Task | DetectionTask
    out_path: Path
    kept: Path | None = None
    init: torch.nn.Module | None = None
    fine_tuned_from: Path | None = None


def resolve_source(
    source: str | Path | None = None,
    *,
    from_model: str | Path | None = None,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    download: bool = False,
    class_names: Sequence[str] | None = None,
    out: str | Path | None = None,
    seed: int = 0,
) -> TrainSource:
    """Find the architecture, load the data and choose the model file of a training.

    Args:
        source: a run directory, an architecture JSON, a ``.nasforge`` model or a zoo model name.
        from_model: instead of ``source``: a model (or zoo name) whose weights are fine-tuned.
        dataset: the data (default: the run's, or the model's).
        data_dir: where that dataset's files are (default: the run's, with its dataset).
        download: download missing dataset files.
        class_names: names of the classes, in label order (default: the data's, or the run's).
        out: the model file, replaced if it exists (default: ``RUN/trained.nasforge``,
            ``ARCH-trained.nasforge`` or ``MODEL-DATASET.nasforge``; an existing one is kept and the
            new model gets the next free name).
        seed: seeds the data's splits.

    A detection dataset (``shapes-det``, ...; a detection run's) loads a
    :class:`~nasforge.data.DetectionTask`, for a detector architecture.

    Raises:
        ConfigError: neither or both of ``source`` and ``from_model``; no dataset known; a model
            file that cannot be written; a detector architecture with classification data or the
            reverse; ``from_model`` a detector (all checked before the data is loaded).
    """
    from nasforge import data as datasets
    from nasforge.deploy._model import load
    from nasforge.deploy._train import architecture_from

    if (source is None) == (from_model is None):
        raise ConfigError("give what to train: a run directory / architecture / model, or --from MODEL")
    init = None
    if from_model is not None:
        base = load(from_model)
        if base.task != "classification":
            raise ConfigError(
                f"--from {from_model} is a detector; fine-tuning detectors is not supported yet: train "
                "its architecture from scratch with `nasforge train MODEL --dataset NAME`"
            )
        arch, hint = base.architecture, {"name": base.provenance.get("dataset")}
        init = base.module
    else:
        assert source is not None  # one of the two, checked above
        arch, hint = architecture_from(source)
    name = dataset or hint.get("name")
    if not name:
        raise ConfigError("which dataset? give --dataset NAME (and --data-dir DIR for files)")
    kind = "detection" if datasets.is_detection_dataset(str(name)) else "classification"
    kinds = getattr(arch.space, "task_kinds", ("classification",))
    if kind not in kinds:
        raise ConfigError(
            f"the architecture is a {' / '.join(kinds)} network (space {arch.space.name}), but {name} is a "
            f"{kind} dataset; give a {' / '.join(kinds)} dataset with --dataset"
        )
    beside = _out_dir(source, from_model)
    if out is not None:
        check_writable_file(out, what="model file", hint="give another --out")
    else:  # checked now, not after the training
        ensure_writable_dir(beside, what="directory for the model", hint="give --out PATH")
    root = data_dir if data_dir is not None else (hint.get("root") if dataset is None else None)
    options = dict(hint.get("options") or {}) if dataset is None else {}
    task = datasets.load_task(str(name), root, seed=seed, download=download, **options)
    names = list(class_names) if class_names is not None else None
    if names is None and dataset is None:
        names = hint.get("class_names")  # a run's data: class_names
    if names is not None:
        task = task.with_class_names(names)
    kept = None
    if out is None:
        if from_model is not None:
            wanted = beside / f"{Path(from_model).stem}-{task.name}.nasforge"
        elif Path(str(source)).is_dir():
            wanted = Path(str(source)) / "trained.nasforge"
        else:
            wanted = Path(str(source)).with_name(f"{Path(str(source)).stem}-trained.nasforge")
        out = next_free_path(wanted)  # an earlier model is never replaced
        kept = wanted if out != wanted else None
    return TrainSource(
        architecture=arch,
        task=task,
        out_path=Path(out),
        kept=kept,
        init=init,
        fine_tuned_from=Path(from_model) if from_model is not None else None,
    )


def _out_dir(source: str | Path | None, from_model: str | Path | None) -> Path:
    """Where the model goes without ``out``: the run directory, or beside the input."""
    if from_model is not None:
        return Path(from_model).parent
    path = Path(str(source))
    return path if path.is_dir() else path.parent


class TrainHooks:
    """What :func:`train_from_source` reports while it runs; every method is a no-op here."""

    def on_tune_start(self, n_trials: int, max_epochs: int) -> None:
        """Tuning starts: ``n_trials`` TPE trials of up to ``max_epochs`` epochs."""

    def on_tune_trial(self, done: int, n_trials: int, row: Mapping[str, Any]) -> None:
        """A tuning trial ended: its settings and ``val_accuracy`` (nan if it failed)."""

    def on_tuned(self, result: TuneResult) -> None:
        """Tuning ended; ``result.best`` are the settings the training uses."""

    def on_train_start(self, epochs: int) -> None:
        """The training starts, for ``epochs`` epochs."""

    def on_epoch(self, epoch: int, epochs: int, record: Mapping[str, Any]) -> None:
        """An epoch of the training ended."""


@dataclass(frozen=True)
class TrainOutcome:
    """What :func:`train_from_source` trained and saved.

    Attributes:
        model: the trained model (saved at ``source.out_path``).
        settings: the training settings used (tuned ones included) and the optimizer.
        tuned: the tuning's result, or None without tuning.
    """

    source: TrainSource
    model: TrainedNetwork
    settings: dict[str, Any]
    tuned: TuneResult | None = None


def _train_final_default(name: str) -> Any:
    from nasforge.estimate import train_final

    return inspect.signature(train_final).parameters[name].default


def train_from_source(
    source: TrainSource,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    weight_decay: float | None = None,
    optimizer: str | None = None,
    augment: str | None = None,
    label_smoothing: float | None = None,
    patience: int | None = None,
    tune: int = 0,
    seed: int = 0,
    device: str = "auto",
    amp: str = "auto",
    hooks: TrainHooks | None = None,
) -> TrainOutcome:
    """Train ``source``'s architecture (tuning its training first with ``tune`` > 0) and save it.

    The settings default to :func:`nasforge.estimate.train_final`'s; with ``tune`` trials,
    :func:`~nasforge.deploy._train.tune_training` chooses lr, weight decay, batch size and epochs
    (at most ``epochs``) first. ``augment`` (``"auto"`` or None: the recipe for the data) and
    ``label_smoothing`` (None: the recipe's) follow the final-training values of
    :data:`nasforge._defaults.RECIPES`, with its warm-up, in the tuning trials too. The model is
    saved at ``source.out_path`` with its settings (the recipe included), seed and, when
    fine-tuned, the model it started from in its provenance.
    """
    from nasforge.config import check_recipe_options
    from nasforge.data import DetectionTask
    from nasforge.deploy._train import tune_training
    from nasforge.estimate import train_final
    from nasforge.estimate._loop import fit_warmup

    hooks = hooks or TrainHooks()
    if isinstance(source.task, DetectionTask):
        given = {
            "optimizer": optimizer,
            "augment": augment,
            "label-smoothing": label_smoothing,
            "patience": patience,
            "tune": tune or None,
        }
        odd = [f"--{k}" for k, v in given.items() if v is not None]
        if odd:
            raise ConfigError(
                f"{', '.join(odd)}: classification only; a detector trains with AdamW and a one-cycle "
                "learning rate (set --epochs, --lr, --batch-size, --weight-decay)"
            )
        return _train_detector_from_source(
            source,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
            seed=seed,
            hooks=hooks,
        )
    check_recipe_options(augment, label_smoothing)
    settings: dict[str, Any] = {
        "lr": lr if lr is not None else _train_final_default("lr"),
        "weight_decay": weight_decay if weight_decay is not None else _train_final_default("weight_decay"),
        "batch_size": batch_size if batch_size is not None else _train_final_default("batch_size"),
        "epochs": epochs if epochs is not None else _train_final_default("epochs"),
    }
    optimizer = optimizer if optimizer is not None else _train_final_default("optimizer")
    recipe = resolve_recipe(
        source.task.name,
        "final",
        epochs=int(settings["epochs"]),
        augment=augment if augment is not None else _train_final_default("augment"),
        label_smoothing=label_smoothing,
    )
    tuned = None
    if tune:
        hooks.on_tune_start(tune, int(settings["epochs"]))
        tuned = tune_training(
            source.architecture,
            source.task,
            n_trials=tune,
            max_epochs=int(settings["epochs"]),
            seed=seed,
            init=source.init,
            on_trial=hooks.on_tune_trial,
            device=device,
            amp=amp,
            **recipe,
        )
        settings.update(tuned.best)
        hooks.on_tuned(tuned)
    hooks.on_train_start(int(settings["epochs"]))
    trained = train_final(
        source.architecture,
        source.task,
        epochs=int(settings["epochs"]),
        lr=float(settings["lr"]),
        batch_size=int(settings["batch_size"]),
        weight_decay=float(settings["weight_decay"]),
        optimizer=str(optimizer),
        patience=patience,
        seed=seed,
        init=source.init,
        on_epoch=hooks.on_epoch,
        device=device,
        amp=amp,
        **{**recipe, "warmup": fit_warmup(recipe["warmup"], int(settings["epochs"]))},  # tuned epochs
    )
    settings["optimizer"] = optimizer
    settings.update({k: trained.metrics[k] for k in RECIPE_KEYS})
    provenance: dict[str, Any] = {"source": "nasforge train", "seed": seed, "settings": settings}
    if source.fine_tuned_from is not None:
        provenance["fine_tuned_from"] = str(source.fine_tuned_from)
    trained.save(source.out_path, provenance=provenance)
    return TrainOutcome(source=source, model=trained, settings=settings, tuned=tuned)


def _train_detector_from_source(
    source: TrainSource,
    *,
    epochs: int | None,
    lr: float | None,
    batch_size: int | None,
    weight_decay: float | None,
    seed: int,
    hooks: TrainHooks,
) -> TrainOutcome:
    """:func:`train_from_source` for a detection task: :func:`~nasforge.estimate.train_detector`
    with its defaults for the settings left at None; on the CPU (detector training has no device
    option yet)."""
    from nasforge.data import DetectionTask
    from nasforge.estimate import train_detector

    assert isinstance(source.task, DetectionTask)  # the caller dispatched on it
    defaults = {n: p.default for n, p in inspect.signature(train_detector).parameters.items()}
    settings: dict[str, Any] = {
        "lr": lr if lr is not None else defaults["lr"],
        "weight_decay": weight_decay if weight_decay is not None else defaults["weight_decay"],
        "batch_size": batch_size if batch_size is not None else defaults["batch_size"],
        "epochs": epochs if epochs is not None else defaults["epochs"],
    }
    hooks.on_train_start(int(settings["epochs"]))
    trained = train_detector(
        source.architecture,
        source.task,
        epochs=int(settings["epochs"]),
        lr=float(settings["lr"]),
        batch_size=int(settings["batch_size"]),
        weight_decay=float(settings["weight_decay"]),
        seed=seed,
        on_epoch=hooks.on_epoch,
    )
    settings["optimizer"] = "adamw"
    trained.save(source.out_path, provenance={"source": "nasforge train", "seed": seed, "settings": settings})
    return TrainOutcome(source=source, model=trained, settings=settings)
