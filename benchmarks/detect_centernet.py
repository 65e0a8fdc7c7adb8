"""How far the detection foundations go today: a tiny CenterNet on generated data, scored with COCO mAP.

Not a search: one fixed model (``tiny_backbone`` of k1kx / QARepVGG blocks + ``CenterNetHead``),
trained with AdamW (one-cycle schedule) on the training split of ``shapes-det`` (or ``mnist-det`` /
``fashion-det``), evaluated on its validation split
with :func:`nasforge.detect.coco_map` (numpy backend, and the COCO library's when installed), before
and after fusing the RepVGG branches. Prints a JSON record (with the run's command, machine and
commit) and a markdown line for ``docs/detection.md``.

Usage (from the repository root):
    python benchmarks/detect_centernet.py                  # 512 train images, 600 steps, 1 thread
    python benchmarks/detect_centernet.py --steps 100 --json out.json
    python benchmarks/detect_centernet.py --dataset mnist-det --data-dir data/mnist --n-train 6000
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from _meta import run_meta

from nasforge.data import load_detection
from nasforge.detect import CenterNet, coco_map, tiny_backbone
from nasforge.hardware import count_params
from nasforge.nn import reparameterize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes-det", choices=["shapes-det", "mnist-det", "fashion-det"])
    parser.add_argument("--data-dir", default=None, help="IDX directory for mnist-det / fashion-det")
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-val", type=int, default=128)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    task = load_detection(
        args.dataset, args.data_dir, n_train=args.n_train, n_val=args.n_val, n_test=0, seed=args.seed
    )
    channels = task.input_shape[0]
    model = CenterNet(tiny_backbone(channels, args.width), 2 * args.width, task.num_classes, stride=4)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    losses = []
    for _ in range(args.steps):
        i = torch.randint(0, len(task.x_train), (args.batch,), generator=generator)
        parts = model.loss(
            task.x_train[i], [task.boxes_train[j] for j in i], [task.labels_train[j] for j in i]
        )
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        sched.step()
        losses.append(parts["loss"].item())
    train_s = time.perf_counter() - start

    x, boxes, labels = task.split("val")
    targets = [{"boxes": b, "labels": y} for b, y in zip(boxes, labels, strict=True)]
    start = time.perf_counter()
    preds = model.predict(x, score_threshold=0.01)
    predict_s = time.perf_counter() - start
    result = coco_map(preds, targets, task.num_classes, backend="numpy")
    library = coco_map(preds, targets, task.num_classes)
    model.eval()
    reparameterize(model)
    fused = coco_map(model.predict(x, score_threshold=0.01), targets, task.num_classes, backend="numpy")

    record = {
        "task": task.describe(),
        "params": count_params(model),
        "steps": args.steps,
        "batch": args.batch,
        "loss_first_10": sum(losses[:10]) / 10,
        "loss_last_10": sum(losses[-10:]) / 10,
        "train_s": round(train_s, 1),
        "predict_ms_per_image": round(1000 * predict_s / len(x), 2),
        "val_map": round(result["map"], 4),
        "val_map_50": round(result["map_50"], 4),
        "library_backend": library["backend"],
        "library_map": round(library["map"], 4),
        "fused_val_map": round(fused["map"], 4),
        "per_class": {task.class_names[k]: round(v, 4) for k, v in result["per_class"].items()},
        "meta": run_meta(),
    }
    print(json.dumps(record, indent=2))
    print(
        f"| {args.dataset} | tiny CenterNet, {record['params']:,} params | "
        f"{args.steps} steps x {args.batch} | "
        f"{record['train_s']} s | mAP {record['val_map']:.3f} / mAP@.5 {record['val_map_50']:.3f} "
        f"(fused {record['fused_val_map']:.3f}) |"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
