"""The per-run measures of :mod:`stability.analysis.convergence` (verdict, distance curves, fixed point, exact and
near cycles) for many runs at once, by array operations over all their visits.

The rules are those of :mod:`stability.analysis.convergence`; here they are computed over the concatenated chains
(each run a segment of one array, with offsets) instead of one small array per run: per run, the cosine distances
between its distinct nodes (one ``einsum`` per number of distinct nodes, the same float32 sums as one ``einsum`` per
run); per visit, its distances to the previous, first and last visit; every pair of visits (s < t) of a run, for
the near cycles (the first step more than ε from s, the latest s within ε of t); every pair of answered visits
(s <= t), for the ε fixed point (the largest distance from s onwards). Only the runs that return to a node go
through :func:`~stability.analysis.convergence.exact_cycles` one at a time.

Runs are measured in batches of at most ``PAIRS`` visit pairs, so memory stays bounded at any number of runs.
The records are built from values already in their types (Python ints, floats, strings), so they are not
validated again (:func:`_record`): one analysis of 1M revisions makes 1M steps.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel

from stability.analysis.alignment import change_counts
from stability.analysis.convergence import (
    FULL_MATRIX_LIMIT,
    MAX_NEAR_CYCLES,
    SMALL,
    Cycle,
    FixedPoint,
    NearCycle,
    Params,
    RunConvergence,
    StepMeasure,
    exact_cycles,
)
from stability.analysis.corpus import FAILED_DECISIONS, Corpus, RunChain, Visit

PAIRS = 1 << 21  # visit pairs measured at once (a batch of runs): ~2M, a few tens of MB of arrays
GATHER = 1 << 13  # node vectors gathered at once for one einsum (8k x 384 float32: 12 MB)

Model = TypeVar("Model", bound=BaseModel)
_FIELDS: dict[type[BaseModel], set[str]] = {}
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__  # the slots' own setters: no __setattr__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _record(cls: type[Model], values: dict[str, Any]) -> Model:
    """An instance of ``cls`` holding ``values`` (every field, each already of its type), without validation.

    What ``model_construct`` does, less its per-field work (defaults, aliases): ``values`` must name every field.
    The fields-set is one set per class holding every field, so an assignment later adds nothing to it."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = set(cls.model_fields)
    record = object.__new__(cls)
    object.__setattr__(record, "__dict__", values)
    _set_fields(record, fields)
    _set_extra(record, None)
    _set_private(record, None)
    return record


def round6(values: np.ndarray) -> list[float]:
    """``round(x, 6)`` of every value, as Python floats, by array operations.

    ``rint(x * 1e6) / 1e6`` is the nearest double to the decimal rounded from x, as ``round`` gives, unless
    ``x * 1e6`` lands so near a half that its own rounding could pick the other integer: those few go through
    ``round``."""
    x = np.asarray(values, dtype=np.float64)
    scaled = x * 1e6
    out = (np.rint(scaled) / 1e6).tolist()
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6).tolist():
        out[i] = round(float(x[i]), 6)
    return out


def pairs_within(lengths: np.ndarray, diagonal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of positions (s, t) inside each segment of a flat array (segments of ``lengths``, in order),
    s < t (s <= t with ``diagonal``), ordered by s then t."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    flat = np.arange(total, dtype=np.int64)
    ends = np.repeat(np.cumsum(lengths), lengths)
    shift = 0 if diagonal else 1
    partners = ends - flat - shift
    s = np.repeat(flat, partners)
    t = s + shift + (np.arange(len(s), dtype=np.int64) - np.repeat(np.cumsum(partners) - partners, partners))
    return s, t


def _batches(sizes: list[int], limit: int) -> Iterator[tuple[int, int]]:
    """Consecutive ranges [a, b) of runs whose summed ``sizes`` stay within ``limit`` (a larger run alone)."""
    a, total = 0, 0
    for i, size in enumerate(sizes):
        if i > a and total + size > limit:
            yield a, i
            a, total = i, 0
        total += size
    if a < len(sizes):
        yield a, len(sizes)


def run_convergence(chain: RunChain, corpus: Corpus, node_vectors: Mapping[str, np.ndarray],
                    principle_vectors: Mapping[str, np.ndarray] | None, params: Params,
                    counts: dict[tuple[str, str], dict[str, int]] | None = None) -> RunConvergence:
    """The measures of one run (see :func:`run_convergences`)."""
    return run_convergences([chain], corpus, node_vectors, principle_vectors, params, counts)[0]


def run_convergences(chains: Sequence[RunChain], corpus: Corpus, node_vectors: Mapping[str, np.ndarray],
                     principle_vectors: Mapping[str, np.ndarray] | None, params: Params,
                     counts: dict[tuple[str, str], dict[str, int]] | None = None) -> list[RunConvergence]:
    """The measures of every run, in order. ``counts``: alignment counts by (node, next node), shared by the runs
    of one analysis (filled here), so a transition several runs make is aligned once; ``principle_vectors``
    None: no alignment counts (``changes`` stays None). The steps of one transition share its counts (the
    mapping in ``counts``, not a copy each: 1M steps at 1M revisions): replace a step's ``changes``, never
    change it in place."""
    counts = counts if counts is not None else {}
    usable = [chain.usable for chain in chains]
    sizes = [len(u) * (len(u) + 1) // 2 if len(u) <= FULL_MATRIX_LIMIT else 0 for u in usable]
    out: list[RunConvergence] = []
    for a, b in _batches(sizes, PAIRS):
        out += _batch(chains[a:b], usable[a:b], corpus, node_vectors, principle_vectors, params, counts)
    return out


class _Visits:
    """The usable visits of a batch of runs, concatenated: run ``r``'s are ``[start[r], end[r])``."""

    def __init__(self, usable: Sequence[list[Visit]]) -> None:
        visits = list(itertools.chain.from_iterable(usable))  # every loop over the visits runs in C (map)
        self.nodes: list[str] = list(map(itemgetter(1), visits))
        self.steps: list[int] = list(map(itemgetter(0), visits))
        self.decisions: list[str] = list(map(itemgetter(2), visits))
        self.length = np.fromiter(map(len, usable), dtype=np.int64, count=len(usable))
        self.end = np.cumsum(self.length)
        self.start = self.end - self.length
        number = dict(zip(dict.fromkeys(self.nodes), itertools.count()))
        self.code = np.fromiter(map(number.__getitem__, self.nodes), dtype=np.int64, count=len(self.nodes))
        self.names = list(number)  # code -> node
        self.run = np.repeat(np.arange(len(usable), dtype=np.int64), self.length)
        self.answered = ~np.fromiter(map(FAILED_DECISIONS.__contains__, self.decisions), dtype=bool,
                                     count=len(self.decisions))


def _distances(visits: _Visits, matrix: np.ndarray, node_vectors: Mapping[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cosine distances between each matrix run's distinct nodes, flat: run r's m[r] x m[r] block from
    ``block[r]``, its rows and columns the run's distinct nodes by code (``local``: each visit's row). As one
    run at a time did: an ``einsum`` of the unit rows up to ``SMALL`` distinct nodes (the same float32 sums: one
    ``einsum`` per number of distinct nodes), the BLAS product above (in first-seen order).

    Returns (flat, block, local, m)."""
    width = len(visits.names) + 1
    distinct, inverse = np.unique(visits.run * width + visits.code, return_inverse=True)
    d_run, d_code = distinct // width, distinct % width
    m = np.bincount(d_run, minlength=len(visits.length)).astype(np.int64)
    d_start = np.cumsum(m) - m
    local = inverse.ravel() - d_start[visits.run]
    m = m * matrix  # no block for a run without a matrix
    block = np.cumsum(m * m) - m * m
    vectors = np.stack([node_vectors[x] for x in visits.names]) if visits.names else np.zeros((0, 1), np.float32)
    flat = np.zeros(int((m * m).sum()), dtype=np.result_type(vectors.dtype, np.float32))
    for size in np.unique(m[(m > 0) & (m <= SMALL)]).tolist():
        runs = np.flatnonzero(m == size)
        step = max(1, GATHER // size)
        for i in range(0, len(runs), step):
            part = runs[i:i + step]
            rows = vectors[d_code[(d_start[part][:, None] + np.arange(size)).ravel()]].reshape(len(part), size, -1)
            product = np.einsum("rik,rjk->rij", rows, rows)
            flat[(block[part][:, None] + np.arange(size * size)).ravel()] = np.clip(1.0 - product, 0.0, 2.0).ravel()
    for r in np.flatnonzero(m > SMALL).tolist():
        codes = visits.code[visits.start[r]:visits.end[r]]
        order = np.array(list(dict.fromkeys(codes.tolist())), dtype=np.int64)
        rows = vectors[order]
        at = np.searchsorted(d_code[d_start[r]:d_start[r] + m[r]], order)
        size = int(m[r])
        view = flat[block[r]:block[r] + size * size].reshape(size, size)
        view[at[:, None], at[None, :]] = np.clip(1.0 - rows @ rows.T, 0.0, 2.0)
    return flat, block, local, m


class _Matrix:
    """The distances of a batch's matrix runs, looked up by pairs of visits of one run."""

    def __init__(self, visits: _Visits, matrix: np.ndarray, node_vectors: Mapping[str, np.ndarray]) -> None:
        self.run = visits.run
        self.flat, self.block, self.local, self.m = _distances(visits, matrix, node_vectors)

    def __call__(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        r = self.run[s]
        return self.flat[self.block[r] + self.local[s] * self.m[r] + self.local[t]]


def _pairs_of(members: np.ndarray, run: np.ndarray, n_runs: int, diagonal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (s, t) of ``members`` (visit indices, ascending) of one run, s < t (s <= t with ``diagonal``),
    ordered by s then t."""
    s, t = pairs_within(np.bincount(run[members], minlength=n_runs), diagonal)
    return members[s], members[t]


def _batch(chains: Sequence[RunChain], usable: Sequence[list[Visit]], corpus: Corpus,
           node_vectors: Mapping[str, np.ndarray], principle_vectors: Mapping[str, np.ndarray] | None,
           params: Params, counts: dict[tuple[str, str], dict[str, int]]) -> list[RunConvergence]:
    visits = _Visits(usable)
    n = len(visits.nodes)
    matrix = visits.length <= FULL_MATRIX_LIMIT  # runs measured on their distance matrix
    distance = _Matrix(visits, matrix, node_vectors)
    run, start, end = visits.run, visits.start, visits.end
    first = np.repeat(start, visits.length)
    dtype = distance.flat.dtype
    d_origin, d_final, d_prev = np.zeros(n, dtype=dtype), np.zeros(n, dtype=dtype), np.zeros(n, dtype=dtype)
    sel = np.flatnonzero(matrix[run])
    d_origin[sel] = distance(sel, first[sel])
    d_final[sel] = distance(sel, np.repeat(end - 1, visits.length)[sel])
    later = sel[sel != first[sel]]
    d_prev[later] = distance(later - 1, later)
    for r in np.flatnonzero(~matrix).tolist():  # too long for a matrix: the three curves by products
        lo, hi = int(start[r]), int(end[r])
        rows = np.stack([node_vectors[x] for x in visits.nodes[lo:hi]])
        d_origin[lo:hi] = np.clip(1.0 - rows @ rows[0], 0.0, 2.0)
        d_final[lo:hi] = np.clip(1.0 - rows @ rows[-1], 0.0, 2.0)
        d_prev[lo + 1:hi] = np.clip(1.0 - np.einsum("ij,ij->i", rows[1:], rows[:-1]), 0.0, 2.0)
    near = _near_cycles(visits, sel, distance, params.epsilon)
    points, cycles = _fixed_points(chains, visits, matrix, distance, params)
    nodes = visits.nodes
    changes: list[dict[str, int] | None] = [None] * n
    if principle_vectors is not None:
        for g in np.flatnonzero((np.arange(n) > first) & (visits.code != np.roll(visits.code, 1))).tolist():
            pair = (nodes[g - 1], nodes[g])
            found = counts.get(pair)
            if found is None:
                found = counts[pair] = change_counts(corpus.principles[pair[0]], corpus.principles[pair[1]],
                                                     principle_vectors, params.reworded_threshold)
            changes[g] = found  # shared by every step that makes this transition (and by ``counts``)
    sizes = np.array([len(corpus.principles[x]) for x in visits.names], dtype=np.int64)
    previous: list[float | None] = list(round6(d_prev))
    for g in start[visits.length > 0].tolist():
        previous[g] = None
    steps = [_record(StepMeasure, {"step": st, "node": no, "decision": de, "n_principles": size, "d_prev": dp,
                                   "d_origin": do, "d_final": df, "changes": ch})
             for st, no, de, size, dp, do, df, ch in zip(visits.steps, nodes, visits.decisions,
                                                         sizes[visits.code].tolist(), previous, round6(d_origin),
                                                         round6(d_final), changes, strict=True)]
    out = []
    for r, chain in enumerate(chains):
        run_near = near.get(r, [])
        verdict: str
        if not chain.chain:
            verdict = "not_chain"
            run_near = []  # sibling trials do not return to anything: no near cycles either
        elif chain.no_verdict is not None:
            verdict = "no_verdict"
        else:
            verdict = "fixed_point" if points[r] is not None else "cycle" if cycles.get(r) else "unsettled"
        lo, hi = int(start[r]), int(end[r])
        out.append(_record(RunConvergence, {
            "run_id": chain.run_id, "model": chain.model, "stop_reason": chain.stop_reason, "start": chain.start,
            "final": chain.final, "k": params.k if params.k is not None else chain.declines_to_stop,
            "protocol": chain.protocol, "verdict": verdict,
            "no_verdict": chain.no_verdict if verdict == "no_verdict" else None, "steps": steps[lo:hi],
            "fixed_point": points[r], "cycles": cycles.get(r, []), "near_cycles": run_near[:MAX_NEAR_CYCLES],
            "near_cycles_total": len(run_near), "references": {}, "probe": None}))
    return out


def _near_cycles(visits: _Visits, members: np.ndarray, distance: _Matrix, epsilon: float
                 ) -> dict[int, list[NearCycle]]:
    """Per run (of the matrix runs, whose visits are ``members``), its near cycles in order of t: for every t,
    the latest s < t - 1 of another node within ε of t that the chain had first left (moved more than ε from s
    before t)."""
    s, t = _pairs_of(members, visits.run, len(visits.length), diagonal=False)
    away = distance(s, t) > epsilon
    first_exit = np.repeat(visits.end, visits.length)  # the first visit after s more than ε from s (none: the end)
    a_s, a_t = s[away], t[away]
    head = np.ones(len(a_s), dtype=bool)
    head[1:] = a_s[1:] != a_s[:-1]
    first_exit[a_s[head]] = a_t[head]
    ok = ~away & (first_exit[s] < t) & (visits.code[s] != visits.code[t]) & (t - s > 1)
    o_s, o_t = s[ok], t[ok]
    order = np.lexsort((o_s, o_t))  # by t, then s: the last of each t is its latest s
    o_s, o_t = o_s[order], o_t[order]
    tail = np.ones(len(o_t), dtype=bool)
    tail[:-1] = o_t[:-1] != o_t[1:]
    o_s, o_t = o_s[tail], o_t[tail]
    out: dict[int, list[NearCycle]] = {}
    nodes, steps = visits.nodes, visits.steps
    for a, b, r, d in zip(o_s.tolist(), o_t.tolist(), visits.run[o_t].tolist(), round6(distance(o_s, o_t)),
                          strict=True):
        out.setdefault(r, []).append(_record(NearCycle, {"from_step": steps[a], "to_step": steps[b], "distance": d,
                                                         "from_node": nodes[a], "to_node": nodes[b]}))
    return out


def _fixed_points(chains: Sequence[RunChain], visits: _Visits, matrix: np.ndarray, distance: _Matrix,
                  params: Params) -> tuple[list[FixedPoint | None], dict[int, list[Cycle]]]:
    """Per run that can have a verdict (a chain whose last visit holds an answer, finished): its fixed point and
    exact cycles (only a run that returns to a node has any), read off its answered visits."""
    n_runs = len(chains)
    judged = np.fromiter((c.chain and c.no_verdict is None for c in chains), dtype=bool, count=n_runs)
    picked = np.flatnonzero(visits.answered & judged[visits.run])  # answered visits of those runs
    a_run = visits.run[picked]
    a_len = np.bincount(a_run, minlength=n_runs)
    a_start = np.cumsum(a_len) - a_len
    last = a_start + a_len - 1
    index = np.arange(len(picked))
    code = visits.code[picked]
    # held: the answered visits at the end of a run on its last answered node (``begin``: where that began)
    moved = np.ones(len(picked), dtype=bool)
    moved[1:] = (code[1:] != code[:-1]) | (a_run[1:] != a_run[:-1])
    begin = np.maximum.accumulate(np.where(moved, index, 0))
    k = np.fromiter((params.k if params.k is not None else c.declines_to_stop for c in chains), dtype=np.int64,
                    count=n_runs)
    # exact returns: an answered visit to a node whose previous answered visit in the run is not the one before
    order = np.lexsort((index, code, a_run))
    again = np.zeros(len(picked), dtype=bool)
    again[1:] = (code[order][1:] == code[order][:-1]) & (a_run[order][1:] == a_run[order][:-1]) \
        & (order[1:] - order[:-1] > 1)
    returns = np.zeros(len(picked), dtype=bool)
    returns[order[again]] = True
    latest_return = np.full(n_runs, -1, dtype=np.int64)
    np.maximum.at(latest_return, a_run[returns], index[returns] - a_start[a_run[returns]])
    # ε: the largest distance from each answered visit s (of a matrix run) to every answered visit from s on
    within = np.zeros(len(picked), dtype=bool)
    in_matrix = np.flatnonzero(matrix[a_run])
    s, t = _pairs_of(in_matrix, a_run, n_runs, diagonal=True)
    if len(s):
        heads = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        largest = np.maximum.reduceat(distance(picked[s], picked[t]), heads)
        within[s[heads]] = largest.astype(np.float64) <= params.epsilon
    floor = a_start[a_run] + np.maximum(latest_return, 0)[a_run]  # an exact return outranks distances
    hits = np.flatnonzero(within & (index >= floor) & (last[a_run] - index >= k[a_run]))
    first_hit = np.full(n_runs, -1, dtype=np.int64)
    if len(hits):
        head = np.r_[True, a_run[hits][1:] != a_run[hits][:-1]]
        first_hit[a_run[hits][head]] = hits[head]
    points: list[FixedPoint | None] = [None] * n_runs
    steps, nodes = visits.steps, visits.nodes
    for r in np.flatnonzero(a_len > 0).tolist():
        end = int(last[r])
        held = end - int(begin[end])
        if held >= k[r]:  # K governs both rules that count repeats
            g = int(picked[begin[end]])
            how = "declines" if chains[r].stop_reason == "declined" else "exact_repeat"
            points[r] = _record(FixedPoint, {"step": steps[g], "node": nodes[g], "how": how, "held_steps": held})
        elif first_hit[r] >= 0:
            g = int(picked[first_hit[r]])
            points[r] = _record(FixedPoint, {"step": steps[g], "node": nodes[g], "how": "epsilon",
                                             "held_steps": end - int(first_hit[r])})
    cycles: dict[int, list[Cycle]] = {}
    for r in np.unique(a_run[returns]).tolist():
        rows = picked[a_start[r]:a_start[r] + a_len[r]].tolist()
        cycles[r] = exact_cycles([nodes[g] for g in rows], [steps[g] for g in rows])
    return points, cycles
