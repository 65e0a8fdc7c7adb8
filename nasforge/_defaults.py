"""Defaults that more than one module states: each number lives here once.

The search config (:data:`nasforge.config.SMALL_BUDGET` / ``LARGE_BUDGET``) holds what the CLI and
YAML use per dataset size; the Python API's constructors and functions default to these. Changing
one here changes every place that means the same thing. The training recipe chosen for each
dataset (augmentation, label smoothing, warm-up) is the table :data:`RECIPES`.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FINAL_EPOCHS",
    "DEFAULT_LR",
    "DEFAULT_OPTIMIZER",
    "DEFAULT_RECIPE",
    "DEFAULT_SCHEDULE",
    "DEFAULT_SUPERNET_EPOCHS",
    "DEFAULT_TRIAL_EPOCHS",
    "DEFAULT_WEIGHT_DECAY",
    "MAX_WARMUP_SHARE",
    "RECIPES",
    "RECIPE_KEYS",
    "Recipe",
    "recipe_for",
    "resolve_recipe",
]

#: training epochs of one search trial (``TrainEstimator``, ``TrainBudget``; the config's
#: ``SMALL_BUDGET`` estimator says the same)
DEFAULT_TRIAL_EPOCHS = 10
#: training epochs of the final training called from Python (``train_final``, ``train_detector``)
DEFAULT_FINAL_EPOCHS = 30
#: training epochs of a weight-sharing supernet (``SupernetEstimator``, ``DARTS``, ``GDAS``)
DEFAULT_SUPERNET_EPOCHS = 10

# The recipe that trains a classifier, in a trial (TrainEstimator, TrainBudget) and finally (train_final).
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 3e-3
DEFAULT_OPTIMIZER = "adam"
DEFAULT_WEIGHT_DECAY = 5e-4
DEFAULT_SCHEDULE = "cosine"


@dataclass(frozen=True)
class Recipe:
    """The part of a training recipe that depends on the data: see :data:`RECIPES`.

    Attributes:
        augment: ``"none"``, ``"shift"`` or ``"shift+flip"`` (:func:`nasforge.estimate._loop.fit`).
        label_smoothing: label smoothing of the training loss, in [0, 1).
        warmup: epochs of linear learning-rate warm-up (0: none).
    """

    augment: str = "none"
    label_smoothing: float = 0.0
    warmup: float = 0.0


#: the largest share of a training's epochs its learning-rate warm-up may take: the schedule needs
#: the rest to decay (a cosine that starts at the last step would never lower the rate)
MAX_WARMUP_SHARE = 0.5

#: the items of a :class:`Recipe`, as options of ``TrainEstimator``, ``train_final`` and ``final:``
RECIPE_KEYS = ("augment", "label_smoothing", "warmup")

#: **The training recipe per dataset**: what ``augment: auto`` (the default everywhere) and a
#: ``label_smoothing`` / ``warmup`` left unset mean, for the search's trials (``"trial"``:
#: :class:`~nasforge.TrainEstimator`) and for the final training (``"final"``: the search's
#: ``final:``, :func:`~nasforge.train_final`, ``nasforge train``). Looked up by the dataset's name
#: (``task.name``; aliases such as ``fmnist`` count as their dataset); any other data (an image
#: folder, an ``.npz`` file, a ``Task`` of your own) gets :data:`DEFAULT_RECIPE`. Flips are for
#: natural images only, never for digits or text; medical images get no augmentation unless asked
#: for. An item given explicitly (``--augment``, ``--label-smoothing``, an ``estimator:`` or
#: ``final:`` option, a keyword argument) always wins over this table. Change the numbers here:
#: every trial, final training and plan line follows.
RECIPES: dict[str, dict[str, Recipe]] = {
    # 1,077 8x8 images: unchanged since before recipes (the README's Quick start pick depends on it)
    "digits": {"trial": Recipe("none", 0.0, 0.0), "final": Recipe("none", 0.0, 0.0)},
    # Measured 2026-12-03 (docs/benchmarks.md, "Training recipes"): at the search's final budget
    # (8 epochs), Fashion-MNIST's zoo network lost 3 points with shifts (0.885 -> 0.852), shifts and
    # flips (0.853) or shifts, flips, label smoothing 0.1 and warm-up (0.855): short trainings
    # underfit. Over 20 epochs on all the images (what a 30-minute search's final training gets),
    # a 65k-parameter network still lost 0.9 points with shifts and flips (0.9296 -> 0.9204, one
    # seed). So nothing is added by default; ask for it (--augment shift+flip) for long trainings
    # of larger networks.
    "mnist": {"trial": Recipe("none", 0.0, 0.0), "final": Recipe("none", 0.0, 0.0)},
    "fashion-mnist": {"trial": Recipe("none", 0.0, 0.0), "final": Recipe("none", 0.0, 0.0)},
}
#: the recipe of data :data:`RECIPES` does not name (folder, npz, your own): nothing added
DEFAULT_RECIPE: dict[str, Recipe] = {"trial": Recipe(), "final": Recipe()}


def recipe_for(dataset: str | None, stage: str) -> Recipe:
    """The recipe :data:`RECIPES` holds for ``dataset`` (a name or an alias) at ``stage``
    (``"trial"`` or ``"final"``); :data:`DEFAULT_RECIPE`'s for a name it does not hold.

    Example:
        >>> recipe_for("fmnist", "final")
        Recipe(augment='none', label_smoothing=0.0, warmup=0.0)
        >>> recipe_for("chest_xray", "trial")
        Recipe(augment='none', label_smoothing=0.0, warmup=0.0)
    """
    if stage not in ("trial", "final"):
        raise ValueError(f"stage must be 'trial' or 'final', got {stage=}")
    from nasforge.errors import UnknownComponentError
    from nasforge.registry import DATASETS

    name = dataset or ""
    with contextlib.suppress(UnknownComponentError):  # a folder's or a file's own name stays
        name = DATASETS.canonical_name(name)
    return RECIPES.get(name, DEFAULT_RECIPE)[stage]


def resolve_recipe(
    dataset: str | None,
    stage: str,
    *,
    epochs: int | None = None,
    augment: Any = "auto",
    label_smoothing: Any = None,
    warmup: Any = None,
) -> dict[str, Any]:
    """The recipe a training of ``epochs`` epochs uses: each item given, else :func:`recipe_for`'s
    (``augment="auto"``, ``label_smoothing=None``, ``warmup=None`` ask for the table's). Values
    given are passed on as they are, for the training to validate; the table's warm-up is
    shortened to half of ``epochs`` (:data:`MAX_WARMUP_SHARE`) when it is longer.

    Example:
        >>> resolve_recipe("mnist", "trial", label_smoothing=0.05)
        {'augment': 'none', 'label_smoothing': 0.05, 'warmup': 0.0}
        >>> resolve_recipe("mnist", "final", warmup=1.0)["warmup"]
        1.0
    """
    table = asdict(recipe_for(dataset, stage))
    if epochs is not None:
        table["warmup"] = min(table["warmup"], MAX_WARMUP_SHARE * epochs)
    given = {"augment": augment, "label_smoothing": label_smoothing, "warmup": warmup}
    return {k: table[k] if v is None or v == "auto" else v for k, v in given.items()}
