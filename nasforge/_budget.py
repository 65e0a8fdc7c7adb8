"""A search's time budget: parsing ``15m`` / ``1h30m``, and splitting it between search and final training.

The rule (``nasforge search --time``, ``time:`` in a config):

1. Until a trial has been measured, the final training gets a fixed :data:`DEFAULT_FINAL_SHARE`
   (25%) of the budget and the search the rest.
2. After the first trial (the first wave, with several at once) the final training's cost is
   estimated from what the trials measured: a trial's training seconds per epoch, scaled to the
   final training's data (``1 / fraction`` of the images, ``(final_resolution / resolution)**2``
   of the pixels, ``1 / width**2`` of the channels). The final share becomes
   ``SAFETY * final_epochs * seconds_per_epoch``, kept between :data:`MIN_FINAL_SHARE` and
   :data:`MAX_FINAL_SHARE` of the budget; the search gets the rest. Trials that ran several at
   once shared the cores, so their epochs look slower than the final training's will be: the
   estimate errs on the safe side.
   A final race (``final: {race: K}``) adds its cost, in epochs of the final training
   (``race_epochs``: candidates x epochs x the share of the data each one trains on, folds
   included; see :func:`nasforge.experiment._race.race_cost`), to the final training's, before the
   same bounds: race and final training together get that share, and 25% becomes
   ``25% x (final + race epochs) / final epochs`` (at most 50%) until a trial was measured.
   A fixed share instead (``final: {time_share: 0.5}``, the default for MNIST-sized data) gives
   race and final training that share of the budget from the start, measured or not, and the
   final training trains as many epochs as fit in it, up to ``final: {max_epochs: N}``, at its
   own speed, timed on a few of its mini-batches before it starts
   (:func:`nasforge.estimate._final.epoch_seconds`).
3. When the search's share is spent, no trial starts and the running ones stop (PRUNED): between
   two training steps, in time for their validation pass (``train``, ``train_det``), others at
   their next report. The final training gets whatever is left of the budget as a time limit; if
   its configured epochs do not fit at the best trial's measured speed, it runs as many as fit
   (so its learning-rate schedule still ends), and the time limit cuts it if it is slower than
   estimated (it keeps the last weights and records the cut).

The functions here are pure (numbers in, numbers out), so the rule is tested without waiting.

Example:
    >>> parse_duration("1h30m")
    5400.0
    >>> plan = split_time(900, final_epochs=60)
    >>> plan.search, plan.final
    (675.0, 225.0)
    >>> plan = split_time(900, final_epochs=60, epoch_seconds=2.0, trial_seconds=20)
    >>> plan.describe()  # doctest: +ELLIPSIS
    'time budget 15m00s: about 12m36s of search (trials of ~20s each, ~37 trials), 2m24s of final ...'
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nasforge._progress import format_duration

__all__ = [
    "DEFAULT_FINAL_SHARE",
    "MAX_FINAL_SHARE",
    "MIN_FINAL_SHARE",
    "PROBED_SAFETY",
    "SAFETY",
    "TimePlan",
    "epoch_seconds_from",
    "expected_line",
    "parse_duration",
    "split_time",
]

DEFAULT_FINAL_SHARE = 0.25
MIN_FINAL_SHARE = 0.05
MAX_FINAL_SHARE = 0.5
#: margin on the estimated final training: its test evaluation, saving the model, timing noise
SAFETY = 1.2
#: the margin when the final training's epoch was timed on its own mini-batches just before
#: (``final: {time_share}``): the estimate is close, and a training that runs over is cut near the
#: end of its learning-rate schedule, where the rate is nearly zero and little is lost
PROBED_SAFETY = 1.05
#: what evaluating one image costs against training on it (one forward pass at a larger batch against
#: a forward and a backward pass: about a third; a half leaves a margin): the training loop's time
#: limit keeps room for the evaluation after it, and the budget's plan counts it
EVAL_COST = 0.5
#: the same for a detector: scoring one image (forward pass, decoding, the COCO mAP matching in
#: numpy) against training on it; measured 0.39-0.89 (median 0.55) on shapes-det for 6 random
#: detectors, untrained and after 32 steps, on one thread: 1 leaves a margin
DETECTION_EVAL_COST = 1.0

_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$", re.IGNORECASE
)
DURATION_HELP = "a duration such as 90s, 15m, 1h30m or 2h, or a number of seconds"


def parse_duration(value: str | float) -> float:
    """Seconds in ``value``: ``90``, ``90s``, ``15m``, ``1h30m``, ``2h``, ``1.5h`` or a number.

    Raises:
        ValueError: if ``value`` is not such a duration or not positive.
    """
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION.match(text)
            if text and match:
                h, m, s = (float(match.group(k) or 0) for k in "hms")
                seconds = 3600 * h + 60 * m + s
    if seconds is None or not math.isfinite(seconds):
        raise ValueError(f"time budget must be {DURATION_HELP}; got {value!r}")
    if seconds <= 0:
        raise ValueError(f"time budget must be more than 0 seconds, got {value!r}")
    return seconds


@dataclass(frozen=True)
class TimePlan:
    """How a time budget is spent.

    Attributes:
        total: the whole budget, seconds.
        search: seconds for the search, counted from the start.
        final: seconds left for the final training.
        final_epochs: epochs the final training is planned to run (at most the configured ones).
        configured_epochs: the configured final epochs.
        epoch_seconds: estimated seconds per final-training epoch; None until a trial was measured.
        trial_seconds: measured seconds per trial; None until then.
        concurrency: trials at once.
        elapsed: seconds spent when the plan was made (the trial count it expects is for the rest).
        share: the fixed share of the budget the final training gets (``final: {time_share}``);
            None: what its epochs need.
        race_epochs: what a final race costs, in epochs of the final training (0: no race); its
            share of ``final`` is ``race_epochs / (race_epochs + final_epochs)``.
    """

    total: float
    search: float
    final: float
    final_epochs: int
    configured_epochs: int
    epoch_seconds: float | None = None
    trial_seconds: float | None = None
    concurrency: int = 1
    elapsed: float = 0.0
    race_epochs: float = 0.0
    share: float | None = None

    @property
    def race(self) -> float:
        """Seconds of ``final`` planned for the final race."""
        work = self.race_epochs + self.configured_epochs
        return self.final * self.race_epochs / work if work > 0 else 0.0

    @property
    def measured(self) -> bool:
        return self.epoch_seconds is not None

    def describe(self) -> str:
        """One line: how the budget will be spent."""
        head = f"time budget {format_duration(self.total)}: about {format_duration(self.search)} of search"
        if self.trial_seconds:
            n = max(0, int((self.search - self.elapsed) / self.trial_seconds * self.concurrency))
            more = " more" if self.elapsed else ""
            head += f" (trials of ~{format_duration(self.trial_seconds)} each, ~{n}{more} trials)"
        if self.configured_epochs == 0:
            return head + ", no final training"
        tail = f", {format_duration(self.final)} of final training"
        race = ""
        if self.race_epochs > 0:
            tail = f", {format_duration(self.final)} of final race and training"
            race = f"race ~{format_duration(self.race)}, worth ~{self.race_epochs:.0f} final epochs; "
        if self.share is not None:
            cap = self.configured_epochs
            if self.epoch_seconds is None:
                pct = round(100 * self.share)
                return head + tail + f" ({race}{pct}%: as many epochs as fit, up to {cap})"
            each = f"at ~{format_duration(self.epoch_seconds)} each"
            return head + tail + f" ({race}{self.final_epochs} of up to {cap} epochs fit, {each})"
        if self.epoch_seconds is None:
            pct = round(100 * (self.final / self.total if race else DEFAULT_FINAL_SHARE))
            why = (
                "the trials measure no training epochs"
                if self.trial_seconds
                else "until the first trial shows what an epoch costs"
            )
            return head + tail + f" ({race}{pct}%: {why})"
        each = f"at ~{format_duration(self.epoch_seconds)} each"
        if self.final_epochs < self.configured_epochs:
            fit = f"{self.final_epochs} of the {self.configured_epochs} epochs fit, {each}"
            return head + tail + f" ({race}{fit})"
        return head + tail + f" ({race}{self.final_epochs} epochs {each})"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def split_time(
    total: float,
    *,
    final_epochs: int,
    epoch_seconds: float | None = None,
    trial_seconds: float | None = None,
    concurrency: int = 1,
    elapsed: float = 0.0,
    race_epochs: float = 0.0,
    share: float | None = None,
) -> TimePlan:
    """Split ``total`` seconds between search and final training (module docstring, steps 1-2);
    ``race_epochs`` is a final race's cost in final-training epochs (0: no race); ``share``, a
    fixed share of ``total`` for race and final training (None: what ``final_epochs`` need),
    which then plans as many of ``final_epochs`` as fit."""
    race_epochs = max(0.0, race_epochs) if final_epochs > 0 else 0.0
    work = final_epochs + race_epochs
    if epoch_seconds is not None and not math.isfinite(epoch_seconds):
        epoch_seconds = None
    if final_epochs <= 0:
        final, share = 0.0, None
    elif share is not None:
        if not 0 < share < 1:
            raise ValueError(f"share must be in (0, 1), got {share!r}")
        final = share * total
    elif epoch_seconds is None:
        final = min(DEFAULT_FINAL_SHARE * work / final_epochs, MAX_FINAL_SHARE) * total
    else:
        need = SAFETY * work * epoch_seconds
        final = min(max(need, MIN_FINAL_SHARE * total), MAX_FINAL_SHARE * total)
    training = final * final_epochs / work if work > 0 else 0.0  # the race takes the rest
    return TimePlan(
        total=float(total),
        search=float(total) - final,
        final=final,
        final_epochs=fit_epochs(training, final_epochs, epoch_seconds),
        configured_epochs=final_epochs,
        epoch_seconds=epoch_seconds,
        trial_seconds=trial_seconds,
        concurrency=concurrency,
        elapsed=elapsed,
        race_epochs=race_epochs,
        share=share,
    )


def fit_epochs(seconds: float, epochs: int, epoch_seconds: float | None, *, margin: float = SAFETY) -> int:
    """How many of ``epochs`` fit in ``seconds`` at ``epoch_seconds`` each (with the ``margin``,
    :data:`SAFETY` by default); at least 1."""
    if epochs <= 0 or epoch_seconds is None or epoch_seconds <= 0:
        return max(0, epochs)
    return max(1, min(epochs, int(seconds / (margin * epoch_seconds))))


def epoch_seconds_from(
    metrics: Iterable[Mapping[str, Any]], *, resolution: int | None = None
) -> float | None:
    """Estimated seconds per epoch of the final training, from trials' metrics (median over them).

    A trial's ``train_seconds / epochs`` is scaled to the final training's data: ``1 / fraction``
    of the images, ``(resolution / trial resolution)**2`` of the pixels and ``1 / width**2`` of the
    channels. The batch size is not accounted for. None if no trial measured its training time
    (zero-cost and table estimators).
    """
    estimates = []
    for m in metrics:
        seconds, epochs = m.get("train_seconds"), m.get("epochs")
        if not isinstance(seconds, (int, float)) or not isinstance(epochs, (int, float)) or epochs <= 0:
            continue
        if not seconds > 0:
            continue
        scale = 1.0 / float(m.get("fraction") or 1.0)
        trial_res = m.get("resolution")
        if resolution and isinstance(trial_res, (int, float)) and trial_res > 0:
            scale *= (resolution / trial_res) ** 2
        scale /= float(m.get("width") or 1.0) ** 2
        estimates.append(seconds / epochs * scale)
    return statistics.median(estimates) if estimates else None


def expected_line(
    *,
    trials_left: int,
    trial_seconds: float,
    concurrency: int,
    final_epochs: int,
    epoch_seconds: float | None,
    race_epochs: float = 0.0,
) -> str:
    """A search bounded by its trial count: how long the rest should take, in one line
    (``race_epochs``: a final race's cost in final epochs, :func:`split_time`)."""
    search = trials_left * trial_seconds / max(1, concurrency)
    line = (
        f"expected: about {format_duration(search)} for {trials_left} more trials "
        f"(~{format_duration(trial_seconds)} each)"
        if trials_left
        else "expected: no more trials"
    )
    if final_epochs and epoch_seconds is not None:
        final = (final_epochs + race_epochs) * epoch_seconds
        what = "final race and training" if race_epochs > 0 else "final training"
        race = f"a race worth ~{race_epochs:.0f} epochs, then " if race_epochs > 0 else ""
        line += (
            f", then {format_duration(final)} of {what} ({race}{final_epochs} epochs at "
            f"~{format_duration(epoch_seconds)} each)"
        )
        if trials_left:
            line += f"; {format_duration(search + final)} in all"
    return line
