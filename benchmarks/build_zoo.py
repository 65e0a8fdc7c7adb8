"""Rebuild the model zoo from scratch: one nasforge search + final training per entry.

Each zoo entry ``NAME`` is described by ``nasforge/zoo/NAME.yaml``: a ``description`` and the
``search`` config (the same YAML ``nasforge search`` reads). For each entry this script runs that
search (run directory ``bench-results/zoo/NAME``), which trains the best architecture on the full
training set and tests it once, then writes the model to ``nasforge/zoo/NAME.nasforge`` with the
command that made it in its provenance, measures the INT8 ONNX accuracy on the test set, and prints
the table for docs/benchmarks.md. MNIST and Fashion-MNIST are read from ``--data-dir`` (the
directory holding ``mnist/`` and ``fashion-mnist/``); nothing is downloaded.

Usage (from the repository root; pin each search to one core to run two side by side):
    taskset -c 0 python benchmarks/build_zoo.py --data-dir ../shared/datasets --only mnist-s
    taskset -c 1 python benchmarks/build_zoo.py --data-dir ../shared/datasets --only fashion-mnist-s
    python benchmarks/build_zoo.py --only digits-s
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import yaml
from _meta import run_meta

import nasforge as nf
from nasforge.config import parse_config
from nasforge.deploy import check_images
from nasforge.experiment._search import run_search
from nasforge.zoo import ZOO_DIR, entries


def build(name: str, data_dir: Path | None, runs: Path) -> dict[str, object]:
    spec = yaml.safe_load((ZOO_DIR / f"{name}.yaml").read_text())
    search = dict(spec["search"])
    data = dict(search["data"])
    if data["name"] != "digits":
        if data_dir is None:
            raise SystemExit(f"{name} needs --data-dir (the directory holding {data['name']}/)")
        data["root"] = str(data_dir / data["name"])
    search["data"] = data
    run_dir = runs / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    search["run_dir"] = str(run_dir)
    search["name"] = name
    cfg = parse_config(search, source=f"{name}.yaml")
    start = time.perf_counter()
    result = run_search(cfg)
    seconds = time.perf_counter() - start
    if result.final is None:
        raise SystemExit(f"{name}: the search produced no model (no trial completed?)")
    model = nf.load(run_dir / "model.nasforge")
    model.provenance.update(
        zoo=name,
        seed=cfg.seed,
        made_by=f"nasforge search ({cfg.strategy['name']}, {cfg.trials} trials) + final training",
        reproduce=f"python benchmarks/build_zoo.py --data-dir DATA --only {name}",
    )
    target = ZOO_DIR / f"{name}.nasforge"
    model.save(target)
    model = nf.load(target)
    task = nf.datasets.load(data["name"], data.get("root"))
    with tempfile.TemporaryDirectory() as tmp:
        report = model.export(Path(tmp) / f"{name}.int8.onnx", format="int8", **check_images(task))
    row = {
        "name": name,
        "dataset": data["name"],
        "architecture": model.architecture.space.describe(model.architecture),
        "params": model.metrics.get("params"),
        "file_kb": round(target.stat().st_size / 1024, 1),
        "val_accuracy": model.metrics.get("val_accuracy"),
        "test_accuracy": model.metrics.get("test_accuracy"),
        "int8_test_accuracy": report.accuracy["exported"],
        "fp32_test_accuracy_check": report.accuracy["pytorch"],
        "search_and_training_seconds": round(seconds, 1),
    }
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="holds mnist/ and fashion-mnist/")
    parser.add_argument("--only", nargs="+", default=None, help="entries to rebuild (default: all)")
    parser.add_argument("--runs", type=Path, default=Path("bench-results/zoo"))
    args = parser.parse_args(argv)
    names = args.only or [e.name for e in entries()]
    rows = [build(name, args.data_dir, args.runs) for name in names]
    print("\n| model | dataset | architecture | params | file | test acc | INT8 test acc | build time |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| `{r['name']}` | {r['dataset']} | `{r['architecture']}` | {r['params']:,} | "
            f"{r['file_kb']} KB | {r['test_accuracy']:.4f} | {r['int8_test_accuracy']:.4f} | "
            f"{float(r['search_and_training_seconds']) / 60:.1f} min |"
        )
    meta = run_meta()
    args.runs.mkdir(parents=True, exist_ok=True)
    out = args.runs / f"zoo-{'-'.join(names)}.json"
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
