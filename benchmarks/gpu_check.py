"""Check nasforge's GPU path on a machine with a CUDA GPU, in a few minutes, against the CPU path.

Four steps, each on the same data, architectures and seeds:

1. the process executor with 2 trials per GPU (``trials_per_gpu=2``, forked children): every
   trial must report a CUDA device and the GPU it was handed (run first: the driver must not
   have initialised CUDA before it forks trial processes);
2. a short search (random strategy, 4 trials) with the trials trained on the CPU, on CUDA in
   float32, and on CUDA with mixed precision (bf16 where the GPU supports it, else fp16);
3. the final training of the search's best architecture on the same three paths;
4. a summary: training throughput (images/s) of each GPU path against the CPU, and how far the
   accuracies of the same trials are apart (GPU kernels are not bit-identical to CPU ones, so
   agreement means "within a few points", not equality).

The last line is one summary: ``gpu_check: PASS ...`` or ``gpu_check: FAIL ...`` (exit 0 or 1).
Without a CUDA GPU it prints ``gpu_check: SKIP (no CUDA GPU ...)`` and exits 0, so a CI job on
CPU machines can run it unconditionally.

Usage (from the repository root):
    python benchmarks/gpu_check.py                      # Fashion-MNIST if present, else digits
    python benchmarks/gpu_check.py --dataset digits     # quick: well under a minute on a GPU
    python benchmarks/gpu_check.py --json gpu_check.json
    python benchmarks/gpu_check.py --dataset digits --cpu-stand-in   # the script's own logic, on CPU

Written on a CPU-only machine: there only the SKIP path and ``--cpu-stand-in`` (every step with
the CPU standing in for the GPU: it checks this script, not a GPU) have been executed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FMNIST = REPO_ROOT.parent / "shared" / "datasets" / "fashion-mnist"

# agreement tolerances (accuracy in [0, 1]): GPU kernels differ from CPU ones in the last bits,
# which a few epochs of training turn into differences of a point or two
SEARCH_TOLERANCE = 0.05  # mean |CPU - GPU| validation accuracy over the search's trials
FINAL_TOLERANCE = 0.03  # |CPU - GPU| test accuracy of the final training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", default=None, help="digits or fashion-mnist (default: fmnist if present)"
    )
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per search trial")
    parser.add_argument("--final-epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--cpu-stand-in", action="store_true", help="run every step with the CPU in the GPU's place"
    )
    args = parser.parse_args(argv)

    import torch

    stand_in = args.cpu_stand_in
    gpu = "cpu" if stand_in else "cuda"
    # device_count() asks NVML and leaves CUDA uninitialised (is_available() would initialise it,
    # and forked trial processes must be the first to use the GPU)
    if torch.cuda.device_count() == 0 and not stand_in:
        print(
            f"gpu_check: SKIP (no CUDA GPU here; torch {torch.__version__}, CUDA build {torch.version.cuda})"
        )
        return 0

    import nasforge as nf

    name = args.dataset or ("fashion-mnist" if FMNIST.is_dir() else "digits")
    root = str(FMNIST) if name == "fashion-mnist" else None
    task = nf.datasets.load(name, root)
    budget: dict[str, Any] = {"epochs": args.epochs, "batch_size": 128, "lr": 0.005}
    if name != "digits":
        budget["fraction"] = 0.1
    space = nf.spaces.ChainCNN(depth=(2, 4), layer={"filters": [16, 32]})
    results: dict[str, Any] = {
        "dataset": task.describe(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    problems: list[str] = []

    # 1. process executor, 2 trials per GPU (before the driver touches CUDA)
    t0 = time.perf_counter()
    exp = nf.Experiment("gpu-check-process", space=space, seed=0)
    exp.run(
        "random",
        nf.TrainEstimator(task, device="auto", amp="off", **budget),
        n_trials=args.trials,
        executor="process",
        executor_options={
            "trials_per_gpu": 2,
            **({"gpus": ["0", "1"]} if stand_in else {}),
        },
    )
    done = [t for t in exp.trials if t.state.value == "COMPLETE"]
    handed = sorted({str(t.metrics.get("cuda_visible_devices", "-")) for t in done})
    results["process"] = {
        "trials": len(exp.trials),
        "complete": len(done),
        "devices": sorted({str(t.metrics.get("device")) for t in done}),
        "gpus_handed_out": handed,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"process executor, 2 trials per GPU: {results['process']}")
    on_gpu = all(str(d).startswith(gpu) for d in results["process"]["devices"])
    if len(done) != len(exp.trials) or not on_gpu:
        problems.append("process executor trials did not all complete on a GPU")

    # 2. the same short search on three paths
    amp = "bf16" if stand_in or torch.cuda.is_bf16_supported() else "fp16"
    paths = {"cpu": ("cpu", "off"), "cuda": (gpu, "off"), f"cuda+{amp}": (gpu, amp)}
    search: dict[str, Any] = {}
    for label, (device, mode) in paths.items():
        exp = nf.Experiment(f"gpu-check-{label}", space=space, seed=0)
        exp.run("random", nf.TrainEstimator(task, device=device, amp=mode, **budget), n_trials=args.trials)
        trials = [t for t in exp.trials if t.state.value == "COMPLETE"]
        search[label] = {
            "val_accuracy": [round(float(t.metrics["val_accuracy"]), 4) for t in trials],
            "images_per_second": statistics.median(float(t.metrics["images_per_second"]) for t in trials),
            "keys": [t.architecture.key for t in trials],
            "best": exp.best(),
        }
        print(
            f"search on {label}: accuracies {search[label]['val_accuracy']}, "
            f"median {search[label]['images_per_second']:,.0f} images/s"
        )
    cpu = search["cpu"]
    for label in list(paths)[1:]:
        if search[label]["keys"] != cpu["keys"]:
            problems.append(f"the {label} search evaluated other architectures than the CPU search")
            continue
        gap = statistics.fmean(
            abs(a - b) for a, b in zip(cpu["val_accuracy"], search[label]["val_accuracy"], strict=True)
        )
        search[label]["mean_abs_gap"] = round(gap, 4)
        if gap > SEARCH_TOLERANCE:
            problems.append(f"search accuracies on {label} are {gap:.3f} from the CPU's on average")

    # 3. final training of the CPU search's best architecture
    best = cpu["best"]
    final: dict[str, Any] = {}
    for label, (device, mode) in paths.items():
        trained = best.train(
            task, epochs=args.final_epochs, batch_size=128, lr=0.005, device=device, amp=mode
        )
        m = trained.metrics
        images = len(task.x_train) * int(m["epochs"])
        final[label] = {
            "test_accuracy": round(float(m["test_accuracy"]), 4),
            "images_per_second": round(images / float(m["train_seconds"]), 1),
            "device_name": m["device_name"],
        }
        print(f"final training on {label}: {final[label]}")
    for label in list(paths)[1:]:
        gap = abs(final[label]["test_accuracy"] - final["cpu"]["test_accuracy"])
        final[label]["abs_gap"] = round(gap, 4)
        if gap > FINAL_TOLERANCE:
            problems.append(f"final test accuracy on {label} is {gap:.3f} from the CPU's")

    # 4. summary
    for label in search:
        search[label].pop("best")
        search[label].pop("keys")
    results.update(search=search, final=final, problems=problems)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    speed = ", ".join(
        f"{label} {final[label]['images_per_second'] / final['cpu']['images_per_second']:.1f}x"
        for label in list(paths)[1:]
    )
    gaps = ", ".join(
        f"{label} {search[label].get('mean_abs_gap', float('nan')):.3f}/{final[label]['abs_gap']:.3f}"
        for label in list(paths)[1:]
    )
    verdict = ("PASS" if not problems else "FAIL") + (" (CPU standing in for the GPU)" if stand_in else "")
    print(
        f"gpu_check: {verdict} on {final['cuda']['device_name']}: final-training throughput vs CPU {speed}; "
        f"accuracy gap vs CPU (search mean / final) {gaps}; process executor "
        f"{results['process']['complete']}/{results['process']['trials']} trials on GPUs "
        f"{','.join(results['process']['gpus_handed_out'])}"
        + (f"; problems: {'; '.join(problems)}" if problems else "")
    )
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
