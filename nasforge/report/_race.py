"""The report's "Final race" section: the top trials trained longer before one went to the final training.

Read from ``final.json``'s ``race`` (written by ``nasforge search --race K``;
:meth:`RaceResult.to_dict <nasforge.experiment._race.RaceResult.to_dict>`): how the candidates were
scored (the validation split, or k-fold cross-validation on train + val when it is small), each
candidate's search rank, trial, search value and race scores (with cross-validation the mean over
the folds, its spread and each fold's score), its epochs and seconds, and the winner. It is the
same record ``nasforge show`` prints as a table.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any

from nasforge.report._format import arch_cell, esc, note, num, seconds, table

__all__ = ["race_section"]


def _score(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return "n/a" if isinstance(value, float) and not math.isfinite(value) else f"{value:.4f}"


def race_section(race: Any, trials: Mapping[int, Any]) -> str | None:
    """HTML of a final race, or None when ``race`` (final.json's ``race``) is not one.

    Args:
        race: final.json's ``race`` mapping.
        trials: the run's trials by number (the candidates' architectures come from them; a
            candidate whose trial is not there shows the parameters final.json kept).
    """
    if not isinstance(race, Mapping) or not isinstance(race.get("candidates"), list):
        return None
    entries = [e for e in race["candidates"] if isinstance(e, Mapping)]
    if not entries:
        return None
    metric = str(race.get("metric", "val_accuracy"))
    folds = race.get("folds") if race.get("how") == "cross-validation" else None
    search_name = next((str(k) for e in entries for k in e.get("search") or {}), None)
    # the metric that picked first, then the others the race measured
    names = sorted({str(k) for e in entries for k in e.get("race") or {}} - {metric})
    header = ["", "search rank", "trial"]
    header += [f"search {esc(search_name)}"] if search_name else []
    header += [f"<b>race {esc(metric)}</b>", *(f"race {esc(n)}" for n in names)]
    header += [f"{esc(metric)} per fold"] if folds else []
    header += ["epochs", "seconds", "architecture"]
    rows = []
    for e in entries:
        scores = e.get("race") or {}
        picked = _score(scores.get(metric))
        per_fold = [f.get(metric) for f in e.get("folds") or [] if isinstance(f, Mapping)]
        numbers = [v for v in per_fold if isinstance(v, int | float) and math.isfinite(v)]
        if len(numbers) > 1:
            picked += f" ± {statistics.stdev(numbers):.4f}"
        trial = trials.get(e["trial"]) if isinstance(e.get("trial"), int) else None
        arch = arch_cell(trial) if trial is not None else f"<code>{esc(e.get('architecture', ''))}</code>"
        row = ["★ winner" if e.get("winner") else "", esc(e.get("rank", "")), esc(e.get("trial", ""))]
        row += [esc(num((e.get("search") or {}).get(search_name)))] if search_name else []
        row += [f"<b>{picked}</b>" if e.get("winner") else picked, *(_score(scores.get(n)) for n in names)]
        row += [" / ".join(_score(v) for v in per_fold)] if folds else []
        cut = ' <span class="flag">cut by the time budget</span>' if e.get("cut") else ""
        spent = e.get("seconds")
        took = seconds(float(spent)) if isinstance(spent, int | float) else ""
        row += [esc(e.get("epochs", "")) + cut, took, arch]
        rows.append(row)
    winner = next((e for e in entries if e.get("winner")), None)
    parts = [note(_caption(race, len(entries), metric, folds, search_name, winner))]
    remark = race.get("note")
    if isinstance(remark, str) and remark:  # fewer completed trials than asked for
        parts.append(note(esc(remark)))
    parts.append(table(header, rows, ident="race-table"))
    return "\n".join(parts)


def _caption(
    race: Mapping[str, Any],
    n: int,
    metric: str,
    folds: Any,
    search_name: str | None,
    winner: Mapping[str, Any] | None,
) -> str:
    epochs = race.get("epochs")
    trained = f"{esc(epochs)} epoch{'s' * (epochs != 1)}" if isinstance(epochs, int) else "a few epochs"
    how = (
        f"by {esc(folds)}-fold cross-validation on train + val (the validation split is small; the mean "
        "over the folds picks)"
        if folds
        else "on the validation split"
    )
    ranked = f" by {esc(search_name)}" if search_name else ""
    text = (
        f"The top {n} distinct completed trials{ranked} were each trained with the final training's "
        f"recipe and seed for {trained} and scored by <b>{esc(metric)}</b> {how}; ties go to the better "
        "search rank."
    )
    if winner is not None:
        went_on = (
            "its race training is the final model (race epochs equal the final epochs)"
            if race.get("final_is_race_model")
            else "it went on to the final training"
        )
        who = f"trial {esc(winner.get('trial'))} (search rank {esc(winner.get('rank'))})"
        text += f" Winner: {who}; {went_on}."
    spent = race.get("seconds")
    if isinstance(spent, int | float):
        text += f" The race took {seconds(float(spent))}"
        limit = race.get("time_limit_s")
        if isinstance(limit, int | float):
            text += f", each candidate allowed {seconds(float(limit))} by the time budget"
        text += "."
    return text
