"""The CenterNet-style head: targets by hand, a lossless decode round trip, and training on shapes-det."""

from __future__ import annotations

import warnings

import pytest
import torch

from nasforge.data._det_synth import load_shapes_det
from nasforge.detect import coco_map
from nasforge.detect._centernet import (
    CenterNet,
    centernet_loss,
    centernet_targets,
    decode_centernet,
    gaussian_radius,
    tiny_backbone,
)
from nasforge.nn import reparameterize

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_targets_by_hand() -> None:
    # A 12 x 8 pixel box centred at (10, 6) on a stride-4 map: centre cell (2, 1), offset (0.5, 0.5).
    boxes = [torch.tensor([[4.0, 2.0, 16.0, 10.0]]), torch.zeros(0, 4)]
    labels = [torch.tensor([1]), torch.zeros(0, dtype=torch.int64)]
    t = centernet_targets(boxes, labels, num_classes=2, out_size=(4, 6), stride=4)
    assert t["heatmap"].shape == (2, 2, 4, 6) and float(t["heatmap"][1].max()) == 0
    assert t["heatmap"][0, 1, 1, 2] == 1 and int(t["heatmap"].eq(1).sum()) == 1
    assert float(t["heatmap"][0, 0].max()) == 0  # other classes untouched
    assert t["size"][0, :, 1, 2].tolist() == [3.0, 2.0]  # in cells
    assert t["offset"][0, :, 1, 2].tolist() == [0.5, 0.5]
    assert t["mask"].sum() == 1 and t["mask"][0, 0, 1, 2] == 1
    # CornerNet's third case for a 10 x 10 box at IoU 0.7: (-28 + sqrt(28^2 + 4 * 2.8 * 30)) / 2
    assert gaussian_radius(10, 10) == pytest.approx((-28 + (784 + 336) ** 0.5) / 2)


def _perfect_outputs(targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        "heatmap": torch.logit(targets["heatmap"].clamp(1e-6, 1 - 1e-6)),
        "size": targets["size"],
        "offset": targets["offset"],
    }


def test_decoding_perfect_outputs_gives_back_the_boxes() -> None:
    task = load_shapes_det(n_train=6, n_val=0, n_test=0, size=64, seed=4)
    boxes, labels = task.boxes_train, task.labels_train
    targets = centernet_targets(boxes, labels, 3, (16, 16), stride=4)
    detections = decode_centernet(_perfect_outputs(targets), 4, (64, 64))
    for found, b, y in zip(detections, boxes, labels, strict=True):
        order = torch.argsort(found["boxes"][:, 0] * 1000 + found["boxes"][:, 1])
        expected = torch.argsort(b[:, 0] * 1000 + b[:, 1])
        torch.testing.assert_close(found["boxes"][order], b[expected], atol=1e-4, rtol=0)
        assert found["labels"][order].tolist() == y[expected].tolist()
        assert bool((found["scores"] > 0.99).all())
    preds = [{k: v for k, v in d.items()} for d in detections]
    gts = [{"boxes": b, "labels": y} for b, y in zip(boxes, labels, strict=True)]
    assert coco_map(preds, gts, 3, backend="numpy")["map"] == pytest.approx(1.0)


def test_the_loss_goes_down_when_training_on_shapes_det() -> None:
    torch.manual_seed(0)
    task = load_shapes_det(
        n_train=32, n_val=0, n_test=0, size=32, min_size=6, max_size=14, max_objects=3, seed=0
    )
    model = CenterNet(tiny_backbone(3, 8), 16, num_classes=3, stride=4, head_width=16)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for step in range(40):
        i = torch.arange(16) + 16 * (step % 2)
        parts = model.loss(
            task.x_train[i], [task.boxes_train[j] for j in i], [task.labels_train[j] for j in i]
        )
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
        assert all(torch.isfinite(v) for v in parts.values())
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.5 * first, (first, last)

    detections = model.predict(task.x_train[:4], score_threshold=0.0)
    assert len(detections) == 4
    for d in detections:
        assert d["boxes"].shape[1] == 4 and len(d["boxes"]) == len(d["scores"]) == len(d["labels"])
        assert bool((d["boxes"] >= 0).all() and (d["boxes"] <= 32).all())
        assert bool((d["scores"][:-1] >= d["scores"][1:]).all())
    assert model.training  # predict restores the mode

    # The re-parameterised model predicts the same heatmap (export path).
    model.eval()
    x = task.x_train[:2]
    with torch.no_grad():
        before = model(x)["heatmap"]
        after = reparameterize(model)(x)["heatmap"]
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_loss_parts_are_zero_for_perfect_regression_and_positive_otherwise() -> None:
    boxes, labels = [torch.tensor([[0.0, 0.0, 8.0, 8.0]])], [torch.tensor([0])]
    targets = centernet_targets(boxes, labels, 1, (4, 4), stride=4)
    perfect = centernet_loss(_perfect_outputs(targets), targets)
    assert float(perfect["size"]) == 0 and float(perfect["offset"]) == 0 and float(perfect["heatmap"]) < 1e-3
    wrong = dict(_perfect_outputs(targets), size=targets["size"] + 1)
    assert float(centernet_loss(wrong, targets)["size"]) == pytest.approx(2.0)  # |+1| on w and h, one object


def test_the_fused_detector_exports_to_onnx_and_decodes_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import onnx
    import onnxruntime as ort

    torch.manual_seed(3)
    model = CenterNet(tiny_backbone(3, 8), 16, num_classes=3, stride=4, head_width=16).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    reparameterize(model)
    path = tmp_path / "centernet.onnx"
    names = ["heatmap", "size", "offset"]

    class Outputs(torch.nn.Module):  # ONNX export wants tensors, not a dict
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = self.model(images)
            return tuple(out[n] for n in names)

    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # the TorchScript exporter, as nasforge.deploy uses
        torch.onnx.export(
            Outputs(),
            (x,),
            str(path),
            input_names=["pixels"],
            output_names=names,
            opset_version=17,
            dynamo=False,
        )
    graph = onnx.load(str(path)).graph
    # one conv per fused RepVGG block: stem, k1kx (2 + none), rep (1), k1kx (2), head (3 x 2)
    assert sum(node.op_type == "Conv" for node in graph.node) == 1 + 2 + 1 + 2 + 6
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(
        zip(names, (torch.from_numpy(a) for a in session.run(None, {"pixels": x.numpy()})), strict=True)
    )
    for n in names:
        torch.testing.assert_close(got[n], expected[n], atol=1e-4, rtol=1e-4)
    ours = decode_centernet(got, 4, (32, 32), score_threshold=0.0)
    theirs = decode_centernet(expected, 4, (32, 32), score_threshold=0.0)
    for a, b in zip(ours, theirs, strict=True):
        assert a["labels"].tolist() == b["labels"].tolist()
        torch.testing.assert_close(a["boxes"], b["boxes"], atol=1e-3, rtol=0)
