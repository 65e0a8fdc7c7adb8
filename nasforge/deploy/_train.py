"""Training a chosen architecture for real: from a run, an architecture file or a saved model.

Architecture search picks *what network*; this module trains one network *well*. Tuning its
training hyperparameters (learning rate, weight decay, batch size, epochs) with Optuna TPE is a
separate, much smaller search over numbers for one fixed architecture, judged on validation
accuracy; the test images are used once, by the final training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from nasforge.data import Task
    from nasforge.space import Architecture

__all__ = ["TuneResult", "architecture_from", "tune_training"]


def architecture_from(source: str | Path) -> tuple[Architecture, dict[str, Any]]:
    """The architecture in ``source`` and what is known of its dataset.

    ``source`` is a run directory (its ``best_architecture.json``; the dataset from its
    ``config.yaml``), a JSON file written by :meth:`Architecture.to_dict` (``best_architecture.json``
    itself), or a ``.nasforge`` model file or zoo model name (its architecture; the dataset from its
    provenance).

    Returns:
        the architecture and ``{"name": ..., "root": ..., "options": {...}, "class_names": [...]}``
        (what is known; empty if nothing).
    """
    from nasforge.config import load_raw
    from nasforge.deploy._model import load
    from nasforge.experiment._rundir import RunDir
    from nasforge.space import Architecture

    path = Path(source)
    data: dict[str, Any] = {}
    if path.is_dir():
        run = RunDir(path)
        arch_file = run.best_architecture
        if not arch_file.is_file():
            raise ConfigError(f"{path} has no {RunDir.BEST_ARCHITECTURE}: is it a nasforge run directory?")
        if run.config.is_file():
            raw = load_raw(run.config).get("data") or {}
            if isinstance(raw, Mapping):
                keys = ("name", "root", "options", "class_names")
                data = {k: raw[k] for k in keys if raw.get(k) is not None}
        path = arch_file
    elif not path.is_file():
        from nasforge import zoo

        zoo_path = zoo.path_of(str(source))
        if zoo_path is None:
            raise ConfigError(
                f"{path} does not exist; give a run directory, an architecture JSON, a .nasforge model "
                "or a zoo model name (nasforge zoo lists them)"
            )
        path = zoo_path
    if path.suffix == ".json":
        try:
            return Architecture.from_dict(json.loads(path.read_text())), data
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not an architecture JSON file: {exc}") from None
    model = load(path)
    dataset = model.provenance.get("dataset")
    return model.architecture, ({"name": dataset} if dataset else {})


@dataclass
class TuneResult:
    """The outcome of :func:`tune_training`: the best settings and every trial."""

    best: dict[str, Any]
    best_val_accuracy: float
    trials: list[dict[str, Any]] = field(default_factory=list)


def tune_training(
    arch: Architecture,
    task: Task,
    *,
    n_trials: int,
    max_epochs: int,
    seed: int = 0,
    init: torch.nn.Module | None = None,
    augment: str = "none",
    label_smoothing: float = 0.0,
    warmup: float = 0.0,
    threads: int | None = None,
    device: str = "auto",
    amp: str = "auto",
    on_trial: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> TuneResult:
    """Tune ``lr``, ``weight_decay``, ``batch_size`` and ``epochs`` for one architecture with TPE.

    Each trial trains ``arch`` (from ``init``'s weights when fine-tuning) with sampled settings and
    is scored by its validation accuracy. Search ranges: lr log-uniform in [1e-4, 3e-2], weight
    decay log-uniform in [1e-6, 1e-2], batch size in {32, 64, 128}, epochs in
    [max(1, max_epochs // 4), max_epochs]. ``augment``, ``label_smoothing`` and ``warmup`` (the
    data's recipe; a warm-up longer than half a trial's epochs is shortened to half of them) are the
    same in every trial. Test data is never used. ``device`` and ``amp`` say
    where and in what precision each trial trains (see :class:`nasforge.TrainEstimator`).

    ``on_trial(done, n_trials, row)`` is called after each trial (for progress), ``row`` holding
    its settings and ``val_accuracy`` (nan if it failed).
    """
    import optuna

    from nasforge._device import check_device_and_amp, resolve_amp, resolve_device
    from nasforge._threads import torch_threads
    from nasforge.estimate._loop import evaluate, fit, fit_warmup
    from nasforge.estimate._setup import build_seeded, default_threads, transfer_weights, values_per_step

    if len(task.x_val) == 0:
        raise ConfigError("tuning needs validation images; the dataset has none (set val_fraction > 0)")
    if n_trials < 1 or max_epochs < 1:
        raise ConfigError(f"tuning needs n_trials >= 1 and epochs >= 1, got {n_trials=}, {max_epochs=}")
    where = resolve_device(check_device_and_amp(device, amp)[0])
    mode = resolve_amp(amp, where)
    on_device = task.to(where)  # moved once for every tuning trial
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    rows: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params: dict[str, Any] = {
            "lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
            "epochs": trial.suggest_int("epochs", max(1, max_epochs // 4), max_epochs),
        }
        with torch_threads(
            threads or default_threads(values_per_step(task.input_shape, params["batch_size"]))
        ):
            model = build_seeded(arch, task.input_shape, task.num_classes, seed)
            if init is not None:
                transfer_weights(init, model)
            fit(
                model,
                on_device.x_train,
                on_device.y_train,
                seed=seed,
                augment=augment,
                label_smoothing=label_smoothing,
                warmup=fit_warmup(warmup, int(params["epochs"])),
                device=where,
                amp=mode,
                lr=float(params["lr"]),
                weight_decay=float(params["weight_decay"]),
                batch_size=int(params["batch_size"]),
                epochs=int(params["epochs"]),
            )
            acc, _ = evaluate(model, on_device.x_val, on_device.y_val, amp=mode)
        rows.append({**params, "val_accuracy": acc})
        return acc if math.isfinite(acc) else 0.0

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            row = rows[-1] if len(rows) == len(study.trials) else {**trial.params, "val_accuracy": math.nan}
            on_trial(len(study.trials), n_trials, row)

    study.optimize(objective, n_trials=n_trials, catch=(Exception,), callbacks=[report])
    done = [t for t in study.trials if t.value is not None]
    if not done:
        raise ConfigError("every tuning trial failed; check the data and the architecture")
    best = max(done, key=lambda t: t.value or 0.0)
    return TuneResult(best=dict(best.params), best_val_accuracy=float(best.value or 0.0), trials=rows)
