"""The NAS-Bench-201 network: parameter counts against the real table, forward passes, odd inputs.

The table is read from ``../shared/benchmarks/nb201`` next to the repository; the parameter test
skips when it is absent.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.errors import ConfigError, SpaceError
from nasforge.hardware import count_params
from nasforge.nn import build_nb201_network
from nasforge.nn._nb201 import NB201Cell
from nasforge.space import NB201Space
from nasforge.space._nb201 import EDGES

TABLE = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "nb201" / "nb201_cifar10.csv"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BEST_OPS = ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_params_equal_the_table_for_random_cells() -> None:
    if not TABLE.is_file():
        pytest.skip(f"NB201 table not found at {TABLE} (shared benchmarks are not on this machine)")
    with TABLE.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(201)
    picks = [*rng.choice(len(rows), 30, replace=False).tolist(), 6111]
    for i in picks:
        r = rows[i]
        net = build_nb201_network(r["arch_str"], (3, 32, 32), 10, device="meta")
        assert count_params(net) == round(float(r["params_M"]) * 1e6), r["arch_str"]
    assert max(float(r["params_M"]) for r in rows) == 1.531546


def test_params_follow_the_benchmark_formula() -> None:
    # 0.073306 M + 0.028 M per conv1x1 edge + 0.24304 M per conv3x3 edge (affine BatchNorm)
    for ops in ([0] * 6, [3] * 6, [2, 3, 4, 1, 2, 0]):
        n1, n3 = ops.count(2), ops.count(3)
        net = build_nb201_network(ops, (3, 32, 32), 10, device="meta")
        assert count_params(net) == 73_306 + 28_000 * n1 + 243_040 * n3


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)])
@pytest.mark.parametrize(
    "cell",
    [BEST, "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"],
)
def test_forward_on_cifar_and_fashion_mnist_shapes(shape: tuple[int, int, int], cell: str) -> None:
    torch.manual_seed(0)
    net = build_nb201_network(cell, shape, 10)
    out = net(torch.randn(2, *shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert net.stem.conv.weight.grad is not None


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 1, 1), (1, 3, 2), (4, 9, 9)])
def test_any_input_size_and_class_count(shape: tuple[int, int, int]) -> None:
    net = build_nb201_network([3, 1, 4, 2, 0, 1], shape, 3, C=4, N=1)
    net.eval()
    out = net(torch.randn(2, *shape))
    assert out.shape == (2, 3) and torch.isfinite(out).all()


def test_all_none_cell_gives_finite_logits() -> None:
    net = build_nb201_network(ALL_NONE, (3, 32, 32), 10)
    assert count_params(net) == 73_306
    for train in (True, False):
        net.train(train)
        out = net(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10) and torch.isfinite(out).all()


def _reference_cell(cell: NB201Cell, x: torch.Tensor) -> torch.Tensor:
    """NB201's InferCell.forward: every edge computed, 'none' as multiplication by zero."""
    nodes = [x]
    for j in (1, 2, 3):
        nodes.append(sum(cell.edges[i](nodes[src]) for i, (to, src) in enumerate(EDGES) if to == j))
    return nodes[3]


@pytest.mark.parametrize(
    "cell",
    [
        BEST,
        ALL_NONE,
        "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",  # node 1 dead
        "|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|",  # node 1 zero
    ],
)
def test_cell_skips_only_dead_edges(cell: str) -> None:
    torch.manual_seed(1)
    net = build_nb201_network(cell, (3, 8, 8), 10, C=4, N=1).eval()
    block = net.cells[0]
    assert isinstance(block, NB201Cell)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(block(x), _reference_cell(block, x))


def test_cell_formats_build_the_same_network() -> None:
    space = NB201Space()
    arch = space.from_arch_str(BEST)
    forms = [BEST, arch.params, [3, 3, 3, 1, 3, 2], list(BEST_OPS)]
    counts = {count_params(build_nb201_network(f, (3, 32, 32), 10, device="meta")) for f in forms}
    assert counts == {count_params(space.build(arch, (3, 32, 32), 10, device="meta"))}
    net = arch.build((1, 28, 28), 7, device="meta")
    assert net.ops == BEST_OPS and net.classifier.out_features == 7
    assert "nor_conv_3x3~0" in repr(net)


def test_space_width_and_depth_reach_the_network() -> None:
    space = NB201Space(C=8, N=2)
    arch = space.from_arch_str(BEST)
    net = space.build(arch, (3, 32, 32), 10, device="meta")
    assert len(net.cells) == 3 * 2 + 2
    assert net.classifier.in_features == 32


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((BEST, (3, 32), 10), {}, ConfigError),
        ((BEST, (3, 0, 32), 10), {}, ConfigError),
        ((BEST, (3, 32, 32), 0), {}, ConfigError),
        ((BEST, (3, 32, 32), 10), {"C": 0}, ConfigError),
        ((BEST, (3, 32, 32), 10), {"N": 2.0}, ConfigError),
        (("|nor_conv_3x3~0|", (3, 32, 32), 10), {}, SpaceError),
        (([3, 3, 3], (3, 32, 32), 10), {}, SpaceError),
        (([3, 3, 3, 3, 3, 5], (3, 32, 32), 10), {}, SpaceError),
        (({"edge0": "none"}, (3, 32, 32), 10), {}, SpaceError),
    ],
)
def test_bad_arguments(args: tuple, kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        build_nb201_network(*args, **kwargs, device="meta")
