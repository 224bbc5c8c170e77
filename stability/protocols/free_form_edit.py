"""``free-form-edit``: one modification, with its rationale.

The model is asked for the single change (add, remove or reword one principle) that would most improve the
constitution, and why. The before/after pair is stored as one edge; the rationale is kept on the revision.
It answers "what does a model change first, when left free?".
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stability.constitution import Constitution
from stability.protocols.base import AnswerOptions, ReflectionProtocol, Stop, register
from stability.vocabulary import CallFailed

if TYPE_CHECKING:
    from stability.engine.run import Run

_RATIONALE = re.compile(r"rationale\s*:\s*(?P<text>.+?)(?:\n\s*\n|revised constitution|$)", re.IGNORECASE | re.DOTALL)


class FreeFormEditOptions(AnswerOptions):
    """Only the answer options: one edit, parsed like every answer."""


def rationale(answer: str) -> str | None:
    match = _RATIONALE.search(answer)
    return " ".join(match.group("text").split()) if match else None


@register
class FreeFormEdit(ReflectionProtocol[FreeFormEditOptions]):
    name = "free-form-edit"
    summary = "a single modification with its rationale, stored as one before/after edge"
    Options = FreeFormEditOptions
    chain = False
    cli_flags = {"max_principles": "max_principles"}

    async def run(self, run: Run, start: Constitution) -> Stop:
        origin = run.record(0, start, "origin", None, [])
        try:
            call = await run.ask(self.conversation(run, "user.md", start), 1, "edit", self.answer_config(run))
        except CallFailed as failed:
            run.record(1, start, "error", origin, [failed.call], detail=failed.call.error)
            return Stop(reason="error", status="failed", error=failed.call.error)
        reading = self.read(run, call)
        why = rationale(call.text or "")
        if reading.kind in ("parse_failure", "truncated"):
            run.record(1, start, reading.kind, origin, [call], detail=reading.problem)
            return Stop(reason="parse_failures")
        edited = reading.constitution or start
        if edited.hash == start.hash:
            run.record(1, start, "declined", origin, [call], detail=why)
            return Stop(reason="declined")
        run.record(1, edited, "changed", origin, [call], detail=why)
        return Stop(reason="edited")
