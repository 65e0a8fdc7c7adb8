"""Detector files: save, nasforge.load -> Detector, inference on every source kind, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import nasforge as nf
from nasforge.data import load_detection
from nasforge.deploy import Detector, load_detector
from nasforge.detect import Results
from nasforge.errors import CheckpointError, ConfigError, DataError
from nasforge.estimate import train_detector
from nasforge.nn import RepVGGBlock
from nasforge.space import DetectorSpace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def task():
    return load_detection("shapes-det", n_train=128, n_val=32, n_test=16, seed=0)


@pytest.fixture(scope="module")
def trained(task):
    space = DetectorSpace(
        stem=[8],
        block={"depth": [1], "op": ["k1kx_rep"], "kernel": [5], "bottleneck": [0.5]},
        stages=[{"width": [16]}, {"width": [16]}, {"width": [16]}],
        neck_width=[16],
        head_width=[16],
        head_depth=[1],
        scales=[2],
    ).bind(task.input_shape, task.num_classes)
    arch = space.sample(np.random.default_rng(0))
    return train_detector(arch, task, epochs=6, batch_size=16, lr=5e-3, threads=1)


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("det") / "det.nasforge", provenance={"seed": 0})


def _pixels(task, n=4):
    """Test images as uint8 (N, H, W, 3), as they would be stored in PNG files."""
    x = task.x_test[:n] * torch.tensor(task.std).view(1, -1, 1, 1) + torch.tensor(task.mean).view(1, -1, 1, 1)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_round_trip_gives_a_detector_with_the_same_boxes(trained, saved, task):
    with safe_open(str(saved), framework="pt") as f:
        meta = json.loads(f.metadata()["nasforge"])
    assert meta["task"] == "detection" and meta["format"] == "nasforge-model/1"
    model = nf.load(saved)
    assert isinstance(model, Detector) and model.path == saved
    assert model.names == {0: "circle", 1: "square", 2: "triangle"} and model.input_shape == (3, 64, 64)
    assert model.metrics["test_map"] == trained.metrics["test_map"] and model.provenance["seed"] == 0
    assert "Detector(" in repr(model) and "mAP" in repr(model)
    images = _pixels(task)
    loaded = model(list(images), conf=0.05)
    fresh = Detector.from_trained(trained)(list(images), conf=0.05)
    assert len(loaded) == 4 and all(isinstance(r, Results) for r in loaded)
    for a, b in zip(loaded, fresh, strict=True):
        torch.testing.assert_close(a.boxes.data, b.boxes.data)
    assert sum(len(r) for r in loaded) > 0
    fused = nf.load(saved).fuse()  # the k1kx_rep blocks' RepVGG convs fold: the same boxes
    reps = [b for b in fused.module.modules() if isinstance(b, RepVGGBlock)]
    assert reps and all(b.fused is not None for b in reps)
    for a, b in zip(fused(list(images), conf=0.05), loaded, strict=True):
        torch.testing.assert_close(a.boxes.data, b.boxes.data, atol=1e-3, rtol=1e-4)
    again = model.save(saved.with_name("again.nasforge"))
    assert isinstance(load_detector(again), Detector)


def test_sources_of_every_kind(saved, task, tmp_path):
    model = nf.load(saved)
    images = _pixels(task, 3)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, a in enumerate(images):
        Image.fromarray(a).save(folder / f"im{i}.png")
    by_path = model(str(folder / "im0.png"))
    assert len(by_path) == 1 and by_path[0].path.endswith("im0.png")
    by_folder = model(folder)
    assert [r.path.rsplit("/", 1)[-1] for r in by_folder] == ["im0.png", "im1.png", "im2.png"]
    pil = model(Image.fromarray(images[0]))
    arr = model(images[0])
    tensor = model(torch.from_numpy(images[0]).permute(2, 0, 1).float() / 255)
    batch = model(torch.from_numpy(images).permute(0, 3, 1, 2))
    assert len(batch) == 3 and batch[1].path == "image0_1"
    for other in (pil, arr, tensor, [batch[0]]):
        torch.testing.assert_close(other[0].boxes.data, by_path[0].boxes.data)
    grey = model(Image.fromarray(images[0]).convert("L"))  # grey is repeated to RGB
    assert grey[0].orig_img.shape == (64, 64, 3)
    assert by_path[0].speed.keys() == {"preprocess", "inference", "postprocess"}


def test_boxes_are_mapped_back_to_the_original_size(saved, task):
    model = nf.load(saved)
    image = Image.fromarray(_pixels(task, 1)[0]).resize((128, 192), Image.NEAREST)  # 2x wide, 3x high
    big = model(image)[0]
    resized = model.pipeline.fit(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)
    small = model(resized)[0]  # what the network saw
    assert big.orig_shape == (192, 128) and small.orig_shape == (64, 64) and len(big) == len(small) > 0
    scale = torch.tensor([2.0, 3.0, 2.0, 3.0])
    torch.testing.assert_close(big.boxes.xyxy, small.boxes.xyxy * scale)
    torch.testing.assert_close(big.boxes.xyxyn, small.boxes.xyxyn)
    torch.testing.assert_close(big.boxes.conf, small.boxes.conf)
    # and the strongest box still sits on an object of the original image's ground truth
    truth = task.boxes_test[0] * scale
    from nasforge.detect import box_iou

    assert box_iou(big.boxes.xyxy[:1], truth).max() > 0.5


def test_conf_iou_and_max_det(saved, task):
    model = nf.load(saved)
    image = _pixels(task, 1)[0]
    low = model(image, conf=0.01)[0]
    assert len(model(image, conf=0.99)[0]) < len(low)
    assert len(model(image, conf=0.01, max_det=2)[0]) == 2
    assert (low.boxes.conf >= 0.01).all()
    with pytest.raises(ConfigError, match="conf"):
        model(image, conf=1.5)
    with pytest.raises(ConfigError, match="iou"):
        model(image, iou=0)
    with pytest.raises(ConfigError, match="max_det"):
        model(image, max_det=0)
    with pytest.raises(DataError, match="no image file"):
        model("missing.png")


def test_the_wrong_kind_of_model_is_a_clear_error(saved, tmp_path):
    with pytest.raises(CheckpointError, match=r"classification model.*not a detector"):
        load_detector("digits-s")
    from nasforge.deploy import export

    with pytest.raises(ConfigError, match="exports to onnx or int8"):  # tests/deploy/test_detector_export.py
        export(nf.load(saved), tmp_path / "det.pt", format="torchscript")
    # metadata edited to claim a classifier: refused, not a crash at call time
    with safe_open(str(saved), framework="pt") as f:
        meta = json.loads(f.metadata()["nasforge"])
    meta["task"] = "classification"
    edited = tmp_path / "edited.nasforge"
    save_file(load_file(str(saved)), str(edited), metadata={"nasforge": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="builds a detector"):
        nf.load(edited)
    meta["task"] = "segmentation"
    save_file(load_file(str(saved)), str(edited), metadata={"nasforge": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="neither"):
        nf.load(edited)
