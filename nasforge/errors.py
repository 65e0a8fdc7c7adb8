"""The nasforge exception family.

Every error a user can cause derives from :class:`NasforgeError`. Messages say what was received,
what is allowed, and how to fix it; the CLI prints them as one line and exits with code 2.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InfeasibleError",
    "NasforgeError",
    "SpaceError",
    "StorageError",
    "TrialFailed",
    "TrialPruned",
    "UnknownComponentError",
]


class NasforgeError(Exception):
    """Base class of every error nasforge raises on bad input or an unusable state."""


class ConfigError(NasforgeError, ValueError):
    """A configuration value (YAML, CLI option or keyword argument) is invalid."""


class InfeasibleError(ConfigError):
    """No architecture of the search space can satisfy the constraints (``params <= 10``)."""


class SpaceError(NasforgeError, ValueError):
    """A search space is malformed, or a point does not belong to it, or no valid point exists."""


class UnknownComponentError(ConfigError, KeyError):
    """A registry name (strategy, space, estimator, dataset, ...) is not known."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(NasforgeError):
    """A dataset is missing, corrupt or unusable."""


class StorageError(NasforgeError):
    """The trial storage cannot be opened, read or written."""


class CheckpointError(NasforgeError):
    """A saved model or architecture file is corrupt, truncated or not a nasforge file."""


class TrialFailed(NasforgeError):
    """Raised inside an estimator to fail the current trial with a reason (e.g. a NaN loss).

    The experiment records the trial as FAIL with this message and the search goes on.
    """


class TrialPruned(NasforgeError):
    """Raised inside an estimator (usually by ``ctx.report``) to stop an unpromising trial early.

    The trial is recorded as PRUNED with the values reported so far.
    """
