"""ProgressLines: the rule that keeps a log informative but short, on an injected clock."""

from __future__ import annotations

import pytest

from nasforge._progress import ProgressLines, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(interval: float = 10.0, quiet_after: float = 60.0) -> tuple[ProgressLines, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    return ProgressLines(lines.append, interval=interval, quiet_after=quiet_after, clock=clock), lines, clock


def test_fast_units_print_at_most_one_line_per_interval_and_the_last() -> None:
    progress, lines, clock = make(interval=10)
    progress.stage("trials", total=30, unit="trial")
    for done in range(1, 31):  # 30 one-second trials
        clock.now += 1.0
        progress.update("trials", done, "best val_accuracy 0.9")
    assert lines == [
        "trials 1/30, 1s per trial, elapsed 1s, ETA 29s; best val_accuracy 0.9",
        "trials 11/30, 1s per trial, elapsed 11s, ETA 19s; best val_accuracy 0.9",
        "trials 21/30, 1s per trial, elapsed 21s, ETA 9s; best val_accuracy 0.9",
        "trials 30/30, 1s per trial, done in 30s; best val_accuracy 0.9",
    ]


def test_many_fast_units_stay_a_few_lines() -> None:
    progress, lines, clock = make(interval=15)
    progress.stage("epochs", total=30 * 60, unit="epoch")
    for done in range(1, 30 * 60 + 1):  # 30 trials x 60 epochs of 0.05 s
        clock.now += 0.05
        progress.update("epochs", done)
    assert len(lines) <= 2 + 90 / 15  # the first, one per 15 s, the last
    assert lines[1].startswith("epochs 302/1800, 50ms per epoch, elapsed 15s, ETA 1m15s")


def test_slow_units_print_every_one_with_its_eta() -> None:
    progress, lines, clock = make(interval=10)
    progress.stage("final", total=4, unit="epoch", label="final training epochs")
    for epoch in range(1, 5):
        clock.now += 90.0
        progress.update("final", epoch, f"train loss {1 / epoch:.2f}")
    assert lines == [
        "final training epochs 1/4, 1m30s per epoch, elapsed 1m30s, ETA 4m30s; train loss 1.00",
        "final training epochs 2/4, 1m30s per epoch, elapsed 3m00s, ETA 3m00s; train loss 0.50",
        "final training epochs 3/4, 1m30s per epoch, elapsed 4m30s, ETA 1m30s; train loss 0.33",
        "final training epochs 4/4, 1m30s per epoch, done in 6m00s; train loss 0.25",
    ]


def test_each_stage_prints_its_first_unit_at_once() -> None:
    progress, lines, clock = make(interval=10)
    progress.stage("trials", total=2, unit="trial")
    progress.update("trials", 1)
    progress.update("trials", 2)
    progress.stage("final", total=60, unit="epoch", label="final training epochs")
    clock.now += 2.0
    progress.update("final", 1)  # right after the trials' last line: the final training's ETA
    clock.now += 2.0
    progress.update("final", 2)
    heads = [line.split(",")[0] for line in lines]
    assert heads == ["trials 1/2", "trials 2/2", "final training epochs 1/60"]
    assert lines[-1] == "final training epochs 1/60, 2s per epoch, elapsed 2s, ETA 1m58s"


def test_a_resumed_stage_times_only_the_units_done_now() -> None:
    progress, lines, clock = make()
    progress.stage("trials", total=10, done=6, unit="trial")
    clock.now += 20.0
    progress.update("trials", 7)
    assert lines == ["trials 7/10, 20s per trial, elapsed 20s, ETA 1m00s"]


def test_tick_says_still_running_after_a_silence_and_counts_the_eta_down() -> None:
    progress, lines, clock = make(interval=10, quiet_after=60)
    progress.stage("trials", total=3, unit="trial")
    clock.now += 59.0
    progress.tick()
    assert lines == []  # not silent long enough yet
    clock.now += 41.0
    progress.update("trials", 1)  # the first trial took 100 s
    clock.now += 30.0
    progress.tick()
    assert len(lines) == 1  # 30 s after the last line: still quiet
    clock.now += 30.0
    progress.tick()
    assert lines[-1] == "trials 1/3, 1m40s per trial, 1m00s since the last trial, elapsed 2m40s, ETA 2m20s"
    progress.tick()
    assert len(lines) == 2  # not again right away
    clock.now += 140.0
    progress.update("trials", 3)
    clock.now += 600.0
    progress.tick()
    assert lines[-1].startswith("trials 3/3,") and "done in" in lines[-1]  # nothing after the end


def test_tick_before_the_first_unit_says_so() -> None:
    progress, lines, clock = make(interval=10, quiet_after=60)
    progress.stage("trials", total=None, unit="trial")
    clock.now += 75.0
    progress.tick()
    assert lines == ["trials 0, 1m15s since the start, elapsed 1m15s"]


def test_the_last_unit_is_printed_once() -> None:
    progress, lines, _ = make()
    progress.stage("final", total=2, unit="epoch")
    progress.update("final", 2)
    progress.update("final", 2)
    assert len(lines) == 1


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "40ms"), (2.54, "2.5s"), (42.4, "42s"), (185, "3m05s"), (4020, "1h07m"), (float("nan"), "?")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
