"""Own data without code: image folders and .npz arrays, and the whole path from them to predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.data._own import DataNotice
from nasforge.errors import ConfigError, DataError
from nasforge.testing import band_image, make_image_folder

CLASSES = ("circle", "square", "stripe")


def _image(c: int, rng: np.random.Generator, size: int = 12) -> np.ndarray:
    return band_image(c, len(CLASSES), rng, size)


def make_folder(root, per_class=10, size=12, seed=0):
    return make_image_folder(root, CLASSES, per_class=per_class, size=size, seed=seed)


def test_an_image_folder_becomes_a_task(tmp_path):
    task = nf.datasets.load("folder", make_folder(tmp_path / "shapes"))
    assert task.class_names == CLASSES and task.input_shape == (1, 12, 12)
    assert (len(task.x_train), len(task.x_val), len(task.x_test)) == (18, 6, 6)
    assert abs(float(task.x_train.mean())) < 1e-4 and abs(float(task.x_train.std()) - 1) < 1e-2
    assert sorted(np.bincount(task.y_test.numpy()).tolist()) == [2, 2, 2]  # stratified
    assert task.name == "shapes"


def test_rgb_images_mixed_sizes_and_predefined_splits(tmp_path):
    root = make_folder(tmp_path / "d" / "train")
    make_folder(tmp_path / "d" / "test", per_class=3, seed=1)
    Image.fromarray(np.zeros((20, 16, 3), np.uint8) + 90).save(root / "circle" / "big_rgb.png")
    with pytest.warns(DataNotice, match="1 of 40 images were resized to 12x12"):
        task = nf.datasets.load("folder", tmp_path / "d", val_fraction=0.25)
    assert task.input_shape == (3, 12, 12)  # one RGB image makes it RGB
    assert len(task.x_test) == 9 and len(task.x_train) + len(task.x_val) == 31
    with pytest.warns(DataNotice, match="40 of 40 images were resized to 8x8 \\(the requested size\\)"):
        grey = nf.datasets.load("folder", tmp_path / "d", channels=1, size=8)
    assert grey.input_shape == (1, 8, 8)


@pytest.mark.parametrize("val_name", ["val", "valid", "validation"])
def test_a_val_folder_is_the_validation_split(tmp_path, val_name):
    make_folder(tmp_path / "d" / "train", per_class=8)
    make_folder(tmp_path / "d" / val_name, per_class=2, seed=1)
    task = nf.datasets.load("folder", tmp_path / "d", val_fraction=0.5, test_fraction=0.25)
    assert len(task.x_val) == 6  # the folder's, not half of train
    assert len(task.x_train) + len(task.x_test) == 24 and len(task.x_test) == 6  # test drawn from train
    make_folder(tmp_path / "d" / "test", per_class=3, seed=2)
    task = nf.datasets.load("folder", tmp_path / "d")
    assert (len(task.x_train), len(task.x_val), len(task.x_test)) == (24, 6, 9)


def test_two_validation_folders_are_an_error_and_a_lone_train_folder_is_a_class(tmp_path):
    make_folder(tmp_path / "d" / "train")
    make_folder(tmp_path / "d" / "val", per_class=3)
    make_folder(tmp_path / "d" / "valid", per_class=3)
    with pytest.raises(DataError, match="several validation folders \\(val, valid\\)"):
        nf.datasets.load("folder", tmp_path / "d")
    make_folder(tmp_path / "e" / "train")
    with pytest.raises(DataError, match=r"holds no images"):
        nf.datasets.load("folder", tmp_path / "e")  # train/ alone is one class folder of sub-folders


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda r: None, "does not exist"),
        (lambda r: r.mkdir(), "no class sub-folders"),
        (lambda r: (make_folder(r), (r / "empty").mkdir()), "class folder .*empty holds no images"),
        (
            lambda r: (make_folder(r), (r / "square" / "bad.png").write_text("x")),
            "cannot read image .*bad.png",
        ),
        (lambda r: make_folder(r, per_class=2), "too few images per class .*'circle' \\(2\\)"),
    ],
)
def test_folder_problems_are_clear_errors(tmp_path, setup, fragment):
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(DataError, match=fragment):
        nf.datasets.load("folder", root)


def test_npz_arrays_in_both_layouts(tmp_path):
    rng = np.random.default_rng(0)
    x = np.stack([_image(i % 3, rng) for i in range(30)])
    y = np.arange(30) % 3
    plain = tmp_path / "plain.npz"
    np.savez(plain, x_train=x, y_train=y, class_names=np.array(CLASSES))
    task = nf.datasets.load("npz", plain)
    assert task.class_names == CLASSES and len(task.x_train) == 18 and len(task.x_test) == 6

    medmnist = tmp_path / "med.npz"
    rgb = np.repeat(x[..., None], 3, axis=3)
    np.savez(
        medmnist,
        train_images=rgb[:20],
        train_labels=y[:20, None],
        val_images=rgb[20:25],
        val_labels=y[20:25, None],
        test_images=rgb[25:],
        test_labels=y[25:, None],
    )
    med = nf.datasets.load("npz", medmnist)
    assert med.input_shape == (3, 12, 12) and (len(med.x_train), len(med.x_val), len(med.x_test)) == (
        20,
        5,
        5,
    )
    assert med.class_names == ("0", "1", "2")


def test_npz_problems_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        nf.datasets.load("npz", tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    (tmp_path / "notes.npz").write_text("x_train,y_train\n1,2\n")  # a text file with the wrong suffix
    np.save(tmp_path / "one.npy", np.zeros((4, 8, 8), np.uint8))
    for name in ("junk.npz", "notes.npz", "one.npy"):
        with pytest.raises(DataError, match=r"is not a valid \.npz archive") as info:
            nf.datasets.load("npz", tmp_path / name)
        assert "allow_pickle" not in str(info.value)  # numpy's advice to unpickle is not passed on
    cut = tmp_path / "cut.npz"
    np.savez(tmp_path / "whole.npz", x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.zeros(4, int))
    cut.write_bytes((tmp_path / "whole.npz").read_bytes()[:200])
    with pytest.raises(DataError, match=r"not a valid \.npz archive|cannot read"):
        nf.datasets.load("npz", cut)
    np.savez(tmp_path / "keys.npz", images=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(DataError, match="needs x_train and y_train"):
        nf.datasets.load("npz", tmp_path / "keys.npz")
    np.savez(tmp_path / "obj.npz", x_train=np.array([{"a": 1}] * 4, dtype=object), y_train=np.zeros(4, int))
    with pytest.raises(DataError, match=r"holds object arrays .* never loads") as info:  # unpickling refused
        nf.datasets.load("npz", tmp_path / "obj.npz")
    assert "allow_pickle" not in str(info.value)
    np.savez(tmp_path / "range.npz", x_train=np.full((6, 8, 8), 2.0), y_train=np.zeros(6, int))
    with pytest.raises(DataError, match="in \\[0, 1\\]"):
        nf.datasets.load("npz", tmp_path / "range.npz")
    with pytest.raises(ConfigError, match="--data-dir"):
        nf.datasets.load("folder")
    result = CliRunner().invoke(
        app, ["search", "--dataset", "npz", "--data-dir", str(tmp_path / "notes.npz")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert " ".join(result.output.split()).startswith(f"error: {tmp_path / 'notes.npz'} is not a valid .npz")


def test_own_images_end_to_end_search_train_export_predict(tmp_path, monkeypatch):
    """An image folder made here: search, train the found architecture, export to ONNX, predict."""
    root = make_folder(tmp_path / "shapes", per_class=12)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["search", "--dataset", "folder", "--data-dir", str(root), "--trials", "2", "--epochs", "2"]
    done = runner.invoke(app, [*args, "--final-epochs", "15", "--strategy", "random", "--quiet"])
    assert done.exit_code == 0, done.output
    run = tmp_path / "runs" / "folder-random"
    model = run / "model.nasforge"
    final = json.loads((run / "final.json").read_text())
    assert final["task"]["class_names"] == list(CLASSES)

    # full training of the found architecture, on the run's own data (read from its config.yaml)
    trained = runner.invoke(app, ["train", str(run), "--epochs", "15", "--seed", "1"])
    assert trained.exit_code == 0, trained.output
    model = run / "trained.nasforge"
    assert nf.load(model).class_names == CLASSES

    exported = runner.invoke(app, ["export", str(model), "--format", "onnx"])
    assert exported.exit_code == 0, exported.output
    unnamed = runner.invoke(app, ["export", str(model), "--format", "int8"])
    assert unnamed.exit_code == 2 and "--dataset folder" in unnamed.output
    int8 = ["export", str(model), "--format", "int8", "--dataset", "folder", "--data-dir", str(root)]
    quantized = runner.invoke(app, int8)
    assert quantized.exit_code == 0, quantized.output
    assert (run / "trained.int8.onnx").is_file()

    rng = np.random.default_rng(99)  # new images the model never saw
    for c, name in enumerate(CLASSES):
        Image.fromarray(_image(c, rng)).save(tmp_path / f"new_{name}.png")
    predicted = runner.invoke(
        app, ["predict", str(model), *[str(tmp_path / f"new_{n}.png") for n in CLASSES], "--json"]
    )
    assert predicted.exit_code == 0, predicted.output
    tops = [p["top1"] for p in json.loads(predicted.output)["predictions"]]
    assert tops == list(CLASSES), tops  # an easy task: a trained model gets all three right
