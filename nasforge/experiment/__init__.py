"""Experiments, trials and storage."""

from nasforge.experiment._experiment import Experiment
from nasforge.experiment._loop import Evaluation
from nasforge.experiment._pareto import hypervolume, write_pareto
from nasforge.experiment._rundir import RunDir
from nasforge.experiment._storage import InMemoryStorage, OptunaStorage, Storage, StoredTrial, open_storage
from nasforge.trial import Trial, TrialState

__all__ = [
    "Evaluation",
    "Experiment",
    "InMemoryStorage",
    "OptunaStorage",
    "RunDir",
    "Storage",
    "StoredTrial",
    "Trial",
    "TrialState",
    "hypervolume",
    "open_storage",
    "write_pareto",
]
