"""Per-run measures: the verdict, distance curves, the fixed point and how it was reached, exact and near cycles.

Distances are cosine distances (``1 - cos``) between constitution vectors (the normalised mean of their principles'
vectors, see :mod:`stability.analysis.embeddings`); 0 is the same direction.
Only *usable* visits count as steps of the chain: a visit recorded for a failed call (decision ``error``) holds
no answer and is skipped. Parse failures and truncated answers stay: the chain sits on its node while the model
fails to answer.

Verdict (``verdict``), read only from *answered* visits (not ``parse_failure``, ``truncated`` or ``error``):

- ``not_chain``: the protocol's trials are siblings (rate-alternatives, free-form-edit, blank-slate); such a run
  has no fixed point, cycle, final or attractor; it keeps its curves (and its ratings, for rate-alternatives).
- ``no_verdict``: the run ended on a failed step (its last visit is a parse failure, truncated or an error) or
  did not finish (still running, or stopped by the budget or an interruption). It is counted as such and is
  never a fixed point, a cycle or an attractor member.
- ``fixed_point``, else ``cycle`` (an exact cycle was found), else ``unsettled`` (ran out of steps still moving);
  the rules and their order are below (*Verdict order*).

Fixed point (the first rule that applies; ``step`` is the step at which it was first reached; ``held_steps``
counts the *answered* steps after it, so a parse failure never holds a fixed point). K (``--k``, else the run's
own ``declines_to_stop``) governs every rule that counts repeats:

- ``declines``: the run stopped because consecutive fresh instances declined to change the constitution, and its
  last node was held for at least K answered steps (a run that stopped on 2 declines is no fixed point at K = 5).
- ``exact_repeat``: the run did not stop on declines, but its last node was held, unchanged, for at least K
  answered steps (e.g. a run that hit ``max_steps`` while declining).
- ``epsilon``: from some answered step s to the end every constitution stays within ε of the one at s, at least
  K answered steps follow s, and the chain makes no exact return after s. The earliest such s is the fixed point.

Verdict order: the content-hash rules (declines, exact repeat) first, then the ε rule counted only from the last
exact return on, then exact cycles. An exact return read off content hashes outranks any distance: a run that
flips one principle of many between a statement and its negation (a distance well within ε) and comes back is a
``cycle``, never an ε fixed point.

Cycles: an *exact cycle* is a return to a node after visiting at least one other node (read off the chain of
content-addressed nodes, the same nodes the graph has). One revisit is a *return*; a revisit repeated (the run
came round the same loop again, ``returns`` >= 2, ``repeated``) is a cycle proper. With the iteration option
``cycle_returns`` = 1 (the default) a run stops at its first return, so only returns can be seen.
A *near cycle* is a return to within ε of an earlier constitution (not the same node) after first moving more
than ε away from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.alignment import change_counts
from stability.analysis.corpus import FAILED_DECISIONS, Corpus, RunChain
from stability.analysis.probes import ProbeSummary
from stability.bounds import CosineDistance, CosineSimilarity, HoldSteps

MAX_NEAR_CYCLES = 50
Verdict = Literal["fixed_point", "cycle", "unsettled", "no_verdict", "not_chain"]
VERDICTS = ("fixed_point", "cycle", "unsettled")  # the verdicts a chain run can have
FULL_MATRIX_LIMIT = 3000


class Params(BaseModel):
    """The thresholds every measure uses; reported with every result."""

    model_config = ConfigDict(extra="forbid")

    reworded_threshold: CosineSimilarity = 0.7
    epsilon: CosineDistance = 0.02
    k: HoldSteps | None = None  # steps a fixed point must hold; None: each run's own declines_to_stop
    cluster_threshold: CosineDistance = 0.1
    bootstrap: int = 2000
    permutations: int = 1000  # shuffles of runs between groups for the convergence ratio's null
    tau: float = 0.5  # a probed fixed point is confirmed when P(decline | node)'s Wilson lower bound is >= tau
    seed: int = 0


class StepMeasure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    node: str
    decision: str
    n_principles: int
    d_prev: float | None
    d_origin: float
    d_final: float
    changes: dict[str, int] | None = None  # alignment counts against the previous step's constitution


class FixedPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    node: str
    how: str  # declines | exact_repeat | epsilon
    held_steps: int  # answered steps after ``step`` (parse failures, truncations and errors do not count)


class Cycle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nodes: list[str]  # the nodes of one turn of the cycle, starting where it was first entered
    period: int
    from_step: int
    to_step: int
    returns: int  # how many times the run came back round
    repeated: bool = False  # returns >= 2: a cycle; a single return is only a *return* (see ``cycle_returns``)

    def text(self) -> str:
        return f"period {self.period} " + (f"×{self.returns}" if self.repeated else "(return)")


class NearCycle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_step: int
    to_step: int
    distance: float
    from_node: str
    to_node: str


class RunConvergence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    model: str
    stop_reason: str | None
    start: str
    final: str
    k: int
    protocol: str = ""
    verdict: Verdict = "unsettled"
    no_verdict: str | None = None  # why there is no verdict: parse_failure | truncated | error | unfinished
    steps: list[StepMeasure]
    fixed_point: FixedPoint | None
    cycles: list[Cycle]
    near_cycles: list[NearCycle]
    near_cycles_total: int
    references: dict[str, list[float]] = {}  # reference name -> distance to it at every step (``--reference``)
    probe: ProbeSummary | None = None  # from ``stability probe``: P(decline | final node), confirmed

    def verdict_text(self) -> str:
        """The verdict in words: the fixed point and how, a cycle, unsettled, no verdict (and why), not a chain."""
        if self.fixed_point is not None:
            return f"fixed point at step {self.fixed_point.step} ({self.fixed_point.how})"
        if self.verdict == "no_verdict":
            return f"no verdict ({self.no_verdict})"
        return {"cycle": "cycle", "unsettled": "unsettled", "not_chain": "not a chain (sibling trials)"}[self.verdict]


SMALL = 64  # up to this many rows a distance matrix is summed by einsum, not by the (threaded) BLAS


def _distances(vectors: np.ndarray) -> np.ndarray:
    """Cosine distances between unit rows. A run's few nodes go through ``einsum``: a threaded BLAS product of a
    few dozen rows costs ~100x more CPU on a loaded machine, and one analysis makes one per run."""
    product = np.einsum("ik,jk->ij", vectors, vectors) if len(vectors) <= SMALL else vectors @ vectors.T
    return np.clip(1.0 - product, 0.0, 2.0)


def fixed_point(chain: RunChain, nodes: list[str], steps: list[int], matrix: np.ndarray | None,
                epsilon: float, k: int) -> FixedPoint | None:
    """The fixed point of a chain's *answered* visits (``nodes``, ``steps``; ``matrix`` their distances)."""
    last = len(nodes) - 1
    start = last
    while start > 0 and nodes[start - 1] == nodes[last]:
        start -= 1
    held = last - start
    if held >= k:  # K governs both rules that count repeats: a run that stopped on fewer declines is not one
        how = "declines" if chain.stop_reason == "declined" else "exact_repeat"
        return FixedPoint(step=steps[start], node=nodes[start], how=how, held_steps=held)
    if matrix is None:
        return None
    latest_return = max(return_indices(nodes), default=-1)
    for s in range(max(0, latest_return), last + 1):  # an exact return inside the window outranks distances
        if last - s < k:
            break
        if float(matrix[s, s:].max()) <= epsilon:
            return FixedPoint(step=steps[s], node=nodes[s], how="epsilon", held_steps=last - s)
    return None


def return_indices(nodes: list[str]) -> list[int]:
    """Indices at which the chain came back to a node it had left (an exact return, read off content hashes)."""
    seen: dict[str, int] = {}
    out = []
    for t, node in enumerate(nodes):
        s = seen.get(node)
        if s is not None and t - s > 1:
            out.append(t)
        seen[node] = t
    return out


def exact_cycles(nodes: list[str], steps: list[int]) -> list[Cycle]:
    seen: dict[str, int] = {}
    found: dict[tuple[str, ...], Cycle] = {}
    for t, node in enumerate(nodes):
        s = seen.get(node)
        if s is not None and t - s > 1:  # s is the node's latest visit: every node between is another one
            turn: list[str] = []
            for n in nodes[s:t]:
                if not turn or turn[-1] != n:
                    turn.append(n)
            pivot = turn.index(min(turn))
            key = tuple(turn[pivot:] + turn[:pivot])
            if key in found:
                found[key].returns += 1
                found[key].repeated = True
            else:
                found[key] = Cycle(nodes=turn, period=len(turn), from_step=steps[s], to_step=steps[t], returns=1)
        seen[node] = t
    return list(found.values())


def near_cycles(nodes: list[str], steps: list[int], matrix: np.ndarray, epsilon: float,
                ids: np.ndarray | None = None) -> list[NearCycle]:
    """For every t, the latest s < t - 1 of another node within ε of t that the chain had first left (moved more
    than ε from s before t); ``ids``: a code per node (computed when not given)."""
    n = len(nodes)
    away = matrix > epsilon
    index = np.arange(n)
    # first_exit[s]: the first index after s that is more than epsilon from s (n if none)
    later = away & (index[:, None] < index[None, :])
    first_exit = np.where(later.any(axis=1), later.argmax(axis=1), n)
    if ids is None:
        codes = {node: i for i, node in enumerate(dict.fromkeys(nodes))}
        ids = np.array([codes[x] for x in nodes])
    ok = ((~away) & (first_exit[:, None] < index[None, :]) & (ids[:, None] != ids[None, :])
          & (index[:, None] < index[None, :] - 1))  # ok[s, t]
    out = []
    last = n - 1 - ok[::-1].argmax(axis=0)  # per t, the latest s where ok (when any)
    for t in np.flatnonzero(ok.any(axis=0)).tolist():
        s = int(last[t])
        out.append(NearCycle(from_step=steps[s], to_step=steps[t], distance=round(float(matrix[s, t]), 6),
                             from_node=nodes[s], to_node=nodes[t]))
    return out


def run_convergence(chain: RunChain, corpus: Corpus, node_vectors: Mapping[str, np.ndarray],
                    principle_vectors: Mapping[str, np.ndarray] | None, params: Params,
                    counts: dict[tuple[str, str], dict[str, int]] | None = None) -> RunConvergence:
    """``counts``: alignment counts by (node, next node), shared by the runs of one analysis (filled here), so a
    transition several runs make (returns, merges, shared starts) is aligned once."""
    counts = counts if counts is not None else {}
    visits = chain.usable
    nodes = [v.node for v in visits]
    steps = [v.step for v in visits]
    k = params.k if params.k is not None else chain.declines_to_stop
    codes = {node: i for i, node in enumerate(dict.fromkeys(nodes))}
    ids = np.fromiter((codes[n] for n in nodes), dtype=np.int64, count=len(nodes))
    matrix: np.ndarray | None = None
    if len(nodes) <= FULL_MATRIX_LIMIT:  # distances between the distinct nodes, spread over the visits
        distinct = _distances(np.array([node_vectors[n] for n in codes]))
        matrix = distinct[ids[:, None], ids[None, :]]
        d_origin, d_final = matrix[:, 0], matrix[:, -1]
        d_prev = matrix[np.arange(1, len(nodes)), np.arange(len(nodes) - 1)]
    else:
        vectors = np.stack([node_vectors[n] for n in nodes])
        d_origin = np.clip(1.0 - vectors @ vectors[0], 0.0, 2.0)
        d_final = np.clip(1.0 - vectors @ vectors[-1], 0.0, 2.0)
        d_prev = np.clip(1.0 - np.einsum("ij,ij->i", vectors[1:], vectors[:-1]), 0.0, 2.0)
    measures: list[dict[str, Any]] = []
    prev, origin, final = d_prev.tolist(), d_origin.tolist(), d_final.tolist()  # Python floats, the same values
    for i, visit in enumerate(visits):
        changes = None
        if i and principle_vectors is not None and nodes[i] != nodes[i - 1]:
            pair = (nodes[i - 1], nodes[i])
            if pair not in counts:
                counts[pair] = change_counts(corpus.principles[pair[0]], corpus.principles[pair[1]],
                                             principle_vectors, params.reworded_threshold)
            changes = dict(counts[pair])
        measures.append(dict(  # validated as StepMeasure with the run, in one call (not one per step)
            step=visit.step, node=visit.node, decision=visit.decision,
            n_principles=len(corpus.principles[visit.node]),
            d_prev=round(prev[i - 1], 6) if i else None, d_origin=round(origin[i], 6),
            d_final=round(final[i], 6), changes=changes))
    near = near_cycles(nodes, steps, matrix, params.epsilon, ids) if matrix is not None else []
    point: FixedPoint | None = None
    cycles: list[Cycle] = []
    verdict: Verdict
    if not chain.chain:
        verdict = "not_chain"
        near = []  # sibling trials do not return to anything: no near cycles either
    elif chain.no_verdict is not None:
        verdict = "no_verdict"
    else:
        answered = [i for i, v in enumerate(visits) if v.decision not in FAILED_DECISIONS]
        a_nodes, a_steps = [nodes[i] for i in answered], [steps[i] for i in answered]
        picked = np.array(answered, dtype=np.int64)
        a_matrix = matrix[picked[:, None], picked[None, :]] if matrix is not None else None
        point = fixed_point(chain, a_nodes, a_steps, a_matrix, params.epsilon, k)
        cycles = exact_cycles(a_nodes, a_steps)
        verdict = "fixed_point" if point is not None else "cycle" if cycles else "unsettled"
    return RunConvergence.model_validate(dict(
        run_id=chain.run_id, model=chain.model, stop_reason=chain.stop_reason, start=chain.start, final=chain.final,
        k=k, protocol=chain.protocol, verdict=verdict, no_verdict=chain.no_verdict if verdict == "no_verdict" else None,
        steps=measures, fixed_point=point, cycles=cycles, near_cycles=near[:MAX_NEAR_CYCLES],
        near_cycles_total=len(near), references={}))  # given: a default {} is deep-copied for every run
