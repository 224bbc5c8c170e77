"""What iteration protocols share: their common options, and the walk through constitution space.

Contract: an :class:`IterationProtocol` starts from the given constitution (or one the model authors from a blank
slate) and takes one :meth:`~IterationProtocol.step` at a time until a stop. A :class:`Walk` turns each answer
into the next node of the run's chain — changed, declined, parse failure, or a change that returns to an earlier
node (a cycle) — records it through the run, and says when the walk should stop.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, TypeVar

from pydantic import Field

from stability.answer import Reading
from stability.bounds import MAX_CELLS
from stability.constitution import Constitution
from stability.errors import StabilityError
from stability.protocols.authoring import BLANK_SLATE, author
from stability.protocols.base import AnswerOptions, ReflectionProtocol, Stop
from stability.records import CallRecord, Decision, ProbeRecord, RevisionRecord, now
from stability.vocabulary import CallFailed

if TYPE_CHECKING:
    from stability.engine.run import Run


class IterationOptions(AnswerOptions):

    max_steps: int = Field(20, ge=1, description="stop after this many steps")
    declines_to_stop: int = Field(2, ge=1, description="K: consecutive declines that make a fixed point")
    max_parse_failures: int = Field(3, ge=1, description="stop after this many consecutive unparseable answers")
    probe_samples: int = Field(0, ge=0, le=MAX_CELLS, description="when the run ends: ask about its final node this "
                               "many more times as fresh samples (as `stability probe` does)")
    cycle_returns: int = Field(1, ge=1, description="stop at this many returns to earlier nodes (1: the first); "
                               "with 2 or more a run goes on past a revisit, so a return is told from a cycle")
    from_blank: bool = Field(False, description="start from a constitution the model authors from nothing")
    blank_size: int | None = Field(None, ge=1, description="with from_blank: how many principles to ask for")
    blank_topic: str | None = Field(None, description="with from_blank: a topic hint")


PROBE_STEP = 1_000_000  # probes are asked as steps PROBE_STEP + i: seeds of their own, after any real step

IterationOptionsT = TypeVar("IterationOptionsT", bound=IterationOptions)

#: the ``stability iterate`` flags every iteration protocol takes
ITERATION_FLAGS = {"max_steps": "max_steps", "declines": "declines_to_stop", "max_parse_failures": "max_parse_failures",
                   "max_principles": "max_principles", "from_blank": "from_blank", "size": "blank_size",
                   "topic": "blank_topic"}


class Walk:
    """The state of one chain: current node, its revision, visited nodes, and the running counts."""

    def __init__(self, run: Run, options: IterationOptions, revision: RevisionRecord,
                 constitution: Constitution) -> None:
        self.run = run
        self.options = options
        self.parent = revision
        self.current = constitution
        self.visited = {revision.constitution_hash: revision.id}
        self.declines = 0
        self.failures = 0
        self.returns = 0  # changes that came back to an earlier node

    def failed(self, step: int, failed: CallFailed) -> Stop:
        self.run.record(step, self.current, "error", self.parent, [failed.call], detail=failed.call.error)
        return Stop(reason="error", status="failed", error=failed.call.error)

    def decline(self, step: int, calls: list[CallRecord], detail: str | None = None) -> Stop | None:
        """Every voice kept the constitution: record the decline; K in a row (``declines_to_stop``) end the walk."""
        self.failures = 0
        self.declines += 1
        self.parent = self.run.record(step, self.current, "declined", self.parent, calls, detail=detail)
        return Stop(reason="declined") if self.declines >= self.options.declines_to_stop else None

    def advance(self, step: int, reading: Reading, calls: list[CallRecord], detail: str | None = None) \
            -> Stop | None:
        """Record the node this reading of an answer leads to; return a Stop when the walk is over.

        A truncated answer is recorded as ``truncated`` and counts like a parse failure. ``detail`` (how the
        answer was chosen, e.g. a vote) is stored on the revision.
        """
        if reading.kind in ("parse_failure", "truncated"):
            self.failures += 1
            self.declines = 0
            problem = "; ".join(d for d in (reading.problem, detail) if d) or None
            self.parent = self.run.record(step, self.current, reading.kind, self.parent, calls, detail=problem)
            return Stop(reason="parse_failures") if self.failures >= self.options.max_parse_failures else None
        self.failures = 0
        revised = reading.constitution if reading.constitution is not None else self.current
        if revised.hash == self.current.hash:
            return self.decline(step, calls, detail)
        self.declines = 0
        returns_to = self.visited.get(revised.hash)
        self.parent = self.run.record(step, revised, "changed", self.parent, calls, cycle_to=returns_to,
                                      detail=detail)
        if returns_to is not None:
            self.returns += 1
            if self.returns >= self.options.cycle_returns:
                self.current = revised  # the run ends on the node it came back to
                return Stop(reason="cycle")
        else:
            self.visited[revised.hash] = self.parent.id
        self.current = revised
        return None


class IterationProtocol(ReflectionProtocol[IterationOptionsT]):
    """A protocol that walks: start (or author from a blank slate), then one :meth:`step` at a time until a stop.

    Subclasses implement :meth:`step`; a failed call ends the walk as an ``error`` node (resumable).
    """

    cli_flags = ITERATION_FLAGS

    def calls_per_step(self) -> int:
        """Calls one step makes at most (for ``--dry-run``)."""
        return 1

    def estimate_calls(self, start: Constitution) -> int:
        options = self.options
        return (options.max_steps * self.calls_per_step() + (options.max_parse_failures if options.from_blank else 0)
                + options.probe_samples)

    def step_bound(self) -> int:
        """``max_steps`` steps, after as many authoring attempts as a blank start may take."""
        options = self.options
        return options.max_steps + (options.max_parse_failures if options.from_blank else 0)

    def template_folders(self) -> list[str]:
        return [self.name, BLANK_SLATE] if self.options.from_blank else [self.name]

    def starts_blank(self) -> bool:
        return self.options.from_blank

    async def begin(self, run: Run, start: Constitution) -> tuple[RevisionRecord, Constitution, int] | Stop:
        """Record the starting node and return (revision, constitution, next step).

        With the ``from_blank`` option the model first authors its own constitution (the blank-slate protocol's
        prompts): step 0 is the empty constitution and step 1 what it wrote. A failed authoring ends the run.
        """
        options = self.options
        if not options.from_blank:
            return run.record(0, start, "origin", None, []), start, 1
        origin = run.record(0, Constitution(principles=()), "origin", None, [])
        authored = await author(self, run, step=1, parent=origin, size=options.blank_size, topic=options.blank_topic,
                                attempts=options.max_parse_failures)
        if isinstance(authored, Stop):
            return authored
        revision, constitution = authored
        return revision, constitution, revision.step + 1

    async def run(self, run: Run, start: Constitution) -> Stop:
        begun = await self.begin(run, start)
        if isinstance(begun, Stop):
            return begun
        walk = Walk(run, self.options, begun[0], begun[1])
        stop = await self._walk(run, walk, begun[2])
        if stop.status == "done" and self.options.probe_samples:
            await self.probe(run, walk.current, self.options.probe_samples)
        return stop

    async def _walk(self, run: Run, walk: Walk, first: int) -> Stop:
        for step in range(first, first + self.options.max_steps):
            try:
                stop = await self.step(run, walk, step)
            except CallFailed as failed:
                return walk.failed(step, failed)
            if stop is not None:
                return stop
        return Stop(reason="max_steps")

    async def probe(self, run: Run, constitution: Constitution, samples: int) -> None:
        """Ask this protocol's question (its ``user.md``) about ``constitution`` ``samples`` times as fresh samples
        (steps ``PROBE_STEP + i``, so each has its own seed); each answer is a stored call and a probe row."""
        if "user.md" not in run.templates().text:
            raise StabilityError(f"protocol {self.name} has no single question (user.md) to probe a node with")
        messages = self.conversation(run, "user.md", constitution)
        for sample in range(samples):
            proposed: Constitution | None = None
            decision: Decision
            try:
                call = await run.ask(messages, PROBE_STEP + sample, "probe", self.answer_config(run))
                reading = self.read(run, call)
                if reading.kind in ("parse_failure", "truncated"):
                    decision = reading.kind
                else:
                    proposed = reading.constitution if reading.constitution is not None else constitution
                    decision = "declined" if proposed.hash == constitution.hash else "changed"
            except CallFailed as failed:
                call, decision = failed.call, "error"
            run.record_probe(ProbeRecord(id=f"{run.run_id}:probe:{sample}", run_id=run.run_id, sample=sample,
                                         source_hash=constitution.hash,
                                         target_hash=proposed.hash if proposed is not None else None,
                                         decision=decision, call_id=call.id, created_at=now()), proposed)

    @abstractmethod
    async def step(self, run: Run, walk: Walk, step: int) -> Stop | None:
        """Ask, and advance the walk; return a Stop when the walk is over."""


