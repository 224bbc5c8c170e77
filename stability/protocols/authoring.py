"""Authoring from a blank slate: the model writes a constitution from nothing.

Contract: :func:`author` asks with the ``blank-slate`` templates whatever protocol is running (so ``from_blank``
runs of every iteration protocol ask the same question), records the authored node (an ``author`` edge) or each
failure, and returns the authored constitution or how the run ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stability.constitution import Constitution
from stability.protocols.base import ReflectionProtocol, Stop
from stability.records import Decision, RevisionRecord
from stability.vocabulary import CallFailed

if TYPE_CHECKING:
    from stability.engine.run import Run

BLANK_SLATE = "blank-slate"


def hint(size: int | None, topic: str | None) -> str:
    parts = []
    if size:
        parts.append(f"Write about {size} principles.")
    if topic:
        parts.append(f"It should suit this setting: {topic}.")
    return " ".join(parts)


async def author(protocol: ReflectionProtocol[Any], run: Run, step: int, parent: RevisionRecord, size: int | None,
                 topic: str | None, attempts: int) -> tuple[RevisionRecord, Constitution] | Stop:
    """Ask for a constitution written from nothing; record it (or each failure) at ``step`` onwards."""
    for attempt in range(attempts):
        messages = protocol.conversation(run, "user.md", Constitution(principles=()), folder=BLANK_SLATE,
                                         hint=hint(size, topic))
        try:
            call = await run.ask(messages, step, f"author:{attempt}", protocol.answer_config(run))
        except CallFailed as failed:
            run.record(step, Constitution(principles=()), "error", parent, [failed.call], detail=failed.call.error)
            return Stop(reason="error", status="failed", error=failed.call.error)
        reading = protocol.read(run, call, folder=BLANK_SLATE)
        if reading.kind == "revised" and reading.constitution is not None:
            return run.record(step, reading.constitution, "authored", parent, [call]), reading.constitution
        decision: Decision = "truncated" if reading.kind == "truncated" else "parse_failure"
        parent = run.record(step, Constitution(principles=()), decision, parent, [call],
                            detail=reading.problem or "declined to write a constitution")
        step += 1
    return Stop(reason="parse_failures")
