"""The search configuration model: validated settings and their defaults (one place).

See :mod:`nasforge.config` for the file format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nasforge.errors import ConfigError

__all__ = [
    "DETECTION_BUDGET",
    "DETECTION_DEFAULTS",
    "LARGE_BUDGET",
    "SECTION_DEFAULTS",
    "SMALL_BUDGET",
    "DataConfig",
    "FinalConfig",
    "SearchConfig",
    "default_race_epochs",
    "fill_defaults",
    "load_config",
    "load_raw",
    "parse_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    name: str = "digits"
    root: str | None = None
    fraction: float = Field(1.0, gt=0, le=1)
    seed: int = 0
    download: bool = False
    options: dict[str, Any] = Field(default_factory=dict)  # the loader's own: size, channels, val_fraction
    class_names: list[str] | None = None  # one per class, in label order; checked against the data


def _default_space() -> dict[str, Any]:
    return {"name": "chain_cnn", "depth": [2, 5], "max_params": 150_000}


def _default_strategy() -> dict[str, Any]:
    return {"name": "evolution", "population": 10, "tournament": 3}


# Training budgets by dataset size. Digits (1,077 training images) trains a candidate in ~2 s; on
# MNIST-sized data (54,000) trials use a 10% subset for 4 epochs (~20 s each on 2 cores) and only the
# final pick sees all the data.
SMALL_BUDGET: dict[str, dict[str, Any]] = {
    "estimator": {"name": "train", "epochs": 10, "batch_size": 32, "lr": 0.01},
    "final": {"epochs": 60, "batch_size": 32, "lr": 0.01},
}
# Under a time budget (--time) the final training on all the images gets half of it and trains as
# many epochs as fit, up to 60: on Fashion-MNIST the same pick trained 18 epochs instead of 7 in a
# 30-minute search gained 0.4 points (docs/benchmarks.md, "Fashion-MNIST at equal wall clock").
LARGE_BUDGET: dict[str, dict[str, Any]] = {
    "estimator": {"name": "train", "epochs": 4, "fraction": 0.1, "batch_size": 128, "lr": 0.005},
    "final": {"epochs": 8, "batch_size": 128, "lr": 0.005, "time_share": 0.5, "max_epochs": 60},
}
LARGE_DATASETS = ("mnist", "fashion-mnist", "fashion_mnist", "fmnist")
# Detection data (nasforge.data.DETECTION_DATASETS): the budget of benchmarks/detect_search.py,
# 4 epochs of 8 steps per trial (~5 s on shapes-det) and 20 epochs for the pick (~60 s).
DETECTION_BUDGET: dict[str, dict[str, Any]] = {
    "estimator": {"name": "train_det", "epochs": 4, "steps_per_epoch": 8, "batch_size": 32, "lr": 0.003},
    "final": {"epochs": 20, "batch_size": 32, "lr": 0.003},
}
#: what a detection dataset changes besides the budget when the config does not set it
DETECTION_DEFAULTS: dict[str, Any] = {
    "space": {"name": "detector", "max_params": 100_000},
    "objectives": ["val_map"],
}


class FinalConfig(_Strict):
    """The final training of the best architecture (``final:``); defaults: :data:`SMALL_BUDGET`.

    Validated here, once: the search hands these settings to the training unchanged (but for
    ``epochs``, which a time budget may lower, or with ``time_share`` fill up to ``max_epochs``,
    and a ``warmup`` longer than half a shortened training, which is shortened to fit).

    The data's recipe (``augment``, ``label_smoothing``, ``warmup``) is the estimator's unless set
    here: an item left out (None) is the ``estimator:`` section's, and where that section leaves it
    out too (or says ``augment: auto``), the final-training value of the table
    :data:`nasforge._defaults.RECIPES` for the dataset
    (:func:`nasforge.experiment._recipe.final_recipe` applies the rule).
    """

    epochs: int = Field(SMALL_BUDGET["final"]["epochs"], ge=0)  # 0 skips the final training
    batch_size: int = Field(SMALL_BUDGET["final"]["batch_size"], ge=1)
    lr: float = Field(SMALL_BUDGET["final"]["lr"], gt=0, allow_inf_nan=False)
    optimizer: str = "adam"
    weight_decay: float = Field(5e-4, ge=0)
    schedule: str = "cosine"
    #: ``none``, ``shift``, ``shift+flip`` or ``auto`` (the table's); None: the estimator's
    augment: str | None = None
    #: label smoothing of the training loss, in [0, 1); None: the estimator's
    label_smoothing: float | None = Field(None, ge=0, lt=1, allow_inf_nan=False)
    #: epochs of linear learning-rate warm-up, at most half of ``epochs``; None: the estimator's
    warmup: float | None = Field(None, ge=0, allow_inf_nan=False)
    #: under a time budget (``time:``, ``--time``): the share of it, in (0, 1), the final training
    #: gets (its race included), which then trains as many epochs as fit in it, up to
    #: ``max_epochs``; None: the share is what ``epochs`` need at the trials' measured speed
    #: (5-50% of the budget). Without a time budget it does nothing.
    time_share: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False)
    #: the most epochs a final training with ``time_share`` trains; None: ``epochs``
    max_epochs: int | None = Field(None, ge=1)
    #: the final race: the top ``race`` distinct completed trials are each trained with this recipe
    #: for ``race_epochs`` before the best of them goes on (:mod:`nasforge.experiment._race`);
    #: 1 trains the best trial alone
    race: int = 1
    #: epochs of each race candidate; None: :func:`default_race_epochs` (a quarter of ``epochs``)
    race_epochs: int | None = None
    #: folds of the cross-validation that scores the candidates when the validation split is small
    race_folds: int = 3

    def timed_epochs(self) -> int:
        """The most epochs the final training trains under a time budget: ``max_epochs`` with a
        ``time_share`` (``epochs`` if that is unset), else ``epochs``; 0 when ``epochs`` is 0
        (no final training)."""
        if self.epochs == 0:
            return 0
        if self.time_share is not None:
            return self.max_epochs if self.max_epochs is not None else self.epochs
        return self.epochs

    @field_validator("race", mode="before")
    @classmethod
    def _race(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                "must be a whole number >= 1: how many of the best trials race before the final "
                "training (1: the best trial alone, no race)"
            )
        return value

    @field_validator("race_epochs", mode="before")
    @classmethod
    def _race_epochs(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError("must be a whole number >= 1 (epochs of each race candidate), or null")
        return value

    @field_validator("race_folds", mode="before")
    @classmethod
    def _race_folds(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError("must be a whole number >= 2 (folds of the race's cross-validation)")
        return value

    @field_validator("augment")
    @classmethod
    def _augment(cls, value: str | None) -> str | None:
        from nasforge.estimate._loop import AUGMENTATIONS

        if value is not None and value not in ("auto", *AUGMENTATIONS):
            raise ValueError(f"must be one of auto, {', '.join(AUGMENTATIONS)} (or null: the estimator's)")
        return value

    @model_validator(mode="after")
    def _warmup_within_final(self) -> FinalConfig:
        from nasforge.estimate._loop import warmup_problem

        problem = (
            None if self.warmup is None or self.epochs == 0 else warmup_problem(self.warmup, self.epochs)
        )
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _race_within_final(self) -> FinalConfig:
        if self.race_epochs is not None and self.epochs > 0 and self.race_epochs > self.epochs:
            raise ValueError(
                f"race_epochs ({self.race_epochs}) must not exceed the final training's epochs "
                f"({self.epochs}): the race is the cheaper look before the full training"
            )
        return self

    def race_length(self) -> int:
        """Epochs of each race candidate: ``race_epochs``, or :func:`default_race_epochs`."""
        return self.race_epochs if self.race_epochs is not None else default_race_epochs(self.epochs)

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, value: str) -> str:
        from nasforge.estimate._loop import OPTIMIZERS

        if value not in OPTIMIZERS:
            raise ValueError(f"must be one of {', '.join(OPTIMIZERS)}")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        from nasforge.estimate._loop import SCHEDULES

        if value not in SCHEDULES:
            raise ValueError(f"must be one of {', '.join(SCHEDULES)}")
        return value


def default_race_epochs(final_epochs: int) -> int:
    """A race candidate's epochs by default: a quarter of the final training's, at least 1.

    A quarter keeps a race of 3 candidates (with a validation split large enough for a holdout)
    under the cost of one more final training, while each candidate trains about 2.5 times as long
    as a default trial on digits (15 epochs against 10; 2 against 4 on a 10% subset for MNIST, i.e.
    5 times the images), long enough for the ranking to differ from the search's.

    Example:
        >>> default_race_epochs(60), default_race_epochs(8), default_race_epochs(1)
        (15, 2, 1)
    """
    return max(1, -(-final_epochs // 4))


def budget_for(dataset: Any) -> dict[str, dict[str, Any]]:
    """The default ``estimator`` / ``final`` sections for the dataset named ``dataset``:
    :data:`DETECTION_BUDGET`, :data:`LARGE_BUDGET` or :data:`SMALL_BUDGET`."""
    from nasforge.data import is_detection_dataset

    if is_detection_dataset(dataset):
        return DETECTION_BUDGET
    return LARGE_BUDGET if dataset in LARGE_DATASETS else SMALL_BUDGET


def fill_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Fill the ``estimator`` / ``final`` sections from the budget for the configured dataset.

    A missing section gets the whole budget; a ``final`` section, or an ``estimator`` section
    without a ``name``, gets the options it does not set (``estimator: {epochs: 5}`` is the default
    ``train`` estimator with 5 epochs). A detection dataset (``shapes-det``, ...) also makes the
    ``detector`` space (``max_params: 100000``) and the objective ``val_map`` the defaults
    (:data:`DETECTION_DEFAULTS`); a ``space`` section without a ``name`` is then that space.
    """
    dataset = data.get("data")
    name = dataset.get("name") if isinstance(dataset, Mapping) else dataset
    budget = budget_for(name)
    if budget is DETECTION_BUDGET:
        space = data.get("space")
        if space is None:
            data["space"] = dict(DETECTION_DEFAULTS["space"])
        elif isinstance(space, Mapping) and "name" not in space:
            data["space"] = {**DETECTION_DEFAULTS["space"], **space}
        if data.get("objectives") is None:
            data["objectives"] = list(DETECTION_DEFAULTS["objectives"])
    for section in ("estimator", "final"):
        value = data.get(section)
        if value is None:
            data[section] = dict(budget[section])
        elif isinstance(value, Mapping) and (section == "final" or "name" not in value):
            data[section] = {**budget[section], **value}
            if section == "final" and "epochs" in value and "time_share" not in value:
                # epochs given without a share: exactly those (as many as fit), as --final-epochs
                data[section].update(time_share=None, max_epochs=None)
    return data


#: the default component of each section that names one (none for scheduler and executor)
SECTION_DEFAULTS: dict[str, Any] = {"space": _default_space, "strategy": _default_strategy}


class SearchConfig(_Strict):
    """The whole search, as read from YAML and CLI options."""

    name: str | None = None
    space: dict[str, Any] = Field(default_factory=_default_space)
    data: DataConfig = Field(default_factory=DataConfig)
    strategy: dict[str, Any] = Field(default_factory=_default_strategy)
    scheduler: dict[str, Any] | None = None
    estimator: dict[str, Any] = Field(default_factory=lambda: dict(SMALL_BUDGET["estimator"]))
    objectives: list[str] = Field(default_factory=lambda: ["val_accuracy"], min_length=1)
    constraints: list[str] = Field(default_factory=list)
    trials: int | None = Field(30, ge=1)
    time: float | None = None
    timeout: float | None = Field(None, gt=0)
    # proposals screened out by a constraint in a row before the search gives up
    # (nasforge.experiment._screening.MAX_SCREENED_IN_ROW)
    max_screened: int = Field(200, ge=1)
    executor: dict[str, Any] | None = None
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    final: FinalConfig = Field(default_factory=FinalConfig)
    run_dir: str | None = None
    storage: str | None = None
    track: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("time", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        from nasforge._budget import parse_duration

        return None if value is None else parse_duration(value)

    @field_validator("storage")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(
                "must be a database URL such as postgresql://user@host/nasforge or sqlite:///x.db"
            )
        return value

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> str:
        from nasforge._device import check_device_name

        return check_device_name(value)  # a name here; whether this machine has it: prepare_search

    @field_validator("amp", mode="before")
    @classmethod
    def _amp(cls, value: Any) -> str:
        from nasforge._device import check_amp

        return check_amp(value)  # YAML reads `amp: off` as False

    @model_validator(mode="after")
    def _race_classifies(self) -> SearchConfig:
        from nasforge.data import is_detection_dataset

        if self.final.race > 1 and is_detection_dataset(self.data.name):
            raise ValueError(
                f"final.race is {self.final.race}, but {self.data.name} is a detection dataset: the "
                "final race compares classifiers by a validation metric; set race to 1 (the best "
                "trial alone) for detectors"
            )
        return self

    def run_name(self) -> str:
        return self.name or f"{self.data.name}-{self.strategy.get('name', 'search')}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")  # pydantic's prefix to our own messages
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _key_hint(err["loc"])
        shown = err["type"] != "extra_forbidden" and not isinstance(err["input"], Mapping)
        got = f" (got {err['input']!r})" if shown else ""
        parts.append(f"{where}: {msg}{got}" if where else f"{msg}{got}")  # no place: the whole config
    return "; ".join(parts)


_SECTIONS: dict[str, type[BaseModel]] = {"data": DataConfig, "final": FinalConfig}


def _key_hint(loc: tuple[Any, ...]) -> str:
    """``". Did you mean 'estimator'?"`` for a misspelt key, else the valid keys."""
    from nasforge.registry import suggest

    model: type[BaseModel] = SearchConfig
    if len(loc) == 2 and loc[0] in _SECTIONS:
        model = _SECTIONS[loc[0]]
    elif len(loc) != 1:
        return ""
    valid = list(model.model_fields)
    hint = suggest(str(loc[-1]), valid)
    return f".{hint}" if hint else f" (valid keys: {', '.join(valid)})"


def parse_config(data: Any, *, source: str = "config") -> SearchConfig:
    """Validate a mapping into a :class:`SearchConfig`; errors become one-line ConfigErrors."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source} must hold a mapping of settings (space:, data:, strategy:, ...), got {data!r}"
        )
    data = fill_defaults(dict(data))
    for section in ("space", "strategy", "estimator", "scheduler", "executor"):
        value = data.get(section)
        if isinstance(value, str):  # "strategy: random" shorthand
            data[section] = {"name": value}
        elif value is not None and not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {section} must be a name or a mapping with a 'name', got {value!r}")
        elif isinstance(value, Mapping) and "name" not in value:
            if section not in SECTION_DEFAULTS:  # no default component to take options
                from nasforge.registry import EXECUTORS, SCHEDULERS

                names = (SCHEDULERS if section == "scheduler" else EXECUTORS).names()
                example = "successive_halving" if section == "scheduler" else "process"
                raise ConfigError(
                    f"{source}: {section} needs a 'name' (one of {', '.join(names)}), "
                    f"e.g. {section}: {{name: {example}, ...}}"
                )
            data[section] = {**SECTION_DEFAULTS[section](), **value}  # the default's options, overridden
    if "track" in data:
        data["track"] = _track_entries(data["track"], source)
    if isinstance(data.get("data"), str):
        data["data"] = {"name": data["data"]}
    if data.get("time") is not None:
        from nasforge._budget import parse_duration

        try:  # here rather than in the model, for a message without pydantic's wording
            data["time"] = parse_duration(data["time"])
        except ValueError as exc:
            raise ConfigError(f"{source}: time: {exc}") from None
        if "trials" not in data:
            data["trials"] = None  # a time budget alone: as many trials as fit
    if isinstance(data.get("objectives"), str):
        data["objectives"] = [data["objectives"]]
    try:
        return SearchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_one_line(exc)}") from None


def _track_entries(value: Any, source: str) -> list[dict[str, Any]]:
    """``track: tensorboard`` / ``[tensorboard, {name: mlflow, ...}]`` as a list of mappings with a name."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, Mapping)) else value
    if not isinstance(items, list):
        raise ConfigError(
            f"{source}: track must be a tracker name or a list of them (tensorboard, mlflow), got {value!r}"
        )
    entries = []
    for item in items:
        if isinstance(item, str):
            entries.append({"name": item})
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            entries.append(dict(item))
        else:
            raise ConfigError(
                f"{source}: each track entry is a tracker name or a mapping with a 'name', got {item!r}"
            )
    return entries


def load_config(path: str | Path | None) -> SearchConfig:
    """Read and validate a YAML search config (``None`` gives the defaults)."""
    return parse_config(load_raw(path), source=str(path) if path is not None else "config")


def load_raw(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML search config as a plain mapping, without validating its settings."""
    if path is None:
        return {}
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"config file {path} does not exist; check the path (or omit it to use the defaults)"
        )
    if not path.is_file():
        raise ConfigError(f"config path {path} is not a file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{path} is not valid YAML: {problem}{where}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file; a config is YAML text") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path} must hold a mapping of settings (space:, data:, strategy:, ...), got {data!r}"
        )
    return dict(data)
