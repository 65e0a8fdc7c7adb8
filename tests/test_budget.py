"""The time budget's parser and the rule that splits it between search and final training."""

from __future__ import annotations

import pytest

from nasforge._budget import (
    DEFAULT_FINAL_SHARE,
    MAX_FINAL_SHARE,
    MIN_FINAL_SHARE,
    PROBED_SAFETY,
    SAFETY,
    epoch_seconds_from,
    expected_line,
    fit_epochs,
    parse_duration,
    split_time,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2h", 7200),
        ("1h30m15s", 5415),
        ("1.5h", 5400),
        ("90", 90),
        ("2.5", 2.5),
        (" 15M ", 900),
        ("1h 30m", 5400),
        (45, 45),
        (0.5, 0.5),
    ],
)
def test_durations_parse_to_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "15x", "m", "h30", "1m1h", "-5", "0", "0s", "1e999", "nan", "fast", True]
)
def test_bad_durations_say_what_is_allowed(text: object) -> None:
    with pytest.raises(ValueError, match="time budget must be") as info:
        parse_duration(text)  # type: ignore[arg-type]
    assert repr(text) in str(info.value)


def test_until_a_trial_is_measured_the_final_training_gets_a_fixed_share() -> None:
    plan = split_time(900, final_epochs=60)
    assert plan.final == DEFAULT_FINAL_SHARE * 900 and plan.search == 900 - plan.final
    assert plan.final_epochs == 60 and not plan.measured
    assert "25%" in plan.describe() and plan.describe().startswith(
        "time budget 15m00s: about 11m15s of search"
    )


def test_a_measured_epoch_cost_sizes_the_final_share_within_bounds() -> None:
    plan = split_time(900, final_epochs=60, epoch_seconds=3.5, trial_seconds=20)
    assert plan.final == pytest.approx(SAFETY * 60 * 3.5)  # 252 s: between 5% and 50%
    assert plan.search == pytest.approx(900 - plan.final) and plan.final_epochs == 60
    assert "(trials of ~20s each, ~32 trials)" in plan.describe()
    assert "of final training (60 epochs at ~3.5s each)" in plan.describe()

    cheap = split_time(900, final_epochs=10, epoch_seconds=0.1)
    assert cheap.final == MIN_FINAL_SHARE * 900  # a floor for evaluation, saving and noise
    dear = split_time(900, final_epochs=60, epoch_seconds=30)
    assert dear.final == MAX_FINAL_SHARE * 900  # the search keeps half
    assert dear.final_epochs == int(450 / (SAFETY * 30)) == 12  # as many epochs as fit
    assert "(12 of the 60 epochs fit, at ~30s each)" in dear.describe()


def test_a_fixed_share_gives_the_final_training_as_many_epochs_as_fit_in_it() -> None:
    unmeasured = split_time(1800, final_epochs=60, share=0.5)
    assert (unmeasured.search, unmeasured.final, unmeasured.final_epochs) == (900, 900, 60)
    assert unmeasured.describe().endswith("15m00s of final training (50%: as many epochs as fit, up to 60)")
    plan = split_time(1800, final_epochs=60, share=0.5, epoch_seconds=60.0, trial_seconds=20)
    assert plan.final == 900 and plan.final_epochs == int(900 / (SAFETY * 60)) == 12
    assert plan.describe().endswith("(12 of up to 60 epochs fit, at ~1m00s each)")
    fast = split_time(1800, final_epochs=60, share=0.5, epoch_seconds=1.0)
    assert fast.final == 900 and fast.final_epochs == 60  # the cap, however much time is left
    # the measured need does not move a fixed share, and no final training has none
    assert split_time(1800, final_epochs=60, share=0.3, epoch_seconds=0.01).final == pytest.approx(540)
    assert split_time(60, final_epochs=0, share=0.5).final == 0
    with pytest.raises(ValueError, match=r"share must be in \(0, 1\)"):
        split_time(60, final_epochs=5, share=1.0)


def test_no_final_training_leaves_the_whole_budget_to_the_search() -> None:
    plan = split_time(60, final_epochs=0, epoch_seconds=1.0)
    assert (plan.search, plan.final, plan.final_epochs) == (60, 0, 0)
    assert plan.describe().endswith("no final training")


def test_the_trial_count_it_expects_is_for_the_time_left() -> None:
    plan = split_time(100, final_epochs=10, epoch_seconds=1.0, trial_seconds=10, elapsed=30, concurrency=2)
    assert plan.search == 88
    assert "~11 more trials" in plan.describe()  # (88 - 30) / 10 * 2 at once


def test_fit_epochs_keeps_the_margin_and_at_least_one() -> None:
    assert fit_epochs(12.0, 60, 1.0) == 10
    assert fit_epochs(1000, 60, 1.0) == 60
    assert fit_epochs(0.0, 60, 1.0) == 1
    assert fit_epochs(10, 60, None) == 60
    # an epoch timed on the final training's own batches plans with the smaller margin
    assert fit_epochs(12.0, 60, 1.0, margin=PROBED_SAFETY) == 11 and PROBED_SAFETY < SAFETY


def test_epoch_cost_is_scaled_from_the_trials_fidelity_to_the_final_trainings() -> None:
    trial = {"train_seconds": 4.0, "epochs": 2, "fraction": 0.25, "resolution": 14, "width": 0.5}
    # 2 s per epoch, x4 the images, x4 the pixels (28 / 14 squared), x4 the channels' cost
    assert epoch_seconds_from([trial], resolution=28) == pytest.approx(2 * 4 * 4 * 4)
    assert epoch_seconds_from([trial]) == pytest.approx(2 * 4 * 4)  # resolution unknown: not scaled
    plain = [{"train_seconds": s, "epochs": 1} for s in (1.0, 2.0, 9.0)]
    assert epoch_seconds_from(plain) == 2.0  # the median: one odd trial does not move it
    assert epoch_seconds_from([{"synflow": 3.0}, {"train_seconds": 0.0, "epochs": 1}]) is None


def test_the_expected_time_of_a_search_bounded_by_trials() -> None:
    line = expected_line(trials_left=29, trial_seconds=2.0, concurrency=1, final_epochs=60, epoch_seconds=0.5)
    assert line == (
        "expected: about 58s for 29 more trials (~2s each), then 30s of final training "
        "(60 epochs at ~500ms each); 1m28s in all"
    )
    no_epochs = expected_line(
        trials_left=10, trial_seconds=1.0, concurrency=2, final_epochs=5, epoch_seconds=None
    )
    assert no_epochs == "expected: about 5s for 10 more trials (~1s each)"
    last = expected_line(trials_left=0, trial_seconds=1.0, concurrency=1, final_epochs=10, epoch_seconds=0.5)
    assert last == "expected: no more trials, then 5s of final training (10 epochs at ~500ms each)"
