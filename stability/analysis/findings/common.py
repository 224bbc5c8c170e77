"""What several question modules share: reading a run's route and start, turning intervals into estimates, and
the share of between-start pairs of runs whose finals fall in one attractor."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from stability.analysis.attractors import attractors_of
from stability.analysis.between_starts import Jackknife, StartDistances, jackknife_se
from stability.analysis.contrasts import ContrastEstimate
from stability.analysis.corpus import RunChain
from stability.analysis.findings.data import FindingsData
from stability.analysis.findings.record import Estimate, GroupEstimate
from stability.analysis.intervals import t_quantile
from stability.analysis.stats import Interval
from stability.errors import StabilityError


def route_of(protocol: str) -> str | None:
    """The iteration route a protocol's runs take (its class says: ``route``); None for other protocols."""
    from stability.protocols import protocol_class

    try:
        return protocol_class(protocol).route
    except StabilityError:
        return None


def starts_blank(chain: RunChain) -> bool:
    """Whether the run began from the empty constitution and iterated one the model authored (its protocol says)."""
    return _starts_blank(chain.protocol, json.dumps(chain.config.get("options") or {}, sort_keys=True, default=str))


@functools.lru_cache(maxsize=1024)
def _starts_blank(protocol: str, options: str) -> bool:
    from stability.protocols import protocol_class

    try:
        return protocol_class(protocol).configure(json.loads(options)).starts_blank()
    except StabilityError:
        return False


def effective_start(chain: RunChain, principles: Mapping[str, tuple[str, ...]]) -> str:
    """The constitution the run iterated first: its start, or for a blank-slate start what the model authored (the
    first usable visit that holds principles)."""
    if not principles.get(chain.start):
        for visit in chain.usable:
            if principles.get(visit.node):
                return visit.node
    return chain.start


def by_start(indices: Sequence[int], starts: Sequence[str]) -> dict[str, list[int]]:
    """The run indices ``indices`` grouped by their start (``starts[i]``): the clusters of an interval over starts."""
    grouped: dict[str, list[int]] = {}
    for i in indices:
        grouped.setdefault(starts[i], []).append(i)
    return grouped


def estimate(interval: Interval, clusters: int | None = None) -> Estimate:
    """An analysis interval as a finding's estimate."""
    return Estimate(estimate=interval.mean, low=interval.low, high=interval.high, n=interval.n,
                    clusters=interval.clusters if interval.clusters is not None else (clusters or 0),
                    method=interval.method or "none", note=interval.warning)


def group_estimate(group: Mapping[str, Any], interval: Interval, clusters: int | None = None) -> GroupEstimate:
    return GroupEstimate(group=dict(group), **estimate(interval, clusters).model_dump())


def contrast_estimate(c: ContrastEstimate) -> Estimate:
    """A contrast (a − b) as a finding's estimate."""
    return Estimate(estimate=c.mean, low=c.low, high=c.high, n=c.n, clusters=c.starts, method=c.method,
                    p_value=c.p_value, note=c.note)


def labels_of(data: FindingsData, chains: Sequence[RunChain]) -> np.ndarray:
    """Attractor labels of the chains' finals: the clusters ``analyze`` found over every judged run
    (``cross_run``), else (a run it did not cluster) the chains' finals clustered afresh at the same cut."""
    known = {p.run_id: p.cluster for p in data.result.cross_run.projection if p.role == "final"}
    if all(known.get(c.run_id) is not None for c in chains):
        return np.array([known[c.run_id] for c in chains], dtype=int)
    if not chains:
        return np.zeros(0, dtype=int)
    return attractors_of(chains, np.stack([data.vectors.nodes[c.final] for c in chains]),
                         data.params.cluster_threshold)[0]


def _members(by_start: Mapping[str, Sequence[int]]) -> tuple[list[str], list[np.ndarray]]:
    names = sorted(s for s, m in by_start.items() if len(m))
    return names, [np.asarray(by_start[s], dtype=int) for s in names]


class _Blocks(StartDistances):
    """Block sums (starts x starts) with a jackknife in one pass: deleting start i takes its row and column out of
    both off-diagonal sums (O(k²) in all, where one ratio per deletion would be O(k³))."""

    def jackknife(self, by_start: Mapping[str, Sequence[int]], only: Sequence[str] | None = None) -> Jackknife:
        names, starts, finals = self.blocks({s: m for s, m in by_start.items() if only is None or s in only})
        off = ~np.eye(len(names), dtype=bool)
        s_off, f_off = np.where(off, starts, 0.0), np.where(off, finals, 0.0)
        den, num = float(s_off.sum()), float(f_off.sum())
        s_out, f_out = s_off.sum(axis=0) + s_off.sum(axis=1), f_off.sum(axis=0) + f_off.sum(axis=1)
        tiny = 1e-12 * max(den, 1.0)

        def ratio(n: float, d: float) -> float | None:
            return n / d if d > tiny else None

        return Jackknife(value=ratio(num, den),
                         deleted=[ratio(num - float(f_out[i]), den - float(s_out[i])) for i in range(len(names))])


class VectorBlocks(_Blocks):
    """Between-start sums of cosine distances from per-start sums of unit vectors, never a runs x runs matrix:
    sum over i in s, j in t of (1 - v_i . v_j) = n_s n_t - (sum_s v) . (sum_t v). Linear in runs (8,326 runs:
    625 x 625 blocks, not two 277 MB matrices), and the ratios :class:`StartDistances` gives (the diagonal blocks,
    pairs within a start, are never used)."""

    def __init__(self, starts: np.ndarray, finals: np.ndarray, start_of: Sequence[str]) -> None:
        super().__init__(np.zeros((0, 0)), np.zeros((0, 0)), start_of)
        self.starts, self.finals = starts.astype(np.float64), finals.astype(np.float64)

    def blocks(self, by_start: Mapping[str, Sequence[int]]) -> tuple[list[str], np.ndarray, np.ndarray]:
        names, members = _members(by_start)
        if not members:
            return names, np.zeros((0, 0)), np.zeros((0, 0))
        n = np.array([len(m) for m in members], dtype=np.float64)
        a = np.stack([self.starts[m].sum(axis=0) for m in members])
        b = np.stack([self.finals[m].sum(axis=0) for m in members])
        pairs = np.outer(n, n)
        return names, pairs - a @ a.T, pairs - b @ b.T


class LabelBlocks(_Blocks):
    """Between-start pairs (the denominator) and pairs whose finals share an attractor label (the numerator), from
    per-start label counts: the ratio is the share of between-start pairs in one attractor."""

    def __init__(self, labels: np.ndarray, start_of: Sequence[str]) -> None:
        super().__init__(np.zeros((0, 0)), np.zeros((0, 0)), start_of)
        self.labels = np.unique(labels, return_inverse=True)[1] if len(labels) else np.zeros(0, dtype=int)

    def blocks(self, by_start: Mapping[str, Sequence[int]]) -> tuple[list[str], np.ndarray, np.ndarray]:
        names, members = _members(by_start)
        if not members:
            return names, np.zeros((0, 0)), np.zeros((0, 0))
        width = int(self.labels.max()) + 1
        counts = np.stack([np.bincount(self.labels[m], minlength=width) for m in members]).astype(np.float64)
        n = counts.sum(axis=1)
        return names, np.outer(n, n), counts @ counts.T


def one_cluster_share(labels: np.ndarray, starts: Sequence[str], members: Sequence[int]) -> Estimate:
    """Share of pairs of ``members`` (positions in ``labels``) from different starts whose finals fall in one
    attractor, with a delete-one-start jackknife-t interval (clusters: starts); no interval with 2 starts."""
    by_start: dict[str, list[int]] = {}
    for i in members:
        by_start.setdefault(starts[i], []).append(i)
    k = len(by_start)
    pairs = sum(len(a) * len(b) for i, a in enumerate(by_start.values()) for j, b in enumerate(by_start.values())
                if i < j)
    if k < 2:
        return Estimate(estimate=None, n=pairs, clusters=k, note="one start: no pair of runs from different starts")
    jack = LabelBlocks(labels, starts).jackknife(by_start)
    value = jack.value
    se = jackknife_se(jack)
    if value is None:
        return Estimate(estimate=None, n=pairs, clusters=k, note="no pair of runs from different starts")
    if se is None:
        note = "2 starts: no interval (deleting a start leaves no pair of starts)" if k == 2 else \
            "a start's deletion leaves no pair: no interval"
        return Estimate(estimate=round(value, 6), n=pairs, clusters=k, method="jackknife-t", note=note)
    half = float(t_quantile(k - 1)) * se
    return Estimate(estimate=round(value, 6), low=round(max(0.0, value - half), 6),
                    high=round(min(1.0, value + half), 6), n=pairs, clusters=k, method="jackknife-t")
