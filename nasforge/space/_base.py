"""SearchSpace and Architecture.

A :class:`SearchSpace` is plain data (never an ``nn.Module``): an ordered set of named dimensions,
a rule saying which dimensions are *active* given the values chosen before them (a layer's filters
only matter if the layer exists and is a convolution), and constraints. An :class:`Architecture` is a
frozen point of a space holding only its active values (the canonical form), so two points that
build the same network share one ``key``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._params import count_params
from nasforge.errors import SpaceError
from nasforge.registry import BUILDERS
from nasforge.space._architecture import Architecture, Constraint, check_width
from nasforge.space._dimensions import Dimension, dimension_from_dict

if TYPE_CHECKING:
    import torch.nn

__all__ = ["Architecture", "Constraint", "SearchSpace", "check_width"]


def _key(space_name: str, identity: Any) -> str:
    blob = json.dumps({"space": space_name, "params": identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class SearchSpace:
    """A space of architectures: named dimensions, an activity rule and constraints.

    Subclasses set :attr:`name`, build their dimensions, and may override :meth:`is_active`
    (conditional dimensions), :meth:`options` (their constructor settings, for :meth:`to_dict`),
    :meth:`describe` (an architecture in one line) and :meth:`build` (turn an architecture into an
    ``nn.Module``; by default the builder registered under :attr:`name` in
    :data:`nasforge.registry.BUILDERS`).

    Args:
        dimensions: ordered mapping of name to dimension. A dimension's activity may depend only
            on dimensions before it.
        constraints: rules every produced architecture satisfies.
        input_shape: (C, H, W) of the task, needed by constraints that measure a built network.
        num_classes: the task's class count, likewise.

    Example:
        >>> import numpy as np
        >>> from nasforge.space import Choice, SearchSpace
        >>> space = SearchSpace({"a": Choice([1, 2]), "b": Choice(["x", "y"])})
        >>> space.sample(np.random.default_rng(0)).params["b"] in ("x", "y")
        True
    """

    name: str = "custom"
    #: a ``max_params`` option of the space (its :class:`~nasforge.space.MaxParams` constraint), which
    #: :meth:`to_dict` records once as the option rather than also as a constraint; None: no such option
    max_params: int | None = None
    #: the kinds of task its networks solve: ``"classification"`` (a class per image) and / or
    #: ``"detection"`` (boxes); a search checks it against its data before loading anything
    task_kinds: tuple[str, ...] = ("classification",)

    def __init__(
        self,
        dimensions: Mapping[str, Dimension],
        *,
        constraints: Sequence[Constraint] = (),
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
    ) -> None:
        if not dimensions:
            raise SpaceError("a search space needs at least one dimension")
        for name, dim in dimensions.items():
            if not isinstance(dim, Dimension):
                raise SpaceError(f"dimension {name!r} must be a Choice or IntRange, got {dim!r}")
        self._dims = dict(dimensions)
        self.constraints: tuple[Constraint, ...] = tuple(constraints)
        for c in self.constraints:
            if not callable(c):
                raise SpaceError(f"constraints must be callables taking an Architecture, got {c!r}")
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.num_classes = num_classes

    # ----------------------------------------------------------------- description
    def dimensions(self) -> dict[str, Dimension]:
        """The dimensions, in order."""
        return dict(self._dims)

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether dimension ``name`` matters given the values of the dimensions before it."""
        return True

    def options(self) -> dict[str, Any]:
        """Constructor settings that recreate this space (JSON values); see :meth:`to_dict`."""
        return {"dimensions": {k: d.to_dict() for k, d in self._dims.items()}}

    def to_dict(self) -> dict[str, Any]:
        """JSON description ``{"name": ..., **options}`` that ``space_from_config`` reads back."""
        out: dict[str, Any] = {"name": self.name, **self.options()}
        if self.input_shape is not None and self.num_classes is not None:
            out["input_shape"] = list(self.input_shape)
            out["num_classes"] = self.num_classes
        cons = [c.to_dict() if isinstance(c, Constraint) else None for c in self.constraints]
        max_params = self.max_params
        if max_params is not None:  # a space's max_params option: recorded once, not also as a constraint
            out["max_params"] = max_params
            cons = [c for c in cons if c is None or c.get("type") != "max_params"]
        if any(c is not None for c in cons):
            out["constraints"] = [c for c in cons if c is not None]
        return out

    def bind(self, input_shape: Sequence[int], num_classes: int) -> SearchSpace:
        """A copy of this space that knows the task's input shape and class count."""
        bound = copy.copy(self)
        bound.input_shape = tuple(int(s) for s in input_shape)
        bound.num_classes = int(num_classes)
        return bound

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self._dims)} dimensions)"

    def describe(self, arch: Architecture) -> str:
        """``arch`` in one short line, for tables, logs, trackers and reports.

        Default: its parameters as ``name=value`` pairs (cut at 160 characters). The built-in
        spaces override it with their compact form (ChainCNN: ``conv3x16-relu > maxpool3``;
        NB201: the cell string).
        """
        text = ", ".join(f"{k}={v}" for k, v in arch.params.items())
        return text if len(text) <= 160 else text[:157] + "..."

    # ----------------------------------------------------------------- points
    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Keep only the active dimensions, in dimension order; raise SpaceError if invalid."""
        unknown = [k for k in params if k not in self._dims]
        if unknown:
            raise SpaceError(
                f"unknown parameter(s) {unknown} for space '{self.name}'; "
                f"valid names look like {list(self._dims)[:6]}"
            )
        out: dict[str, Any] = {}
        for name, dim in self._dims.items():
            if not self.is_active(name, out):
                continue
            if name not in params:
                raise SpaceError(f"parameter '{name}' is missing (space '{self.name}')")
            value = params[name]
            if isinstance(value, np.generic):
                value = value.item()
            if not dim.contains(value):
                raise SpaceError(f"parameter '{name}' must be one of {dim.values()}, got {value!r}")
            out[name] = value
        return out

    def identity(self, params: Mapping[str, Any]) -> Any:
        """What decides whether two points are the same network (JSON data); hashed into the key.

        Default: the canonical params themselves. Spaces with isomorphic encodings (cells whose
        different edge labellings compute the same function) return a normal form here, so
        equivalent points share one key and deduplication skips them.
        """
        return params

    def representative(self, arch: Architecture) -> Architecture:
        """One fixed member of ``arch``'s key class (architectures sharing its key).

        Anything computed from a built network but cached by key (zero-cost proxy scores, for
        instance) is computed on the representative, so the cached value does not depend on which
        member of the class happened to come first. Default: ``arch`` itself (each key names one
        point). Spaces whose :meth:`identity` merges isomorphic points override it.
        """
        return arch

    def _point(self, canon: dict[str, Any]) -> Architecture:
        return Architecture(self, canon, _key(self.name, self.identity(canon)))

    def validate(self, params: Mapping[str, Any]) -> None:
        """Raise SpaceError if ``params`` is not a valid, constraint-satisfying point."""
        self.make(params)

    def make(self, params: Mapping[str, Any], *, check_constraints: bool = True) -> Architecture:
        """Create the architecture for ``params`` (validated; inactive values dropped)."""
        canon = self.canonical(params)
        arch = self._point(canon)
        if check_constraints:
            for c in self.constraints:
                if not c(arch):
                    raise SpaceError(f"architecture {arch.key} violates constraint {_describe(c)}")
        return arch

    def is_feasible(self, arch: Architecture) -> bool:
        """Whether ``arch`` satisfies every constraint."""
        return all(c(arch) for c in self.constraints)

    def _complete(self, fixed: Mapping[str, Any], fill: Callable[[str, Dimension], Any]) -> Architecture:
        params: dict[str, Any] = {}
        for name, dim in self._dims.items():
            if self.is_active(name, params):
                params[name] = fixed[name] if name in fixed else fill(name, dim)
        return self._point(params)

    def _search(self, produce: Callable[[], Architecture | None], tries: int, what: str) -> Architecture:
        rejected: dict[str, int] = {}
        for _ in range(tries):
            arch = produce()
            if arch is None:
                continue
            failed = next((c for c in self.constraints if not c(arch)), None)
            if failed is None:
                return arch
            rejected[_describe(failed)] = rejected.get(_describe(failed), 0) + 1
        detail = ", ".join(f"{k} rejected {v}" for k, v in rejected.items())
        raise SpaceError(
            f"could not {what} a valid architecture of space '{self.name}' in {tries} tries ({detail}); "
            "loosen the constraints or widen the space"
        )

    def sample(self, rng: np.random.Generator, *, max_tries: int = 1000) -> Architecture:
        """A random architecture satisfying the constraints (rejection sampling)."""
        return self._search(lambda: self._complete({}, lambda _n, d: d.sample(rng)), max_tries, "sample")

    def mutate(self, arch: Architecture, rng: np.random.Generator, *, max_tries: int = 100) -> Architecture:
        """A copy of ``arch`` with one active dimension changed (newly active ones sampled).

        Raises:
            SpaceError: if no valid mutant was found in ``max_tries`` attempts.
        """
        params = dict(arch.params)
        movable = [n for n in params if self._dims[n].size > 1]
        if not movable:
            raise SpaceError(f"space '{self.name}' has a single point: nothing to mutate")

        def produce() -> Architecture | None:
            name = movable[int(rng.integers(len(movable)))]
            changed = {**params, name: self._dims[name].mutate(params[name], rng)}
            child = self._complete(changed, lambda _n, d: d.sample(rng))
            return None if child.key == arch.key else child

        return self._search(produce, max_tries, "mutate into")

    def crossover(
        self, a: Architecture, b: Architecture, rng: np.random.Generator, *, max_tries: int = 100
    ) -> Architecture:
        """Uniform crossover: each active value from ``a`` or ``b`` (sampled if neither has it)."""

        def produce() -> Architecture:
            def fill(name: str, dim: Dimension) -> Any:
                donors = [p.params[name] for p in (a, b) if name in p.params]
                if not donors:
                    return dim.sample(rng)
                return donors[int(rng.integers(len(donors)))]

            return self._complete({}, fill)

        return self._search(produce, max_tries, "cross over into")

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Valid architectures one dimension-step away (newly active dimensions take defaults)."""
        out: dict[str, Architecture] = {}
        for name, value in arch.params.items():
            for new in self._dims[name].neighbours(value):
                child = self._complete({**arch.params, name: new}, lambda _n, d: d.default())
                if child.key != arch.key and child.key not in out and self.is_feasible(child):
                    out[child.key] = child
        return list(out.values())

    def grid(self) -> Iterator[Architecture]:
        """Every valid architecture once, in a fixed order (for small spaces)."""
        names = list(self._dims)

        def rec(i: int, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(names):
                yield dict(params)
                return
            name = names[i]
            if not self.is_active(name, params):
                yield from rec(i + 1, params)
                return
            for v in self._dims[name].values():
                params[name] = v
                yield from rec(i + 1, params)
            del params[name]

        for params in rec(0, {}):
            arch = self._point(params)
            if self.is_feasible(arch):
                yield arch

    @property
    def encodings(self) -> tuple[str, ...]:
        """The kinds :meth:`encode` takes: ``"onehot"`` always; ``"path"`` and ``"adjacency"`` when
        the subclass implements :meth:`path_encoding` / :meth:`adjacency_encoding` (NB201 does)."""
        kinds = ["onehot"]
        if type(self).path_encoding is not SearchSpace.path_encoding:
            kinds.append("path")
        if type(self).adjacency_encoding is not SearchSpace.adjacency_encoding:
            kinds.append("adjacency")
        return tuple(kinds)

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        """``arch`` as a float32 vector (what surrogate predictors and importance plots read).

        Args:
            arch: a point of this space.
            kind: one of :attr:`encodings`: ``"onehot"`` (every space: one block per dimension
                with an extra slot for 'inactive'), ``"path"`` (:meth:`path_encoding`) or
                ``"adjacency"`` (:meth:`adjacency_encoding`).

        Raises:
            SpaceError: a kind the space does not offer (the message lists the ones it does).
        """
        if kind == "path":
            return self.path_encoding(arch)
        if kind == "adjacency":
            return self.adjacency_encoding(arch)
        if kind != "onehot":
            raise self._no_encoding(kind)
        blocks = []
        for name, dim in self._dims.items():
            block = np.zeros(dim.size + 1, dtype=np.float32)
            block[dim.index(arch.params[name]) if name in arch.params else dim.size] = 1.0
            blocks.append(block)
        return np.concatenate(blocks)

    def path_encoding(self, arch: Architecture) -> np.ndarray:
        """Optional: the BANANAS path encoding of ``arch`` (which input-to-output paths of
        operations a cell has), for cell spaces; implementing it adds ``"path"`` to
        :attr:`encodings`. The default raises SpaceError."""
        raise self._no_encoding("path")

    def adjacency_encoding(self, arch: Architecture) -> np.ndarray:
        """Optional: ``arch`` as a node adjacency matrix with an operation one-hot per entry,
        flattened, for cell spaces; implementing it adds ``"adjacency"`` to :attr:`encodings`. The
        default raises SpaceError."""
        raise self._no_encoding("adjacency")

    def _no_encoding(self, kind: str) -> SpaceError:
        return SpaceError(
            f"space '{self.name}' has no {kind!r} encoding; it offers: {', '.join(self.encodings)}"
        )

    # ----------------------------------------------------------------- text form
    @property
    def has_arch_str(self) -> bool:
        """Whether the space writes architectures as short strings of its own (the subclass
        implements :meth:`from_arch_str`: NB201's cell strings, NAS-Bench-Macro's digits)."""
        return type(self).from_arch_str is not SearchSpace.from_arch_str

    def from_arch_str(self, text: str) -> Architecture:
        """Optional: the architecture that the space's own string form ``text`` names (see
        :attr:`has_arch_str`). The default raises SpaceError.

        Raises:
            SpaceError: ``text`` names no architecture of the space, or the space has no string form.
        """
        raise SpaceError(
            f"space '{self.name}' has no string form of an architecture; give its parameters instead"
        )

    # ----------------------------------------------------------------- networks
    @property
    def has_builder(self) -> bool:
        """Whether :meth:`build` makes networks: a builder is registered under :attr:`name` in
        :data:`nasforge.registry.BUILDERS`, or the subclass overrides :meth:`build`."""
        return type(self).build is not SearchSpace.build or self.name in BUILDERS

    def build(
        self,
        arch: Architecture,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        *,
        device: Any = None,
        width: float = 1.0,
    ) -> torch.nn.Module:
        """Turn ``arch`` into an ``nn.Module`` for a task.

        The network is built by the builder registered under the space's name in
        :data:`nasforge.registry.BUILDERS` (the built-in ones are in :mod:`nasforge.nn._builders`);
        a space of your own either registers one there or overrides this method.

        Args:
            arch: a point of this space.
            input_shape: (C, H, W); defaults to the shape the space was bound to.
            num_classes: defaults to the bound class count.
            device: where to allocate; ``"meta"`` builds without memory (for counting).
            width: width multiplier (a low-fidelity knob): every layer's channel count times
                ``width``, rounded, at least 1; spaces that cannot scale raise ConfigError.

        Raises:
            SpaceError: no builder is registered for this space, or the task shape is unknown.
        """
        if self.name not in BUILDERS:
            raise SpaceError(f"space '{self.name}' has no network builder")
        builder = BUILDERS.get(self.name)
        return builder(self, arch, input_shape, num_classes, device=device, width=width)

    def metric_floor(self, metric: str, *, width: float = 1.0) -> float | None:
        """A value of a cheap metric that no architecture of this space goes below, or None.

        The experiment uses it to reject at once a constraint such as ``params <= 10`` that no
        architecture can meet, instead of screening proposals until it gives up. It must be a true
        lower bound for every architecture (it need not be reached); a space that cannot tell
        cheaply returns None (the default), and such constraints are then found out by screening.

        Args:
            metric: ``"params"`` or ``"flops"`` (of the network built for the bound task, batch 1).
            width: the estimator's width multiplier.
        """
        return None

    def count_params(self, arch: Architecture) -> int:
        """Trainable parameters of ``arch``'s network for the bound task
        (:meth:`Profiler.count <nasforge.hardware.Profiler.count>`).

        Built on the CPU, leaving torch's global generator as it was. (The meta device would
        allocate nothing, but its first use imports ~2 s of torch internals, and constraint checks
        run at the start of every search.)
        """
        import torch  # on first use: the space is plain data

        with torch.random.fork_rng(devices=[]):
            return count_params(self.build(arch, device="cpu"))

    def task_shape(
        self, input_shape: Sequence[int] | None = None, num_classes: int | None = None
    ) -> tuple[tuple[int, int, int], int]:
        """The ``(C, H, W)`` input shape and class count to build for: the given ones, else the
        bound task's (what every builder asks first).

        Raises:
            SpaceError: neither is known, or the shape is not three positive sizes.
        """
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        classes = num_classes if num_classes is not None else self.num_classes
        if shape is None or classes is None:
            raise SpaceError(
                f"space '{self.name}' needs the task's input shape and class count to build a network: "
                "pass input_shape=(C, H, W) and num_classes, or bind the space with "
                "space.bind(input_shape, num_classes)"
            )
        if len(shape) != 3 or any(int(s) < 1 for s in shape):
            raise SpaceError(f"input_shape must be (channels, height, width), got {shape}")
        return (int(shape[0]), int(shape[1]), int(shape[2])), int(classes)


def _describe(c: Any) -> str:
    """A constraint in words: its :meth:`Constraint.describe`; a plain callable (any function or
    callable object a user passed) by its ``__name__`` when it has one."""
    return c.describe() if isinstance(c, Constraint) else getattr(c, "__name__", repr(c))


def dimensions_from_dict(data: Mapping[str, Any]) -> dict[str, Dimension]:
    """Read the ``dimensions`` mapping of :meth:`SearchSpace.options`."""
    return {k: dimension_from_dict(v) for k, v in data.items()}
