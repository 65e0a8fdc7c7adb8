"""``load_task``: one name, a classification Task or a DetectionTask; what a search config loads."""

from __future__ import annotations

import pytest

from nasforge.data import DetectionTask, Task, is_detection_dataset, load_task
from nasforge.errors import ConfigError, UnknownComponentError

SMALL = {"n_train": 8, "n_val": 4, "n_test": 4, "size": 32, "min_size": 6, "max_size": 12}


def test_a_detection_name_loads_a_detection_task_with_its_fraction() -> None:
    task = load_task("shapes-det", fraction=0.5, seed=3, **SMALL)
    assert isinstance(task, DetectionTask) and len(task.x_train) == 4 and len(task.x_val) == 4
    same = load_task("shapes-det", fraction=0.5, seed=3, **SMALL)
    assert bool((task.x_train == same.x_train).all())  # seeded: the same images and subset
    assert isinstance(load_task("digits"), Task) and not is_detection_dataset("digits")


def test_class_names_of_a_detection_task() -> None:
    task = load_task("shapes-det", **SMALL).with_class_names(["round", "box", "wedge"])
    assert task.class_names == ("round", "box", "wedge") and isinstance(task, DetectionTask)
    with pytest.raises(ConfigError, match="got 2"):
        task.with_class_names(["a", "b"])


def test_unknown_names_and_options_are_clear() -> None:
    with pytest.raises(UnknownComponentError, match=r"Did you mean 'shapes-det'\?.*detection: coco"):
        load_task("shapes-dett")
    with pytest.raises(ConfigError, match="has no option 'download'"):
        load_task("shapes-det", download=True, **SMALL)
