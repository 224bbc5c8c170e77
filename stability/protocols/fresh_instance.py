"""``fresh-instance``: a brand-new conversation at every step.

Each step shows the current constitution to a fresh instance and asks whether it would change anything. A
changed list becomes the next node; ``NO CHANGE`` (or the same list back) is a decline. It stops when K
consecutive fresh instances decline (a fixed point), when a change returns to an earlier node (a cycle), at
``max_steps``, or after too many consecutive parse failures.
"""

from __future__ import annotations

from pydantic import BaseModel

from stability.calls import CallFailed
from stability.constitution import Constitution
from stability.models.base import Message
from stability.protocols.base import Protocol, Stop, Templates, conversation, register
from stability.protocols.walk import IterationOptions, Walk, iteration_calls


class FreshInstanceOptions(IterationOptions):
    pass


def revision_messages(templates: Templates, constitution: Constitution, few_shot: bool) -> list[Message]:
    """The fresh-instance question about ``constitution`` (other protocols reuse it, e.g. fine-tune-reflect)."""
    return conversation(templates, "user.md", constitution, few_shot)


@register
class FreshInstance(Protocol):
    name = "fresh-instance"
    summary = "a new instance each step reviews the constitution, until K in a row decline to change it"
    Options = FreshInstanceOptions

    def messages(self, constitution: Constitution) -> list[Message]:
        return self.conversation("user.md", constitution)

    @classmethod
    def estimate_calls(cls, options: BaseModel) -> int:
        assert isinstance(options, IterationOptions)
        return iteration_calls(options)

    async def run(self, start: Constitution) -> Stop:
        options = self.options
        assert isinstance(options, FreshInstanceOptions)
        begun = await self.begin(start)
        if isinstance(begun, Stop):
            return begun
        walk = Walk(self, options, begun[0], begun[1])
        for step in range(begun[2], begun[2] + options.max_steps):
            try:
                call = await self.call(self.messages(walk.current), step, "revise")
            except CallFailed as failed:
                return walk.failed(step, failed)
            stop = walk.advance(step, call.text or "", [call])
            if stop is not None:
                return stop
        return Stop(reason="max_steps")
