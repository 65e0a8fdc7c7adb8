"""Conformance tests every search space must pass (the :class:`~nasforge.space.SearchSpace` contract).

Subclass :class:`SpaceConformance` in a test module and provide a ``space`` fixture returning a
bound space (``space.bind(input_shape, num_classes)``)::

    class TestMine(SpaceConformance):
        @pytest.fixture
        def space(self):
            return MySpace().bind((3, 32, 32), 10)

Spaces without a network builder (tabular-benchmark spaces) skip the build check; set
``build_input = False`` to skip it on others.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.errors import SpaceError
from nasforge.space import Architecture, SearchSpace, space_from_config

__all__ = ["SpaceConformance"]


class SpaceConformance:
    """What every space shares: seeded sampling, valid mutants and neighbours, stable keys and
    encodings, canonical forms that drop inactive values, a JSON round trip and (with a builder)
    networks that run."""

    build_input = True
    n_samples = 6

    def _samples(self, space: SearchSpace, seed: int = 0) -> list[Architecture]:
        rng = np.random.default_rng(seed)
        return [space.sample(rng) for _ in range(self.n_samples)]

    def test_sampling_is_seeded_and_valid(self, space: SearchSpace) -> None:
        a = [x.key for x in self._samples(space, 1)]
        assert a == [x.key for x in self._samples(space, 1)]
        for arch in self._samples(space, 1):
            space.validate(arch.params)
            assert space.make(arch.params).key == arch.key

    def test_canonical_drops_inactive_and_keeps_the_key(self, space: SearchSpace) -> None:
        dims = space.dimensions()
        for arch in self._samples(space, 2):
            assert space.canonical(arch.params) == dict(arch.params)
            full = dict(arch.params)
            for name, dim in dims.items():  # fill every inactive dimension with some value
                full.setdefault(name, dim.values()[-1])
            assert space.make(full).key == arch.key

    def test_mutate_changes_the_key_and_stays_valid(self, space: SearchSpace) -> None:
        rng = np.random.default_rng(3)
        for arch in self._samples(space, 3):
            child = space.mutate(arch, rng)
            assert child.key != arch.key
            space.validate(child.params)

    def test_neighbours_are_distinct_valid_points(self, space: SearchSpace) -> None:
        arch = self._samples(space, 4)[0]
        near = space.neighbours(arch)
        assert near and len({n.key for n in near}) == len(near) and arch.key not in {n.key for n in near}
        for n in near:
            space.validate(n.params)
            differ = {k for k in set(n.params) | set(arch.params) if n.params.get(k) != arch.params.get(k)}
            assert differ  # one dimension stepped, plus what its activity switched on or off

    def test_encode_has_a_fixed_length_and_tells_points_apart(self, space: SearchSpace) -> None:
        archs = self._samples(space, 5)
        codes = [space.encode(a) for a in archs]
        assert len({c.shape for c in codes}) == 1 and codes[0].ndim == 1
        assert all(np.isfinite(c).all() for c in codes)
        by_key = {a.key: c for a, c in zip(archs, codes, strict=True)}
        assert len({c.tobytes() for c in by_key.values()}) == len(by_key)
        np.testing.assert_array_equal(space.encode(archs[0]), codes[0])

    def test_every_offered_encoding_has_a_fixed_length(self, space: SearchSpace) -> None:
        archs = self._samples(space, 5)
        assert "onehot" in space.encodings
        for kind in space.encodings:
            codes = [space.encode(a, kind) for a in archs]
            assert len({c.shape for c in codes}) == 1 and codes[0].ndim == 1, kind
            assert all(np.isfinite(c).all() for c in codes), kind
        with pytest.raises(SpaceError, match="it offers: onehot"):
            space.encode(archs[0], "no-such-encoding")

    def test_describe_is_one_line(self, space: SearchSpace) -> None:
        for arch in self._samples(space, 8):
            text = space.describe(arch)
            assert isinstance(text, str) and text and "\n" not in text

    def test_json_round_trip(self, space: SearchSpace) -> None:
        again = space_from_config(json.loads(json.dumps(space.to_dict())))
        assert again.name == space.name
        for arch in self._samples(space, 6):
            data = json.loads(json.dumps(arch.to_dict()))
            assert Architecture.from_dict(data).key == arch.key

    def test_sampled_networks_build_and_run(self, space: SearchSpace) -> None:
        if not self.build_input or not space.has_builder:
            return
        import torch

        assert space.input_shape is not None
        for arch in self._samples(space, 7)[:3]:
            with torch.no_grad():
                out = arch.build().eval()(torch.zeros(1, *space.input_shape))
            tensors = list(out.values()) if isinstance(out, dict) else [out]
            assert all(torch.isfinite(t).all() for t in tensors)
