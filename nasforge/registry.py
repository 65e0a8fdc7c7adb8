"""Name registries that resolve components lazily.

A registry maps a short name (``"evolution"``, ``"chain_cnn"``, ``"digits"``) to a dotted target
``"package.module:Attribute"``; the module is imported only when the name is used, so
``import nasforge`` stays fast. Unknown names raise :class:`UnknownComponentError` with a
did-you-mean suggestion and the list of valid names; unknown options raise :class:`ConfigError`
listing the valid ones.

Example:
    >>> from nasforge.registry import STRATEGIES
    >>> STRATEGIES.get("random").__name__
    'RandomSearch'
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from nasforge.errors import ConfigError, UnknownComponentError

__all__ = [
    "BUILDERS",
    "DATASETS",
    "ESTIMATORS",
    "EXECUTORS",
    "SCHEDULERS",
    "SPACES",
    "STRATEGIES",
    "TRACKERS",
    "Registry",
    "check_options",
    "suggest",
]


def suggest(name: str, valid: list[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest valid name, or an empty string."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def check_options(kind: str, name: str, target: Any, options: Mapping[str, Any]) -> None:
    """Raise ConfigError if ``options`` holds a keyword that ``target``'s constructor does not take."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # builtins without a signature: let the call itself complain
        return
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = sorted(
        p.name
        for p in params.values()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.name != "self"
    )
    for key in options:
        if key not in valid:
            raise ConfigError(
                f"{kind} '{name}' has no option '{key}'.{suggest(key, valid)} "
                f"Valid options: {', '.join(valid) or '(none)'}."
            )


class Registry:
    """A lazy mapping from names to components of one kind.

    Args:
        kind: what the registry holds, used in error messages (``"strategy"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}

    def register(self, name: str, target: str | Any, *, aliases: tuple[str, ...] = ()) -> None:
        """Register ``target`` (an object, or a lazy ``"module:attr"`` string) under ``name``."""
        if name in self._targets or name in self._aliases:
            raise ValueError(f"{self.kind} '{name}' is registered already")
        if isinstance(target, str):
            self._targets[name] = target
        else:
            self._targets[name] = f"<object {target!r}>"
            self._loaded[name] = target
        for alias in aliases:
            self._aliases[alias] = name

    def names(self) -> list[str]:
        """The registered names (aliases excluded), sorted."""
        return sorted(self._targets)

    def aliases(self, name: str) -> list[str]:
        """The other names ``name`` is known by (``"random"``: ``["rs"]``), in registration order."""
        canonical = self.canonical_name(name)
        return [alias for alias, target in self._aliases.items() if target == canonical]

    def __contains__(self, name: object) -> bool:
        return name in self._targets or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def canonical_name(self, name: str) -> str:
        """Resolve an alias to its registered name; raise UnknownComponentError if unknown."""
        if name in self._targets:
            return name
        if name in self._aliases:
            return self._aliases[name]
        valid = self.names()
        raise UnknownComponentError(
            f"unknown {self.kind} '{name}'.{suggest(name, valid + sorted(self._aliases))} "
            f"Valid {self.kind} names: {', '.join(valid)}."
        )

    def get(self, name: str) -> Any:
        """Return the component registered under ``name``, importing it on first use."""
        name = self.canonical_name(name)
        if name not in self._loaded:
            module_name, _, attr = self._targets[name].partition(":")
            self._loaded[name] = getattr(importlib.import_module(module_name), attr)
        return self._loaded[name]

    def create(self, name: str, /, **options: Any) -> Any:
        """Instantiate the component ``name`` with keyword ``options``, checking option names first."""
        target = self.get(name)
        check_options(self.kind, name, target, options)
        return target(**options)


SPACES = Registry("space")
BUILDERS = Registry("network builder")  # keyed by space name: SearchSpace.build finds its network here
STRATEGIES = Registry("strategy")
ESTIMATORS = Registry("estimator")
SCHEDULERS = Registry("scheduler")
DATASETS = Registry("dataset")
EXECUTORS = Registry("executor")
TRACKERS = Registry("tracker")

SPACES.register("chain_cnn", "nasforge.space._chain:ChainCNN", aliases=("chain",))
SPACES.register("nb201", "nasforge.space._nb201:NB201Space", aliases=("nasbench201",))
SPACES.register("darts", "nasforge.space._darts:DartsSpace", aliases=("nb301",))
SPACES.register("nb_macro", "nasforge.space._macro:MacroSpace", aliases=("nasbench_macro",))
SPACES.register("mbconv", "nasforge.space._mbconv:MBConvSpace", aliases=("mobilenet",))
SPACES.register("detector", "nasforge.space._detector:DetectorSpace", aliases=("centernet",))

BUILDERS.register("chain_cnn", "nasforge.nn._builders:build_chain")
BUILDERS.register("nb201", "nasforge.nn._builders:build_nb201")
BUILDERS.register("mbconv", "nasforge.nn._builders:build_mbconv")
BUILDERS.register("detector", "nasforge.nn._builders:build_detector_space")

STRATEGIES.register("random", "nasforge.strategy._random:RandomSearch", aliases=("rs",))
STRATEGIES.register("grid", "nasforge.strategy._grid:GridSearch")
STRATEGIES.register("evolution", "nasforge.strategy._evolution:RegularizedEvolution", aliases=("re", "rea"))
STRATEGIES.register("local", "nasforge.strategy._local:LocalSearch", aliases=("ls",))
STRATEGIES.register("guided_local", "nasforge.strategy._local:GuidedLocalSearch", aliases=("gls",))
STRATEGIES.register("reinforce", "nasforge.strategy._reinforce:Reinforce")
STRATEGIES.register("bananas", "nasforge.strategy._bananas:Bananas", aliases=("bo",))
STRATEGIES.register("optuna", "nasforge.strategy._optuna:OptunaStrategy")
STRATEGIES.register("tpe", "nasforge.strategy._optuna:TPE")
STRATEGIES.register(
    "successive_halving", "nasforge.strategy._multifidelity:SuccessiveHalvingSearch", aliases=("sh", "asha")
)
STRATEGIES.register("hyperband", "nasforge.strategy._multifidelity:HyperbandSearch", aliases=("hb",))
STRATEGIES.register("darts", "nasforge.strategy._differentiable:DARTS")
STRATEGIES.register("gdas", "nasforge.strategy._differentiable:GDAS")
STRATEGIES.register("spos", "nasforge.strategy._oneshot:SPOS", aliases=("one_shot_evolution",))
STRATEGIES.register("bohb", "nasforge.strategy._multifidelity:BOHB")
STRATEGIES.register(
    "zc_warm_start", "nasforge.strategy._warmstart:ProxyWarmStart", aliases=("zc_warm", "zcws")
)

SCHEDULERS.register("median", "nasforge.strategy._schedulers:MedianStopping", aliases=("median_stopping",))
SCHEDULERS.register(
    "successive_halving", "nasforge.strategy._schedulers:SuccessiveHalving", aliases=("sh", "asha")
)
SCHEDULERS.register("hyperband", "nasforge.strategy._schedulers:Hyperband", aliases=("hb",))
SCHEDULERS.register(
    "learning_curve", "nasforge.strategy._schedulers:LearningCurveStopping", aliases=("lc", "lce")
)

ESTIMATORS.register("train", "nasforge.estimate._train:TrainEstimator")
ESTIMATORS.register(
    "train_det", "nasforge.estimate._detection:DetectionTrainEstimator", aliases=("train_detection",)
)
ESTIMATORS.register("nb201", "nasforge.estimate._tables:NB201Table")
ESTIMATORS.register("supernet", "nasforge.estimate._supernet:SupernetEstimator", aliases=("one_shot",))
ESTIMATORS.register("nb301", "nasforge.estimate._nb301:NB301Surrogate")
ESTIMATORS.register("nb_macro", "nasforge.estimate._tables:MacroTable")
ESTIMATORS.register("zero_cost", "nasforge.estimate._zero_cost:ZeroCostEstimator", aliases=("zc", "proxies"))

EXECUTORS.register("inprocess", "nasforge.execute._base:InProcessExecutor", aliases=("in_process", "local"))
EXECUTORS.register("process", "nasforge.execute._process:ProcessExecutor", aliases=("subprocess",))
EXECUTORS.register("ray", "nasforge.execute._ray:RayExecutor")

TRACKERS.register("tensorboard", "nasforge.track._tensorboard:TensorBoardCallback", aliases=("tb",))
TRACKERS.register("mlflow", "nasforge.track._mlflow:MLflowCallback")

DATASETS.register("digits", "nasforge.data._digits:load_digits")
DATASETS.register("mnist", "nasforge.data._idx:load_mnist")
DATASETS.register(
    "fashion-mnist", "nasforge.data._idx:load_fashion_mnist", aliases=("fashion_mnist", "fmnist")
)
DATASETS.register("folder", "nasforge.data._own:load_image_folder", aliases=("image_folder", "images"))
DATASETS.register("npz", "nasforge.data._own:load_npz")
