"""``free-form-edit``: one modification, with its rationale.

The model is asked for the single change (add, remove or reword one principle) that would most improve the
constitution, and why. The before/after pair is stored as one edge; the rationale is kept on the revision.
It answers "what does a model change first, when left free?".
"""

from __future__ import annotations

import re

from stability.answer import read_call
from stability.calls import CallFailed
from stability.constitution import Constitution
from stability.protocols.base import AnswerOptions, Protocol, Stop, register

_RATIONALE = re.compile(r"rationale\s*:\s*(?P<text>.+?)(?:\n\s*\n|revised constitution|$)", re.IGNORECASE | re.DOTALL)


class FreeFormEditOptions(AnswerOptions):
    """Only the answer options: one edit, parsed like every answer."""


def rationale(answer: str) -> str | None:
    match = _RATIONALE.search(answer)
    return " ".join(match.group("text").split()) if match else None


@register
class FreeFormEdit(Protocol):
    name = "free-form-edit"
    summary = "a single modification with its rationale, stored as one before/after edge"
    Options = FreeFormEditOptions

    async def run(self, start: Constitution) -> Stop:
        options = self.options
        assert isinstance(options, FreeFormEditOptions)
        origin = self.record(0, start, "origin", None, [])
        try:
            call = await self.call(self.conversation("user.md", start), 1, "edit")
        except CallFailed as failed:
            self.record(1, start, "error", origin, [failed.call], detail=failed.call.error)
            return Stop(reason="error", status="failed", error=failed.call.error)
        answer = call.text or ""
        parsed = read_call(call, max_principles=options.max_principles, examples=self.shown_examples())
        why = rationale(answer)
        if parsed.kind in ("parse_failure", "truncated"):
            self.record(1, start, parsed.kind, origin, [call], detail=parsed.problem)
            return Stop(reason="parse_failures")
        edited = parsed.constitution or start
        if edited.hash == start.hash:
            self.record(1, start, "declined", origin, [call], detail=why)
            return Stop(reason="declined")
        self.record(1, edited, "changed", origin, [call], detail=why)
        return Stop(reason="edited")
