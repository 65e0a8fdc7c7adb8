"""Combining zero-cost proxies: a rank vote and a ridge model on rank-transformed scores.

No single proxy ranks architectures well everywhere; combining them usually helps (Abdelfattah et
al. 2021 vote over synflow, jacob_cov and snip; later work fits models on the scores). Both
combinations here work on *ranks*, because proxy values span many orders of magnitude (synflow
~1e40) and differ in scale between proxies, while only their order carries information.

Scores are given as records, one mapping ``{proxy: value}`` per architecture, exactly what
:func:`nasforge.estimate.compute_proxies` returns. A ``nan`` (undefined score) or ``-inf`` counts
as the worst value.

Example:
    >>> from nasforge.estimate import ProxyEnsemble, rank_vote
    >>> records = [{"a": 1.0, "b": 30.0}, {"a": 2.0, "b": 10.0}, {"a": 3.0, "b": 20.0}]
    >>> rank_vote(records).tolist()
    [2.0, 1.5, 2.5]
    >>> model = ProxyEnsemble(alpha=0.1).fit(records, [0.5, 0.6, 0.7])
    >>> model.predict([{"a": 2.5, "b": 0.0}]).shape
    (1,)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np

from nasforge.errors import ConfigError, DataError, UnknownComponentError
from nasforge.registry import suggest

__all__ = [
    "AGGREGATIONS",
    "ENSEMBLES",
    "ProxyEnsemble",
    "aggregate",
    "log_rank_vote",
    "parse_ensemble",
    "rank_vote",
    "ranks",
    "resolve_proxies",
]

Records = Sequence[Mapping[str, float]]


def ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, ascending (the largest value gets ``n``); ties share their mean rank.

    ``nan`` counts as smaller than every number (ties with ``-inf`` and with other ``nan``).

    Example:
        >>> ranks([0.3, float("nan"), 0.3, 5.0]).tolist()
        [2.5, 1.0, 2.5, 4.0]
    """
    x = np.asarray(values, dtype=np.float64).copy()
    if x.ndim != 1:
        raise DataError(f"ranks takes a 1-d sequence, got shape {x.shape}")
    x[np.isnan(x)] = -np.inf
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    out = np.empty(len(x), dtype=np.float64)
    start = 0
    while start < len(x):
        stop = start + 1
        while stop < len(x) and sorted_x[stop] == sorted_x[start]:
            stop += 1
        out[order[start:stop]] = (start + stop + 1) / 2  # mean of ranks start+1 .. stop
        start = stop
    return out


def _matrix(records: Records, proxies: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    if isinstance(records, Mapping) or not isinstance(records, Sequence) or not records:
        raise DataError(
            "give the scores as a non-empty list of {proxy: value} mappings, one per architecture"
        )
    names = list(proxies) if proxies is not None else list(records[0])
    if not names:
        raise ConfigError("no proxies to combine: the records are empty mappings")
    for i, r in enumerate(records):
        missing = [n for n in names if n not in r]
        if missing:
            raise DataError(f"record {i} lacks the proxies {missing}; it has {sorted(r)}")
    return np.array([[float(r[n]) for n in names] for r in records], dtype=np.float64), names


def rank_vote(records: Records, proxies: Sequence[str] | None = None) -> np.ndarray:
    """Mean over proxies of each architecture's rank within ``records`` (larger = better).

    The vote is relative to the set scored together: adding an architecture can change the others'
    values, but not their order under any single proxy.

    Args:
        records: one ``{proxy: value}`` per architecture.
        proxies: the proxies that vote; default every key of the first record.

    Returns:
        An array of mean ranks in ``[1, len(records)]``.
    """
    x, _ = _matrix(records, proxies)
    return np.mean([ranks(col) for col in x.T], axis=0)


def log_rank_vote(records: Records, proxies: Sequence[str] | None = None) -> np.ndarray:
    """AZ-NAS's non-linear rank aggregation: ``sum over proxies of log(rank / N)`` (larger = better).

    Lee & Ham (CVPR 2024), eq. 9: each proxy ranks the ``N`` architectures (1 = worst, ``N`` =
    best, ties sharing their mean rank, ``nan`` / ``-inf`` worst); the log makes a low rank under
    any one proxy costly, so an architecture must be good under all of them to score high, where
    the mean rank of :func:`rank_vote` lets one proxy's top rank make up for another's bottom.

    Args:
        records: one ``{proxy: value}`` per architecture.
        proxies: the proxies that vote; default every key of the first record.

    Returns:
        An array of values in ``[len(proxies) * log(1 / N), 0]``.

    Example:
        >>> records = [{"a": 1.0, "b": 3.0}, {"a": 2.0, "b": 1.0}, {"a": 3.0, "b": 2.0}]
        >>> [round(v, 3) for v in log_rank_vote(records).tolist()]  # log(1/3)+log(3/3), ...
        [-1.099, -1.504, -0.405]
        >>> rank_vote(records).tolist()  # the mean rank ties the first two
        [2.0, 1.5, 2.5]
    """
    x, _ = _matrix(records, proxies)
    n = x.shape[0]
    return np.sum([np.log(ranks(col) / n) for col in x.T], axis=0)


AGGREGATIONS: Mapping[str, Callable[[Records, Sequence[str] | None], np.ndarray]] = MappingProxyType(
    {"vote": rank_vote, "log_rank": log_rank_vote}
)
"""How an ensemble combines its proxies' ranks: ``vote`` (:func:`rank_vote`, mean rank) or
``log_rank`` (:func:`log_rank_vote`, AZ-NAS's sum of ``log(rank / N)``)."""

ENSEMBLES: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType(
    {
        # Lee & Ham (CVPR 2024): their four proxies, complexity being FLOPs
        "az_nas": (("az_expressivity", "az_progressivity", "az_trainability", "flops"), "log_rank"),
        # Abdelfattah et al. (2021): their best vote on NB201
        "zc_vote": (("synflow", "jacob_cov", "snip"), "vote"),
        # the best of 746 candidate ensembles on 300 NB201 tuning cells (docs/benchmarks.md)
        "zc_frontier": (("az_progressivity", "meco", "meco_opt", "swap_reg", "synflow"), "log_rank"),
    }
)
"""Named training-free ensembles: name -> (proxies, aggregation)."""


def aggregate(records: Records, proxies: Sequence[str] | None = None, how: str = "vote") -> np.ndarray:
    """Combine the proxies' scores of ``records`` with the aggregation ``how`` (:data:`AGGREGATIONS`)."""
    if how not in AGGREGATIONS:
        raise UnknownComponentError(
            f"unknown aggregation {how!r}; valid aggregations: {', '.join(AGGREGATIONS)}"
        )
    return AGGREGATIONS[how](records, proxies)


def parse_ensemble(spec: str) -> tuple[tuple[str, ...], str]:
    """``(proxies, aggregation)`` of an ensemble given by name or as ``AGGREGATION:p1+p2+...``.

    Example:
        >>> parse_ensemble("az_nas")
        (('az_expressivity', 'az_progressivity', 'az_trainability', 'flops'), 'log_rank')
        >>> parse_ensemble("vote:synflow+naswot")
        (('synflow', 'naswot'), 'vote')

    Raises:
        ConfigError: an unknown name or aggregation, or no proxies after the colon.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"an ensemble is a name or 'AGGREGATION:proxy+proxy', got {spec!r}")
    how, sep, members = spec.strip().partition(":")
    if not sep:
        if how not in ENSEMBLES:
            raise UnknownComponentError(
                f"unknown ensemble {how!r}.{suggest(how, list(ENSEMBLES))} Named ensembles: "
                f"{', '.join(ENSEMBLES)}; or give one as AGGREGATION:proxy+proxy "
                f"(aggregations: {', '.join(AGGREGATIONS)}), e.g. log_rank:synflow+naswot"
            )
        return ENSEMBLES[how]
    if how not in AGGREGATIONS:
        raise UnknownComponentError(
            f"unknown aggregation {how!r} in ensemble {spec!r}; valid aggregations: {', '.join(AGGREGATIONS)}"
        )
    names = tuple(m.strip() for m in members.split("+") if m.strip())
    if not names:
        raise ConfigError(f"ensemble {spec!r} names no proxies; write e.g. {how}:synflow+naswot")
    return names, how


def resolve_proxies(proxies: Sequence[str], aggregation: str | None = None) -> tuple[tuple[str, ...], str]:
    """Expand ensemble names among ``proxies`` into their members; the aggregation to rank them by.

    ``["az_nas"]`` becomes AZ-NAS's four proxies with ``log_rank``; plain proxy names pass through
    with ``aggregation`` (default ``vote``). An explicit ``aggregation`` wins over the ensembles'.

    Raises:
        ConfigError: an unknown aggregation, or ensembles with different aggregations and none given.
    """
    if isinstance(proxies, str):
        proxies = [proxies]
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise UnknownComponentError(
            f"unknown aggregation {aggregation!r}; valid aggregations: {', '.join(AGGREGATIONS)}"
        )
    names: list[str] = []
    implied: set[str] = set()
    for p in proxies:
        if isinstance(p, str) and (p in ENSEMBLES or ":" in p):
            members, how = parse_ensemble(p)
            implied.add(how)
        else:
            members = (p,)
        names.extend(m for m in members if m not in names)
    if aggregation is None:
        if len(implied) > 1:
            raise ConfigError(
                f"the ensembles in {list(proxies)} aggregate differently ({sorted(implied)}); "
                "choose one with aggregation=..."
            )
        aggregation = implied.pop() if implied else "vote"
    return tuple(names), aggregation


class ProxyEnsemble:
    """A ridge regression on rank-transformed proxy scores, fitted against known accuracies.

    ``fit`` turns each proxy's scores into quantiles in ``[0, 1]`` (the fraction of training
    scores below, ties counted half) and solves a ridge regression of the target on them;
    ``predict`` maps new scores through the *training* quantiles, so a prediction depends only on
    its own row, never on the batch it comes in. With ``rank_target=True`` (the default) the
    target is also rank-transformed: the model then predicts a quantile of accuracy, which is what
    a search ranks by, and the 10 % accuracies of broken cells cannot dominate a least-squares fit.

    Args:
        proxies: the proxies used as features; default every key of the first training record.
        alpha: ridge penalty on the coefficients (the intercept is not penalised), >= 0.
        rank_target: fit the target's quantiles instead of its values.

    Attributes (after ``fit``):
        proxies_: the feature names.
        coef_: one coefficient per proxy (comparable: every feature is a quantile).
        intercept_: the intercept.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> acc = rng.random(50)
        >>> records = [{"good": a + 0.1 * rng.random(), "noise": rng.random()} for a in acc]
        >>> model = ProxyEnsemble().fit(records, acc)
        >>> bool(model.coef_[0] > abs(model.coef_[1]))
        True
    """

    def __init__(
        self, *, proxies: Sequence[str] | None = None, alpha: float = 1.0, rank_target: bool = True
    ) -> None:
        self.proxies = proxies
        self.alpha = alpha
        self.rank_target = rank_target

    def fit(self, records: Records, y: Sequence[float] | np.ndarray) -> ProxyEnsemble:
        """Fit on the scores of architectures whose accuracy ``y`` is known; returns self."""
        if not (isinstance(self.alpha, (int, float)) and self.alpha >= 0):
            raise ConfigError(f"alpha must be a number >= 0, got alpha={self.alpha!r}")
        x, names = _matrix(records, self.proxies)
        target = np.asarray(y, dtype=np.float64)
        if target.shape != (len(x),) or not np.all(np.isfinite(target)):
            raise DataError(f"y must hold {len(x)} finite numbers, one per record, got shape {target.shape}")
        if len(x) < 2:
            raise DataError("fit needs at least 2 architectures")
        x[np.isnan(x)] = -np.inf
        self._train_sorted = np.sort(x, axis=0)
        features = self._quantiles(x)
        if self.rank_target:
            target = (ranks(target) - 0.5) / len(target)
        mean_f, mean_t = features.mean(axis=0), target.mean()
        fc, tc = features - mean_f, target - mean_t
        gram = fc.T @ fc + float(self.alpha) * np.eye(fc.shape[1])
        self.coef_ = np.linalg.lstsq(gram, fc.T @ tc, rcond=None)[0]
        self.intercept_ = float(mean_t - mean_f @ self.coef_)
        self.proxies_ = names
        return self

    def _quantiles(self, x: np.ndarray) -> np.ndarray:
        n = self._train_sorted.shape[0]
        cols = []
        for j in range(x.shape[1]):
            ref = self._train_sorted[:, j]
            below = np.searchsorted(ref, x[:, j], side="left")
            upto = np.searchsorted(ref, x[:, j], side="right")
            cols.append((below + upto) / (2 * n))
        return np.stack(cols, axis=1)

    def predict(self, records: Records) -> np.ndarray:
        """Predicted target (a quantile of accuracy with ``rank_target``) for each record."""
        if not hasattr(self, "coef_"):
            raise ConfigError("ProxyEnsemble is not fitted: call fit(records, y) first")
        x, _ = _matrix(records, self.proxies_)
        x[np.isnan(x)] = -np.inf
        return self._quantiles(x) @ self.coef_ + self.intercept_

    def __repr__(self) -> str:
        return (
            f"ProxyEnsemble(proxies={self.proxies!r}, alpha={self.alpha!r}, rank_target={self.rank_target!r})"
        )
