"""Authoring from a blank slate: the model writes a constitution from nothing.

Contract: :func:`author` asks with the ``blank-slate`` templates whatever protocol is running (so ``from_blank``
runs of every iteration protocol ask the same question), records the authored node (an ``author`` edge) or each
failure, and returns the authored constitution or how the run ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stability.calls import CallFailed
from stability.constitution import Constitution, parse_answer
from stability.protocols.base import ReflectionProtocol, Stop
from stability.records import RevisionRecord

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
                 topic: str | None, attempts: int, max_principles: int
                 ) -> tuple[RevisionRecord, Constitution] | Stop:
    """Ask for a constitution written from nothing; record it (or each failure) at ``step`` onwards."""
    for attempt in range(attempts):
        messages = protocol.conversation(run, "user.md", Constitution(principles=()), folder=BLANK_SLATE,
                                         hint=hint(size, topic))
        try:
            call = await run.ask(messages, step, f"author:{attempt}")
        except CallFailed as failed:
            run.record(step, Constitution(principles=()), "error", parent, [failed.call], detail=failed.call.error)
            return Stop(reason="error", status="failed", error=failed.call.error)
        parsed = parse_answer(call.text or "", max_principles)
        if parsed.kind == "list" and parsed.constitution is not None:
            return run.record(step, parsed.constitution, "authored", parent, [call]), parsed.constitution
        parent = run.record(step, Constitution(principles=()), "parse_failure", parent, [call],
                            detail=parsed.problem or "declined to write a constitution")
        step += 1
    return Stop(reason="parse_failures")
