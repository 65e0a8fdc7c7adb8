"""The per-block latency table: blocks found in call order, each measured once, sums that add up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from torch import nn

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.hardware import LatencyTable


def _table() -> LatencyTable:
    return LatencyTable(repeats=3, warmup=1)


def test_blocks_are_the_sequential_leaves_with_the_shapes_they_see() -> None:
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)), nn.Flatten(), nn.Linear(100, 3)
    )
    blocks = _table().blocks(net, (1, 12, 12))
    assert [type(b).__name__ for _, b, _ in blocks] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert [s for _, _, s in blocks] == [(1, 12, 12), (4, 10, 10), (4, 10, 10), (4, 5, 5), (100,)]


def test_a_block_seen_again_is_not_measured_again_and_the_sum_adds_up() -> None:
    table = _table()
    a = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
    first = table.predict(a, (1, 10, 10))
    assert table.measured == 3  # the two ReLUs see the same shape: one entry
    keys = [key for key, _, _ in table.blocks(a, (1, 10, 10))]
    assert table.overhead_ms is not None
    assert first == pytest.approx(table.overhead_ms + sum(table.entries[k]["ms"] for k in keys))
    b = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())  # shares both blocks with a
    table.predict(b, (1, 10, 10))
    assert table.measured == 3
    table.predict(b, (1, 12, 12))  # another resolution is another entry
    assert table.measured == 5


def test_architectures_of_a_space_and_a_saved_table(tmp_path: Path) -> None:
    space = nf.spaces.ChainCNN(depth=(2, 3)).bind((1, 8, 8), 3)
    table = _table()
    archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
    predicted = [table.predict(a) for a in archs]
    assert all(p > 0 for p in predicted)
    saved = table.save(tmp_path / "table.json")
    again = LatencyTable.load(saved)
    assert again.entries == table.entries and again.overhead_ms == table.overhead_ms
    assert [again.predict(a) for a in archs] == pytest.approx(predicted)
    assert again.measured == 0  # everything came from the file
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not a nasforge latency table"):
        LatencyTable.load(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="does not exist"):
        LatencyTable.load(tmp_path / "missing.json")


def test_calibration_fits_a_scale_and_offset_and_is_saved(tmp_path: Path) -> None:
    table = _table()
    nets = [nn.Sequential(*[nn.Conv2d(2, 2, 3, padding=1) for _ in range(k)]) for k in (1, 2, 4)]
    sums = [table.block_sum(n, (2, 8, 8)) for n in nets]
    scale, offset = table.calibrate([(n, (2, 8, 8), 1.5 * s + 0.1) for n, s in zip(nets, sums, strict=True)])
    assert (scale, offset) == (pytest.approx(1.5), pytest.approx(0.1))
    assert table.predict(nets[1], (2, 8, 8)) == pytest.approx(1.5 * sums[1] + 0.1)
    again = LatencyTable.load(table.save(tmp_path / "t.json"))
    assert (again.scale, again.offset_ms) == (pytest.approx(1.5), pytest.approx(0.1))
    with pytest.raises(ConfigError, match="at least two"):
        table.calibrate([(nets[0], (2, 8, 8), 1.0)])
