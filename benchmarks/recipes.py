"""Training recipes on the user's kind of data: what augmentation, label smoothing and warm-up do to a
final training (issue 21, "training recipes that fit the data").

Two parts:

``run``: trains fixed architectures with each recipe variant (:data:`VARIANTS`) by
:func:`nasforge.train_final`, with the search's final-training budget for the dataset
(:func:`nasforge.config._model.budget_for`: 60 epochs at batch 32, lr 0.01 on digits; 8 epochs at
batch 128, lr 0.005 on MNIST and Fashion-MNIST) unless ``--epochs`` / ``--fraction`` say
otherwise. The architectures are the zoo entry for the dataset (what a search picked; ``--archs
hand`` for ``real_data_compare.py``'s hand-designed network, or both) and
``--random`` architectures sampled with ``--arch-seed`` from the default search space (chain CNN,
depth 2-5, <= 150k parameters); every (architecture, seed) pair trains once per variant with the
same initial weights and mini-batch order, so variants are compared in pairs. One JSON line per
training is appended to ``--out``; a rerun skips what is there, so a stopped run resumes.

``report``: per dataset and variant the mean test and validation accuracy, and the paired
difference to ``old`` (the recipe before this change: no augmentation, no label smoothing, no
warm-up) with its standard error over the pairs, and how many pairs it won.

Usage (from the repository root; one core):
    taskset -c 0 python benchmarks/recipes.py run --dataset digits --random 4 --seeds 3 \\
        --out bench-results/recipes_digits.jsonl
    taskset -c 0 python benchmarks/recipes.py run --dataset fashion-mnist \\
        --data-dir ../shared/datasets/fashion-mnist --fraction 0.25 --random 0 --seeds 2 \\
        --out bench-results/recipes_fmnist.jsonl
    python benchmarks/recipes.py report --out bench-results/recipes_*.jsonl
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _meta import run_meta

import nasforge as nf
from nasforge.config._model import budget_for

#: recipe variants: ``old`` is the recipe with nothing added (the table's choice for every built-in
#: dataset today); ``warmup`` is a share of the training's steps (5%), converted to epochs
VARIANTS: dict[str, dict[str, Any]] = {
    "old": {"augment": "none", "label_smoothing": 0.0, "warmup": 0.0},
    "smooth": {"augment": "none", "label_smoothing": 0.1, "warmup": 0.0},
    "warmup": {"augment": "none", "label_smoothing": 0.0, "warmup": 0.05},
    "shift": {"augment": "shift", "label_smoothing": 0.0, "warmup": 0.0},
    "shift+flip": {"augment": "shift+flip", "label_smoothing": 0.0, "warmup": 0.0},
    "new-none": {"augment": "none", "label_smoothing": 0.1, "warmup": 0.05},
    "new-flip": {"augment": "shift+flip", "label_smoothing": 0.1, "warmup": 0.05},
}
_ZOO = {"digits": "digits-s", "mnist": "mnist-s", "fashion-mnist": "fashion-mnist-s"}


def _architectures(
    task: Any, dataset: str, n_random: int, seed: int, named: list[str] | None = None
) -> list[tuple[str, Any]]:
    archs: list[tuple[str, Any]] = []
    for name in named or ["zoo"]:
        if name == "zoo":
            archs.append((_ZOO[dataset], nf.load(_ZOO[dataset]).architecture))
        else:  # real_data_compare.py's hand-designed network
            from real_data_compare import hand_architecture

            archs.append(("hand", hand_architecture(task.input_shape, task.num_classes)))
    space = nf.spaces.ChainCNN(depth=(2, 5), max_params=150_000).bind(task.input_shape, task.num_classes)
    rng = np.random.default_rng(seed)
    seen = {space.describe(a) for _, a in archs}
    fixed = len(archs)
    while len(archs) < fixed + n_random:
        arch = space.sample(rng)
        if space.describe(arch) not in seen:
            seen.add(space.describe(arch))
            archs.append((f"random{len(archs)}", arch))
    return archs


def _recipe(variant: dict[str, Any], epochs: int) -> dict[str, Any]:
    """A variant as ``train_final``'s options: its ``warmup`` is a share of the steps, given in epochs."""
    return {**variant, "warmup": variant["warmup"] * epochs}


def run(args: argparse.Namespace) -> None:
    task = nf.datasets.load(args.dataset, args.data_dir)
    budget = budget_for(args.dataset)["final"]
    epochs = args.epochs or budget["epochs"]
    train_task = task.with_fraction(args.fraction, seed=0)
    done: set[tuple[str, int, str]] = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done.add((r["arch"], r["seed"], r["variant"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = run_meta()
    for name, arch in _architectures(task, args.dataset, args.random, args.arch_seed, args.archs):
        for seed in range(args.seeds):
            for variant in args.variants:
                if (name, seed, variant) in done:
                    continue
                start = time.perf_counter()
                model = nf.train_final(
                    arch,
                    train_task,
                    epochs=epochs,
                    batch_size=budget["batch_size"],
                    lr=budget["lr"],
                    seed=seed,
                    threads=1,
                    device="cpu",
                    **_recipe(VARIANTS[variant], epochs),
                )
                m = model.metrics
                row = {
                    "dataset": args.dataset,
                    "name": task.name,
                    "fraction": args.fraction,
                    "epochs": epochs,
                    "arch": name,
                    "params": m["params"],
                    "seed": seed,
                    "variant": variant,
                    "recipe": VARIANTS[variant],
                    "val_accuracy": m["val_accuracy"],
                    "test_accuracy": m["test_accuracy"],
                    "test_balanced_accuracy": m.get("test_balanced_accuracy"),
                    "seconds": round(time.perf_counter() - start, 2),
                    "meta": meta,
                }
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(
                    f"{args.dataset} {name} seed {seed} {variant}: test {m['test_accuracy']:.4f} "
                    f"val {m['val_accuracy']:.4f} ({row['seconds']:.0f}s)",
                    flush=True,
                )


def report(args: argparse.Namespace) -> None:
    rows = [
        json.loads(x)
        for p in args.out
        for f in glob.glob(str(p))
        for x in Path(f).read_text().splitlines()
        if x
    ]
    for dataset in sorted({r["dataset"] for r in rows}):
        mine = [r for r in rows if r["dataset"] == dataset]
        by = {(r["arch"], r["seed"], r["variant"]): r for r in mine}
        pairs = sorted({(r["arch"], r["seed"]) for r in mine})
        r0 = mine[0]
        print(
            f"\n{dataset}, {r0['epochs']} epochs on {r0['fraction']:g} of the training "
            f"split, {len({a for a, _ in pairs})} architectures x {len({s for _, s in pairs})} seeds"
        )
        print(f"{'variant':<12} {'n':>3} {'test':>7} {'val':>7} {'test - old':>16} {'wins':>6}")
        for variant in VARIANTS:
            have = [p for p in pairs if (*p, variant) in by]
            if not have:
                continue
            test = [by[(*p, variant)]["test_accuracy"] for p in have]
            val = [by[(*p, variant)]["val_accuracy"] for p in have]
            paired = [
                by[(*p, variant)]["test_accuracy"] - by[(*p, "old")]["test_accuracy"]
                for p in have
                if (*p, "old") in by
            ]
            diff = ""
            wins = ""
            if paired and variant != "old":
                se = statistics.stdev(paired) / math.sqrt(len(paired)) if len(paired) > 1 else math.nan
                diff = f"{100 * statistics.mean(paired):+.2f} ± {100 * se:.2f}"
                wins = f"{sum(d > 0 for d in paired)}/{len(paired)}"
            print(
                f"{variant:<12} {len(have):>3} {statistics.mean(test):>7.4f} {statistics.mean(val):>7.4f} "
                f"{diff:>16} {wins:>6}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--dataset", default="digits", choices=sorted(_ZOO))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument(
        "--archs",
        nargs="+",
        default=["zoo"],
        choices=["zoo", "hand"],
        help="fixed architectures: the dataset's zoo entry, real_data_compare.py's hand-designed one",
    )
    p.add_argument("--random", type=int, default=4, help="random architectures besides the fixed ones")
    p.add_argument("--arch-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=None, help="default: the search's final epochs")
    p.add_argument("--fraction", type=float, default=1.0, help="share of the training split")
    p.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("report")
    r.add_argument("--out", nargs="+", required=True)
    args = parser.parse_args()
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    main()
