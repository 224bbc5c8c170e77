"""``blank-slate``: the model authors its own constitution from nothing.

Step 0 is the empty constitution; step 1 is what the model wrote (an ``author`` edge), optionally guided by a
size or topic hint. Every iteration protocol can start from such a constitution with ``from_blank``, so "does it
then keep what it wrote?" is one command: ``stability iterate --from-blank --protocol fresh-instance ...``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from stability.answer import read_call
from stability.calls import CallFailed
from stability.constitution import Constitution
from stability.protocols.base import AnswerOptions, Protocol, Stop, register
from stability.store.records import Decision, RevisionRecord


class BlankSlateOptions(AnswerOptions):
    size: int | None = Field(None, ge=1, description="how many principles to ask for")
    topic: str | None = Field(None, description="a topic hint, e.g. 'tutoring children'")
    max_parse_failures: int = Field(3, ge=1, description="tries before giving up on an unparseable answer")


def hint(size: int | None, topic: str | None) -> str:
    parts = []
    if size:
        parts.append(f"Write about {size} principles.")
    if topic:
        parts.append(f"It should suit this setting: {topic}.")
    return " ".join(parts)


async def author(protocol: Protocol, step: int, parent: RevisionRecord, size: int | None,
                 topic: str | None) -> tuple[RevisionRecord, Constitution] | Stop:
    """Ask for a constitution written from nothing; record it (or each failure) at ``step`` onwards.

    Uses the blank-slate templates whatever protocol is running, so ``from_blank`` runs ask the same question.
    """
    from stability.protocols.base import Templates

    original = protocol.templates
    protocol.templates = Templates("blank-slate")
    try:
        limit = getattr(protocol.options, "max_parse_failures", 3)
        max_principles = getattr(protocol.options, "max_principles", 100)
        for attempt in range(limit):
            messages = protocol.conversation("user.md", Constitution(principles=()), hint=hint(size, topic))
            try:
                call = await protocol.call(messages, step, f"author:{attempt}")
            except CallFailed as failed:
                protocol.record(step, Constitution(principles=()), "error", parent, [failed.call],
                                detail=failed.call.error)
                return Stop(reason="error", status="failed", error=failed.call.error)
            parsed = read_call(call, max_principles=max_principles, examples=protocol.shown_examples())
            if parsed.kind == "revised" and parsed.constitution is not None:
                return protocol.record(step, parsed.constitution, "authored", parent, [call]), parsed.constitution
            decision: Decision = "truncated" if parsed.kind == "truncated" else "parse_failure"
            parent = protocol.record(step, Constitution(principles=()), decision, parent, [call],
                                     detail=parsed.problem or "declined to write a constitution")
            step += 1
        return Stop(reason="parse_failures")
    finally:
        protocol.templates = original


@register
class BlankSlate(Protocol):
    name = "blank-slate"
    summary = "the model writes its own constitution from nothing (optionally with a size or topic hint)"
    Options = BlankSlateOptions

    @classmethod
    def estimate_calls(cls, options: BaseModel) -> int:
        assert isinstance(options, BlankSlateOptions)
        return options.max_parse_failures

    async def run(self, start: Constitution) -> Stop:
        options = self.options
        assert isinstance(options, BlankSlateOptions)
        origin = self.record(0, Constitution(principles=()), "origin", None, [])
        authored = await author(self, step=1, parent=origin, size=options.size, topic=options.topic)
        return authored if isinstance(authored, Stop) else Stop(reason="authored")
