"""Task validation, Task.with_fraction and stratified_split, on the real digits data."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from nasforge.data import Task, stratified_split
from nasforge.data._digits import load_digits
from nasforge.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def digits() -> Task:
    return load_digits(seed=0)


def _labels() -> np.ndarray:
    # 3 unbalanced classes: 50 / 30 / 20 examples, shuffled order
    y = np.repeat(np.arange(3), [50, 30, 20])
    return np.random.default_rng(123).permutation(y)


# ------------------------------------------------------------------------------------ stratified_split


def test_stratified_split_partitions_all_indices() -> None:
    y = _labels()
    parts = stratified_split(y, (0.6, 0.2, 0.2), seed=0)
    assert [len(p) for p in parts] == [60, 20, 20]
    together = np.concatenate(parts)
    assert sorted(together.tolist()) == list(range(len(y)))
    for part in parts:
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0), "each part is sorted and has no duplicates"


def test_stratified_split_is_proportional_per_class() -> None:
    y = _labels()
    train, val, test = stratified_split(y, (0.6, 0.2, 0.2), seed=3)
    for part, share in ((train, 0.6), (val, 0.2), (test, 0.2)):
        counts = np.bincount(y[part], minlength=3)
        expected = np.array([50, 30, 20]) * share
        assert np.all(np.abs(counts - expected) <= 1), (counts, expected)


def test_stratified_split_sizes_follow_train_test_split_rounding() -> None:
    # later parts get ceil(fraction * n), the first the rest: 1,797 digits -> 1,077 / 360 / 360
    y = np.arange(1797) % 10
    assert [len(p) for p in stratified_split(y, (0.6, 0.2, 0.2), seed=0)] == [1077, 360, 360]
    # 0.1 * 60000 is 6000.000000000001 in floating point; it must not round up to 6001
    assert [len(p) for p in stratified_split(np.arange(60000) % 10, (0.9, 0.1), seed=0)] == [54000, 6000]


def test_stratified_split_is_reproducible_per_seed() -> None:
    y = _labels()
    first = stratified_split(y, (0.5, 0.5), seed=7)
    again = stratified_split(y, (0.5, 0.5), seed=7)
    other = stratified_split(y, (0.5, 0.5), seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


def test_stratified_split_allows_empty_parts() -> None:
    y = _labels()
    everything, nothing = stratified_split(y, (1.0, 0.0), seed=0)
    assert len(everything) == len(y) and len(nothing) == 0
    assert [len(p) for p in stratified_split(np.array([], dtype=np.int64), (0.5, 0.5), seed=0)] == [0, 0]


@pytest.mark.parametrize(
    "fractions", [(), (0.5, 0.6), (1.2, -0.2), (0.5, math.nan), (0.3, 0.3)], ids=lambda f: repr(f)
)
def test_stratified_split_rejects_bad_fractions(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="fractions"):
        stratified_split(_labels(), fractions, seed=0)


def test_stratified_split_rejects_2d_labels() -> None:
    with pytest.raises(DataError, match="one-dimensional"):
        stratified_split(np.zeros((4, 2), dtype=np.int64), (0.5, 0.5), seed=0)


# ---------------------------------------------------------------------------------------------- Task


def test_task_properties_and_describe(digits: Task) -> None:
    assert digits.input_shape == (1, 8, 8)
    assert digits.num_classes == 10
    assert digits.describe() == "digits: 1,077 train / 360 val / 360 test, 1x8x8, 10 classes"
    assert "tensor" not in repr(digits) and "1,077 train" in repr(digits)


def test_task_is_frozen(digits: Task) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        digits.name = "other"  # type: ignore[misc]


def test_task_coerces_sequences_to_tuples(digits: Task) -> None:
    task = dataclasses.replace(digits, class_names=list(digits.class_names), mean=[0.5], std=[1])  # type: ignore[arg-type]
    assert task.class_names == digits.class_names
    assert task.mean == (0.5,) and task.std == (1.0,)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: {"x_train": t.x_train.double()}, "x_train must be float32"),
        (lambda t: {"x_val": t.x_val[:, 0]}, r"x_val must be float32 of shape \(N, C, H, W\)"),
        (lambda t: {"y_test": t.y_test.int()}, "y_test must be int64"),
        (lambda t: {"y_val": t.y_val[:-1]}, "x_val has 360 images but y_val has 359 labels"),
        (lambda t: {"x_test": t.x_test[:, :, :4], "y_test": t.y_test}, "x_test images have shape"),
        (lambda t: {"x_train": t.x_train[:0], "y_train": t.y_train[:0]}, "training split is empty"),
        (lambda t: {"y_train": t.y_train + 1}, r"labels 1\.\.10, but there are 10 class names"),
        (lambda t: {"y_val": t.y_val - 1}, r"y_val holds labels -1\.\."),
        (lambda t: {"class_names": ()}, "class_names must be a non-empty"),
        (lambda t: {"mean": (0.1, 0.2)}, "one value per channel"),
        (lambda t: {"std": (0.0,)}, "std finite and > 0"),
        (lambda t: {"x_train": t.x_train.numpy()}, "must be torch.Tensor"),
        (lambda t: {"name": ""}, "name must be a non-empty string"),
        (lambda t: {"mean": ("a",)}, "mean / std sequences of numbers"),
    ],
)
def test_task_validation_says_what_is_wrong(digits: Task, change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=message):
        dataclasses.replace(digits, **change(digits))


def test_task_accepts_empty_val_and_test(digits: Task) -> None:
    task = dataclasses.replace(
        digits,
        x_val=digits.x_val[:0],
        y_val=digits.y_val[:0],
        x_test=digits.x_test[:0],
        y_test=digits.y_test[:0],
    )
    assert task.describe().startswith("digits: 1,077 train / 0 val / 0 test")


# ------------------------------------------------------------------------------------- with_fraction


def test_with_fraction_subsets_train_only(digits: Task) -> None:
    small = digits.with_fraction(0.25, seed=1)
    assert len(small.y_train) == math.ceil(0.25 * 1077)
    assert small.x_val is digits.x_val and small.y_test is digits.y_test
    assert small.x_train.shape[1:] == digits.x_train.shape[1:]
    assert (small.class_names, small.mean, small.std, small.source) == (
        digits.class_names,
        digits.mean,
        digits.std,
        digits.source,
    )

    # the kept examples are rows of the original training split, with their own labels
    def rows(task: Task) -> list[tuple[tuple[float, ...], int]]:
        return list(zip(map(tuple, task.x_train.flatten(1).tolist()), task.y_train.tolist(), strict=True))

    assert set(rows(small)) <= set(rows(digits))


def test_with_fraction_is_stratified(digits: Task) -> None:
    full = torch.bincount(digits.y_train, minlength=10).numpy()
    half = torch.bincount(digits.with_fraction(0.5, seed=2).y_train, minlength=10).numpy()
    assert np.all(np.abs(half - full * 0.5) <= 1)


def test_with_fraction_keeps_one_example_per_class(digits: Task) -> None:
    tiny = digits.with_fraction(0.001, seed=0)
    assert sorted(tiny.y_train.tolist()) == list(range(10))


def test_with_fraction_is_reproducible(digits: Task) -> None:
    a, b = digits.with_fraction(0.3, seed=5), digits.with_fraction(0.3, seed=5)
    c = digits.with_fraction(0.3, seed=6)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_train, c.x_train)


def test_with_fraction_accepts_numpy_numbers(digits: Task) -> None:
    assert len(digits.with_fraction(np.float32(0.5)).y_train) == 539


def test_with_fraction_one_returns_the_same_task(digits: Task) -> None:
    assert digits.with_fraction(1.0) is digits


@pytest.mark.parametrize("fraction", [0, 0.0, -0.5, 1.5, math.nan, math.inf, True, "0.5"])
def test_with_fraction_rejects_values_outside_unit_interval(digits: Task, fraction: object) -> None:
    with pytest.raises(ConfigError, match=r"fraction must be a number in \(0, 1\], got fraction="):
        digits.with_fraction(fraction)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ with_class_names


def test_with_class_names_names_every_class_in_label_order(digits: Task) -> None:
    names = [f"digit {i}" for i in range(10)]
    named = digits.with_class_names(names)
    assert named.class_names == tuple(names) and named.x_train is digits.x_train
    assert digits.class_names == tuple(str(i) for i in range(10))  # the original is unchanged


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ["a", "b"],
            r"class names: got 2 \(a, b\) for the 10 classes of digits; give one name per class, "
            r"in label order \(0\.\.9\)",
        ),
        ([str(i) for i in range(11)], r"got 11 .* for the 10 classes"),
        (["a", "", *"cdefghij"], r"must not be empty"),
        (["a", "a", *"cdefghij"], r"must differ, got a more than once"),
    ],
)
def test_with_class_names_refuses_a_wrong_count_or_unclear_names(
    digits: Task, names: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        digits.with_class_names(names)
