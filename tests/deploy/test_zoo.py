"""The model zoo: shipped models load by name, are what their files say, and classify real images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.config import parse_config
from nasforge.data import read_idx
from nasforge.errors import CheckpointError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()
NAMES = ["digits-s", "fashion-mnist-s", "mnist-s"]


def test_every_entry_is_shipped_small_and_documented():
    entries = nf.zoo.entries()
    assert [e.name for e in entries] == NAMES
    for entry in entries:
        assert entry.path.stat().st_size < 1024 * 1024, f"{entry.name} is not well under 1 MB"
        assert entry.description
        cfg = parse_config(entry.config, source=entry.name)  # the recipe is a valid search config
        model = nf.load(entry.name)
        assert model.path == entry.path
        assert model.provenance["zoo"] == entry.name
        assert model.provenance["dataset"] == cfg.data.name == entry.dataset
        assert "build_zoo.py" in model.provenance["reproduce"]
        assert 0.5 < model.metrics["test_accuracy"] <= 1.0
        assert model.metrics["params"] == sum(p.numel() for p in model.module.parameters())
        assert model.architecture.space.name == cfg.space["name"]


def test_unknown_name_lists_the_zoo():
    with pytest.raises(CheckpointError, match=r"no zoo model of that name.*fashion-mnist-s"):
        nf.load("fashion-mnist-xl")


def test_a_file_of_the_same_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("digits-s").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable nasforge model file"):
        nf.load("digits-s")


def test_digits_model_reproduces_its_recorded_test_accuracy():
    model = nf.load("digits-s")
    task = nf.datasets.load("digits")
    pixels = (task.x_test * torch.tensor(task.std).view(1, -1, 1, 1)) + torch.tensor(task.mean).view(
        1, -1, 1, 1
    )
    preds = model(pixels.clamp(0, 1))
    truth = [task.class_names[int(y)] for y in task.y_test]
    acc = float(np.mean([p.top1 == t for p, t in zip(preds, truth, strict=True)]))
    assert acc == pytest.approx(model.metrics["test_accuracy"], abs=1.5 / len(task.y_test))


def _idx_test_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    directory = SHARED / name
    files = [directory / f for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]
    if not all(f.is_file() for f in files):
        pytest.skip(f"real {name} test images not available in {directory}")
    return read_idx(files[0]), read_idx(files[1])


@pytest.mark.parametrize("name", ["mnist-s", "fashion-mnist-s"])
def test_idx_models_reproduce_their_recorded_test_accuracy(name):
    model = nf.load(name)
    images, labels = _idx_test_set(model.provenance["dataset"])
    preds = model(torch.from_numpy(images[:, None].copy()))  # uint8 pixels, as stored
    acc = float(np.mean([model.class_names.index(p.top1) == y for p, y in zip(preds, labels, strict=True)]))
    assert acc == pytest.approx(model.metrics["test_accuracy"], abs=5 / len(labels))


def test_predict_fashion_mnist_s_on_a_shoe_png(tmp_path):
    images, labels = _idx_test_set("fashion-mnist")
    assert labels[0] == 9  # the first test image is an ankle boot
    Image.fromarray(images[0]).save(tmp_path / "shoe.png")
    result = CliRunner().invoke(app, ["predict", "fashion-mnist-s", str(tmp_path / "shoe.png"), "--json"])
    assert result.exit_code == 0, result.output
    pred = json.loads(result.output)["predictions"][0]
    assert pred["top1"] == "Ankle boot"


def test_zoo_command_lists_every_model():
    runner = CliRunner()
    result = runner.invoke(app, ["zoo", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == NAMES
    assert all(r["size_kb"] < 1024 and r["classes"] == 10 for r in rows)
    table = runner.invoke(app, ["zoo"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    for name in NAMES:
        assert name in table.output


def test_fine_tune_from_a_zoo_model_on_other_data(tmp_path):
    """--from takes a zoo name, and the fine-tuned model records where it came from."""
    out = tmp_path / "ft.nasforge"
    result = CliRunner().invoke(
        app,
        ["train", "--from", "digits-s", "--dataset", "digits", "--epochs", "1", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    tuned = nf.load(out)
    assert tuned.provenance["fine_tuned_from"] == "digits-s"
    assert tuned.architecture.to_dict() == nf.load("digits-s").architecture.to_dict()


def test_zoo_table_is_readable_at_80_columns():
    """No line wider than 80 columns, and no name or layer broken in the middle."""
    table = CliRunner().invoke(app, ["zoo"], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    for entry in nf.zoo.entries():
        model = nf.load(entry.path)
        words = [entry.name, *model.architecture.space.describe(model.architecture).split()]
        assert all(any(w in line for line in lines) for w in words), (words, table.output)
        assert f"{model.metrics['test_accuracy']:.2%}" in table.output
    assert "not shown at this width: dataset" in table.output
