"""Every registered estimator passes the estimator conformance suite, each on a case as small as it
allows; a newly registered estimator without a case here fails the first test."""

from __future__ import annotations

from pathlib import Path

import pytest

import nasforge as nf
from nasforge.data import load_detection
from nasforge.registry import ESTIMATORS, SPACES
from nasforge.space import DetectorSpace, NB201Space
from nasforge.testing import EstimatorConformance

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
CASES = ("train", "train_det", "zero_cost", "supernet", "nb201", "nb_macro", "nb301")


def test_every_registered_estimator_has_a_case() -> None:
    assert sorted(ESTIMATORS.names()) == sorted(CASES)


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return nf.datasets.load("digits", fraction=0.3)


def _chain(task):  # type: ignore[no-untyped-def]
    space = SPACES.create("chain_cnn", depth=(1, 2), layer={"filters": [8, 16]})
    return space.bind(task.input_shape, task.num_classes)


def _bench() -> Path:
    if not BENCH.is_dir():
        pytest.skip(f"the benchmark tables in {BENCH} are absent")
    return BENCH


class TestTrain(EstimatorConformance):
    @pytest.fixture
    def make_case(self, digits):  # type: ignore[no-untyped-def]
        return lambda: (ESTIMATORS.create("train", task=digits, epochs=2, threads=1), _chain(digits))


class TestZeroCost(EstimatorConformance):
    @pytest.fixture
    def make_case(self, digits):  # type: ignore[no-untyped-def]
        return lambda: (
            ESTIMATORS.create("zero_cost", task=digits, proxies=["synflow", "params"], threads=1),
            _chain(digits),
        )


class TestSupernet(EstimatorConformance):
    @pytest.fixture
    def make_case(self, digits):  # type: ignore[no-untyped-def]
        options = {"epochs": 1, "fraction": 0.3, "C": 2, "N": 1, "threads": 1, "calib_batches": 2}
        return lambda: (
            ESTIMATORS.create("supernet", task=digits, **options),
            NB201Space(C=2, N=1).bind(digits.input_shape, digits.num_classes),
        )


class TestTrainDet(EstimatorConformance):
    @pytest.fixture
    def make_case(self):  # type: ignore[no-untyped-def]
        task = load_detection("shapes-det", n_train=32, n_val=16, n_test=8, seed=0)
        stages = [{"width": [8]}, {"width": [8]}, {"width": [8]}]
        space = DetectorSpace(
            stem=[8],
            stages=stages,
            neck_width=[8],
            head_width=[8],
            head_depth=[1],
            scales=[2],
            block={"depth": [1]},
        )
        return lambda: (
            ESTIMATORS.create(
                "train_det", task=task, epochs=1, steps_per_epoch=1, resolution=32, batch_size=8, threads=1
            ),
            space.bind(task.input_shape, task.num_classes),
        )


class TestNB201(EstimatorConformance):
    @pytest.fixture
    def make_case(self):  # type: ignore[no-untyped-def]
        root = _bench()
        return lambda: (ESTIMATORS.create("nb201", root=root), NB201Space())


class TestNBMacro(EstimatorConformance):
    @pytest.fixture
    def make_case(self):  # type: ignore[no-untyped-def]
        root = _bench()
        return lambda: (ESTIMATORS.create("nb_macro", root=root), SPACES.create("nb_macro"))


class TestNB301(EstimatorConformance):
    @pytest.fixture
    def make_case(self):  # type: ignore[no-untyped-def]
        root = _bench()
        return lambda: (ESTIMATORS.create("nb301", root=root), SPACES.create("darts"))
