"""Weight sharing on Fashion-MNIST: SPOS ranking quality, and DARTS / GDAS against random cells.

Two parts, on a stratified ``--fraction`` of Fashion-MNIST's training images:

``rank`` (``--space chain``: the chain CNN space, depth 2-5, <= 150k parameters, the default
search space; ``--space nb201``: the NB201 cell space with a small macro network of ``--C``
channels and ``--N`` cells per stage): trains one supernet with uniform single-path sampling
(``--supernet-epochs``), scores
``--n`` distinct random cells with inherited weights (batch-norm recalibrated per cell, accuracy
on ``--eval-images`` validation images), then trains each of those cells from scratch
(``--epochs``, same data) and reports Kendall's tau and Spearman's rho between the two, with the
seconds of each route (everything on one torch thread; the stand-alone figure is the training
loop, the shared one the supernet's training plus every inherited evaluation). Two more cheap
routes can be scored beside it: ``--finetune-steps N`` (the inherited weights of each cell trained
for N Adam steps first; the supernet's training counts in its cost too) and ``--short-steps N``
(each cell trained from scratch for N Adam steps, no supernet). Every route is ranked by its
validation accuracy and, as ``kendall_tau_loss``, by its validation loss (lower is better), which
is how ``spos`` ranks by default. ``--standalone-from FILE`` takes
the stand-alone rows from an earlier ``rank`` JSON of the same seed, data and stand-alone settings
instead of training the cells again (it checks that the cells and settings match), so a new
supernet setting can be scored against the same stand-alone training in minutes.

``darts`` (NB201 space): runs DARTS and GDAS (``--search-epochs``) for each seed, trains each
derived cell from scratch with the same protocol, trains ``--random`` random cells the same way as
the baseline, and looks every cell up in the NB201 CIFAR-10 table (``--bench-dir``) for the record.

``--resolution`` resizes every image (training, validation, test) to that many pixels per side,
which makes both routes cheaper. Each part writes its JSON after every measured cell, so a
stopped run keeps what it measured. Run the parts side by side, one core each
(``taskset -c 0`` / ``-c 1``).

Usage (from the repository root):
    taskset -c 0 python benchmarks/oneshot_fmnist.py rank --space chain \\
        --data-dir ../shared/datasets/fashion-mnist
    taskset -c 1 python benchmarks/oneshot_fmnist.py darts --data-dir ../shared/datasets/fashion-mnist \\
        --bench-dir ../shared/benchmarks
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from _meta import run_meta
from scipy import stats

import nasforge as nf
from nasforge.estimate import SupernetEstimator, TrialContext


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": run_meta(), **payload}, indent=1) + "\n")


def _standalone(arch: Any, task: Any, args: argparse.Namespace, seed: int) -> tuple[float, float, float]:
    """Validation and test accuracy of ``arch`` trained from scratch, and its training seconds
    (the training loop on one thread, per-epoch validation included, the final test excluded)."""
    trained = nf.train_final(
        arch, task, epochs=args.epochs, batch_size=128, lr=args.lr, seed=seed, threads=1, optimizer="adam"
    )
    m = trained.metrics
    return float(m["val_accuracy"]), float(m["test_accuracy"]), float(m["train_seconds"])


def _short_scratch(arch: Any, task: Any, args: argparse.Namespace) -> tuple[float, float, float]:
    """Validation accuracy and loss (the supernet's evaluation images) of ``arch`` trained from scratch for
    ``--short-steps`` Adam steps on the batches the fine-tuning draws, and the seconds it took: the
    cheap route without weight sharing, at a cost like the fine-tuned one."""
    import time

    import torch

    from nasforge.estimate._loop import evaluate
    from nasforge.estimate._supernet import train_steps

    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = arch.build(task.input_shape, task.num_classes)
    # the batches of the SupernetEstimator's fine-tuning (its seed 0, plus 1)
    train_steps(model, task, args.short_steps, args.supernet_batch, args.finetune_lr, seed=1)
    accuracy, loss = evaluate(model, task.x_val[: args.eval_images], task.y_val[: args.eval_images])
    return float(accuracy), float(loss), time.perf_counter() - start


def rank(args: argparse.Namespace, task: Any, space: Any) -> None:
    import shutil
    import tempfile

    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="nasforge-rank-"))  # the fine-tuning estimator loads it from here
    try:
        _rank(args, task, space, tmp / "supernet.safetensors")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rank(args: argparse.Namespace, task: Any, space: Any, file: Path) -> None:
    options = {
        "epochs": args.supernet_epochs,
        "batch_size": args.supernet_batch,
        "lr": args.supernet_lr,
        "C": args.C,
        "N": args.N,
        "eval_images": args.eval_images,
        "sampling": args.sampling,
        "finetune_lr": args.finetune_lr,
        "threads": 1,
        "seed": 0,
        "path": file,
    }
    est = SupernetEstimator(task, **options)
    est.prepare(space)
    supernet_cpu = est.train_seconds
    print(f"supernet: {args.supernet_epochs} epochs, {supernet_cpu:.0f} s; {est.history[-1]}", flush=True)
    tuned = None
    if args.finetune_steps:
        tuned = SupernetEstimator(task, **options, finetune_steps=args.finetune_steps)
    rng = np.random.default_rng(args.seed)
    cells: list[Any] = []
    while len(cells) < args.n:
        arch = space.sample(rng)
        if arch.key not in {c.key for c in cells}:
            cells.append(arch)
    reused = _reused_standalone(args, [_describe(space, arch) for arch in cells])
    rows: list[dict[str, Any]] = []
    for i, arch in enumerate(cells):
        scored = est.evaluate(arch, TrialContext(i, 0))
        row: dict[str, Any] = {
            "architecture": _describe(space, arch),
            "inherited_val": scored["val_accuracy"],
            "inherited_loss": scored["val_loss"],
            "inherited_cpu_s": scored["eval_seconds"],
        }
        if tuned is not None:
            scored = tuned.evaluate(arch, TrialContext(i, 0))
            row |= {
                "finetuned_val": scored["val_accuracy"],
                "finetuned_loss": scored["val_loss"],
                "finetuned_cpu_s": scored["eval_seconds"],
            }
        if args.short_steps:
            row["short_val"], row["short_loss"], row["short_cpu_s"] = _short_scratch(arch, task, args)
        if reused:
            row |= reused[i]
        else:
            val, test, cpu = _standalone(arch, task, args, seed=args.seed)
            row |= {"standalone_val": val, "standalone_test": test, "standalone_cpu_s": round(cpu, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        summary = _rank_summary(rows, supernet_cpu)
        payload = {"settings": vars_json(args), "summary": summary, "history": est.history, "rows": rows}
        _write(args.out, payload)
    print(json.dumps(_rank_summary(rows, supernet_cpu), indent=1))


# the settings that decide the cells and their stand-alone training
_STANDALONE_SETTINGS = ("space", "data_dir", "fraction", "resolution", "epochs", "lr", "seed", "C", "N")


def _reused_standalone(args: argparse.Namespace, described: list[str]) -> list[dict[str, Any]]:
    """The stand-alone columns of ``--standalone-from``, in the order of ``described``; [] if unset."""
    if args.standalone_from is None:
        return []
    where = f"--standalone-from {args.standalone_from}"
    try:
        earlier = json.loads(Path(args.standalone_from).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{where}: cannot read it as a rank JSON ({exc})") from None
    mine = vars_json(args)
    for key in _STANDALONE_SETTINGS:
        if earlier["settings"].get(key) != mine.get(key):
            raise SystemExit(
                f"{where}: its {key} is {earlier['settings'].get(key)!r}, this run's is {mine.get(key)!r}; "
                "stand-alone rows are only reused for the same cells and training"
            )
    old = [r["architecture"] for r in earlier["rows"]]
    if old != described:
        raise SystemExit(f"{where}: its {len(old)} cells are not this run's {len(described)} cells")
    columns = ("standalone_val", "standalone_test", "standalone_cpu_s")
    return [{c: r[c] for c in columns} for r in earlier["rows"]]


def _rank_summary(rows: list[dict[str, Any]], supernet_cpu: float) -> dict[str, Any]:
    """Kendall / Spearman of every cheap route against stand-alone validation accuracy, its cost
    (the supernet's training counted in both weight-sharing routes) and how much cheaper it is.
    Each route is scored by its validation accuracy and, as ``*_loss``, by its negated validation
    cross-entropy (a finer-grained score than accuracy on 2,000 images)."""
    truth = [r["standalone_val"] for r in rows]
    standalone_cpu = sum(r["standalone_cpu_s"] for r in rows)
    out: dict[str, Any] = {"n": len(rows), "supernet_train_cpu_s": round(supernet_cpu, 1)}
    out["standalone_cpu_s"] = round(standalone_cpu, 1)
    for route, shared in (("inherited", True), ("finetuned", True), ("short", False)):
        if f"{route}_val" not in rows[0]:
            continue
        cpu = sum(r[f"{route}_cpu_s"] for r in rows) + (supernet_cpu if shared else 0.0)
        out[route] = _correlations([r[f"{route}_val"] for r in rows], truth, "")
        if all(f"{route}_loss" in r for r in rows):  # rows of runs before the loss column lack it
            out[route] |= _correlations([-r[f"{route}_loss"] for r in rows], truth, "_loss")
        out[route] |= {"cpu_s": round(cpu, 1), "speedup": round(standalone_cpu / cpu, 2) if cpu else None}
    return out


def _correlations(scores: list[float], truth: list[float], suffix: str) -> dict[str, float]:
    """``kendall_tau<suffix>`` and ``spearman_rho<suffix>`` of ``scores`` against ``truth``."""
    enough = len(scores) > 2
    tau = stats.kendalltau(scores, truth).statistic if enough else float("nan")
    rho = stats.spearmanr(scores, truth).statistic if enough else float("nan")
    return {f"kendall_tau{suffix}": round(float(tau), 4), f"spearman_rho{suffix}": round(float(rho), 4)}


def _describe(space: Any, arch: Any) -> str:
    return str(space.to_arch_str(arch) if space.name == "nb201" else space.describe(arch))


def vars_json(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def darts(args: argparse.Namespace, task: Any, space: Any) -> None:
    table = nf.estimate.NB201Table(args.bench_dir) if args.bench_dir else None
    rows: list[dict[str, Any]] = []
    for method in args.methods:
        for seed in args.seeds:
            cls = {"darts": nf.strategy.DARTS, "gdas": nf.strategy.GDAS}[method]
            strategy = cls(
                epochs=args.search_epochs, fraction=1.0, C=args.C, N=args.N, threads=1, seed=seed,
                guard_ops=args.guard_ops,
            )  # fmt: skip
            strategy.setup(space, nf.Objective(["val_accuracy"]))
            strategy.search(task)
            search_cpu = strategy.search_seconds
            arch = strategy.derived()
            val, test, cpu = _standalone(arch, task, args, seed=args.seed)
            row = {
                "method": method,
                "seed": seed,
                "cell": space.to_arch_str(arch),
                "search_cpu_s": round(search_cpu, 1),
                "guard": strategy.guard,
                "final_entropy": strategy.history[-1]["entropy"],
                "standalone_val": val,
                "standalone_test": test,
                "standalone_cpu_s": round(cpu, 1),
            }
            if table is not None:
                row["cifar10_test_acc"] = table.evaluate(arch, TrialContext(0, 0))["test_acc"]
            rows.append(row)
            print(json.dumps(row), flush=True)
            _write(args.out, {"settings": vars_json(args), "rows": rows})
    rng = np.random.default_rng(args.seed)
    randoms: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(randoms) < args.random:
        arch = space.sample(rng)
        if arch.key in seen:
            continue
        seen.add(arch.key)
        val, test, cpu = _standalone(arch, task, args, seed=args.seed)
        entry = {"cell": space.to_arch_str(arch), "standalone_val": val, "standalone_test": test}
        if table is not None:
            entry["cifar10_test_acc"] = table.evaluate(arch, TrialContext(0, 0))["test_acc"]
        randoms.append(entry)
        print(json.dumps(entry), flush=True)
        _write(args.out, {"settings": vars_json(args), "rows": rows, "random": randoms})
    tests = [r["standalone_test"] for r in randoms]
    baseline: dict[str, Any] = {
        "random_cells": len(tests),
        "random_test_mean": round(statistics.mean(tests), 4),
        "random_test_median": round(statistics.median(tests), 4),
        "random_test_max": round(max(tests), 4),
    }
    if table is not None:
        baseline["random_cifar10_mean"] = round(statistics.mean(r["cifar10_test_acc"] for r in randoms), 3)
    for row in rows:
        row["percentile_among_random"] = round(
            100 * sum(t < row["standalone_test"] for t in tests) / len(tests), 1
        )
    _write(args.out, {"settings": vars_json(args), "baseline": baseline, "rows": rows, "random": randoms})
    print(json.dumps(baseline, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["rank", "darts"])
    parser.add_argument("--data-dir", required=True, type=Path, help="Fashion-MNIST IDX directory")
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4, help="stand-alone training epochs per cell")
    parser.add_argument("--lr", type=float, default=0.005, help="stand-alone learning rate (Adam)")
    parser.add_argument("--seed", type=int, default=0, help="cell sample and stand-alone training seed")
    parser.add_argument("--n", type=int, default=20, help="random cells to rank")
    parser.add_argument("--supernet-epochs", type=int, default=20)
    parser.add_argument("--supernet-lr", type=float, default=0.05)
    parser.add_argument("--supernet-batch", type=int, default=128, help="supernet and fine-tuning batch size")
    parser.add_argument(
        "--finetune-steps", type=int, default=0,
        help="also score every architecture after this many Adam steps on its inherited weights",
    )  # fmt: skip
    parser.add_argument("--finetune-lr", type=float, default=0.003)
    parser.add_argument(
        "--short-steps", type=int, default=0,
        help="also score every architecture trained from scratch for this many steps (no weight sharing)",
    )  # fmt: skip
    parser.add_argument("--sampling", choices=["uniform", "fair"], default="uniform", help="supernet paths")
    parser.add_argument("--eval-images", type=int, default=2000)
    parser.add_argument("--methods", nargs="+", default=["darts", "gdas"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--search-epochs", type=int, default=10)
    parser.add_argument("--bench-dir", type=Path, default=None, help="holds nb201/nb201_cifar10.csv")
    parser.add_argument("--random", type=int, default=8, help="random NB201 cells trained as the baseline")
    parser.add_argument("--space", choices=["chain", "nb201"], default="chain", help="rank part's space")
    parser.add_argument(
        "--guard-ops", nargs="+", default=["skip_connect"],
        help="ops the collapse guard counts (every parameter-free one: skip_connect avg_pool_3x3 none)",
    )  # fmt: skip
    parser.add_argument(
        "--resolution", type=int, default=None,
        help="resize every image (supernet, stand-alone training, test) to this many pixels per side",
    )  # fmt: skip
    parser.add_argument(
        "--standalone-from",
        type=Path,
        default=None,
        help="rank: reuse the stand-alone rows of this earlier rank JSON (same cells and settings)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    suffix = f"_{args.space}" if args.part == "rank" else ""
    args.out = args.out or Path(f"bench-results/oneshot_{args.part}{suffix}.json")
    task = nf.datasets.load("fashion-mnist", args.data_dir).with_fraction(args.fraction, seed=0)
    if args.resolution is not None:
        task = task.with_resolution(args.resolution)
    if args.part == "rank" and args.space == "chain":
        space = nf.spaces.ChainCNN(depth=(2, 5), max_params=150_000)
    else:
        space = nf.spaces.NB201Space(C=args.C, N=args.N)
    space = space.bind(task.input_shape, task.num_classes)
    print(task.describe(), flush=True)
    (rank if args.part == "rank" else darts)(args, task, space)


if __name__ == "__main__":
    main()
