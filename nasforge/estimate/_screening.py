"""Zero-cost scores for strategies: proxies per architecture, computed once per key, optionally on disk.

A strategy that pre-screens or warm-starts with zero-cost proxies (see
:class:`nasforge.strategy.ProxyWarmStart`) scores hundreds of untrained networks. A
:class:`ProxyScorer` does that work once per architecture key and keeps the scores, in memory and,
with ``cache=PATH``, in a JSON-lines file that later runs (a resumed search, another seed, a
benchmark over many seeds) read instead of recomputing.

What makes a score reproducible, so that a cached value equals a fresh one:

- the network is built from the key class's :meth:`~nasforge.space.SearchSpace.representative`
  (for NB201, one fixed member of each isomorphism class), with weights seeded from the key and
  ``weight_seed``, never from the search's own random stream;
- the batch is fixed by ``data_seed`` (a task's training images, or standard-normal inputs with
  random labels without one), and only matters to data-dependent proxies: synflow, params and
  flops see none;
- each cache line carries a fingerprint of all of that (space and its options, input shape, class
  count, seeds, the batch's bytes when a proxy reads it); lines of another fingerprint are ignored.

Loading the cache never executes code: it is JSON. A line cut short by a killed process (the last
one) is skipped; any other unreadable line is an error naming the file and line.

Example:
    >>> import nasforge as nf
    >>> from nasforge.estimate import ProxyScorer
    >>> space = nf.spaces.NB201Space(C=4, N=1).bind((3, 8, 8), 10)
    >>> scorer = ProxyScorer(["synflow", "params"])
    >>> archs = [space.from_ops([3, 3, 3, 3, 3, 3]), space.from_ops([1, 1, 1, 1, 1, 1])]
    >>> scorer.rank(archs).tolist()  # the all-conv cell ranks above the all-skip one
    [2.0, 1.0]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError
from nasforge.estimate._base import TrialContext
from nasforge.estimate._ensemble import aggregate, resolve_proxies
from nasforge.estimate._proxies import PROXIES
from nasforge.estimate._zero_cost import ZeroCostEstimator

if TYPE_CHECKING:
    from nasforge.data import Task
    from nasforge.space import Architecture

__all__ = ["ProxyScorer"]

_FORMAT = "nasforge-proxy-cache/1"


def _digest(blob: Any) -> str:
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ProxyScorer:
    """Zero-cost proxy scores of architectures, each computed once per key.

    Args:
        proxies: proxy names (see :data:`nasforge.estimate.PROXIES`) or named ensembles
            (:data:`nasforge.estimate.ENSEMBLES`, e.g. ``az_nas``, which bring their aggregation);
            default synflow (data-free; the best warm start on NB201 of the variants in
            docs/benchmarks.md).
        aggregation: how :meth:`rank` combines several proxies: ``"vote"`` (mean rank) or
            ``"log_rank"`` (AZ-NAS's sum of ``log(rank / N)``); default the ensemble's, else vote.
        task: the dataset whose training images data-dependent proxies see; None uses random
            inputs. :meth:`set_task` changes it later.
        batch_size: samples in the scoring batch (>= 2).
        data_seed: seed of the batch draw.
        weight_seed: mixed with each key into the seed of the scored network's weights.
        cache: a JSON-lines file to read scores from and append new ones to; None keeps them in
            memory only.
        threads: torch threads while scoring; default every core this process may use.

    Attributes:
        computed: networks scored by this object (cache hits excluded).
        seconds: their total scoring time (building excluded), for reporting the proxies' cost.

    Raises:
        ConfigError: on an unknown proxy or bad option, or an unreadable cache file.
    """

    def __init__(
        self,
        proxies: Sequence[str] = ("synflow",),
        *,
        aggregation: str | None = None,
        task: Task | None = None,
        batch_size: int = 64,
        data_seed: int = 0,
        weight_seed: int = 0,
        cache: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.batch_size, self.data_seed, self.threads = batch_size, data_seed, threads
        proxies, self.aggregation = resolve_proxies(proxies, aggregation)
        self._estimator = ZeroCostEstimator(
            task, proxies=proxies, batch_size=batch_size, data_seed=data_seed, threads=threads
        )  # validates the options
        self.proxies: tuple[str, ...] = self._estimator.proxies
        if isinstance(weight_seed, bool) or not isinstance(weight_seed, int):
            raise ConfigError(f"weight_seed must be an integer, got {weight_seed=}")
        self.weight_seed = weight_seed
        self.cache = None if cache is None else Path(cache)
        if self.cache is not None and self.cache.is_dir():
            raise ConfigError(f"proxy cache {self.cache} is a directory; give a file, e.g. proxies.jsonl")
        self._data_dependent = any(PROXIES[p].data == "inputs" for p in self.proxies)
        self._memory: dict[str, dict[str, dict[str, float]]] = {}  # fingerprint -> key -> scores
        self._loaded: set[str] = set()  # fingerprints read from the cache file
        self._fingerprints: dict[int, str] = {}  # id(space) -> fingerprint
        self.computed = 0
        self.seconds = 0.0

    # ------------------------------------------------------------------ configuration
    def set_task(self, task: Task | None) -> None:
        """Score data-dependent proxies on ``task``'s training images from now on."""
        self._estimator = self._make(task, self.proxies)
        self._fingerprints.clear()

    def _make(self, task: Task | None, proxies: Sequence[str]) -> ZeroCostEstimator:
        return ZeroCostEstimator(
            task, proxies=proxies, batch_size=self.batch_size, data_seed=self.data_seed, threads=self.threads
        )

    def _fingerprint(self, arch: Architecture) -> str:
        space = arch.space
        fp = self._fingerprints.get(id(space))
        if fp is None:
            shape, classes = self._estimator._shape(arch)
            blob: dict[str, Any] = {
                "space": space.name,
                "options": space.options(),
                "input_shape": list(shape),
                "num_classes": classes,
                "weight_seed": self.weight_seed,
            }
            if self._data_dependent:
                x, y = self._estimator.batch(shape, classes)
                blob["batch"] = hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()
            fp = self._fingerprints[id(space)] = _digest(blob)
        return fp

    # ------------------------------------------------------------------ the cache file
    def _read_cache(self, fp: str) -> dict[str, dict[str, float]]:
        table = self._memory.setdefault(fp, {})
        if self.cache is None or fp in self._loaded:
            return table
        self._loaded.add(fp)
        if not self.cache.exists():
            return table
        try:
            lines = self.cache.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read proxy cache {self.cache}: {exc}") from None
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if entry.get("format") != _FORMAT:
                    raise ValueError("not a nasforge proxy-cache line")
                if entry["fp"] == fp:
                    scores = {str(k): float(v) for k, v in entry["scores"].items()}
                    table.setdefault(str(entry["key"]), {}).update(scores)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                if i == len(lines):  # cut short by a killed writer: recompute that entry
                    continue
                raise ConfigError(
                    f"proxy cache {self.cache} line {i} is not a nasforge proxy-cache entry ({exc}); "
                    "delete the file or point cache= elsewhere"
                ) from None
        return table

    def _append(self, fp: str, key: str, scores: dict[str, float]) -> None:
        if self.cache is None:
            return
        line = json.dumps({"format": _FORMAT, "fp": fp, "key": key, "scores": scores})
        try:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            with self.cache.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write proxy cache {self.cache}: {exc}") from None

    # ------------------------------------------------------------------ scoring
    def _seed(self, key: str) -> int:
        return int.from_bytes(hashlib.sha256(f"{key}/{self.weight_seed}".encode()).digest()[:4], "big")

    def scores(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        """``{proxy: value}`` for each architecture (computed now or taken from the cache)."""
        out = []
        for arch in archs:
            fp = self._fingerprint(arch)
            table = self._read_cache(fp)
            known = table.get(arch.key, {})
            missing = [p for p in self.proxies if p not in known]
            if missing:
                rep = arch.space.representative(arch)
                est = self._make(self._estimator.task, missing)
                est._batch = self._estimator._batch  # one batch for all
                metrics = est.evaluate(rep, TrialContext(0, seed=self._seed(arch.key)))
                self._estimator._batch = est._batch
                new = {p: float(metrics[p]) for p in missing}
                self.computed += 1
                self.seconds += float(metrics["proxy_seconds"])
                known = table[arch.key] = {**known, **new}
                self._append(fp, arch.key, new)
            out.append({p: known[p] for p in self.proxies})
        return out

    def rank(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Each architecture's aggregated rank over the proxies within ``archs`` (larger = better)."""
        if not archs:
            return np.zeros(0)
        return aggregate(self.scores(archs), self.proxies, self.aggregation)

    def __repr__(self) -> str:
        cache = "" if self.cache is None else f", cache={str(self.cache)!r}"
        how = "" if self.aggregation == "vote" else f", aggregation={self.aggregation!r}"
        return f"ProxyScorer({list(self.proxies)}{how}, weight_seed={self.weight_seed}{cache})"
