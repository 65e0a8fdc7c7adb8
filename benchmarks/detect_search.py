"""Detection end to end: search the ``detector`` space with ``train_det``; train, save, load the pick.

Random search over the detector space under a parameter budget on ``shapes-det``; every trial is
trained briefly at a low fidelity (``--epochs`` × ``--steps`` mini-batches) and scored by val
mAP@[.5:.95]. The zero-cost proxies ``mae_det``, ``synflow`` and ``params`` of every trial's
architecture are computed too, and their Spearman correlation with the trials' val mAP printed
(a small sample: an indication, not a study). The best architecture is trained for
``--final-epochs``, saved as a ``.nasforge`` file, loaded with ``nasforge.load`` and run on test
images. Prints a JSON record (with command, machine and commit).

Usage (from the repository root):
    python benchmarks/detect_search.py                       # 12 trials, 1 thread
    python benchmarks/detect_search.py --trials 4 --epochs 2 --final-epochs 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _meta import run_meta
from scipy.stats import spearmanr

import nasforge as nf
from nasforge.data import load_detection
from nasforge.estimate import DetectionTrainEstimator, compute_proxies, train_detector
from nasforge.space import DetectorSpace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8, help="mini-batches per epoch in a trial")
    parser.add_argument("--final-epochs", type=int, default=20)
    parser.add_argument("--max-params", type=int, default=100_000)
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = load_detection("shapes-det", n_train=args.n_train, n_val=128, n_test=128, seed=args.seed)
    space = DetectorSpace(max_params=args.max_params)
    est = DetectionTrainEstimator(
        task, epochs=args.epochs, steps_per_epoch=args.steps, batch_size=32, lr=5e-3, threads=args.threads
    )
    exp = nf.Experiment("detect-search", space=space, objectives=["val_map"], seed=args.seed)
    start = time.perf_counter()
    exp.run("random", est, n_trials=args.trials)
    search_s = time.perf_counter() - start
    done = [t for t in exp.trials if t.state is nf.TrialState.COMPLETE]
    x = torch.randn(2, *task.input_shape)
    proxies = [
        compute_proxies(t.architecture.build(), x, names=["mae_det", "synflow", "params"]) for t in done
    ]
    val_map = [t.metrics["val_map"] for t in done]
    correlations = {
        name: round(float(spearmanr([p[name] for p in proxies], val_map)[0]), 3) for name in proxies[0]
    }
    best = exp.best()
    assert best is not None
    start = time.perf_counter()
    trained = train_detector(
        best.architecture, task, epochs=args.final_epochs, batch_size=32, lr=5e-3, threads=args.threads
    )
    final_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = trained.save(Path(tmp) / "det.nasforge")
        model = nf.load(path)
        pixels = task.x_test[:8] * torch.tensor(task.std).view(1, -1, 1, 1) + torch.tensor(task.mean).view(
            1, -1, 1, 1
        )
        results = model(pixels.clamp(0, 1))
    record = {
        "task": task.describe(),
        "trials": len(exp.trials),
        "complete": len(done),
        "search_s": round(search_s, 1),
        "trial_val_map": [round(v, 4) for v in val_map],
        "spearman_with_val_map": correlations,
        "best": space.describe(best.architecture),
        "best_trial_val_map": round(best.metrics["val_map"], 4),
        "final": {
            k: trained.metrics[k] for k in ("val_map", "val_map_50", "test_map", "test_map_50", "params")
        },
        "final_s": round(final_s, 1),
        "loaded": repr(model),
        "first_test_image": results[0].verbose(),
        "speed_ms": {k: round(v, 2) for k, v in results[0].speed.items() if v is not None},
        "meta": run_meta(),
    }
    print(json.dumps(record, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
