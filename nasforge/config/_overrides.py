"""Command-line options merged into a search config before it is validated.

``nasforge search``'s options change the YAML mapping (:func:`apply_overrides`); the result is
validated like any config (:func:`search_config`), so options, YAML and Python share one set of
defaults: the config model's (:mod:`nasforge.config._model`). Options left at None leave the
config as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasforge.config._model import (
    SECTION_DEFAULTS,
    SearchConfig,
    budget_for,
    fill_defaults,
    load_raw,
    parse_config,
)
from nasforge.data import is_detection_dataset
from nasforge.errors import ConfigError, UnknownComponentError
from nasforge.registry import ESTIMATORS

__all__ = [
    "apply_overrides",
    "check_recipe_options",
    "merge_executor_options",
    "merge_knobs",
    "merge_track_options",
    "parse_class_names",
    "search_config",
    "with_metric",
]


def apply_overrides(
    data: dict[str, Any],
    *,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    download: bool | None = None,
    space: str | None = None,
    estimator: str | None = None,
    strategy: str | None = None,
    scheduler: str | None = None,
    trials: int | None = None,
    time: str | float | None = None,
    timeout: float | None = None,
    executor: str | None = None,
    concurrency: int | None = None,
    trial_time_limit: float | None = None,
    trial_memory_limit: float | None = None,
    address: str | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    trials_per_gpu: int | None = None,
    device: str | None = None,
    amp: str | None = None,
    seed: int | None = None,
    epochs: int | None = None,
    metric: str | None = None,
    fraction: float | None = None,
    batch_size: int | None = None,
    augment: str | None = None,
    label_smoothing: float | None = None,
    class_names: str | list[str] | None = None,
    final_epochs: int | None = None,
    race: int | None = None,
    race_epochs: int | None = None,
    race_folds: int | None = None,
    name: str | None = None,
    run_dir: str | Path | None = None,
    storage: str | None = None,
    track: list[str] | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Merge command-line options into a raw config mapping (as :func:`load_raw` reads it).

    Each option replaces the config's setting; ``space`` / ``strategy`` / ``scheduler`` keep the
    section's options when the section names no component (they go to the one named);
    ``estimator`` naming the dataset's default estimator (``train``, or ``train_det`` for a
    detection dataset) brings that budget's options, another name its own defaults; ``epochs``,
    ``fraction`` and ``batch_size`` go to the estimator (``batch_size`` also to ``final:`` unless
    the config's ``final:`` sets its own); ``augment`` and ``label_smoothing`` go to the trials
    (the ``train`` estimator's section) and to the final training (``final:``, over its own); the
    executor options pick ``process`` or ``ray`` when no executor is named (see
    :func:`merge_executor_options`), and ``track`` / ``tracking_uri`` as
    :func:`merge_track_options` says. ``time`` is a duration (``90s``, ``15m``, ``1h30m``);
    ``class_names`` ``a,b,c`` or a text file with one name per line; ``race``, ``race_epochs`` and
    ``race_folds`` go to ``final:`` (the final race of the top trials,
    :mod:`nasforge.experiment._race`), where the config's validation checks them.

    Returns:
        ``data``, changed in place, with the budgets of the (possibly overridden) dataset filled in.

    Raises:
        ConfigError: for an unreadable ``time``, ``metric`` or ``class_names``; ``metric`` with a
            detection dataset (detectors are ranked by ``val_map``); an unknown ``augment``, a
            ``label_smoothing`` outside [0, 1), or either with a detection dataset.
    """
    yaml_final = data.get("final")
    final_batch_set = isinstance(yaml_final, Mapping) and "batch_size" in yaml_final
    section = data.get("data")
    data["data"] = dict(section) if isinstance(section, Mapping) else ({"name": section} if section else {})
    if dataset is not None:
        data["data"]["name"] = dataset
    if data_dir is not None:
        data["data"]["root"] = str(data_dir)
    if download is not None:
        data["data"]["download"] = download
    data["data"].setdefault("name", "digits")
    fill_defaults(data)  # budgets follow the (possibly overridden) dataset
    if metric is not None and is_detection_dataset(data["data"]["name"]):
        raise ConfigError(
            f"--metric {metric} is a classification metric, but {data['data']['name']} is a detection "
            "dataset: detectors are ranked by val_map (COCO mAP@[.5:.95]); for mAP@.5 set "
            "objectives: [val_map_50] in a config file"
        )
    recipe = _recipe_options(augment, label_smoothing, data["data"]["name"])
    if estimator is not None:
        current = data.get("estimator")
        if estimator != (current.get("name") if isinstance(current, Mapping) else current):
            budget = budget_for(data["data"]["name"])["estimator"]
            data["estimator"] = dict(budget) if budget["name"] == estimator else {"name": estimator}
    for key, given in (("space", space), ("strategy", strategy), ("scheduler", scheduler)):
        current = data.get(key)
        if given is None or given == (current.get("name") if isinstance(current, Mapping) else current):
            continue
        if isinstance(current, Mapping) and "name" not in current:  # the options go to the one named
            default = SECTION_DEFAULTS.get(key)
            if default is None or default()["name"] != given:  # (else parse_config adds its defaults)
                data[key] = {**current, "name": given}
        else:
            data[key] = {"name": given}
    if time is not None:
        data["time"] = _duration(time)
    if metric is not None:
        data["objectives"] = with_metric(data.get("objectives"), metric)
    for key, value in (
        ("trials", trials),
        ("timeout", timeout),
        ("seed", seed),
        ("name", name),
        ("device", device),
        ("amp", amp),
        ("storage", storage),
    ):
        if value is not None:
            data[key] = value
    if class_names is not None:
        data["data"]["class_names"] = (
            parse_class_names(class_names) if isinstance(class_names, str) else list(class_names)
        )
    if run_dir is not None:
        data["run_dir"] = str(run_dir)
    merge_executor_options(
        data,
        executor,
        concurrency,
        trial_time_limit,
        trial_memory_limit,
        address,
        cpus_per_trial,
        gpus_per_trial,
        trials_per_gpu,
    )
    merge_track_options(data, track, tracking_uri)
    merge_knobs(data, "estimator", epochs=epochs, fraction=fraction, batch_size=batch_size)
    if _trains(data.get("estimator")):  # other estimators train no recipe; the final training does
        merge_knobs(data, "estimator", **recipe)
    # a config's own final: batch_size is the more specific setting, and stays
    merge_knobs(
        data,
        "final",
        epochs=final_epochs,
        batch_size=None if final_batch_set else batch_size,
        race=race,
        race_epochs=race_epochs,
        race_folds=race_folds,
        **recipe,  # the command line is the more specific: over a config's final: recipe too
    )
    if final_epochs is not None and isinstance(data.get("final"), dict):
        # --final-epochs N asks for N epochs: under --time no fixed share stretches them
        data["final"].update(time_share=None, max_epochs=None)
    return data


def _recipe_options(augment: str | None, label_smoothing: float | None, dataset: str) -> dict[str, Any]:
    """``--augment`` and ``--label-smoothing``, checked, as recipe options (None: not given)."""
    given = [
        f"--{k}" for k, v in (("augment", augment), ("label-smoothing", label_smoothing)) if v is not None
    ]
    if given and is_detection_dataset(dataset):
        raise ConfigError(
            f"{' and '.join(given)}: classification only; {dataset} is a detection dataset, and a detector "
            "trains without augmentation or label smoothing"
        )
    check_recipe_options(augment, label_smoothing)
    return {"augment": augment, "label_smoothing": label_smoothing}


def check_recipe_options(augment: str | None, label_smoothing: float | None) -> None:
    """Raise a one-line ConfigError, naming the option, for an ``--augment`` other than auto, none,
    shift, shift+flip, or a ``--label-smoothing`` outside [0, 1) (None: not given)."""
    from nasforge.estimate._loop import AUGMENTATIONS

    valid = ("auto", *AUGMENTATIONS)
    if augment is not None and augment not in valid:
        raise ConfigError(
            f"--augment must be one of {', '.join(valid)} (auto: the recipe for the data), got {augment!r}"
        )
    if label_smoothing is not None and not 0 <= label_smoothing < 1:
        raise ConfigError(f"--label-smoothing must be in [0, 1), e.g. 0.1, got {label_smoothing!r}")


def _trains(section: Any) -> bool:
    """Whether an ``estimator`` section (a name, or a mapping with one) is the ``train`` estimator."""
    name = section.get("name") if isinstance(section, Mapping) else section
    try:
        return isinstance(name, str) and ESTIMATORS.canonical_name(name) == "train"
    except UnknownComponentError:  # reported by the config's validation
        return False


def search_config(path: str | Path | None = None, **overrides: Any) -> SearchConfig:
    """The validated config of ``nasforge search PATH [OPTIONS]``: the YAML file (None: the
    defaults) with the options of :func:`apply_overrides` merged in.

    Raises:
        ConfigError: for a bad file, option or setting; also for ``metric`` other than accuracy
            with an estimator other than ``train`` (only that one measures the other metrics).

    Example:
        >>> search_config(None, strategy="random", epochs=3).estimator["epochs"]
        3
    """
    data = apply_overrides(load_raw(path), **overrides)
    cfg = parse_config(data, source=str(path) if path is not None else "options")
    metric = overrides.get("metric")
    if metric not in (None, "accuracy") and cfg.estimator.get("name") != "train":
        raise ConfigError(
            f"--metric {metric} needs the train estimator (it measures val_{metric}); "
            f"estimator {cfg.estimator.get('name')!r} reports validation accuracy only"
        )
    return cfg


def with_metric(objectives: Any, metric: str) -> list[Any]:
    """``--metric``: the config's objectives with ``val_<metric>`` in first place."""
    from nasforge.estimate._metrics import SELECTION_METRICS

    if metric not in SELECTION_METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(SELECTION_METRICS)}, got {metric!r}")
    rest = objectives if isinstance(objectives, list) else [objectives] if objectives else []
    return [f"val_{metric}", *[o for o in rest[1:] if o != f"val_{metric}"]]


def merge_knobs(data: dict[str, Any], section: str, **knobs: Any) -> None:
    """Options given on the command line into a config section (``estimator: zero_cost`` is a
    name alone); a section of another shape is left for the config's validation to report."""
    given = {k: v for k, v in knobs.items() if v is not None}
    current = data.get(section)
    if not given or not isinstance(current, (str, Mapping)):
        return
    data[section] = {**({"name": current} if isinstance(current, str) else current), **given}


def _duration(text: str | float) -> float:
    """``--time``'s value in seconds, or a one-line error."""
    from nasforge._budget import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--time: {exc}") from None


def parse_class_names(value: str) -> list[str]:
    """``--class-names``: ``a,b,c``, or a text file with one name per line."""
    path = Path(value)
    if path.is_file():
        try:
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--class-names: cannot read {path} as text: {exc}") from None
    else:
        names = [n.strip() for n in value.split(",")]
    if not any(names):
        raise ConfigError(f"--class-names: no names in {value!r}; give a,b,c or a file with one per line")
    return names


def merge_executor_options(
    data: dict[str, Any],
    name: str | None,
    concurrency: int | None,
    time_limit: float | None,
    memory_limit: float | None,
    address: str | None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    trials_per_gpu: int | None = None,
) -> None:
    """Merge the executor options of ``nasforge search`` into the config's ``executor`` mapping.

    Options that only make sense out of process pick an executor when none is named: ``ray`` for
    ``address`` / ``cpus_per_trial`` / ``gpus_per_trial``, else ``process``. Naming another
    executor than the config's drops the config's executor options.
    """
    current = data.get("executor")
    section = dict(current) if isinstance(current, Mapping) else ({"name": current} if current else {})
    ray_only = (address, cpus_per_trial, gpus_per_trial) != (None,) * 3
    out_of_process = (concurrency, time_limit, memory_limit, trials_per_gpu) != (None,) * 4
    if name is None and not section and (ray_only or out_of_process):
        name = "ray" if ray_only else "process"
    if name is not None and name != section.get("name"):
        section = {"name": name}
    for key, value in (
        ("concurrency", concurrency),
        ("time_limit", time_limit),
        ("memory_limit_mb", memory_limit),
        ("address", address),
        ("cpus_per_trial", cpus_per_trial),
        ("gpus_per_trial", gpus_per_trial),
        ("trials_per_gpu", trials_per_gpu),
    ):
        if value is not None:
            section[key] = value
    if section:
        data["executor"] = section


def merge_track_options(data: dict[str, Any], names: list[str] | None, tracking_uri: str | None) -> None:
    """Merge ``--track`` / ``--tracking-uri`` into the config's ``track`` list.

    ``--track`` replaces the list, keeping the config's options of a tracker it names again;
    ``--tracking-uri`` goes to the mlflow tracker, adding one if there is none.
    """
    if not names and tracking_uri is None:
        return
    current = data.get("track")
    entries: list[Any] = current if isinstance(current, list) else ([current] if current else [])

    def name_of(entry: Any) -> Any:
        return entry.get("name") if isinstance(entry, Mapping) else entry

    if names:
        wanted = dict.fromkeys(n.strip() for item in names for n in item.split(",") if n.strip())
        given = {name_of(e): e for e in reversed(entries)}
        entries = [given.get(n, n) for n in wanted]
    if tracking_uri is not None:
        if "mlflow" not in [name_of(e) for e in entries]:
            entries = [*entries, "mlflow"]
        entries = [
            {**(e if isinstance(e, Mapping) else {"name": e}), "tracking_uri": tracking_uri}
            if name_of(e) == "mlflow"
            else e
            for e in entries
        ]
    data["track"] = entries
