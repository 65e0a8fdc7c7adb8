"""How well a per-block latency table predicts whole networks, and how repeatable latency is.

For each space (chain CNN and MBConv at 28x28x1, 10 classes), ``--n`` architectures are sampled;
each is timed whole (PyTorch eager, batch 1, one thread, ``--repeats`` calls, median) and
predicted by :class:`nasforge.hardware.LatencyTable` (its blocks timed alone, summed, plus the cost
of one call), the table filling as it goes. The table's scale and offset are fitted on the first
``--calibrate`` networks; the errors are those of the others (held out): mean, median and largest
absolute percentage error (and the uncalibrated error and bias), Spearman and Kendall rank
correlation, table size and the time spent filling it. Repeatability:
the first ``--repeat-archs`` networks are timed ``--runs`` times (separate calls of
measure_latency), and the coefficient of variation of their medians is reported.

Run it on an otherwise idle core (e.g. ``taskset -c 1``): latency is what it measures.

Usage (from the repository root):
    taskset -c 1 python benchmarks/latency_predictor.py --n 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _meta import run_meta
from scipy import stats

import nasforge as nf
from nasforge.hardware import LatencyTable, measure_latency

SHAPE = (1, 28, 28)


def spaces() -> dict[str, nf.SearchSpace]:
    return {
        "chain_cnn": nf.spaces.ChainCNN(depth=(2, 6), max_params=300_000).bind(SHAPE, 10),
        "mbconv": nf.spaces.MBConvSpace().bind(SHAPE, 10),
    }


def run_space(name: str, space: nf.SearchSpace, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    table = LatencyTable(threads=1, repeats=args.block_repeats)
    rows: list[dict[str, Any]] = []
    nets = []
    fill_seconds = 0.0
    for i in range(args.n):
        arch = space.sample(rng)
        net = arch.build()
        measured = measure_latency(net, SHAPE, threads=1, repeats=args.repeats).median_ms
        t0 = time.perf_counter()
        raw = table.block_sum(net, SHAPE)
        fill_seconds += time.perf_counter() - t0
        nets.append(net)
        row: dict[str, Any] = {"arch": space.describe(arch), "measured_ms": measured, "raw_ms": raw}
        if i < args.repeat_archs:
            medians = [
                measure_latency(net, SHAPE, threads=1, repeats=args.repeats).median_ms
                for _ in range(args.runs)
            ]
            row["run_medians_ms"] = medians
            row["cv"] = statistics.pstdev(medians) / statistics.fmean(medians)
        rows.append(row)
        print(json.dumps({"space": name, **{k: v for k, v in row.items() if k != "arch"}}), flush=True)
    # scale and offset fitted on the first --calibrate networks; errors on the others (held out)
    k = args.calibrate
    scale, offset = table.calibrate([(nets[i], SHAPE, rows[i]["measured_ms"]) for i in range(k)])
    for net, r in zip(nets, rows, strict=True):
        r["predicted_ms"] = table.predict(net, SHAPE)
    held = rows[k:]
    m = np.array([r["measured_ms"] for r in held])
    raw = np.array([r["raw_ms"] for r in held])
    p = np.array([r["predicted_ms"] for r in held])
    ape = np.abs(p - m) / m
    cvs = [r["cv"] for r in rows if "cv" in r]
    return {
        "space": name,
        "n": len(rows),
        "calibrated_on": k,
        "held_out": len(held),
        "scale": scale,
        "offset_ms": offset,
        "raw_mape": float((np.abs(raw - m) / m).mean()),
        "raw_bias": float(np.mean((raw - m) / m)),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "max_ape": float(ape.max()),
        "bias": float(np.mean((p - m) / m)),
        "spearman": float(stats.spearmanr(p, m).statistic),
        "kendall": float(stats.kendalltau(p, m).statistic),
        "measured_ms_range": [float(m.min()), float(m.max())],
        "table_entries": len(table),
        "table_fill_seconds": round(fill_seconds, 1),
        "repeatability_cv_median": float(np.median(cvs)) if cvs else None,
        "repeatability_cv_max": float(max(cvs)) if cvs else None,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per whole network")
    parser.add_argument("--block-repeats", type=int, default=30, help="timed calls per block")
    parser.add_argument("--repeat-archs", type=int, default=10)
    parser.add_argument("--calibrate", type=int, default=10, help="networks that fit the scale and offset")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spaces", nargs="+", default=["chain_cnn", "mbconv"])
    parser.add_argument("--out", type=Path, default=Path("bench-results/latency_predictor.json"))
    args = parser.parse_args()
    results = [run_space(name, spaces()[name], args) for name in args.spaces]
    meta = run_meta()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print(
        "\n| space | held out | raw MAPE (bias) | MAPE | median APE | max APE | Spearman | Kendall "
        "| table entries | CV of 5 runs (median / max) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r['space']} | {r['held_out']} | {r['raw_mape']:.1%} ({r['raw_bias']:+.1%}) | "
            f"{r['mape']:.1%} | {r['median_ape']:.1%} | {r['max_ape']:.1%} | {r['spearman']:.3f} | "
            f"{r['kendall']:.3f} | {r['table_entries']} | "
            f"{r['repeatability_cv_median']:.1%} / {r['repeatability_cv_max']:.1%} |"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
