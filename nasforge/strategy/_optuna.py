"""Optuna samplers (TPE, GP, NSGA-II, QMC, ...) as nasforge strategies, through ask-and-tell."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import math
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from nasforge._checks import check_int
from nasforge.errors import ConfigError, SpaceError
from nasforge.space import Architecture, IntRange
from nasforge.strategy._base import Strategy
from nasforge.strategy._util import sample_unseen
from nasforge.trial import Trial

if TYPE_CHECKING:
    import optuna

__all__ = ["TPE", "OptunaStrategy"]

# name -> (optuna.samplers attribute, packages it needs beyond Optuna)
_SAMPLERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tpe": ("TPESampler", ()),
    "random": ("RandomSampler", ()),
    "gp": ("GPSampler", ("torch", "scipy")),
    "nsga2": ("NSGAIISampler", ()),
    "nsga3": ("NSGAIIISampler", ()),
    "qmc": ("QMCSampler", ("scipy",)),
    "cmaes": ("CmaEsSampler", ("cmaes",)),
}
# option defaults that mute per-trial warnings about expected behaviour (conditional dimensions,
# one sampler per ask); the user's own options win
_QUIET_DEFAULTS: dict[str, dict[str, Any]] = {
    "gp": {"warn_independent_sampling": False},
    "qmc": {"warn_independent_sampling": False, "warn_asynchronous_seeding": False},
    "cmaes": {"warn_independent_sampling": False},
}
# Optuna samplers' incremental caches of the intersection search space. They only speed up the
# computation (a fresh cache gives the same result), so each per-ask sampler inherits them;
# without this every ask rescans all trials (70% of TPE's time at 300 trials).
_SEARCH_SPACE_CACHES = ("_search_space", "_group_decomposed_search_space", "_intersection_search_space")
_CONSTRAINTS_KEY = "constraints"  # prefix of the trial system attributes holding constraint values
_STATES = ("COMPLETE", "FAIL", "PRUNED", "RUNNING")


@contextlib.contextmanager
def _quiet() -> Iterator[Any]:
    """Optuna with its INFO logging (one line per trial) and experimental-feature warnings muted."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield optuna
    finally:
        optuna.logging.set_verbosity(level)


class OptunaStrategy(Strategy):
    """Any Optuna sampler driven through nasforge's ask-and-tell loop.

    Akiba et al., "Optuna: A next-generation hyperparameter optimization framework" (KDD 2019).
    The strategy keeps an in-memory Optuna study with the objective's directions. ``ask`` runs
    ``study.ask()`` and suggests every *active* dimension define-by-run, in dimension order
    (``suggest_categorical`` for a :class:`~nasforge.space.Choice`, ``suggest_int`` for an
    :class:`~nasforge.space.IntRange`), so conditional dimensions are only suggested when they
    matter. A point that breaks a space constraint is told to Optuna as FAIL and the sampler is asked
    again; a point that was proposed before is told the known result (or waits for it) and the
    sampler is asked again; after ``max_retries`` such attempts an unseen random architecture is
    enqueued instead. Trials the strategy did not propose (warm start, retries) are added to the
    study with ``add_trial``. Metric constraints of the objective (``"latency_ms <= 5"``) are told
    as Optuna constraint values (the violation, > 0 when violated), which TPE, GP and NSGA-II/III
    take into account.

    Reproducibility and resume: Optuna samplers cannot be serialised, so every ``study.ask()``
    uses a fresh sampler seeded from the strategy's generator, and the state stores the study's
    trials (params, values, state, system and user attributes) and study attributes instead of the
    sampler. A resumed strategy replays them into a new in-memory study with ``add_trial`` and
    continues exactly as the uninterrupted run would: the proposals are identical, not merely
    equivalent (checked for TPE, random, GP, NSGA-II, NSGA-III and QMC; CMA-ES keeps its optimiser
    in trial attributes too but is untested here, the ``cmaes`` package not being installed).

    Args:
        sampler: ``"tpe"``, ``"random"``, ``"gp"`` (needs torch and scipy), ``"nsga2"``,
            ``"nsga3"``, ``"qmc"`` (needs scipy) or ``"cmaes"`` (needs the ``cmaes`` package;
            integer dimensions only, categorical ones are sampled at random).
        seed: random seed.
        max_retries: sampler attempts per ask before falling back to an unseen random architecture.
        **sampler_options: keyword arguments of the Optuna sampler (``n_startup_trials=20``,
            ``population_size=20``, ...). ``seed`` is managed by the strategy.

    Raises:
        ConfigError: unknown sampler name or option, or an invalid option value.
        ImportError: the sampler needs a package that is not installed.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.OptunaStrategy(sampler="nsga2", population_size=20, seed=0)
    """

    def __init__(
        self, *, sampler: str = "tpe", seed: int | None = None, max_retries: int = 10, **sampler_options: Any
    ) -> None:
        super().__init__(seed=seed)
        if not isinstance(sampler, str) or sampler not in _SAMPLERS:
            raise ConfigError(
                f"unknown Optuna sampler {sampler!r}; valid sampler names: {', '.join(_SAMPLERS)}"
            )
        check_int("optuna max_retries", max_retries, 1)
        attr, needs = _SAMPLERS[sampler]
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            raise ImportError(
                f"the Optuna sampler '{sampler}' needs {' and '.join(missing)}: "
                f"pip install {' '.join(missing)}"
            )
        self.sampler = sampler
        self.max_retries = max_retries
        self.sampler_options = sampler_options
        with _quiet() as opt:
            cls = getattr(opt.samplers, attr)
            accepted = {
                p.name
                for p in inspect.signature(cls).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY
            }
            valid = sorted(accepted - {"seed"})
            bad = [k for k in sampler_options if k not in valid]
            if bad:
                raise ConfigError(
                    f"Optuna sampler '{sampler}' has no option {bad[0]!r} (seed is set by the strategy); "
                    f"valid options: {', '.join(valid)}"
                )
            self._sampler_cls = cls
            try:  # fail on bad option values now, not at the first ask
                cls(**self._sampler_kwargs(0))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"invalid option for Optuna sampler '{sampler}': {exc}") from None
        self._study: optuna.study.Study | None = None
        self._pending: dict[str, list[int]] = {}
        self._results: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ sampler and study
    def _sampler_kwargs(self, seed: int) -> dict[str, Any]:
        return {**_QUIET_DEFAULTS.get(self.sampler, {}), **self.sampler_options, "seed": seed}

    def _new_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        sampler: optuna.samplers.BaseSampler = self._sampler_cls(**self._sampler_kwargs(seed))
        return sampler

    def _constraint_attrs(self, violations: list[float] | None) -> dict[str, float]:
        """Trial system attributes holding metric-constraint violations (> 0 means violated).

        The format is what ``optuna.Trial.set_constraint`` writes; samplers that handle
        constraints (TPE, GP, NSGA-II/III) read it back through ``FrozenTrial.constraints``.
        """
        if not violations:
            return {}
        names = [str(c) for c in self.objective.constraints]
        return {f"{_CONSTRAINTS_KEY}:{n}": float(v) for n, v in zip(names, violations, strict=True)}

    def _new_study(self) -> optuna.study.Study:
        with _quiet() as optuna:
            return optuna.create_study(
                study_name="nasforge",
                directions=list(self.objective.directions),
                sampler=self._new_sampler(0),
            )

    @property
    def study(self) -> optuna.study.Study:
        """The in-memory Optuna study (for inspection; do not tell it trials yourself)."""
        if self._study is None:
            self._study = self._new_study()
        return self._study

    def on_setup(self) -> None:
        self._study = None
        self._pending = {}
        self._results = {}

    def _distributions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        import optuna

        dims = self.space.dimensions()
        out: dict[str, Any] = {}
        for name in params:
            dim = dims[name]
            if isinstance(dim, IntRange):
                out[name] = optuna.distributions.IntDistribution(dim.low, dim.high, step=dim.step)
            else:
                out[name] = optuna.distributions.CategoricalDistribution(dim.values())
        return out

    def _suggest(self, otrial: optuna.Trial) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, dim in self.space.dimensions().items():
            if not self.space.is_active(name, params):
                continue
            if isinstance(dim, IntRange):
                params[name] = otrial.suggest_int(name, dim.low, dim.high, step=dim.step)
            else:  # a Choice (or any other finite dimension): its values as a categorical
                params[name] = otrial.suggest_categorical(name, dim.values())
        return params

    def _study_ask(self) -> optuna.Trial:
        study = self.study
        # a fresh sampler per ask, seeded from our generator: runs replay identically after resume
        sampler = self._new_sampler(int(self.rng.integers(2**31 - 1)))
        if type(study.sampler) is type(sampler):
            for attr in _SEARCH_SPACE_CACHES:
                if hasattr(sampler, attr) and hasattr(study.sampler, attr):
                    setattr(sampler, attr, getattr(study.sampler, attr))
        study.sampler = sampler
        return study.ask()

    def _finish(self, number: int, result: Mapping[str, Any]) -> None:
        import optuna

        study = self.study
        state = optuna.trial.TrialState[result["state"]]
        attrs = self._constraint_attrs(result.get("violations"))
        if attrs:  # Optuna's storage is the only way to reach a trial known by number
            trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
            for k, v in attrs.items():
                study._storage.set_trial_system_attr(trial_id, k, v)
        values = result["values"] if state is optuna.trial.TrialState.COMPLETE else None
        study.tell(number, values, state=state)

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Architecture | None:
        with _quiet():
            for _ in range(self.max_retries):
                otrial = self._study_ask()
                params = self._suggest(otrial)
                try:
                    arch = self.space.make(params)
                except SpaceError:  # a space constraint is violated: that point is infeasible
                    self._finish(otrial.number, {"state": "FAIL", "values": None})
                    continue
                if arch.key in self._pending:  # running: it gets the same result when told
                    self._pending[arch.key].append(otrial.number)
                    continue
                if arch.key in self._results:
                    self._finish(otrial.number, self._results[arch.key])
                    continue
                self._pending[arch.key] = [otrial.number]
                return arch
            fresh = sample_unseen(self.space, self.rng, self._pending.keys() | self._results.keys())
            if fresh is None:
                return None
            self.study.enqueue_trial(dict(fresh.params))
            otrial = self._study_ask()
            self._suggest(otrial)  # returns the enqueued values
            self._pending[fresh.key] = [otrial.number]
            return fresh

    def _violations_of(self, trial: Trial) -> list[float]:
        out = []
        for c in self.objective.constraints:
            value = trial.metrics.get(c.metric)
            if value is None or not math.isfinite(value):
                out.append(1.0)
                continue
            v = float(value - c.bound if c.op in ("<=", "<") else c.bound - value)
            out.append(min(v, 0.0) if c.holds(trial.metrics) else max(v, 1e-12))
        return out

    def tell(self, trial: Trial) -> None:
        import optuna

        key = trial.architecture.key
        state = trial.state.value
        if state not in ("COMPLETE", "FAIL", "PRUNED"):
            return
        result: dict[str, Any] = {
            "state": state,
            "values": list(trial.values) if state == "COMPLETE" and trial.values is not None else None,
        }
        if self.objective.constraints and state in ("COMPLETE", "PRUNED"):
            result["violations"] = self._violations_of(trial)
        if result["state"] == "COMPLETE" and result["values"] is None:
            result["state"] = "FAIL"
        self._results[key] = result
        numbers = self._pending.pop(key, None)
        with _quiet():
            if numbers:
                for number in numbers:
                    self._finish(number, result)
                return
            params = dict(trial.architecture.params)
            attrs = self._constraint_attrs(result.get("violations"))
            self.study.add_trial(
                optuna.trial.create_trial(
                    state=optuna.trial.TrialState[result["state"]],
                    params=params,
                    distributions=self._distributions(params),
                    values=result["values"],
                    system_attrs=attrs,
                )
            )

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        study = self.study
        trials = []
        for ft in study.get_trials(deepcopy=False):
            rec: dict[str, Any] = {"params": ft.params, "state": ft.state.name, "values": ft.values}
            if ft.system_attrs:
                rec["system_attrs"] = ft.system_attrs
            if ft.user_attrs:
                rec["user_attrs"] = ft.user_attrs
            trials.append(rec)
        state = {
            **super().state_dict(),
            "trials": trials,
            # Optuna has no public reader of study system attributes (NSGA-II caches parents there)
            "study_attrs": study._storage.get_study_system_attrs(study._study_id),
            "pending": self._pending,
            "results": self._results,
        }
        out: dict[str, Any] = json.loads(json.dumps(state))  # tuples become lists, as on reload
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        import optuna

        self.on_setup()
        try:
            records = list(state["trials"])
            study_attrs = dict(state["study_attrs"])
            pending = {str(k): [int(n) for n in v] for k, v in state["pending"].items()}
            results = {str(k): dict(v) for k, v in state["results"].items()}
            for rec in records:
                if rec["state"] not in _STATES:
                    raise ValueError(f"unexpected trial state {rec['state']!r}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"cannot restore OptunaStrategy state: missing or bad entry {exc}") from None
        study = self._new_study()
        with _quiet():
            for rec in records:
                params = dict(rec["params"])
                study.add_trial(
                    optuna.trial.create_trial(
                        state=optuna.trial.TrialState[rec["state"]],
                        params=params,
                        distributions=self._distributions(params),
                        values=rec["values"] if rec["state"] == "COMPLETE" else None,
                        system_attrs=dict(rec.get("system_attrs", {})),
                        user_attrs=dict(rec.get("user_attrs", {})),
                    )
                )
            for k, v in study_attrs.items():
                study._storage.set_study_system_attr(study._study_id, k, v)
        self._study = study
        self._pending = pending
        self._results = results


class TPE(OptunaStrategy):
    """Optuna's Tree-structured Parzen Estimator: :class:`OptunaStrategy` with ``sampler="tpe"``.

    Bergstra et al., "Algorithms for hyper-parameter optimization" (NeurIPS 2011); Watanabe,
    "Tree-structured Parzen estimator: understanding its algorithm components" (2023).

    Args:
        n_startup_trials: random trials before TPE takes over.
        multivariate: multivariate TPE; None is Optuna's default (on for a single objective).
        group: with ``multivariate``, model conditional groups of dimensions separately (suits
            spaces with conditional dimensions).
        constant_liar: treat running trials as bad results so parallel asks spread out.
        seed: random seed.
        max_retries: see :class:`OptunaStrategy`.
        **tpe_options: other ``optuna.samplers.TPESampler`` options (``n_ei_candidates``, ...).

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.TPE(n_startup_trials=10, seed=0)
    """

    def __init__(
        self,
        *,
        n_startup_trials: int = 10,
        multivariate: bool | None = None,
        group: bool = False,
        constant_liar: bool = True,
        seed: int | None = None,
        max_retries: int = 10,
        **tpe_options: Any,
    ) -> None:
        if "sampler" in tpe_options:
            raise ConfigError("TPE is the 'tpe' sampler; use OptunaStrategy(sampler=...) for another one")
        super().__init__(
            sampler="tpe",
            seed=seed,
            max_retries=max_retries,
            n_startup_trials=n_startup_trials,
            multivariate=multivariate,
            group=group,
            constant_liar=constant_liar,
            **tpe_options,
        )
        self.n_startup_trials = n_startup_trials
        self.multivariate = multivariate
        self.group = group
        self.constant_liar = constant_liar
