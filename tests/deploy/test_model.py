"""The .nasforge model file, nasforge.load and one-line inference on images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.deploy import ImageSizeWarning
from nasforge.errors import CheckpointError, DataError


@pytest.fixture(scope="module")
def task():
    return nf.datasets.load("digits")


@pytest.fixture(scope="module")
def trained(task):
    space = nf.spaces.ChainCNN(depth=2, layer={"op": ["conv"], "filters": [16], "kernel": [3], "stride": [1]})
    arch = space.sample(np.random.default_rng(0))
    return nf.train_final(arch, task, epochs=10, lr=0.01, threads=1, seed=0)


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("m") / "digits.nasforge", provenance={"seed": 0})


def _raw_pixels(task, n=20):
    """Test images as uint8 0..255 (H, W), the way they would be stored in PNG files."""
    mean, std = task.mean[0], task.std[0]
    x = task.x_test[:n, 0].numpy() * std + mean  # back to [0, 1]
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8), task.y_test[:n].numpy()


def test_round_trip_gives_identical_outputs_and_keeps_everything(trained, saved, task):
    model = nf.load(saved)
    x = task.x_test[:50]
    with torch.no_grad():
        assert torch.equal(model.module(x), trained.module.eval()(x))
    assert model.class_names == trained.class_names
    assert model.input_shape == (1, 8, 8) and model.mean == trained.mean and model.std == trained.std
    assert model.metrics["test_accuracy"] == trained.metrics["test_accuracy"]
    assert model.architecture.key == trained.architecture.key
    prov = model.provenance
    assert prov["dataset"] == "digits" and prov["seed"] == 0 and prov["nasforge_version"] == nf.__version__
    assert "test accuracy" in repr(model)


def test_every_input_form_gives_the_same_prediction(saved, task, tmp_path):
    model = nf.load(saved)
    pixels, _ = _raw_pixels(task, 3)
    png = tmp_path / "digit.png"
    Image.fromarray(pixels[0]).save(png)
    forms = [
        str(png),
        png,
        Image.fromarray(pixels[0]),
        pixels[0],  # (H, W) uint8
        pixels[0].astype(np.float32) / 255,  # (H, W) floats in [0, 1]
        pixels[0][:, :, None],  # (H, W, 1)
        torch.from_numpy(pixels[0].astype(np.float32) / 255)[None],  # (C, H, W)
    ]
    probs = [model(f)[0].probs for f in forms]
    for p in probs[1:]:
        np.testing.assert_allclose(p, probs[0], atol=1e-6)
    batch = model([png, pixels[1], pixels[2]])
    assert [p.source for p in batch] == [str(png), "input[1]", "input[2]"]
    stacked = model(pixels)  # (N, H, W) array: three images
    np.testing.assert_allclose(
        np.stack([p.probs for p in stacked]), np.stack([p.probs for p in batch]), atol=1e-6
    )


def test_predictions_are_right_as_often_as_the_test_accuracy_says(saved, task):
    model = nf.load(saved)
    pixels, labels = _raw_pixels(task, 200)
    preds = model(list(pixels))
    acc = np.mean([p.top1 == model.class_names[y] for p, y in zip(preds, labels, strict=True)])
    assert acc >= model.metrics["test_accuracy"] - 0.05  # the 8-bit rounding costs little
    p = preds[0]
    assert abs(p.probs.sum() - 1) < 1e-6 and p.top5[0] == (p.top1, p.top1_prob)
    assert len(p.top5) == 5 and p.top5[0][1] >= p.top5[1][1]
    assert p.top1 in str(p) and "%" in str(p)


def test_colour_and_size_are_converted(saved, task, tmp_path):
    model = nf.load(saved)
    pixels, _ = _raw_pixels(task, 1)
    grey = pixels[0]
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    big = Image.fromarray(rgb).resize((32, 32), Image.NEAREST)
    big.save(tmp_path / "big_rgb.png")
    same = model(grey)[0].probs
    np.testing.assert_allclose(model(rgb)[0].probs, same, atol=1e-5)  # RGB grey -> luminance
    # resized to 8x8 like PIL's bilinear (antialiased) resize would
    pil_small = np.array(big.convert("L").resize((8, 8), Image.BILINEAR))
    with pytest.warns(ImageSizeWarning, match="4.0x larger on a side"):  # 32x32 for an 8x8 model
        from_big = model(tmp_path / "big_rgb.png")[0].probs
    np.testing.assert_allclose(from_big, model(pil_small)[0].probs, atol=0.02)
    rgba = np.concatenate([rgb, np.full((8, 8, 1), 255, np.uint8)], axis=2)
    np.testing.assert_allclose(model(rgba)[0].probs, same, atol=1e-5)


def test_bad_files_are_clear_errors(saved, trained, tmp_path):
    with pytest.raises(CheckpointError, match="no model file"):
        nf.load(tmp_path / "missing.nasforge")
    truncated = tmp_path / "cut.nasforge"
    truncated.write_bytes(saved.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="not a readable nasforge model file"):
        nf.load(truncated)
    junk = tmp_path / "junk.nasforge"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable"):
        nf.load(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="without nasforge metadata"):
        nf.load(plain)
    state = {k: v.contiguous() for k, v in trained.module.state_dict().items()}
    meta = json.loads(_meta(saved))
    for change, fragment in (
        ({"format": "other/9"}, "format 'other/9'"),
        ({"input_shape": [8, 8]}, "not \\(C, H, W\\)"),
        ({"architecture": {"nope": 1}}, "malformed"),
    ):
        bad = tmp_path / "bad.nasforge"
        save_file(state, str(bad), metadata={"nasforge": json.dumps({**meta, **change})})
        with pytest.raises(CheckpointError, match=fragment):
            nf.load(bad)
    other = tmp_path / "other.nasforge"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"nasforge": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="do not fit the recorded architecture"):
        nf.load(other)


def test_metadata_edited_to_another_architecture_is_one_clear_error(saved, trained, tmp_path):
    state = {k: v.contiguous() for k, v in trained.module.state_dict().items()}
    meta = json.loads(_meta(saved))
    arch = meta["architecture"]
    arch["space"]["layer"]["filters"]["values"] = [16, 32]
    arch["params"]["layer0.filters"] = 32  # the weights still hold 16 filters
    edited = tmp_path / "edited.nasforge"
    save_file(state, str(edited), metadata={"nasforge": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="weights do not match the architecture in its") as info:
        nf.load(edited)
    assert "first mismatch: features.0" in str(info.value) and "[16" in str(info.value)
    result = CliRunner().invoke(app, ["predict", str(edited), str(tmp_path)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "edited.nasforge: weights do not match the architecture" in text
    assert "Traceback" not in result.output and "size mismatch" not in result.output


def _meta(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()["nasforge"]


def test_bad_images_are_clear_errors(saved, tmp_path):
    model = nf.load(saved)
    with pytest.raises(DataError, match="in \\[0, 1\\]"):
        model(np.full((8, 8), 3.0, np.float32))  # normalised data instead of pixels
    (tmp_path / "not.png").write_text("hello")
    with pytest.raises(DataError, match="cannot read image"):
        model(tmp_path / "not.png")
    with pytest.raises(DataError, match="no image file"):
        model(tmp_path / "absent.png")
    with pytest.raises(DataError, match="give image file paths"):
        model({"a": 1})
    with pytest.raises(DataError, match="no images"):
        model([])


def test_cli_predict_prints_a_table_and_json(saved, task, tmp_path):
    pixels, _ = _raw_pixels(task, 2)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, p in enumerate(pixels):
        Image.fromarray(p).save(folder / f"{i}.png")
    runner = CliRunner()
    shown = runner.invoke(app, ["predict", str(saved), str(folder / "0.png"), "--top", "2"])
    assert shown.exit_code == 0, shown.output
    assert "0.png" in shown.output and "%" in shown.output
    as_json = runner.invoke(app, ["predict", str(saved), str(folder), "--json"])
    assert as_json.exit_code == 0, as_json.output
    preds = json.loads(as_json.output)["predictions"]
    assert [p["source"].rsplit("/", 1)[-1] for p in preds] == ["0.png", "1.png"]
    assert len(preds[0]["top"]) == 3
    missing = runner.invoke(app, ["predict", str(tmp_path / "none.nasforge"), str(folder)])
    assert missing.exit_code == 2 and "no model file" in missing.output and "Traceback" not in missing.output


def test_images_far_from_the_input_size_are_resized_with_a_warning(saved, task):
    import warnings

    model = nf.load(saved)  # 8x8 input
    grey = _raw_pixels(task, 1)[0][0]
    for image, why in (
        (np.full((1, 1), 128, np.uint8), r"input\[0\] is 1x1: a side of 1 pixel"),
        (np.full((1, 8), 128, np.uint8), "a side of 1 pixel"),
        (np.array(Image.fromarray(grey).resize((28, 28))), r"is 28x28: 3\.5x larger on a side"),
        (np.array(Image.fromarray(grey).resize((4, 4))), "smaller than the model's input, so it is upscaled"),
    ):
        with pytest.warns(ImageSizeWarning, match=why) as record:
            model(image)
        assert "resized to the model's 8x8 input" in str(record[0].message)
        assert "about 8x8 pixels (up to 16x16)" in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageSizeWarning)
        for size in (8, 12, 16):  # about the model's size: resized silently
            model(np.array(Image.fromarray(grey).resize((size, size))))
    mixed = [grey, np.full((1, 1), 0, np.uint8), np.full((40, 40), 0, np.uint8)]
    with pytest.warns(ImageSizeWarning, match=r"2 of 3 images, e\.g\. input\[1\] at 1x1"):
        model(mixed)  # one warning for a whole call


def test_cli_predict_warns_in_one_line_about_a_far_size(saved, task, tmp_path):
    import os
    import subprocess
    import sys

    grey = _raw_pixels(task, 1)[0][0]
    Image.fromarray(grey).resize((28, 28)).save(tmp_path / "big.png")
    proc = subprocess.run(
        [sys.executable, "-m", "nasforge.cli", "predict", str(saved), str(tmp_path / "big.png")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: {tmp_path / 'big.png'} is 28x28"), lines
