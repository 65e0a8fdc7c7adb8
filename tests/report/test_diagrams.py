"""Architecture diagrams for every space that has one; other spaces get none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_runs import plain_space

from nasforge.report._diagrams import can_draw, draw_architecture
from nasforge.space import ChainCNN, MBConvSpace, NB201Space, SearchSpace
from nasforge.space._darts import DartsSpace
from nasforge.space._macro import MacroSpace

SPACES = {
    "chain_cnn": lambda: ChainCNN(depth=(2, 12), input_shape=(1, 8, 8), num_classes=10),  # wraps rows
    "mbconv": lambda: MBConvSpace(),
    "nb201": lambda: NB201Space(),
    "darts": lambda: DartsSpace(),
    "nb_macro": lambda: MacroSpace(),
}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_space_with_a_diagram_draws_its_architectures(name: str, tmp_path: Path) -> None:
    space: SearchSpace = SPACES[name]()
    rng = np.random.default_rng(0)
    for i in range(3):
        arch = space.sample(rng)
        assert can_draw(arch)
        path = draw_architecture(arch, tmp_path / f"{i}.png", title=f"trial {i}")
        assert path == tmp_path / f"{i}.png"
        with Image.open(path) as img:
            width, height = img.size
            grey = np.asarray(img.convert("L"), dtype=float)
        assert 300 <= width <= 1300 and 150 <= height <= 1000
        assert grey.std() > 5  # something is drawn on the white page


def test_a_space_without_a_diagram_gets_none(tmp_path: Path) -> None:
    arch = plain_space().sample(np.random.default_rng(0))
    assert not can_draw(arch)
    assert draw_architecture(arch, tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()
