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

The measures themselves are computed for all runs at once, by array operations: :mod:`stability.analysis.run_measures`
(``run_convergences``, and ``run_convergence`` for one run).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

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


SMALL = 64  # up to this many distinct nodes a run's distances are summed by einsum, not by the (threaded) BLAS


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
