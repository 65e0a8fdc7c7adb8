"""The data's training recipe in a search: what the final training (and the race) train with, and
the one line that says the recipe before the first trial.

The recipe is the part of the training that depends on the data: ``augment``,
``label_smoothing`` and ``warmup``. Its defaults per dataset are one table,
:data:`nasforge._defaults.RECIPES`, with a value for the trials and one for the final training.
The trials' recipe is the estimator's (:class:`~nasforge.TrainEstimator` resolves ``"auto"``);
the final training's follows one rule, :func:`final_recipe`: each item of the ``final:`` section
if set, else the ``estimator:`` section's, else (``auto``) the table's final-training value. So
the final training trains like the trials unless told otherwise, and a recipe the table gives
the final training alone (a warm-up that only pays off in a long training) still applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from nasforge._defaults import RECIPE_KEYS, Recipe, resolve_recipe
from nasforge.config import SearchConfig
from nasforge.data import DetectionTask
from nasforge.estimate import TrainEstimator
from nasforge.estimate._loop import fit_warmup

__all__ = ["final_recipe", "recipe_line"]

#: where a user changes the recipe, as the plan line says it
_OVERRIDE = "override: --augment, --label-smoothing, estimator:/final: in YAML"


def final_recipe(config: SearchConfig, dataset: str, epochs: int) -> dict[str, Any]:
    """The final training's ``augment``, ``label_smoothing`` and ``warmup`` for a training of
    ``epochs`` epochs on ``dataset`` (the task's name): each item of ``final:`` if set, else the
    ``estimator:`` section's, else the final-training value of :data:`~nasforge._defaults.RECIPES`;
    a warm-up longer than half of ``epochs`` (a race, a final training a time budget shortened) is
    shortened to half of them (:func:`~nasforge.estimate._loop.fit_warmup`).

    Example:
        >>> from nasforge.config import parse_config
        >>> cfg = parse_config({"data": "mnist", "estimator": {"augment": "shift", "warmup": 2}})
        >>> final_recipe(cfg, "mnist", 8)
        {'augment': 'shift', 'label_smoothing': 0.0, 'warmup': 2.0}
        >>> final_recipe(cfg, "mnist", 1)["warmup"]
        0.5
    """
    final = config.final
    estimator = config.estimator
    given = {key: _item(getattr(final, key), estimator, key) for key in RECIPE_KEYS}
    recipe = resolve_recipe(dataset, "final", **given)
    recipe["warmup"] = fit_warmup(recipe["warmup"], epochs)
    return recipe


def _item(final_value: Any, estimator: Mapping[str, Any], key: str) -> Any:
    """The final section's value of ``key``, else the estimator section's, else None (auto)."""
    if final_value is not None:
        return final_value
    return estimator.get(key)


def recipe_line(config: SearchConfig, task: Any, estimator: Any) -> str | None:
    """One line for the start of a search: the recipe of the trials (``estimator``'s, when it is
    a :class:`~nasforge.TrainEstimator`) and of the final training, whether the table chose any
    of what it names (``auto``), and how to change it; None for detection data (no recipe there).

    Example:
        >>> from nasforge.config import parse_config
        >>> from nasforge.data import load
        >>> task = load("digits")
        >>> recipe_line(parse_config({}), task, TrainEstimator(task)).split(" (override")[0]
        'recipe for digits (auto): no augmentation, no label smoothing'
    """
    if isinstance(task, DetectionTask):
        return None
    trains = isinstance(estimator, TrainEstimator)
    trial = estimator.recipe if trains else None
    final = final_recipe(config, task.name, config.final.epochs) if config.final.epochs > 0 else None
    if trial is None and final is None:
        return None
    parts: dict[str, str] = {}  # the items the line names, and what it says of each
    for key in RECIPE_KEYS:
        part = _part(key, None if trial is None else trial[key], None if final is None else final[key])
        if part:
            parts[key] = part
    auto = any(_from_table(config, key, trains) for key in parts)
    return f"recipe for {task.name}{' (auto)' if auto else ''}: {', '.join(parts.values())} ({_OVERRIDE})"


def _part(key: str, trial: Any, final: Any) -> str:
    """What the line says of ``key`` used in the trials and in the final training (None: no such
    training); nothing for a warm-up that neither has."""
    if trial is None or final is None or trial == final:
        value = final if trial is None else trial
        return "" if key == "warmup" and not value else _say(key, value)
    if final == _NOTHING[key]:
        return f"{_say(key, trial)} in the trials"
    if trial == _NOTHING[key]:
        return f"{_say(key, final)} in the final training"
    return f"{_say(key, trial)} in the trials, {_say(key, final)} in the final training"


#: a recipe that adds nothing: no augmentation, no label smoothing, no warm-up
_NOTHING = asdict(Recipe())


def _from_table(config: SearchConfig, key: str, trains: bool) -> bool:
    """Whether the table chose ``key`` for the trials (``trains``) or the final training."""
    est = config.estimator.get(key)
    est_auto = est is None or est == "auto"
    fin = getattr(config.final, key)
    final_auto = fin == "auto" or (fin is None and est_auto)
    return (trains and est_auto) or (config.final.epochs > 0 and final_auto)


def _say(key: str, value: Any) -> str:
    if key == "augment":
        return "no augmentation" if value == "none" else f"{value} augmentation"
    if key == "label_smoothing":
        return f"label smoothing {value:g}" if value else "no label smoothing"
    return f"warm-up {value:g} epoch{'' if value == 1 else 's'}" if value else "no warm-up"
