"""How much a search slows down when it shares the CPUs: alone, two at once, beside busy neighbours.

Each scenario runs a real ``nasforge search`` command (in a temporary directory) and reports its
wall clock as a ratio to the same command alone on the quiet machine:

- ``quiet``: the command alone;
- ``pair``: two copies started together (the README's recipe for two ``--storage`` workers on one
  machine); the ratio is the pair's wall clock to one copy alone (1.0 = no slow-down, 2.0 = fair);
- ``busy``: the command beside one CPU-bound neighbour (``while True: pass``) per core, a fair share
  of one half of the machine, so about 2x is what one expects.

Each runs twice, ``before`` (GNU OpenMP's default spin count, 300,000: nasforge before it set one)
and ``after`` (nasforge's own default, ``GOMP_SPINCOUNT=1000``, see nasforge/_threads.py).

Usage (from the repository root, on an otherwise idle machine; one run takes 5-25 minutes):
    python benchmarks/load_slowdown.py --command small --command quickstart --out bench-results/load.json

``small`` is ``nasforge search --trials 10 --epochs 2 --final-epochs 0`` (about 8 s), ``quickstart``
the README's first command, ``nasforge search`` (about 1.5 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _meta import run_meta

COMMANDS = {
    "small": ["search", "--trials", "10", "--epochs", "2", "--final-epochs", "0"],
    "quickstart": ["search"],
}
POLICIES = {"before": {"GOMP_SPINCOUNT": "300000"}, "after": {}}
SCENARIOS = ("quiet", "pair", "busy")


def nasforge_cmd(args: list[str], run_dir: Path) -> list[str]:
    exe = Path(sys.executable).with_name("nasforge")
    return [str(exe), *args, "--run-dir", str(run_dir)]


def timed(args: list[str], copies: int, env: dict[str, str], where: Path) -> float:
    """Wall clock of ``copies`` copies of the command started together, until the last ends."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            nasforge_cmd(args, where / f"run-{i}"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for i in range(copies)
    ]
    for p in procs:
        _, stderr = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"nasforge {' '.join(args)} failed: {stderr.decode()[-500:]}")
    return time.perf_counter() - start


def neighbours(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--command", action="append", choices=sorted(COMMANDS), help="default: small")
    ap.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="COMMAND:SCENARIO",
        help="leave a scenario out, e.g. quickstart:pair (the quiet run is always made)",
    )
    ap.add_argument("--out", type=Path, default=Path("bench-results/load_slowdown.json"))
    opts = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    rows: list[dict[str, Any]] = []
    for name in opts.command or ["small"]:
        for policy, extra in POLICIES.items():
            env = {**base, **extra}
            times: dict[str, float] = {}
            for scenario in SCENARIOS:
                if f"{name}:{scenario}" in opts.skip and scenario != "quiet":
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    busy = neighbours(cores) if scenario == "busy" else []
                    try:
                        time.sleep(0.5 if busy else 0)
                        times[scenario] = timed(
                            COMMANDS[name], 2 if scenario == "pair" else 1, env, Path(tmp)
                        )
                    finally:
                        for p in busy:
                            p.kill()
                            p.wait()
                print(f"{name:10s} {policy:6s} {scenario:5s} {times[scenario]:7.1f} s", flush=True)
            rows.append(
                {
                    "command": name,
                    "policy": policy,
                    **{f"{s}_s": round(t, 1) for s, t in times.items()},
                    **{
                        f"{s}_ratio": round(times[s] / times["quiet"], 2)
                        for s in ("pair", "busy")
                        if s in times
                    },
                }
            )
    print("\n| command | spin count | alone (s) | two at once | beside a busy neighbour per core |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        spin = "300,000 (before)" if r["policy"] == "before" else "1,000 (after)"
        cells = [
            f"{r[s + '_s']} s ({r[s + '_ratio']}x)" if s + "_s" in r else "not run" for s in ("pair", "busy")
        ]
        print(f"| {r['command']} | {spin} | {r['quiet_s']} | {cells[0]} | {cells[1]} |")
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps({"meta": run_meta(), "cores": cores, "rows": rows}, indent=2))
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
