"""Tables and numbers as the commands print them: leaderboards that fit the terminal, metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.table import Table

from nasforge.cli._app import out

if TYPE_CHECKING:
    from nasforge.space import Architecture


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def leaderboard_table(exp: Any, top: int, width: int) -> Table:
    metrics = [
        *exp.objective.names,
        *(m for m in ("params", "train_seconds") if m not in exp.objective.names),
    ]
    columns = [
        ("rank", 1),  # the row order says it too: left out (after train_seconds) when narrow
        ("trial", 0),
        *((m, 2 if m == "train_seconds" else 0) for m in metrics),
        ("architecture", 0),
    ]
    rows = []
    for rank, t in enumerate(exp.leaderboard(top), start=1):
        flag = "" if t.feasible else " (infeasible)"
        values = [fmt_metric(m, t.metrics.get(m, "")) for m in metrics]
        rows.append([str(rank), str(t.number), *values, describe_arch(t.architecture) + flag])
    return fitted_table(f"Top {top} of {len(exp.trials)} trials", columns, rows, width)


def fmt_metric(name: str, value: Any) -> str:
    """A metric in a table: seconds to a tenth (four decimals of a second say nothing)."""
    if name.endswith("seconds") and isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:,.1f}"
    return fmt(value)


def fitted_table(
    title: str, columns: list[tuple[str, int]], rows: list[list[str]], width: int, *, left: int = 0
) -> Table:
    """A table whose last column, an architecture description, stays readable at ``width`` columns.

    Other columns keep their values on one line (a header may wrap at a space; ``_`` in metric
    names is shown as a space for that); the description gets the rest of the width and wraps at
    its spaces, never inside a layer's name. When that rest is too small for the longest layer
    name, columns with a drop rank (``columns[i][1] > 0``, highest first) are left out. NB-201
    strings, which have no spaces, wrap after each node's ``+``. The first ``left`` columns are
    text (left-justified), the others up to the description numbers.
    """
    from rich.cells import cell_len
    from rich.text import Text

    def longest_word(text: str) -> int:
        return max((cell_len(w) for w in text.split()), default=0)

    headers = [name.replace("_", " ") for name, _ in columns[:-1]] + [columns[-1][0]]
    last = len(columns) - 1
    natural = [
        max([longest_word(h)] + [cell_len(r[i]) for r in rows]) if i != last else 0
        for i, h in enumerate(headers)
    ]
    need = min(max([12] + [longest_word(_node_breaks(r[last])) for r in rows]), max(12, width // 2))
    keep = list(range(len(columns)))

    def room() -> int:  # what is left for the description: borders and padding take 3 per column
        return width - sum(natural[i] for i in keep) - 3 * len(keep) - 1

    for i in sorted((i for i in keep if columns[i][1] > 0), key=lambda i: -columns[i][1]):
        if room() >= need:
            break
        keep.remove(i)
    full = max([12] + [cell_len(r[last]) for r in rows])
    desc_width = max(12, min(room(), full))
    dropped = [headers[i] for i in range(len(columns)) if i not in keep]
    caption = f"not shown at this width: {', '.join(dropped)}" if dropped else None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for i in keep:
        if i == last:
            table.add_column(headers[i], width=desc_width, overflow="fold")
        else:
            table.add_column(headers[i], justify="left" if i < left else "right", width=natural[i])
    for r in rows:
        desc = r[last] if cell_len(r[last]) <= desc_width else _node_breaks(r[last]).replace("+ |", "+\n|")
        table.add_row(*(Text(r[i]) if i != last else Text(desc) for i in keep))
    return table


def _node_breaks(text: str) -> str:
    """An NB-201 string with a space after each node (``|+ |``), where it may wrap."""
    return text.replace("|+|", "|+ |") if " " not in text else text


def print_test_report(report: Any) -> None:
    """The final model's test metrics beyond accuracy (runs written before they existed have none)."""
    if report:
        from nasforge.estimate._metrics import summary_lines

        for line in summary_lines(report):
            out.print(line, highlight=False, markup=False)


def epoch_text(record: Mapping[str, Any]) -> str:
    """An epoch of a training, as the end of a progress line."""
    text = f"train loss {record['train_loss']:.4f}"
    val = record.get("val_accuracy", math.nan)
    return text + (f", val accuracy {val:.4f}" if math.isfinite(val) else "")


def final_scores(metrics: Mapping[str, Any], *, bold: bool = True, val: str = "val") -> str:
    """A final training's validation and test scores in words (rich markup; the test one in bold):
    accuracy for a classifier, COCO mAP and mAP@.5 for a detector (its metrics hold ``*_map``);
    ``val`` is the validation split's word."""
    b, nb = ("[bold]", "[/]") if bold else ("", "")

    def number(key: str) -> float | None:
        value = metrics.get(key)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    if any(k.endswith("_map") for k in metrics):
        parts = []
        for split, wrap in (("val", ("", "")), ("test", (b, nb))):
            score, at50 = number(f"{split}_map"), number(f"{split}_map_50")
            if score is not None:
                tail = f" / mAP50 {at50:.4f}" if at50 is not None else ""
                word = val if split == "val" else split
                parts.append(f"{wrap[0]}{word} mAP {score:.4f}{tail}{wrap[1]}")
        return ", ".join(parts) or "no mAP measured (no validation or test images)"
    parts = []
    for split, wrap in (("val", ("", "")), ("test", (b, nb))):
        acc = number(f"{split}_accuracy")
        if acc is not None:
            word = val if split == "val" else split
            parts.append(f"{wrap[0]}{word} accuracy {acc:.4f}{wrap[1]}")
    return ", ".join(parts)


def best_text(exp: Any, primary: str) -> str:
    best = exp.best()
    return f"best {primary} {best.metrics[primary]:.4f}" if best is not None else ""


def describe_arch(arch: Architecture) -> str:
    """An architecture in words: its space's :meth:`~nasforge.space.SearchSpace.describe`."""
    return arch.space.describe(arch)


def race_table(race: Mapping[str, Any], exp: Any, width: int) -> Table:
    """A final race (final.json's ``race``) as a table: each candidate's search rank, trial, search
    value, race metric (mean ± spread over folds with cross-validation), epochs, seconds and
    architecture; the winner marked, a candidate cut by the time budget too."""
    import statistics

    metric = str(race.get("metric", "val_accuracy"))
    by_number = {t.number: t for t in exp.trials}
    entries = list(race.get("candidates", []))
    search_name = next((k for e in entries for k in e.get("search", {})), None)
    columns = [
        ("", 0),
        ("rank", 1),
        ("trial", 0),
        *([(f"search {search_name}", 0)] if search_name else []),
        (f"race {metric}", 0),
        ("epochs", 2),
        ("seconds", 3),
        ("architecture", 0),
    ]
    rows = []
    for e in entries:
        value = fmt(e.get("race", {}).get(metric, ""))
        folds = [f.get(metric) for f in e.get("folds", []) if isinstance(f.get(metric), (int, float))]
        if len(folds) > 1:
            value += f" ± {statistics.stdev(folds):.4f}"
        trial = by_number.get(e.get("trial"))
        arch = describe_arch(trial.architecture) if trial is not None else str(e.get("architecture", ""))
        rows.append(
            [
                "★" if e.get("winner") else "",
                str(e.get("rank", "")),
                str(e.get("trial", "")),
                *([fmt(e.get("search", {}).get(search_name, ""))] if search_name else []),
                value,
                str(e.get("epochs", "")) + (" (cut)" if e.get("cut") else ""),
                fmt_metric("seconds", e.get("seconds", "")),
                arch,
            ]
        )
    epochs = race.get("epochs")
    scored = (
        f"by {race.get('folds')}-fold cross-validation on train+val"
        if race.get("how") == "cross-validation"
        else "on the validation split"
    )
    title = (
        f"Final race: top {len(entries)} trials, {epochs} epoch{'s' * (epochs != 1)} each, scored {scored}"
    )
    return fitted_table(title, columns, rows, width, left=1)
