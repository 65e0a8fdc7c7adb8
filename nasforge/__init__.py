"""nasforge: Neural Architecture Search that hands back a model you can deploy.

Example:
    >>> import nasforge as nf
    >>> task = nf.datasets.load("digits")
    >>> space = nf.spaces.ChainCNN(depth=(2, 4), layer={"filters": [16, 32]})
    >>> exp = nf.Experiment("demo", space=space, seed=0)
    >>> est = nf.TrainEstimator(task, epochs=2)
    >>> exp.run(strategy="evolution", estimator=est, n_trials=4)  # doctest: +SKIP
    >>> exp.best().train(task, epochs=20).metrics["test_accuracy"]  # doctest: +SKIP

``import nasforge`` is light: torch is imported when a network is first built or trained.
"""

from __future__ import annotations

from nasforge._threads import calm_openmp
from nasforge._version import __version__

# Before anything imports torch: OpenMP threads that spin at barriers collapse a search that shares
# the CPUs with another process (see nasforge._threads.SPINCOUNT).
calm_openmp()

from nasforge import data as datasets
from nasforge import execute, strategy, track, zoo
from nasforge import space as spaces
from nasforge.deploy import Model, load
from nasforge.errors import (
    ConfigError,
    DataError,
    NasforgeError,
    SpaceError,
    StorageError,
    TrialFailed,
    TrialPruned,
    UnknownComponentError,
)
from nasforge.estimate import Estimator, TrainedModel, TrainEstimator, TrialContext, train_final
from nasforge.experiment import Experiment, Trial, TrialState
from nasforge.objective import Objective
from nasforge.space import (
    Architecture,
    Choice,
    IntRange,
    MaxParams,
    Predicate,
    SearchSpace,
    load_space,
)

__all__ = [
    "Architecture",
    "Choice",
    "ConfigError",
    "DataError",
    "Estimator",
    "Experiment",
    "IntRange",
    "MaxParams",
    "Model",
    "NasforgeError",
    "Objective",
    "Predicate",
    "SearchSpace",
    "SpaceError",
    "StorageError",
    "TrainEstimator",
    "TrainedModel",
    "Trial",
    "TrialContext",
    "TrialFailed",
    "TrialPruned",
    "TrialState",
    "UnknownComponentError",
    "__version__",
    "datasets",
    "execute",
    "load",
    "load_space",
    "spaces",
    "strategy",
    "track",
    "train_final",
    "zoo",
]
