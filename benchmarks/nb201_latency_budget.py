"""NB201 under a device latency budget: the best CIFAR-10 test accuracy found vs the true optimum.

For each device of the NB201 latency tables, the budget is a quantile of that device's latency over
all 15,625 cells (``--quantile``, default 0.5: half the cells are feasible) and the true constrained
optimum is the highest CIFAR-10 test accuracy among the cells within it. Each strategy then runs
``--queries`` table queries per seed with the objective ``valid_acc_12ep`` (the 12-epoch validation
accuracy, the search signal) under the constraint ``latency_ms <= budget``, which is checked on
the table before each query (an over-budget cell is screened and costs no query); its pick (the
feasible trial with the best search signal) is scored by its 200-epoch test accuracy. Prints mean
+- std of the pick's test accuracy, the mean gap to the optimum and how often the gap is at most
0.3 points, the same for the best test accuracy among the queried cells ("best found"), the mean
number of screened proposals, and the test accuracy of the feasible cell with the best search
signal (what a search that found it would report: the ceiling of picking by the 12-epoch signal).
``zc_warm_start`` reads its synflow scores from ``--proxy-cache`` when given. A strategy may carry
options as JSON after a colon (``'zc_warm_start:{"inner": "local"}'``); ``--first-seed`` moves the
seeds (e.g. 1000 for tuning runs, so that the reported seeds 0.. are not the ones tuned on).

Usage (from the repository root):
    python benchmarks/nb201_latency_budget.py --bench-dir ../shared/benchmarks \\
        --devices raspi4 pixel3 --seeds 50 --queries 100 --strategies random evolution guided_local \\
        zc_warm_start --proxy-cache bench-results/nb201-proxies.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from _meta import run_meta

import nasforge as nf
from nasforge.experiment import Experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-dir", type=Path, required=True)
    parser.add_argument("--devices", nargs="+", default=["raspi4", "pixel3"])
    parser.add_argument("--quantile", type=float, default=0.5)
    parser.add_argument(
        "--strategies", nargs="+", default=["random", "evolution", "guided_local"],
        help='registered names, each optionally with JSON options: \'zc_warm_start:{"n_warm": 30}\'',
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (then +1, +2, ...)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--proxy-cache", type=Path, default=None,
        help="proxy scores for zc_warm_start (from benchmarks/nb201_proxy_cache.py); else computed",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench-results/nb201_latency_budget.json"))
    args = parser.parse_args()
    specs: list[tuple[str, str, dict]] = []  # (label, strategy, options)
    for spec in args.strategies:
        name, _, extra = spec.partition(":")
        try:
            options = json.loads(extra) if extra else {}
        except json.JSONDecodeError as exc:
            parser.error(f"options of {name!r} are not JSON ({exc}): {extra!r}")
        if not isinstance(options, dict):
            parser.error(f"options of {name!r} must be a JSON object, got {extra!r}")
        specs.append((spec, name, options))

    rows = []
    for device in args.devices:
        table = nf.estimate.NB201Table(args.bench_dir, latency_device=device)
        latency = table.latency
        assert latency is not None
        test = table.data.columns["test_acc"]
        budget = float(np.quantile(latency, args.quantile))
        feasible = latency <= budget
        optimum = float(test[feasible].max())
        # what a search that found the feasible cell with the best search signal would score
        valid = np.where(feasible, table.data.columns["valid_acc_12ep"], -np.inf)
        ceiling = float(test[int(np.argmax(valid))])
        print(
            f"{device}: budget {budget:.3f} ms ({feasible.mean():.0%} of cells), optimum {optimum:.2f}, "
            f"best-signal cell {ceiling:.2f}"
        )
        for spec, strategy, extra_options in specs:
            start = time.perf_counter()
            picks: list[float] = []
            found: list[float] = []  # the best test accuracy among the feasible cells queried
            screened: list[int] = []  # infeasible proposals ruled out before a query
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                exp = Experiment(
                    "budget",
                    space=nf.spaces.NB201Space().bind((3, 32, 32), 10),  # CIFAR-10 (for proxies)
                    objectives=["valid_acc_12ep"],
                    constraints=[f"latency_ms <= {budget}"],
                    seed=seed,
                )
                options = {"proxy_cache": args.proxy_cache} if strategy == "zc_warm_start" else {}
                options.update(extra_options)
                exp.run(strategy, table, n_trials=args.queries, strategy_options=options)
                best = exp.best()
                picks.append(float(best.metrics["test_acc"]) if best is not None else float("nan"))
                queried = [t for t in exp.trials if t.feasible and not t.screened and "test_acc" in t.metrics]
                found.append(max(float(t.metrics["test_acc"]) for t in queried))
                screened.append(sum(t.screened for t in exp.trials))
            gaps = [optimum - p for p in picks]
            found_gaps = [optimum - f for f in found]
            row = {
                "device": device,
                "budget_ms": round(budget, 4),
                "feasible_share": round(float(feasible.mean()), 4),
                "optimum_test_acc": optimum,
                "best_signal_cell_test_acc": ceiling,
                "strategy": spec,
                "seeds": args.seeds,
                "first_seed": args.first_seed,
                "queries": args.queries,
                "pick_test_mean": round(statistics.mean(picks), 3),
                "pick_test_std": round(statistics.stdev(picks), 3),
                "gap_mean": round(statistics.mean(gaps), 3),
                "within_0.3": round(sum(g <= 0.3 for g in gaps) / len(gaps), 3),
                "found_test_mean": round(statistics.mean(found), 3),
                "found_gap_mean": round(statistics.mean(found_gaps), 3),
                "found_within_0.3": round(sum(g <= 0.3 for g in found_gaps) / len(found_gaps), 3),
                "screened_mean": round(statistics.mean(screened), 1),
                "seconds": round(time.perf_counter() - start, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        "\n| device | budget | optimum | best-signal cell | strategy | pick test acc | gap | within 0.3 "
        "| best found (test) | gap | within 0.3 | screened |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['device']} | {r['budget_ms']:.2f} ms | {r['optimum_test_acc']:.2f} | "
            f"{r['best_signal_cell_test_acc']:.2f} | {r['strategy']} | "
            f"{r['pick_test_mean']:.2f} ± {r['pick_test_std']:.2f} | {r['gap_mean']:.2f} | "
            f"{r['within_0.3']:.0%} | {r['found_test_mean']:.2f} | {r['found_gap_mean']:.2f} | "
            f"{r['found_within_0.3']:.0%} | {r['screened_mean']:.0f} |"
        )
    meta = run_meta()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
