"""Experiments, trials and storage."""

from nasforge.experiment._experiment import Experiment
from nasforge.experiment._loop import Evaluation
from nasforge.experiment._pareto import hypervolume, write_pareto
from nasforge.experiment._race import RaceResult, ValidationCheck, check_validation, race_candidates, run_race
from nasforge.experiment._rundir import RunDir
from nasforge.experiment._storage import InMemoryStorage, OptunaStorage, Storage, StoredTrial, open_storage
from nasforge.trial import Trial, TrialState

__all__ = [
    "Evaluation",
    "Experiment",
    "InMemoryStorage",
    "OptunaStorage",
    "RaceResult",
    "RunDir",
    "Storage",
    "StoredTrial",
    "Trial",
    "TrialState",
    "ValidationCheck",
    "check_validation",
    "hypervolume",
    "open_storage",
    "race_candidates",
    "run_race",
    "write_pareto",
]
