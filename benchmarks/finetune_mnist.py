"""Transfer learning: does fine-tuning a Fashion-MNIST model on MNIST beat training it from scratch?

Takes a Fashion-MNIST ``.nasforge`` model (``--base``; without one, the script trains its own: the
chain-CNN architecture given by ``--arch`` or a fixed default, ``--base-epochs`` on a
``--base-fraction`` of Fashion-MNIST), then for each seed trains the same architecture on a small
MNIST budget (``--fraction`` of the training images, ``--epochs`` epochs) twice: starting from the
base model's weights (every layer but the 10-class head, which is re-initialised) and from a fresh
initialisation. Both are tested on the 10,000 MNIST test images. Prints the table for
docs/benchmarks.md and writes JSON.

Usage (from the repository root):
    python benchmarks/finetune_mnist.py --data-dir ../shared/datasets --seeds 0 1 2 \\
        --fraction 0.01 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _meta import run_meta

import nasforge as nf

DEFAULT_ARCH = {
    "depth": 3,
    "layer0.op": "conv", "layer0.kernel": 3, "layer0.stride": 1, "layer0.padding": "same",
    "layer0.filters": 32, "layer0.act": "relu", "layer0.skip": False,
    "layer1.op": "conv", "layer1.kernel": 3, "layer1.stride": 2, "layer1.padding": "same",
    "layer1.filters": 32, "layer1.act": "relu", "layer1.skip": False,
    "layer2.op": "conv", "layer2.kernel": 3, "layer2.stride": 2, "layer2.padding": "same",
    "layer2.filters": 64, "layer2.act": "relu", "layer2.skip": False,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds mnist/ and fashion-mnist/")
    parser.add_argument("--base", type=Path, default=None, help="a Fashion-MNIST .nasforge model or zoo name")
    parser.add_argument("--base-epochs", type=int, default=5)
    parser.add_argument("--base-fraction", type=float, default=0.2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fraction", type=float, default=0.01, help="share of MNIST's training images")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/finetune_mnist.json"))
    args = parser.parse_args(argv)

    if args.base is not None:
        base = nf.load(args.base)
    else:
        fashion = nf.datasets.load(
            "fashion-mnist", args.data_dir / "fashion-mnist", fraction=args.base_fraction
        )
        arch = nf.spaces.ChainCNN(depth=3).make(DEFAULT_ARCH)
        trained = nf.train_final(
            arch, fashion, epochs=args.base_epochs, batch_size=128, lr=args.lr, seed=0, threads=args.threads
        )
        path = args.out.with_suffix(".base.nasforge")
        base = nf.load(trained.save(path))
        print(
            f"base model: {trained.metrics['test_accuracy']:.4f} on Fashion-MNIST test -> {path}", flush=True
        )
    rows = []
    for seed in args.seeds:
        mnist = nf.datasets.load("mnist", args.data_dir / "mnist", fraction=args.fraction, seed=seed)
        for start in ("fine-tuned", "scratch"):
            t0 = time.perf_counter()
            model = nf.train_final(
                base.architecture,
                mnist,
                epochs=args.epochs,
                batch_size=64,
                lr=args.lr,
                seed=seed,
                init=base.module if start == "fine-tuned" else None,
                threads=args.threads,
            )
            rows.append(
                {
                    "seed": seed,
                    "start": start,
                    "train_images": len(mnist.x_train),
                    "test_accuracy": model.metrics["test_accuracy"],
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n| start | MNIST test accuracy, mean over {len(args.seeds)} seeds | per seed |")
    print("|---|---:|---|")
    for start in ("fine-tuned", "scratch"):
        accs = [r["test_accuracy"] for r in rows if r["start"] == start]
        print(f"| {start} | {statistics.mean(accs):.4f} | {', '.join(f'{a:.4f}' for a in accs)} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                **run_meta(),
                "base": str(args.base) if args.base else "trained by the script",
                "base_test_accuracy": base.metrics.get("test_accuracy"),
                "rows": rows,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
