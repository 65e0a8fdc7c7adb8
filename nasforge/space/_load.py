"""Search spaces from YAML files and config mappings."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from nasforge.errors import ConfigError, SpaceError
from nasforge.registry import SPACES, check_options
from nasforge.space._base import SearchSpace, dimensions_from_dict
from nasforge.space._constraints import constraint_from_dict

__all__ = ["load_space", "space_from_config"]


def space_from_config(config: Any) -> SearchSpace:
    """Create a space from a mapping such as ``{"name": "chain_cnn", "depth": [2, 6], "max_params": 1e5}``.

    ``name`` picks a registered space (``custom`` with a ``dimensions`` mapping gives a plain
    :class:`SearchSpace`); the other keys are that space's keyword arguments, and ``constraints``
    a list of serialised constraints.
    """
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, Mapping):
        raise ConfigError(f"a space is a mapping with a 'name' key, got {config!r}")
    options = dict(config)
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"the space needs a 'name' (one of {', '.join(SPACES.names())}), got {name!r}")
    constraints = [constraint_from_dict(c) for c in options.pop("constraints", [])]
    if name == "custom":
        dims = options.pop("dimensions", None)
        if not isinstance(dims, Mapping):
            raise ConfigError("a custom space needs a 'dimensions' mapping")
        return SearchSpace(dimensions_from_dict(dims), constraints=constraints, **options)
    cls = SPACES.get(name)
    task_shape = None
    if "input_shape" in options and "num_classes" in options:
        try:  # a bound space writes its task's shape; spaces whose constructor lacks it are bound after
            takes_shape = "input_shape" in inspect.signature(cls).parameters
        except (TypeError, ValueError):
            takes_shape = True
        if not takes_shape:
            task_shape = (options.pop("input_shape"), options.pop("num_classes"))
    check_options("space", name, cls, options)
    if constraints:
        options["constraints"] = constraints
    try:
        space: SearchSpace = cls(**options)
    except TypeError as exc:
        raise ConfigError(f"space '{name}': {exc}") from None
    return space if task_shape is None else space.bind(*task_shape)


def load_space(source: str | Path | Mapping[str, Any]) -> SearchSpace:
    """Load a space from a YAML file (or a mapping).

    The file holds either the space mapping itself or a full search config with a ``space:`` key.

    Example YAML::

        name: chain_cnn
        depth: [2, 5]
        layer: {op: [conv, sepconv, maxpool], filters: [16, 32], act: [relu, gelu]}
        max_params: 50000
    """
    if isinstance(source, Mapping):
        data: Any = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"space file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"space file {path} is not valid YAML: {_yaml_where(exc)}") from None
    if isinstance(data, Mapping) and "space" in data and "name" not in data:
        data = data["space"]
    try:
        return space_from_config(data)
    except SpaceError as exc:
        raise ConfigError(f"space: {exc}") from None


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else str(problem)
