"""The one image pipeline: the tensor a model sees at inference is the tensor it was trained on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import nasforge as nf
from nasforge.data._pipeline import ImagePipeline, convert_channels, denormalize, normalize, resize
from nasforge.errors import DataError


def _folder(root, *, mode: str, sizes: tuple[tuple[int, int], ...], per_class: int = 6):
    """An image folder of random pictures, ``mode`` "L" or "RGB", of the given sizes in turn."""
    rng = np.random.default_rng(0)
    files = []
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            shape = (h, w) if mode == "L" else (h, w, 3)
            path = root / name / f"{i}.png"
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
            files.append(path)
    return files


def _rows(task: nf.datasets.Task) -> torch.Tensor:
    return torch.cat([task.x_train, task.x_val, task.x_test])


def _matches(rows: torch.Tensor, image: torch.Tensor) -> int:
    return sum(torch.equal(row, image) for row in rows)


@pytest.mark.parametrize(
    ("mode", "sizes"),
    [("L", ((10, 10),)), ("RGB", ((10, 10),)), ("L", ((10, 10), (10, 10), (14, 7)))],
    ids=["grey", "rgb", "resized"],
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # the odd-sized images are resized, with notices
def test_training_and_inference_see_the_same_tensor_for_the_same_image(tmp_path, mode, sizes):
    files = _folder(tmp_path / "data", mode=mode, sizes=sizes)
    task = nf.datasets.load("folder", tmp_path / "data", val_fraction=0.25, test_fraction=0.25)
    rows = _rows(task)
    for path in files:  # what the loader stored for the file is what the pipeline makes of it
        seen, sources = task.pipeline(path)
        assert sources == [str(path)] and _matches(rows, seen[0]) == 1, path

    space = nf.spaces.ChainCNN(depth=1, layer={"op": ["conv"], "filters": [4]})
    arch = space.bind(task.input_shape, task.num_classes).sample(np.random.default_rng(0))
    model = nf.train_final(arch, task, epochs=1, threads=1, device="cpu")
    saved = nf.load(model.save(tmp_path / "m.nasforge"))
    assert model.pipeline == task.pipeline == saved.pipeline
    batch = torch.stack([task.pipeline(p)[0][0] for p in files])
    for m in (model, saved):
        assert torch.equal(m.preprocess(files)[0], batch)  # a trained and a loaded model alike

    # the exported graph takes raw pixels: its normalisation gives the training tensors too
    pixels = task.pipeline.pixels(files)[0]
    with torch.no_grad():
        assert torch.equal(model.pipeline.network(model.module)(pixels), model.module(batch))


def test_the_steps():
    x = torch.rand(3, 2, 5, 6)
    mean, std = (0.2, 0.4), (0.5, 0.25)
    assert torch.equal(resize(x, (5, 6)), x) and resize(x, (3, 3)).shape == (3, 2, 3, 3)
    assert resize(x[:0], (3, 3)).shape == (0, 2, 3, 3)
    torch.testing.assert_close(denormalize(normalize(x, mean, std), mean, std), x)
    rgb = torch.rand(3, 4, 4)
    grey = convert_channels(rgb, 1)
    assert grey.shape == (1, 4, 4) and convert_channels(grey, 3).shape == (3, 4, 4)
    assert torch.equal(convert_channels(torch.cat([rgb, torch.ones(1, 4, 4)]), 3), rgb)  # alpha dropped
    with pytest.raises(DataError, match="2 channels"):
        convert_channels(torch.rand(2, 4, 4), 3)


def test_a_pipeline_takes_every_form_of_image():
    pipeline = ImagePipeline((1, 5, 5), mean=(0.5,), std=(0.25,))
    u8 = np.arange(25, dtype=np.uint8).reshape(5, 5) * 10
    forms = [u8, u8[:, :, None], Image.fromarray(u8), torch.from_numpy(u8)[None], u8.astype(np.float32) / 255]
    batches = [pipeline(f)[0] for f in forms]
    for b in batches[1:]:
        torch.testing.assert_close(b, batches[0])
    stacked, sources = pipeline(np.stack([u8, u8]))  # (N, H, W): two images
    assert stacked.shape == (2, 1, 5, 5) and sources == ["input[0]", "input[0][1]"]
    with pytest.raises(DataError, match="no images"):
        pipeline([])
