"""nasforge train: full training of a chosen architecture, hyperparameter tuning, fine-tuning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.deploy._train import architecture_from
from nasforge.errors import ConfigError
from nasforge.estimate._setup import transfer_weights
from nasforge.testing import make_image_folder

runner = CliRunner()
SMALL_SPACE = "space: {name: chain_cnn, depth: [2, 2], layer: {op: [conv], filters: [16], stride: [1]}}\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    cfg = root / "c.yaml"
    cfg.write_text(SMALL_SPACE + "trials: 2\nestimator: {name: train, epochs: 1}\nfinal: {epochs: 0}\n")
    done = runner.invoke(app, ["search", str(cfg), "--run-dir", str(root / "run"), "--quiet"])
    assert done.exit_code == 0, done.output
    return root / "run"


def test_train_a_run_s_best_architecture(run_dir):
    done = runner.invoke(app, ["train", str(run_dir), "--epochs", "6", "--lr", "0.01", "--patience", "3"])
    assert done.exit_code == 0, done.output
    model = nf.load(run_dir / "trained.nasforge")
    best = json.loads((run_dir / "best_architecture.json").read_text())
    assert dict(model.architecture.params) == best["params"]
    assert model.provenance["source"] == "nasforge train" and model.provenance["settings"]["epochs"] == 6
    assert model.metrics["test_accuracy"] > 0.5 and 1 <= model.metrics["best_epoch"] <= 6
    arch, data = architecture_from(run_dir)
    assert arch.key == model.architecture.key and data["name"] == "digits"


def test_tuning_picks_settings_on_validation_accuracy(run_dir, tmp_path):
    out = tmp_path / "tuned.nasforge"
    done = runner.invoke(app, ["train", str(run_dir / "best_architecture.json"), "--dataset", "digits",
                               "--epochs", "4", "--tune", "3", "--out", str(out)])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "best: lr=" in done.output and "validation accuracy" in done.output
    settings = nf.load(out).provenance["settings"]
    assert (
        1e-4 <= settings["lr"] <= 3e-2
        and settings["batch_size"] in (32, 64, 128)
        and 1 <= settings["epochs"] <= 4
    )


def test_fine_tuning_keeps_matching_layers_and_replaces_the_head(run_dir, tmp_path):
    folder = make_image_folder(tmp_path / "shapes")  # 3 classes, 12x12 grey images
    base = run_dir / "trained.nasforge"
    if not base.exists():
        runner.invoke(app, ["train", str(run_dir), "--epochs", "2"])
    done = runner.invoke(app, ["train", "--from", str(base), "--dataset", "folder", "--data-dir", str(folder),
                               "--epochs", "3", "--out", str(tmp_path / "ft.nasforge")])  # fmt: skip
    assert done.exit_code == 0, done.output
    tuned = nf.load(tmp_path / "ft.nasforge")
    assert tuned.class_names == ("circle", "square", "stripe") and tuned.input_shape == (1, 12, 12)
    assert tuned.metrics["transferred"] > 0 and "weight tensors from" in done.output
    assert tuned.provenance["fine_tuned_from"] == str(base)


def test_transfer_weights_copies_only_what_fits():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4, 10))
    b = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    copied = transfer_weights(a, b)
    assert copied == ["0.weight", "0.bias"]
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[2].bias[:3], b[2].bias)


def test_train_errors_are_one_line(tmp_path, run_dir):
    missing = runner.invoke(app, ["train"])
    assert missing.exit_code == 2 and "give what to train" in missing.output
    both = runner.invoke(app, ["train", str(run_dir), "--from", str(run_dir / "trained.nasforge")])
    assert both.exit_code == 2
    absent = runner.invoke(app, ["train", str(tmp_path / "nope")])
    assert absent.exit_code == 2 and "does not exist" in absent.output
    (tmp_path / "arch.json").write_text("{}")
    with pytest.raises(ConfigError):
        architecture_from(tmp_path / "arch.json")
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    bad_dataset = runner.invoke(app, ["train", str(run_dir), "--dataset", "imagenet"])
    assert bad_dataset.exit_code == 2 and "Traceback" not in bad_dataset.output


def test_train_takes_the_recipe_options_and_records_the_recipe(run_dir, tmp_path):
    out = tmp_path / "r.nasforge"
    args = ["train", str(run_dir), "--epochs", "2", "--augment", "shift", "--label-smoothing", "0.1"]
    done = runner.invoke(app, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    model = nf.load(out)
    recipe = {"augment": "shift", "label_smoothing": 0.1, "warmup": 0.0}  # digits: no warm-up in the table
    assert {k: model.metrics[k] for k in recipe} == recipe
    assert {k: model.provenance["settings"][k] for k in recipe} == recipe
    default = runner.invoke(
        app, ["train", str(run_dir), "--epochs", "1", "--out", str(tmp_path / "d.nasforge")]
    )
    assert default.exit_code == 0, default.output
    assert nf.load(tmp_path / "d.nasforge").metrics["augment"] == "none"  # auto on digits
    for bad, message in (
        (["--augment", "rotate"], "--augment must be one of auto, none, shift, shift+flip"),
        (["--label-smoothing", "1.5"], "--label-smoothing must be in [0, 1)"),
        (["--augment", "flip", "--tune", "2"], "--augment must be one of"),  # before any tuning trial
    ):
        failed = runner.invoke(app, ["train", str(run_dir), "--epochs", "1", *bad])
        text = " ".join(failed.output.split())
        assert failed.exit_code == 2 and message in text and "Traceback" not in failed.output, text


def test_train_tune_and_from_print_progress_lines_with_an_eta_in_a_log(run_dir, tmp_path):
    """Captured output is not a terminal: each stage's first and last unit as a plain line."""
    arch = str(run_dir / "best_architecture.json")
    tuned = runner.invoke(app, ["train", arch, "--dataset", "digits", "--epochs", "3", "--tune", "2",
                                "--out", str(tmp_path / "t.nasforge")])  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    lines = tuned.output.splitlines()
    first = next(line for line in lines if line.startswith("tuning trials 1/2, "))
    assert " per trial, " in first and ", ETA " in first and "val accuracy" in first
    assert any(line.startswith("tuning trials 2/2, ") and ", done in " in line for line in lines)
    assert any(line.startswith("training epochs 1/") and ", ETA " in line for line in lines)

    moved = runner.invoke(app, ["train", "--from", "digits-s", "--dataset", "digits", "--epochs", "2",
                                "--out", str(tmp_path / "ft.nasforge")])  # fmt: skip
    assert moved.exit_code == 0, moved.output
    epochs = [line for line in moved.output.splitlines() if line.startswith("training epochs ")]
    assert epochs[0].startswith("training epochs 1/2, ") and ", ETA " in epochs[0]
    assert epochs[-1].startswith("training epochs 2/2, ") and "train loss" in epochs[-1]


def test_training_again_keeps_the_earlier_model(run_dir):
    first = run_dir / "trained.nasforge"
    if not first.exists():
        assert runner.invoke(app, ["train", str(run_dir), "--epochs", "1"]).exit_code == 0
    before = first.read_bytes()
    done = runner.invoke(app, ["train", str(run_dir), "--epochs", "1"])
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())
    newest = max(run_dir.glob("trained-*.nasforge"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert f"->{newest}" in "".join(done.output.split())  # rich may wrap the long path
    assert "(trained.nasforge exists and was kept)" in text
    assert first.read_bytes() == before and nf.load(newest).provenance["settings"]["epochs"] == 1


def test_an_unwritable_destination_fails_before_the_data_is_read(run_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    # mnist has no files here: reaching the data would be another error, so the check comes first
    args = ["train", str(run_dir), "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1"]
    below_file = runner.invoke(app, [*args, "--out", str(tmp_path / "notes.txt" / "m.nasforge")])
    assert below_file.exit_code == 2, below_file.output
    text = " ".join(below_file.output.split())
    assert text.startswith("error: cannot write the model file") and "notes.txt is a file" in text
    assert "give another --out" in text and "Traceback" not in below_file.output
    read_only = runner.invoke(app, [*args, "--out", "/proc/m.nasforge"])  # refused even for root
    assert read_only.exit_code == 2 and "/proc does not accept new files" in read_only.output


def test_a_run_directory_that_cannot_be_written_fails_before_training(run_dir, tmp_path):
    import os
    import shutil

    locked = tmp_path / "locked"
    shutil.copytree(run_dir, locked)
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: mode bits do not stop writes")
        done = runner.invoke(app, ["train", str(locked), "--epochs", "1"])
        assert done.exit_code == 2 and "cannot write the directory for the model" in done.output
        assert "give --out PATH" in " ".join(done.output.split())
    finally:
        locked.chmod(0o755)
