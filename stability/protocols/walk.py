"""What iteration protocols share: their common options, and the walk through constitution space.

A :class:`Walk` turns each answer into the next node of the run's chain — changed, declined, parse failure, or a
change that returns to an earlier node (a cycle) — and says when the walk should stop.
"""

from __future__ import annotations

from abc import abstractmethod

from pydantic import BaseModel, Field

from stability.answer import read_answer
from stability.calls import CallFailed
from stability.constitution import Constitution
from stability.protocols.base import AnswerOptions, Protocol, Stop
from stability.store.records import CallRecord, RevisionRecord


class IterationOptions(AnswerOptions):

    max_steps: int = Field(20, ge=1, description="stop after this many steps")
    declines_to_stop: int = Field(2, ge=1, description="K: consecutive declines that make a fixed point")
    max_parse_failures: int = Field(3, ge=1, description="stop after this many consecutive unparseable answers")
    from_blank: bool = Field(False, description="start from a constitution the model authors from nothing")
    blank_size: int | None = Field(None, ge=1, description="with from_blank: how many principles to ask for")
    blank_topic: str | None = Field(None, description="with from_blank: a topic hint")


def iteration_calls(options: IterationOptions, per_step: int = 1) -> int:
    """Upper bound on calls for an iteration protocol: every step, plus blank-slate authoring attempts."""
    return options.max_steps * per_step + (options.max_parse_failures if options.from_blank else 0)


class Walk:
    """The state of one chain: current node, its revision, visited nodes, and the running counts."""

    def __init__(self, protocol: Protocol, options: IterationOptions, revision: RevisionRecord,
                 constitution: Constitution) -> None:
        self.protocol = protocol
        self.options = options
        self.parent = revision
        self.current = constitution
        self.visited = {revision.constitution_hash: revision.id}
        self.declines = 0
        self.failures = 0
        self.examples = protocol.shown_examples()

    def failed(self, step: int, failed: CallFailed) -> Stop:
        self.protocol.record(step, self.current, "error", self.parent, [failed.call], detail=failed.call.error)
        return Stop(reason="error", status="failed", error=failed.call.error)

    def advance(self, step: int, answer: str, calls: list[CallRecord],
                finish_reason: str | None = None) -> Stop | None:
        """Record the node this answer leads to; return a Stop when the walk is over.

        A truncated answer is recorded as ``truncated`` and counts like a parse failure.
        """
        parsed = read_answer(answer, finish_reason=finish_reason, max_principles=self.options.max_principles,
                             examples=self.examples)
        if parsed.kind in ("parse_failure", "truncated"):
            self.failures += 1
            self.declines = 0
            self.parent = self.protocol.record(step, self.current, parsed.kind, self.parent, calls,
                                               detail=parsed.problem)
            return Stop(reason="parse_failures") if self.failures >= self.options.max_parse_failures else None
        self.failures = 0
        revised = parsed.constitution if parsed.constitution is not None else self.current
        if revised.hash == self.current.hash:
            self.declines += 1
            self.parent = self.protocol.record(step, self.current, "declined", self.parent, calls)
            return Stop(reason="declined") if self.declines >= self.options.declines_to_stop else None
        self.declines = 0
        returns_to = self.visited.get(revised.hash)
        self.parent = self.protocol.record(step, revised, "changed", self.parent, calls, cycle_to=returns_to)
        if returns_to is not None:
            return Stop(reason="cycle")
        self.visited[revised.hash] = self.parent.id
        self.current = revised
        return None


class IterationProtocol(Protocol):
    """A protocol that walks: start (or author from a blank slate), then one :meth:`step` at a time until a stop.

    Subclasses implement :meth:`step`; a failed call ends the walk as an ``error`` node (resumable).
    """

    #: calls one step makes at most (for ``--dry-run``); override :meth:`calls_per_step` when options decide it
    @classmethod
    def calls_per_step(cls, options: BaseModel) -> int:
        return 1

    @classmethod
    def estimate_calls(cls, options: BaseModel) -> int:
        assert isinstance(options, IterationOptions)
        return iteration_calls(options, cls.calls_per_step(options))

    async def run(self, start: Constitution) -> Stop:
        options = self.options
        assert isinstance(options, IterationOptions)
        begun = await self.begin(start)
        if isinstance(begun, Stop):
            return begun
        walk = Walk(self, options, begun[0], begun[1])
        for step in range(begun[2], begun[2] + options.max_steps):
            try:
                stop = await self.step(walk, step)
            except CallFailed as failed:
                return walk.failed(step, failed)
            if stop is not None:
                return stop
        return Stop(reason="max_steps")

    @abstractmethod
    async def step(self, walk: Walk, step: int) -> Stop | None:
        """Ask, and advance the walk; return a Stop when the walk is over."""
