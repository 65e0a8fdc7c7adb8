"""Checks of option values that every layer shares (a strategy's, an estimator's, the profiler's).

Low-level on purpose: it imports only :mod:`nasforge.errors`, so any module may use it.

Example:
    >>> check_int("population", 20, 2)
    >>> check_int("population", 1, 2)
    Traceback (most recent call last):
    ...
    nasforge.errors.ConfigError: population must be an integer >= 2, got population=1
"""

from __future__ import annotations

from typing import Any

from nasforge.errors import ConfigError

__all__ = ["check_int"]


def check_int(name: str, value: Any, low: int) -> None:
    """Raise ConfigError unless ``value`` is an integer >= ``low`` (booleans are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {name}={value!r}")
