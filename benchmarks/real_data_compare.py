"""The default search against the alternatives a user has, at equal wall clock, on real images (issue 21).

Each run is one child process with the same ``--time`` budget (search and final training together,
or one network's training), on ``--dataset`` digits, mnist or fashion-mnist. Five arms:

- ``default``: ``nasforge search --dataset D --data-dir X --time T --seed S``, exactly as a user
  types it: whatever the defaults of the checked-out commit are (each row records it).
- ``old``: the default search before issue 21's changes, pinned in a YAML file this script writes
  (``old_<dataset>.yaml`` beside the results), so it does not move when the defaults do: every
  setting as ``nasforge/config/_model.py`` (``SMALL_BUDGET`` / ``LARGE_BUDGET``, ``_default_space``,
  ``_default_strategy``, ``FinalConfig``) and the constructors it names defined it at commit
  5eb29a3: regularised evolution (population 10, tournament 3) over the chain-CNN space (depth 2-5,
  at most 150k parameters), trials of the ``train`` estimator (digits: 10 epochs, batch 32,
  lr 0.01; MNIST-sized: 4 epochs on 10% of the images, batch 128, lr 0.005; Adam, weight decay
  5e-4, cosine schedule, no label smoothing, no augmentation), final training of the pick with
  the same recipe (digits 60 epochs, MNIST-sized 8, fewer if they do not fit in what is left of
  ``--time``; ``time_share: null``), no race. A recipe option added since
  (``augment``, ``label_smoothing``, ``warmup`` of the ``estimator`` and ``final`` sections) is
  stated as off when the config accepts it, and left out when it does not (so the file works before
  and after those options exist; its comments say which were left out). A setting that did not
  exist at 5eb29a3 and is none of these takes the checked-out commit's default.
- ``optuna``: ``default`` with ``--strategy tpe`` (Optuna's TPE through the same space, estimator
  and final training).
- ``random``: ``default`` with ``--strategy random``.
- ``hand``: a hand-designed network of the chain-CNN space, built by that space's own constructor
  (``ChainCNN(...).make``, the same builder as the searched networks): for 28x28 images a VGG-style
  ``conv3x32 > conv3x32 > maxpool3/2 > conv3x64 > conv3x64 > maxpool3/2`` (ReLU, batch norm, global
  average pooling and a linear classifier: 65,834 parameters for 10 classes), for images of 16
  pixels or fewer (digits' 8x8) ``conv3x32 > conv3x32 > maxpool3/2 > conv3x64`` (28,842
  parameters). It is trained with the recipe of the default search's final training (the same
  optimizer, learning rate, batch size, weight decay, schedule and whatever else that recipe holds
  at the checked-out commit; the seed the search's final training would get) for the whole budget:
  one epoch's time is measured on a stratified slice of the training images (at least 10%, at least
  20 batches), and the epochs are planned as the search plans its final training
  (:func:`nasforge._budget.fit_epochs`, room left for the evaluation), so the learning-rate
  schedule ends within ``--time``; the time limit cuts it if it runs slower than planned.
  ``--hand-max-epochs`` caps the epochs (default: no cap, the budget decides).

The runs are sequential: each (seed, arm) in turn, seeds outermost, so that a stopped run has whole
seeds to compare. ``--cpus`` pins every child to those CPUs (its thread count follows them) and
``--nice`` lowers its priority. A child's budget counts, as ``nasforge search``'s does, from when
its work starts (after Python has started and imported); the rows' wall seconds include the
start-up and what the child writes after its budget. Each run appends one JSON line to ``--out`` as
soon as it ends: arm, seed, dataset, budget, wall seconds, test accuracy, balanced accuracy, macro
F1 and AUC (from the run's ``final.json``), parameters, FLOPs, the picked trial and whether it is
trial 0, the trials completed, the architecture, the commit and :func:`_meta.run_meta`. A run whose
child fails is a ``failed`` row with the child's last error line, and the next run starts. Running
the same command again skips the rows already in ``--out`` (``--retry-failed`` runs the failed ones
again): a stopped benchmark loses at most the run in progress.

``report`` turns one or more result files into markdown for docs/benchmarks.md: per arm the mean and
standard error over seeds, per seed the test accuracies, and each arm against ``default`` paired by
seed (the mean difference, wins / ties / losses, a one-sided sign test), with the verdicts of the
criterion. ``criterion`` prints that criterion, to commit before the runs; both take the same
thresholds.

Five arms and five seeds are 25 runs per dataset and budget: about 6.5 hours at 15m, 12.5 at 30m.

Usage (from the repository root, the machine otherwise idle):
    python benchmarks/real_data_compare.py criterion
    python benchmarks/real_data_compare.py run --dataset fashion-mnist \\
        --data-dir ../shared/datasets/fashion-mnist --time 30m --seeds 0 1 2 3 4 --cpus 1
    python benchmarks/real_data_compare.py run --dataset digits --time 15m --cpus 1
    python benchmarks/real_data_compare.py report --in bench-results/real_fashion-mnist_30m.jsonl \\
        --in bench-results/real_digits_15m.jsonl
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from _meta import git_commit, run_meta

ARMS = ("default", "old", "hand", "optuna", "random")
DATASETS = ("digits", "mnist", "fashion-mnist")
#: the commit whose defaults the ``old`` arm pins
PINNED_COMMIT = "5eb29a3"

# The default search at commit 5eb29a3, every setting spelt out (nasforge/config/_model.py, the
# ChainCNN, RegularizedEvolution and TrainEstimator constructors, nasforge/_defaults.py). These are
# literal values on purpose: reading them from the code would move them with the defaults.
_OLD_SPACE: dict[str, Any] = {
    "name": "chain_cnn",
    "depth": [2, 5],
    "max_params": 150_000,
    "layer": {
        "op": ["conv", "sepconv", "maxpool", "avgpool"],
        "kernel": [3, 5],
        "stride": [1, 2],
        "padding": ["same"],
        "filters": [16, 32, 64],
        "act": ["relu", "hardswish"],
        "skip": [False, True],
    },
}
_OLD_STRATEGY: dict[str, Any] = {"name": "evolution", "population": 10, "tournament": 3, "crossover": 0.0}
_OLD_RECIPE: dict[str, Any] = {"optimizer": "adam", "weight_decay": 0.0005, "schedule": "cosine"}
_OLD_ESTIMATOR: dict[str, dict[str, Any]] = {  # SMALL_BUDGET, LARGE_BUDGET
    "small": {"name": "train", "epochs": 10, "fraction": 1.0, "batch_size": 32, "lr": 0.01},
    "large": {"name": "train", "epochs": 4, "fraction": 0.1, "batch_size": 128, "lr": 0.005},
}
_OLD_FINAL: dict[str, dict[str, Any]] = {
    "small": {"epochs": 60, "batch_size": 32, "lr": 0.01},
    "large": {"epochs": 8, "batch_size": 128, "lr": 0.005},
}
_OLD_ESTIMATOR_REST: dict[str, Any] = {"val_fraction": 1.0, "resolution": None, "width": 1.0}
_OLD_FINAL_REST: dict[str, Any] = {"race": 1, "race_epochs": None, "race_folds": 3}
#: recipe options that came with issue 21 (or may come), stated as off where the config takes them
_OPTIONAL_OFF: dict[str, Any] = {"label_smoothing": 0.0, "augment": "none", "warmup": 0}
#: final-training options that came with issue 21, stated as off (a share of the budget filled with
#: epochs under --time; before it the final training trained its configured epochs, fewer if short)
_OPTIONAL_FINAL_OFF: dict[str, Any] = {"time_share": None, "max_epochs": None}
_LARGE = ("mnist", "fashion-mnist")

#: the hand-designed networks, (op, kernel, stride, filters) per layer of the chain-CNN space
HAND_28: tuple[tuple[str, int, int, int | None], ...] = (
    ("conv", 3, 1, 32),
    ("conv", 3, 1, 32),
    ("maxpool", 3, 2, None),
    ("conv", 3, 1, 64),
    ("conv", 3, 1, 64),
    ("maxpool", 3, 2, None),
)
HAND_SMALL: tuple[tuple[str, int, int, int | None], ...] = (
    ("conv", 3, 1, 32),
    ("conv", 3, 1, 32),
    ("maxpool", 3, 2, None),
    ("conv", 3, 1, 64),
)
METRICS = ("test_accuracy", "test_balanced_accuracy", "test_f1_macro", "test_auc")
_LABELS = {
    "test_accuracy": "test accuracy",
    "test_balanced_accuracy": "balanced accuracy",
    "test_f1_macro": "macro F1",
    "test_auc": "AUC",
}


# ---------------------------------------------------------------------------------------- the old arm
def _accepts(section: str, key: str, value: Any, dataset: str) -> bool:
    """Whether this nasforge's config takes ``key: value`` in ``section`` (estimator or final)."""
    from nasforge.config import parse_config
    from nasforge.errors import ConfigError
    from nasforge.registry import ESTIMATORS, check_options

    try:
        if section == "estimator":  # its options are checked against the estimator's constructor
            check_options("estimator", "train", ESTIMATORS.get("train"), {key: value})
        else:
            parse_config({"data": {"name": dataset}, section: {key: value}})
    except ConfigError:
        return False
    return True


def old_config(dataset: str) -> tuple[dict[str, Any], list[str]]:
    """The ``old`` arm's config for ``dataset``, and the optional keys left out because this
    nasforge's config does not take them."""
    size = "large" if dataset in _LARGE else "small"
    estimator = {**_OLD_ESTIMATOR[size], **_OLD_ESTIMATOR_REST, **_OLD_RECIPE}
    final = {**_OLD_FINAL[size], **_OLD_RECIPE, **_OLD_FINAL_REST}
    dropped = []
    for section, options, optional in (
        ("estimator", estimator, _OPTIONAL_OFF),
        ("final", final, {**_OPTIONAL_OFF, **_OPTIONAL_FINAL_OFF}),
    ):
        for key, value in optional.items():
            if _accepts(section, key, value, dataset):
                options[key] = value
            else:
                dropped.append(f"{section}.{key}")
    config = {
        "data": {"name": dataset, "fraction": 1.0, "seed": 0},
        "space": json.loads(json.dumps(_OLD_SPACE)),  # a copy: the caller may change it
        "strategy": dict(_OLD_STRATEGY),
        "scheduler": None,
        "estimator": estimator,
        "objectives": ["val_accuracy"],
        "constraints": [],
        "max_screened": 200,
        "executor": {"name": "inprocess"},
        "device": "auto",
        "amp": "auto",
        "final": final,
    }
    return config, dropped


def old_yaml(dataset: str) -> str:
    """The ``old`` arm's config file, with comments saying what it pins and what it leaves out."""
    config, dropped = old_config(dataset)
    head = [
        "# The default `nasforge search` before issue 21, pinned: every setting as the code defined it at",
        f"# commit {PINNED_COMMIT} (written by benchmarks/real_data_compare.py; `--time` and `--seed` come",
        "# from the command line).",
    ]
    if dropped:  # options of issue 21 that this nasforge does not have yet: training without them is off
        said = (
            "Left out because this nasforge's config does not take them (they came with issue 21, or "
            f"not yet; without them the training has none of it anyway): {', '.join(dropped)}."
        )
        head += textwrap.wrap(said, 98, initial_indent="# ", subsequent_indent="# ")
    return "\n".join(head) + "\n" + yaml.safe_dump(config, sort_keys=False)


# ---------------------------------------------------------------------------------------- the hand arm
def hand_architecture(input_shape: Sequence[int], num_classes: int) -> Any:
    """The hand-designed network for the task (module docstring) as an Architecture of the
    chain-CNN space, bound to ``input_shape`` and ``num_classes``."""
    from nasforge.space import ChainCNN

    layers = HAND_SMALL if min(input_shape[1:]) <= 16 else HAND_28
    space = ChainCNN(depth=len(layers)).bind(input_shape, num_classes)
    params: dict[str, Any] = {"depth": len(layers)}
    for i, (op, kernel, stride, filters) in enumerate(layers):
        params.update(
            {
                f"layer{i}.op": op,
                f"layer{i}.kernel": kernel,
                f"layer{i}.stride": stride,
                f"layer{i}.padding": "same",
            }
        )
        if filters is not None:
            params.update({f"layer{i}.filters": filters, f"layer{i}.act": "relu", f"layer{i}.skip": False})
    return space.make(params)


def _epoch_seconds(arch: Any, task: Any, recipe: Mapping[str, Any], seed: int) -> float:
    """Seconds one epoch of ``task``'s training images takes, from one epoch on a stratified slice
    of them (at least 10%, at least 20 batches), with no validation or test images to score."""
    from nasforge.estimate import fit_final

    n = len(task.x_train)
    fraction = min(1.0, max(0.1, 20 * int(recipe["batch_size"]) / n))
    part = task.with_fraction(fraction, seed=seed)
    none = {f"{x}_{split}": getattr(part, f"{x}_{split}")[:0] for x in "xy" for split in ("val", "test")}
    run = fit_final(arch, dataclasses.replace(part, **none), epochs=1, seed=seed, **recipe)
    return n / run.result.images_per_second


def hand(args: argparse.Namespace) -> None:
    """Train the hand-designed network for ``--time`` and write ``final.json`` and the model into
    ``--run-dir``, as a search would."""
    started = time.monotonic()  # as run_search's budget: before the data is loaded
    from nasforge._budget import EVAL_COST, fit_epochs, parse_duration
    from nasforge._seeds import derive_seed
    from nasforge.config import search_config
    from nasforge.estimate import train_final
    from nasforge.experiment._search import _recipe, prepare_search
    from nasforge.hardware import Profiler

    total = parse_duration(args.time)
    config = search_config(None, dataset=args.dataset, data_dir=args.data_dir, time=args.time, seed=args.seed)
    prepared = prepare_search(config)  # the task as the default search loads it
    task = prepared.task
    # what the search's final training is given, but epochs, seed, time (the recipe's warm-up
    # depends on the epochs: planned first with the config's, then again with those that fit)
    recipe = _recipe(prepared, max(1, config.final.epochs))
    seed = derive_seed(config.seed, 3)  # the search's final training's seed
    arch = hand_architecture(task.input_shape, task.num_classes)
    epoch_s = _epoch_seconds(arch, task, recipe, seed)
    left = total - (time.monotonic() - started)
    evaluation = EVAL_COST * epoch_s / len(task.x_train) * (len(task.x_val) + 2 * len(task.x_test))
    cap = args.max_epochs if args.max_epochs is not None else 1_000_000
    epochs = fit_epochs(left - evaluation, cap, epoch_s)
    limit = max(left, 0.01 * total)  # as the search's final training: a little, rather than none
    recipe = _recipe(prepared, epochs)
    model = train_final(arch, task, epochs=epochs, seed=seed, time_limit=limit, **recipe)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "model.nasforge", provenance={"source": "real_data_compare.py hand", "seed": seed})
    payload = {
        "trial": None,
        "architecture": arch.to_dict(),
        "flops": Profiler().count(arch, ("flops",))["flops"],
        "final_metrics": dict(model.metrics),
        "test_report": model.test_report,
        "final_training": {"epochs": epochs, **recipe},
        "time_budget": {
            "total_s": round(total, 3),
            "epoch_seconds": round(epoch_s, 3),
            "final_epochs": epochs,
            "final_time_limit_s": round(limit, 3),
            "spent_s": round(time.monotonic() - started, 3),
            "final_cut": bool(model.metrics.get("cut_by_time_limit", False)),
        },
    }
    (run_dir / "final.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")


# ---------------------------------------------------------------------------------------- run
def parse_cpus(text: str) -> list[int]:
    """``"1"``, ``"0,1"`` or ``"0-3"`` as a list of CPU numbers."""
    cpus: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        cpus += range(int(low), int(high or low) + 1)
    if not cpus:
        raise ValueError(f"no CPUs in {text!r}")
    return cpus


def budget_label(seconds: float) -> str:
    """``15m`` for 900 seconds, ``20s`` for 20: the budget in file names and headings."""
    return f"{seconds / 60:g}m" if seconds % 60 == 0 else f"{seconds:g}s"


def default_out(dataset: str, seconds: float) -> Path:
    return Path("bench-results") / f"real_{dataset}_{budget_label(seconds)}.jsonl"


def child_command(arm: str, args: argparse.Namespace, seed: int, run_dir: Path, work: Path) -> list[str]:
    """The child process of one run."""
    data = ["--data-dir", str(args.data_dir)] if args.data_dir is not None else []
    common = [
        "--dataset",
        args.dataset,
        *data,
        "--time",
        args.time,
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
    ]
    search = [sys.executable, "-m", "nasforge", "search"]
    if arm == "default":
        return [*search, *common]
    if arm == "old":
        return [*search, str(work / f"old_{args.dataset}.yaml"), *common]
    if arm == "optuna":
        return [*search, *common, "--strategy", "tpe"]
    if arm == "random":
        return [*search, *common, "--strategy", "random"]
    cap = [] if args.hand_max_epochs is None else ["--max-epochs", str(args.hand_max_epochs)]
    return [sys.executable, str(Path(__file__).resolve()), "hand", *common, *cap]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a result file (a line cut short by a kill is skipped)."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _key(row: Mapping[str, Any]) -> tuple[str, float, str, int]:
    return (str(row["dataset"]), float(row["time_budget_s"]), str(row["arm"]), int(row["seed"]))


def last_line(*paths: Path) -> str:
    """The last non-empty line of the first of ``paths`` that has one."""
    for path in paths:
        if path.exists():
            lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
            if lines:
                return lines[-1]
    return ""


def outcome(run_dir: Path) -> dict[str, Any]:
    """What a finished run's ``final.json`` (and ``leaderboard.csv``) say."""
    from nasforge.space import Architecture

    final = json.loads((run_dir / "final.json").read_text())
    metrics = final.get("final_metrics") or {}
    report = final.get("test_report") or {}
    out: dict[str, Any] = {k: metrics.get(k, report.get(k.removeprefix("test_"))) for k in METRICS}
    arch = Architecture.from_dict(final["architecture"])
    trial = final.get("trial")
    out.update(
        val_accuracy=metrics.get("val_accuracy"),
        params=metrics.get("params"),
        flops=final.get("flops", (final.get("search_metrics") or {}).get("flops")),
        pick_trial=trial,
        pick_is_trial0=None if trial is None else trial == 0,
        architecture=arch.space.describe(arch),
        final_epochs=metrics.get("epochs"),
        final_cut=(final.get("time_budget") or {}).get("final_cut"),
        spent_s=(final.get("time_budget") or {}).get("spent_s"),
        trials_completed=None,
        trials_pruned=None,
    )
    board = run_dir / "leaderboard.csv"
    if board.exists():
        with board.open() as f:
            states = [row["state"] for row in csv.DictReader(f)]
        out.update(trials_completed=states.count("COMPLETE"), trials_pruned=states.count("PRUNED"))
    return out


def run(args: argparse.Namespace) -> None:
    from nasforge._budget import parse_duration

    seconds = parse_duration(args.time)
    out = args.out or default_out(args.dataset, seconds)
    work = out.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    (work / f"old_{args.dataset}.yaml").write_text(old_yaml(args.dataset))
    done = {_key(r): r for r in read_rows(out)}
    cpus = parse_cpus(args.cpus) if args.cpus else None
    # the child's thread count follows the CPUs it may use, not a count set for this process
    env = {k: v for k, v in os.environ.items() if k != "NASFORGE_THREADS"}
    env["COLUMNS"] = "120"

    def pin() -> None:  # in the child, before it starts
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        if args.nice:
            os.nice(args.nice)

    for seed in args.seeds:
        for arm in args.arms:
            key = (args.dataset, seconds, arm, seed)
            if key in done and (done[key].get("status") == "ok" or not args.retry_failed):
                print(f"{arm} seed {seed}: in {out} already, skipped", flush=True)
                continue
            name = f"{args.dataset}_{budget_label(seconds)}_{arm}_s{seed}"  # one --out may hold several
            run_dir = work / name
            if run_dir.exists():  # a run cut short earlier: start it again from nothing
                shutil.rmtree(run_dir)
            cmd = child_command(arm, args, seed, run_dir, work)
            log, err = work / f"{name}.log", work / f"{name}.err"
            commit = git_commit()
            start = time.monotonic()
            with log.open("w") as stdout, err.open("w") as stderr:
                code = subprocess.run(cmd, stdout=stdout, stderr=stderr, env=env, preexec_fn=pin).returncode
            wall = time.monotonic() - start
            row: dict[str, Any] = {
                "arm": arm,
                "seed": seed,
                "dataset": args.dataset,
                "time": args.time,
                "time_budget_s": seconds,
                "status": "ok",
                "wall_seconds": round(wall, 1),
            }
            if code != 0:
                row.update(status="failed", returncode=code, error=last_line(err, log))
            else:
                try:
                    row.update(outcome(run_dir))
                except Exception as exc:  # e.g. no final.json (no trial completed): a failed run too
                    row.update(status="failed", returncode=code, error=f"{exc!r}; {last_line(err, log)}")
            if arm == "old":  # what it ran with (the file is written again by every invocation)
                row["config"] = (work / f"old_{args.dataset}.yaml").read_text()
            row.update(
                run_dir=str(run_dir),
                child_command=shlex.join(cmd),
                cpus=cpus,
                nice=args.nice,
                commit=commit,
                meta=run_meta(),
            )
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            if row["status"] == "ok":
                trial, of = row["pick_trial"], row["trials_completed"]
                pick = "" if trial is None else f", pick trial {trial} of {of} completed"
                print(
                    f"{arm} seed {seed}: test accuracy {row['test_accuracy']:.4f}{pick}, {wall:.0f}s",
                    flush=True,
                )
            else:
                print(f"{arm} seed {seed}: FAILED ({row['error']}); see {err}", flush=True)


# ---------------------------------------------------------------------------------------- report
def sign_test(wins: int, losses: int) -> float:
    """One-sided sign test: the chance of at least ``wins`` wins in ``wins + losses`` fair coin
    tosses (ties left out)."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n if n else 1.0


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (nan for fewer than two values)."""
    if not values:
        return math.nan, math.nan
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return statistics.fmean(values), se


def _fmt(values: Sequence[float], digits: int = 4, signed: bool = False) -> str:
    m, se = mean_se(values)
    if math.isnan(m):
        return "–"
    sign = "+" if signed else ""
    text = f"{m:{sign}.{digits}f}".replace("-", "−")
    return text if math.isnan(se) else f"{text} ± {se:.{digits}f}"


@dataclasses.dataclass(frozen=True)
class Criterion:
    """The pre-declared criterion's thresholds (``criterion`` prints it, ``report`` applies it)."""

    beat: tuple[str, ...]
    se_multiple: float
    min_wins: int
    seeds: int
    max_trial0_share: float
    target_accuracy: float
    target_dataset: str
    target_time: float
    max_params: int

    def text(self) -> str:
        names = [f"`{a}`" for a in self.beat]
        beat = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return (
            f"Pre-declared criterion (fixed before the runs). For each dataset and time budget, "
            f"`default` beats {beat} when, over the seeds run for both, the mean paired difference of "
            f"test accuracy (`default` − arm) is more than {self.se_multiple:g} standard errors above "
            f"zero and `default` is more accurate on at least {self.min_wins} of the {self.seeds} "
            f"seeds. Its pick is trial 0 in less than {self.max_trial0_share:.0%} of the seeds. On "
            f"{self.target_dataset} at {budget_label(self.target_time)} per run, `default` reaches a "
            f"mean test accuracy of at least {self.target_accuracy:.3f} with every pick at most "
            f"{self.max_params:,} parameters. Anything else: not shown."
        )


def _short(commit: str) -> str:
    """A commit as its first 7 characters, and ``-dirty`` if it was."""
    return commit[:7] + ("-dirty" if commit.endswith("-dirty") else "")


def _values(rows: Iterable[Mapping[str, Any]], key: str) -> list[float]:
    """``key`` of each row that has it."""
    return [float(r[key]) for r in rows if r.get(key) is not None]


def _paired(rows: Mapping[tuple[str, int], Mapping[str, Any]], arm: str, metric: str) -> list[float]:
    seeds = sorted(s for a, s in rows if a == arm and ("default", s) in rows)
    pairs = [(rows[("default", s)].get(metric), rows[(arm, s)].get(metric)) for s in seeds]
    return [d - a for d, a in pairs if d is not None and a is not None]


def _wtl(diffs: Iterable[float]) -> tuple[int, int, int]:
    diffs = list(diffs)
    tie = 1e-9
    return sum(d > tie for d in diffs), sum(abs(d) <= tie for d in diffs), sum(d < -tie for d in diffs)


def report_group(rows: list[dict[str, Any]], criterion: Criterion) -> list[str]:
    """The markdown of one dataset and budget."""
    first = rows[0]
    lines = [f"### {first['dataset']}, {budget_label(first['time_budget_s'])} per run", ""]
    metas = [r.get("meta") or {} for r in rows]
    commits = sorted({_short(str(r.get("commit", "?"))) for r in rows})
    dates = sorted(m["date"] for m in metas if "date" in m)
    machine = sorted({f"{m.get('machine', '?')}, {m.get('cpus', '?')} CPUs" for m in metas})
    pinned = sorted({",".join(map(str, r["cpus"])) if r.get("cpus") else "none" for r in rows})
    lines += [
        f"Runs {dates[0] if dates else '?'} to {dates[-1] if dates else '?'}, "
        f"commit(s) {', '.join(commits)}; {'; '.join(machine)}; "
        f"children pinned to CPUs: {'; '.join(pinned)}.",
        "",
    ]
    ok = {(r["arm"], int(r["seed"])): r for r in rows if r.get("status") == "ok"}
    failed = [r for r in rows if r.get("status") != "ok"]
    arms = [a for a in ARMS if any(r["arm"] == a for r in rows)]
    arms += sorted({r["arm"] for r in rows} - set(arms))
    head = " | ".join(_LABELS[m] for m in METRICS)
    lines += [
        f"| arm | seeds | {head} | parameters | MFLOPs | wall time (s) | trials completed "
        "| pick is trial 0 |",
        "|---|---:|" + "---:|" * len(METRICS) + "---:|---:|---:|---:|---:|",
    ]
    for arm in arms:
        mine = [ok[k] for k in sorted(ok) if k[0] == arm]
        n_failed = sum(r["arm"] == arm for r in failed)
        seeds = f"{len(mine)}" + (f" ({n_failed} failed)" if n_failed else "")
        params = _values(mine, "params")
        flops = [f / 1e6 for f in _values(mine, "flops")]
        picks = [r["pick_is_trial0"] for r in mine if r.get("pick_is_trial0") is not None]
        trial0 = f"{sum(picks)} of {len(picks)}" if picks else "–"
        lines.append(
            f"| {arm} | {seeds} | "
            + " | ".join(_fmt(_values(mine, m)) for m in METRICS)
            + f" | {f'{statistics.fmean(params):,.0f}' if params else '–'} | {_fmt(flops, 2)} | "
            f"{_fmt(_values(mine, 'wall_seconds'), 0)} | {_fmt(_values(mine, 'trials_completed'), 1)} "
            f"| {trial0} |"
        )
    lines.append("")

    seeds = sorted({s for _, s in ok})
    lines += [
        "| seed | " + " | ".join(arms) + " |",
        "|---:|" + "---:|" * len(arms),
    ]
    for s in seeds:
        cells = []
        for arm in arms:
            r = ok.get((arm, s))
            cells.append("–" if r is None else f"{r['test_accuracy']:.4f} ({r['params']:,})")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Test accuracy (parameters) per seed. The picks:", ""]
    for arm in arms:
        for s in seeds:
            r = ok.get((arm, s))
            if r is not None:
                trial = ""
                if r.get("pick_trial") is not None:
                    cut = f" and {r['trials_pruned']} cut" if r.get("trials_pruned") else ""
                    trial = f"trial {r['pick_trial']} ({r['trials_completed']} trials completed{cut}), "
                lines.append(
                    f"- {arm}, seed {s}: {trial}`{r['architecture']}`, {r['final_epochs']} final epochs"
                )
    lines.append("")

    others = [a for a in arms if a != "default"]
    if any(("default", s) in ok for s in seeds) and others:
        lines += [
            "Paired by seed, `default` − arm (positive: `default` better); wins / ties / losses are "
            "`default`'s; p is the one-sided sign test's.",
            "",
            "| default − arm | seeds | test accuracy | wins / ties / losses | p | "
            + " | ".join(_LABELS[m] for m in METRICS[1:])
            + " |",
            "|---|---:|---:|---:|---:|" + "---:|" * (len(METRICS) - 1),
        ]
        for arm in others:
            diffs = _paired(ok, arm, "test_accuracy")
            w, t, lo = _wtl(diffs)
            rest = " | ".join(_fmt(_paired(ok, arm, m), signed=True) for m in METRICS[1:])
            lines.append(
                f"| {arm} | {len(diffs)} | {_fmt(diffs, signed=True)} | {w} / {t} / {lo} | "
                f"{sign_test(w, lo):.3f} | {rest} |"
            )
        lines.append("")
    lines += verdicts(ok, first["dataset"], float(first["time_budget_s"]), criterion)
    if failed:
        lines += ["", "Failed runs:"]
        lines += [f"- {r['arm']} seed {r['seed']}: {r.get('error', '?')}" for r in failed]
    return lines


def verdicts(
    ok: Mapping[tuple[str, int], Mapping[str, Any]], dataset: str, seconds: float, criterion: Criterion
) -> list[str]:
    """The criterion applied to one dataset and budget, a line per part."""
    lines = []
    for arm in criterion.beat:
        diffs = _paired(ok, arm, "test_accuracy")
        if not diffs:
            lines.append(f"- `default` vs `{arm}`: no seeds run for both.")
            continue
        m, se = mean_se(diffs)
        w, _, _ = _wtl(diffs)
        beats = not math.isnan(se) and m > criterion.se_multiple * se and w >= criterion.min_wins
        shown = "–" if math.isnan(se) else f"{se:.4f}"
        lines.append(
            f"- `default` vs `{arm}`: mean difference {m:+.4f} (s.e. {shown}), better on {w} of "
            f"{len(diffs)} seeds: **{'beats' if beats else 'not shown'}**."
        )
    picks = [
        r["pick_is_trial0"]
        for (a, _), r in ok.items()
        if a == "default" and r.get("pick_is_trial0") is not None
    ]
    if picks:
        share = sum(picks) / len(picks)
        met = share < criterion.max_trial0_share
        lines.append(
            f"- `default`'s pick is trial 0 in {sum(picks)} of {len(picks)} seeds ({share:.0%}): "
            f"**{'met' if met else 'not met'}** (less than {criterion.max_trial0_share:.0%})."
        )
    if dataset == criterion.target_dataset and seconds == criterion.target_time:
        mine = [r for (a, _), r in ok.items() if a == "default"]
        if mine:
            acc = statistics.fmean(float(r["test_accuracy"]) for r in mine)
            most = max(int(r["params"]) for r in mine)
            met = acc >= criterion.target_accuracy and most <= criterion.max_params
            lines.append(
                f"- `default` on {dataset}: mean test accuracy {acc:.4f}, largest pick {most:,} "
                f"parameters: **{'met' if met else 'not met'}** (at least {criterion.target_accuracy:.3f}, "
                f"at most {criterion.max_params:,})."
            )
    return lines


def latest(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, budget, arm, seed): the last one written (a retried run replaces its
    failed row)."""
    return list({_key(r): r for r in rows}.values())


def report(args: argparse.Namespace) -> None:
    rows = latest(r for path in args.inputs for r in read_rows(path))
    if not rows:
        raise SystemExit(f"no results in {', '.join(map(str, args.inputs))}")
    criterion = criterion_from(args)
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], float(r["time_budget_s"])), []).append(r)
    out = [criterion.text(), ""]
    for key in sorted(groups):
        out += [*report_group(groups[key], criterion), ""]
    print("\n".join(out).rstrip())


def criterion_from(args: argparse.Namespace) -> Criterion:
    from nasforge._budget import parse_duration

    return Criterion(
        beat=tuple(args.beat),
        se_multiple=args.se_multiple,
        min_wins=args.min_wins,
        seeds=args.planned_seeds,
        max_trial0_share=args.max_trial0_share,
        target_accuracy=args.target_accuracy,
        target_dataset=args.target_dataset,
        target_time=parse_duration(args.target_time),
        max_params=args.max_params,
    )


# ---------------------------------------------------------------------------------------- command line
def _criterion_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--beat", nargs="+", default=["hand", "optuna"], choices=ARMS[1:], help="arms default must beat"
    )
    parser.add_argument("--se-multiple", type=float, default=2.0, help="mean paired difference > this x s.e.")
    parser.add_argument("--min-wins", type=int, default=4, help="seeds on which default must be better")
    parser.add_argument("--planned-seeds", type=int, default=5, help="seeds per arm (for the text)")
    parser.add_argument("--max-trial0-share", type=float, default=0.5, help="picks that are trial 0, below")
    parser.add_argument("--target-accuracy", type=float, default=0.93)
    parser.add_argument("--target-dataset", default="fashion-mnist", choices=DATASETS)
    parser.add_argument("--target-time", default="30m", help="the target holds at this budget per run")
    parser.add_argument("--max-params", type=int, default=100_000, help="the target's largest pick")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parts = parser.add_subparsers(dest="part", required=True)
    one = argparse.ArgumentParser(add_help=False)
    one.add_argument("--dataset", default="fashion-mnist", choices=DATASETS)
    one.add_argument("--data-dir", type=Path, help="the dataset's IDX files (not for digits)")
    one.add_argument("--time", default="15m", help="each run's wall-clock budget (15m, 30m, 90s)")

    p = parts.add_parser("run", parents=[one], help="run the arms, one row per run")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--cpus", help="pin each child to these CPUs: 1, 0,1 or 0-1 (default: this process's)")
    p.add_argument("--nice", type=int, default=0, help="each child's niceness increment")
    p.add_argument(
        "--out", type=Path, help="JSONL results (default bench-results/real_<dataset>_<time>.jsonl)"
    )
    p.add_argument("--retry-failed", action="store_true", help="run the failed rows in --out again")
    p.add_argument("--hand-max-epochs", type=int, help="cap the hand-designed network's epochs")

    p = parts.add_parser("report", help="markdown from result files")
    p.add_argument("--in", dest="inputs", type=Path, action="append", required=True)
    _criterion_options(p)

    p = parts.add_parser("criterion", help="print the pre-declared criterion")
    _criterion_options(p)

    p = parts.add_parser("hand", parents=[one], help="train the hand-designed network (a run's child)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--max-epochs", type=int)

    args = parser.parse_args(argv)
    if args.part == "run":
        if args.dataset != "digits" and args.data_dir is None:
            parser.error(f"run --dataset {args.dataset} needs --data-dir (its IDX files)")
        run(args)
    elif args.part == "report":
        report(args)
    elif args.part == "criterion":
        print(criterion_from(args).text())
    else:
        hand(args)


if __name__ == "__main__":
    main()
