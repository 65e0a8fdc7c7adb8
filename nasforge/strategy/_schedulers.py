"""Early-stopping schedulers: budget decisions on the values a trial reports while it runs.

An estimator reports ``ctx.report(step, value)`` (the primary objective after epoch ``step``); the
experiment hands each report to its scheduler, and when the scheduler says stop, ``ctx.report``
raises :class:`~nasforge.errors.TrialPruned` and the trial is recorded as PRUNED with the metrics
reported so far (its cost included, so time budgets count it).

Schedulers keep no state of their own worth saving: everything they decide on is the reported
values stored with the trials, so a resumed experiment replays those into a fresh scheduler and
continues with the same rungs. Hyperband's bracket of a trial is a function of the scheduler's
seed and the trial number, so it survives a resume too.

The successive-halving family is asynchronous (ASHA, Li et al. 2020): trials run one after another
(or concurrently) and are never paused, so a trial reaching a rung is compared with whatever has
reached that rung so far. It continues when its value is among the best ``1 / eta`` there; while a
rung holds fewer than ``eta`` values, only a value at least as good as the best one there goes on.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nasforge._seeds import derive_seed
from nasforge.errors import ConfigError
from nasforge.trial import TrialState

if TYPE_CHECKING:
    from nasforge.objective import Objective
    from nasforge.trial import Trial

__all__ = ["Hyperband", "LearningCurveStopping", "MedianStopping", "Scheduler", "SuccessiveHalving"]


def _check_resource(what: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_eta(eta: object) -> int:
    if isinstance(eta, bool) or not isinstance(eta, (int, np.integer)) or eta < 2:
        raise ConfigError(f"eta (the reduction factor) must be an integer >= 2, got eta={eta!r}")
    return int(eta)


class Scheduler(ABC):
    """Base class of early-stopping schedulers.

    The experiment calls, in order: :meth:`setup` (objective direction), :meth:`bind` (the largest
    step the estimator reports, when it knows it), then :meth:`observe` for every reported value
    and :meth:`finished` for every finished trial. Values are compared in the direction of the
    primary objective.
    """

    #: the registered name, shown in the reason a trial was stopped
    name = "scheduler"

    def __init__(self) -> None:
        self.sign = 1.0
        self.max_resource: int | None = None

    def setup(self, objective: Objective) -> None:
        """Take the direction of the primary objective (values are maximised or minimised)."""
        self.sign = 1.0 if objective.directions[0] == "maximize" else -1.0
        self.reset()

    def bind(self, max_step: int | None) -> None:
        """Learn the largest step a trial reports (the full budget), if not set explicitly."""
        if self.max_resource is None and max_step is not None:
            self.max_resource = int(max_step)

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget every observation (called by :meth:`setup`)."""

    def milestones(self, trial: int, limit: int) -> list[int]:
        """Steps below ``limit`` at which the scheduler decides on trial ``trial``.

        Estimators that can report at any step cheaply (a surrogate model) report exactly these;
        training reports every epoch anyway.
        """
        return []

    @abstractmethod
    def observe(self, trial: int, step: int, value: float) -> bool:
        """Record that trial ``trial`` reported ``value`` at ``step``; True if it should stop now."""

    def finished(self, trial: Trial) -> None:  # noqa: B027 - optional hook
        """Hear that a trial finished (COMPLETE, PRUNED or FAIL)."""

    def replay(self, trials: Sequence[Trial]) -> None:
        """Rebuild the observations from stored trials (on resume); decisions are not repeated."""
        for t in trials:
            for step in sorted(t.intermediate):
                self.observe(t.number, step, t.intermediate[step])
            if t.state.is_finished:
                self.finished(t)

    def _score(self, value: float) -> float:
        """The value turned into 'higher is better'; NaN counts as the worst."""
        return -math.inf if math.isnan(value) else self.sign * float(value)


class _Rungs:
    """The rungs of one asynchronous successive-halving bracket."""

    def __init__(self, resources: Sequence[int], eta: int) -> None:
        self.resources = list(resources)
        self.eta = eta
        self.values: list[list[float]] = [[] for _ in self.resources]
        self.reached: dict[int, int] = {}  # trial -> rungs it has been recorded at

    def observe(self, trial: int, step: int, score: float) -> bool:
        """Record ``score`` at every rung ``step`` reaches for the first time; True to stop."""
        done = self.reached.get(trial, 0)
        stop = False
        while done < len(self.resources) and step >= self.resources[done]:
            rung = self.values[done]
            rung.append(score)
            keep = max(len(rung) // self.eta, 1)
            threshold = sorted(rung, reverse=True)[keep - 1]  # the keep-th best value at the rung
            stop = stop or score < threshold
            done += 1
        self.reached[trial] = done
        return stop


def _rung_resources(min_resource: int, eta: int, max_resource: int | None, limit: int = 10**9) -> list[int]:
    """``min_resource * eta**k`` for k >= 0, strictly below the full budget."""
    top = min(max_resource if max_resource is not None else limit, limit)
    out = []
    r = min_resource
    while r < top:
        out.append(r)
        r *= eta
    return out


class SuccessiveHalving(Scheduler):
    """Asynchronous successive halving (ASHA): rungs at ``min_resource * eta**k``.

    At each rung (a step below the full budget ``max_resource``), a trial continues when its value
    is among the best ``1/eta`` of the values recorded at that rung so far, itself included; while
    fewer than ``eta`` values are there it must match the best one. Without ``max_resource``, the
    estimator's full budget is used (the epochs of a :class:`~nasforge.estimate.TrainEstimator`, the
    epoch of the NAS-Bench-301 surrogate); with neither, rungs go on for ever.

    Args:
        min_resource: the first rung's step (epochs) (>= 1).
        eta: reduction factor (>= 2): a third of the trials go on at each rung for 3.
        max_resource: the full budget; no decision at or beyond it.

    Example:
        >>> sh = SuccessiveHalving(min_resource=1, eta=3, max_resource=27)
        >>> sh.milestones(0, 27)
        [1, 3, 9]
    """

    name = "successive_halving"

    def __init__(self, min_resource: int = 1, eta: int = 3, max_resource: int | None = None) -> None:
        super().__init__()
        self.min_resource = _check_resource("successive halving min_resource", min_resource)
        self.eta = _check_eta(eta)
        if max_resource is not None:
            self.max_resource = _check_resource("successive halving max_resource", max_resource)
        self.reset()

    def reset(self) -> None:
        self._rungs: _Rungs | None = None

    def _bracket(self) -> _Rungs:
        if self._rungs is None:
            self._rungs = _Rungs(_rung_resources(self.min_resource, self.eta, self.max_resource), self.eta)
        return self._rungs

    def milestones(self, trial: int, limit: int) -> list[int]:
        return [r for r in self._bracket().resources if r < limit]

    def observe(self, trial: int, step: int, value: float) -> bool:
        return self._bracket().observe(trial, step, self._score(value))


class Hyperband(Scheduler):
    """Hyperband (Li et al. 2018) over asynchronous successive-halving brackets.

    Bracket ``b`` (0 .. ``s_max``, with ``s_max = floor(log_eta(max_resource / min_resource))``)
    runs successive halving from ``min_resource * eta**b``: bracket 0 stops trials most eagerly,
    the last one hardly at all, which hedges against low-fidelity values that rank architectures
    badly. Each trial is assigned to a bracket by a seeded hash of its number, in Hyperband's
    proportions (``ceil((s_max + 1) / (s + 1)) * eta**s`` trials for the bracket with ``s``
    halvings), and competes only within its bracket.

    Args:
        min_resource: the most aggressive bracket's first rung (>= 1).
        eta: reduction factor (>= 2).
        max_resource: the full budget; default: the estimator's (required by the time the first
            value is reported).
        seed: seeds the bracket assignment.

    Example:
        >>> hb = Hyperband(min_resource=1, eta=3, max_resource=27, seed=0)
        >>> [hb.bracket_resources(b) for b in range(4)]
        [[1, 3, 9], [3, 9], [9], []]
    """

    name = "hyperband"

    def __init__(
        self, min_resource: int = 1, eta: int = 3, max_resource: int | None = None, *, seed: int = 0
    ) -> None:
        super().__init__()
        self.min_resource = _check_resource("hyperband min_resource", min_resource)
        self.eta = _check_eta(eta)
        if max_resource is not None:
            self.max_resource = _check_resource("hyperband max_resource", max_resource)
        self.seed = _check_resource("hyperband seed", seed, 0)
        self.reset()

    def reset(self) -> None:
        self._brackets: dict[int, _Rungs] = {}
        self._assigned: dict[int, int] = {}

    def _max(self) -> int:
        if self.max_resource is None:
            raise ConfigError(
                "hyperband needs the full budget: pass max_resource (e.g. the training epochs), or use "
                "an estimator that states it"
            )
        if self.max_resource < self.min_resource:
            raise ConfigError(
                f"hyperband max_resource ({self.max_resource}) is below min_resource ({self.min_resource})"
            )
        return self.max_resource

    @property
    def s_max(self) -> int:
        """The number of halvings of the most aggressive bracket."""
        ratio = self._max() / self.min_resource
        s = 0
        while self.eta ** (s + 1) <= ratio:
            s += 1
        return s

    def bracket_weights(self) -> list[int]:
        """Trials per Hyperband round in each bracket (bracket 0 = the most aggressive)."""
        s_max = self.s_max
        return [math.ceil((s_max + 1) / (s + 1)) * self.eta**s for s in range(s_max, -1, -1)]

    def bracket_resources(self, bracket: int) -> list[int]:
        """The rung steps of ``bracket``."""
        return _rung_resources(self.min_resource * self.eta**bracket, self.eta, self._max())

    def bracket_of(self, trial: int) -> int:
        """The bracket trial ``trial`` belongs to (seeded, deterministic)."""
        b = self._assigned.get(trial)
        if b is None:
            weights = self.bracket_weights()
            u = derive_seed(self.seed, trial) % sum(weights)
            b = int(np.searchsorted(np.cumsum(weights), u, side="right"))
            self._assigned[trial] = b
        return b

    def _rungs(self, trial: int) -> _Rungs:
        b = self.bracket_of(trial)
        if b not in self._brackets:
            self._brackets[b] = _Rungs(self.bracket_resources(b), self.eta)
        return self._brackets[b]

    def milestones(self, trial: int, limit: int) -> list[int]:
        return [r for r in self._rungs(trial).resources if r < limit]

    def observe(self, trial: int, step: int, value: float) -> bool:
        return self._rungs(trial).observe(trial, step, self._score(value))


class MedianStopping(Scheduler):
    """Stop a trial whose value at a step is worse than the median of completed trials there.

    The median stopping rule of Google Vizier (Golovin et al. 2017), in the form of Optuna's
    ``MedianPruner``: at each reported step from ``warmup_steps`` on, once at least
    ``min_trials`` completed trials reported a value at that step, a trial stops when its value
    is worse than their median.

    Args:
        min_trials: completed trials needed at a step before anything is stopped there (>= 1).
        warmup_steps: no decisions before this step (>= 0).
        steps: decision steps for estimators that report only where asked (a surrogate); default:
            powers of two.

    Example:
        >>> median = MedianStopping(min_trials=5)
    """

    name = "median"

    def __init__(
        self, min_trials: int = 5, warmup_steps: int = 0, steps: Sequence[int] | None = None
    ) -> None:
        super().__init__()
        self.min_trials = _check_resource("median stopping min_trials", min_trials)
        self.warmup_steps = _check_resource("median stopping warmup_steps", warmup_steps, 0)
        if steps is not None and (
            isinstance(steps, (str, bytes))
            or not isinstance(steps, Sequence)
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in steps)
        ):
            raise ConfigError(f"median stopping steps must be a list of positive integers, got {steps!r}")
        self.steps = None if steps is None else sorted(set(steps))
        self.reset()

    def reset(self) -> None:
        self._completed: dict[int, list[float]] = defaultdict(list)  # step -> scores of completed trials

    def milestones(self, trial: int, limit: int) -> list[int]:
        if self.steps is not None:
            return [s for s in self.steps if s < limit]
        return _rung_resources(1, 2, None, limit)

    def observe(self, trial: int, step: int, value: float) -> bool:
        if step < self.warmup_steps:
            return False
        others = self._completed.get(step, [])
        if len(others) < self.min_trials:
            return False
        return self._score(value) < float(np.median(others))

    def finished(self, trial: Trial) -> None:
        if trial.state is TrialState.COMPLETE:
            values: Mapping[int, float] = trial.intermediate
            for step, value in values.items():
                self._completed[int(step)].append(self._score(value))


def _pow3(t: np.ndarray, c: float, a: float, alpha: float) -> np.ndarray:
    return c - a * np.power(t, -alpha)


class LearningCurveStopping(Scheduler):
    """Stop a trial whose extrapolated learning curve will not beat the best completed trial.

    After ``min_steps`` reported values, the curve so far is fitted with the saturating power law
    ``y(t) = c - a * t**-alpha`` (the "pow3" model of Domhan et al. 2015; least squares with
    ``a, alpha >= 0``, so the fit rises and flattens), and extrapolated to the full budget
    ``max_resource``. The trial stops when the extrapolation plus ``margin`` is still below the
    best final value of the completed trials (at least ``min_trials`` of them). The fit only
    happens at the scheduler's decision points, so a 100-epoch trial costs a handful of fits.
    Values are compared in the primary objective's direction (a loss curve is fitted negated).

    A curve that fits badly (the fit fails, or it extrapolates below the last value) is never
    stopped on its account: the rule stops only curves that look saturated below the bar.

    Args:
        min_steps: values needed before the first decision (>= 3: the model has 3 parameters).
        min_trials: completed trials needed before anything is stopped (>= 1).
        margin: slack in the objective's units: stop only if ``prediction + margin < best``
            (>= 0; e.g. 0.01 for accuracies to allow for extrapolation error).
        max_resource: the full budget; default: the estimator's (its epochs).
        every: decide at every ``every``-th step only (>= 1).

    Example:
        >>> lc = LearningCurveStopping(min_steps=3, margin=0.005)
    """

    name = "learning_curve"

    def __init__(
        self,
        min_steps: int = 3,
        min_trials: int = 3,
        margin: float = 0.0,
        max_resource: int | None = None,
        every: int = 1,
    ) -> None:
        super().__init__()
        self.min_steps = _check_resource("learning-curve min_steps", min_steps, 3)
        self.min_trials = _check_resource("learning-curve min_trials", min_trials)
        if (
            isinstance(margin, bool)
            or not isinstance(margin, (int, float))
            or not math.isfinite(margin)
            or margin < 0
        ):
            raise ConfigError(f"learning-curve margin must be a number >= 0, got margin={margin!r}")
        self.margin = float(margin)
        if max_resource is not None:
            self.max_resource = _check_resource("learning-curve max_resource", max_resource)
        self.every = _check_resource("learning-curve every", every)
        self.reset()

    def reset(self) -> None:
        self._curves: dict[int, dict[int, float]] = defaultdict(dict)
        self._finals: list[float] = []

    def milestones(self, trial: int, limit: int) -> list[int]:
        return list(range(1, limit, self.every))

    def extrapolate(self, steps: Sequence[float], values: Sequence[float], at: float) -> float | None:
        """The pow3 fit of ``values`` over ``steps``, evaluated at ``at`` (None if the fit fails)."""
        from scipy.optimize import OptimizeWarning, curve_fit  # scipy loads on first use

        t = np.asarray(steps, dtype=float)
        y = np.asarray(values, dtype=float)
        if len(t) < 3 or not np.all(np.isfinite(y)):
            return None
        spread = float(np.ptp(y)) or 1.0
        p0 = (float(y[-1]) + 0.1 * spread, spread, 0.5)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                params, _ = curve_fit(
                    _pow3,
                    t,
                    y,
                    p0=p0,
                    bounds=([-np.inf, 0.0, 0.0], [np.inf, np.inf, 10.0]),
                    maxfev=2000,
                )
        except (RuntimeError, ValueError):
            return None
        pred = float(_pow3(np.asarray([at], dtype=float), *params)[0])
        return pred if math.isfinite(pred) else None

    def observe(self, trial: int, step: int, value: float) -> bool:
        score = self._score(value)
        curve = self._curves[trial]
        curve[step] = score
        if (
            len(curve) < self.min_steps
            or len(self._finals) < self.min_trials
            or step % self.every
            or self.max_resource is None
            or step >= self.max_resource
        ):
            return False
        steps = sorted(curve)
        ys = [curve[s] for s in steps]
        pred = self.extrapolate(steps, ys, self.max_resource)
        if pred is None or pred < ys[-1]:
            return False
        return pred + self.margin < max(self._finals)

    def finished(self, trial: Trial) -> None:
        self._curves.pop(trial.number, None)
        if trial.state is TrialState.COMPLETE and trial.values is not None:
            self._finals.append(self._score(trial.values[0]))  # the primary objective's final value
