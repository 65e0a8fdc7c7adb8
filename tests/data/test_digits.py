"""load_digits, and nasforge.data.load / available resolving names through the registry."""

from __future__ import annotations

import pytest
import torch

import nasforge.data
from nasforge.data import Task, available, load
from nasforge.data._digits import load_digits
from nasforge.errors import ConfigError, UnknownComponentError


@pytest.fixture(scope="module")
def digits() -> Task:
    return load_digits()


def test_shapes_and_dtypes(digits: Task) -> None:
    for x, y in (
        (digits.x_train, digits.y_train),
        (digits.x_val, digits.y_val),
        (digits.x_test, digits.y_test),
    ):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8) and x.shape[0] == y.shape[0]
    assert digits.name == "digits"
    assert digits.class_names == tuple(str(d) for d in range(10))
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10


def test_split_sizes_add_up(digits: Task) -> None:
    sizes = (len(digits.y_train), len(digits.y_val), len(digits.y_test))
    assert sizes == (1077, 360, 360)
    assert sum(sizes) == 1797
    other = load_digits(val_fraction=0.1, test_fraction=0.3)
    assert (len(other.y_train), len(other.y_val), len(other.y_test)) == (1077, 180, 540)


def test_every_class_in_every_split(digits: Task) -> None:
    for y in (digits.y_train, digits.y_val, digits.y_test):
        counts = torch.bincount(y, minlength=10)
        assert counts.min() > 0
        # stratified: each class's share is that of the whole dataset (~10 %), give or take one example
        assert (counts - len(y) / 10).abs().max() <= 0.02 * len(y) + 1


def test_splits_do_not_overlap(digits: Task) -> None:
    # all 1,797 rows come back exactly once: the multiset of (image, label) rows is the sklearn data
    from sklearn.datasets import load_digits as sklearn_load_digits

    raw = sklearn_load_digits()
    x = torch.cat([digits.x_train, digits.x_val, digits.x_test])
    y = torch.cat([digits.y_train, digits.y_val, digits.y_test])
    pixels = (x * digits.std[0] + digits.mean[0]) * 16
    ours = sorted(zip(pixels.round().to(torch.int64).flatten(1).tolist(), y.tolist(), strict=True))
    theirs = sorted(zip(torch.as_tensor(raw.data).to(torch.int64).tolist(), raw.target.tolist(), strict=True))
    assert ours == theirs


def test_reproducible_per_seed_and_different_across_seeds() -> None:
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, c.y_train)


def test_normalised_with_training_statistics(digits: Task) -> None:
    assert abs(float(digits.x_train.mean())) < 1e-5
    assert abs(float(digits.x_train.std()) - 1.0) < 1e-2
    assert 0.2 < digits.mean[0] < 0.4 and 0.3 < digits.std[0] < 0.5  # of pixels scaled to [0, 1]
    assert abs(float(digits.x_test.mean())) < 0.1  # held-out data is normalised the same way


def test_fraction_subsets_training_split() -> None:
    task = load_digits(fraction=0.5, seed=1)
    assert (len(task.y_train), len(task.y_val), len(task.y_test)) == (539, 360, 360)


def test_root_and_download_are_accepted_and_ignored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    task = load_digits(tmp_path / "nowhere", download=True)
    assert len(task.y_train) == 1077
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fraction": 0.0}, r"fraction must be a number in \(0, 1\]"),
        ({"val_fraction": 1.0}, r"val_fraction must be a number in \[0, 1\)"),
        ({"test_fraction": -0.1}, r"test_fraction must be a number in \[0, 1\)"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "must be below 1 to leave images for training"),
    ],
)
def test_bad_fractions_raise_config_error(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_digits(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- load / available


def test_public_api() -> None:
    assert set(nasforge.data.__all__) == {
        "Task",
        "load",
        "download",
        "read_idx",
        "available",
        "stratified_split",
        "DetectionTask",
        "DETECTION_DATASETS",
        "load_detection",
        "load_task",
        "is_detection_dataset",
    }


def test_available_lists_registered_datasets() -> None:
    assert {"digits", "mnist", "fashion-mnist"} <= set(available())


def test_load_resolves_the_name_and_passes_options() -> None:
    task = load("digits", fraction=0.5, seed=1, val_fraction=0.1)
    assert task.name == "digits"
    assert len(task.y_val) == 180
    assert len(task.y_train) == (1797 - 180 - 360 + 1) // 2


def test_load_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownComponentError, match="fashion-mnist") as info:
        load("fashoin-mnist")
    assert "Did you mean 'fashion-mnist'?" in str(info.value)


def test_load_unknown_option_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"dataset 'digits' has no option 'verify'.*val_fraction"):
        load("digits", verify=True)
