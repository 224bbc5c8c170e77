"""``in-context-iteration``: one growing conversation.

The model sees the constitution once, then after each answer is asked to reflect on the constitution as it now
stands and on its own change, and to change more if it wants. Unlike fresh-instance, the model remembers its
earlier edits. It stops on K consecutive declines, a revisit (cycle), the step cap, or when the conversation
passes a context-token budget (measured from the provider's reported usage).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from stability.calls import CallFailed
from stability.constitution import Constitution
from stability.models.base import Message
from stability.protocols.base import Protocol, Stop, fill, register
from stability.protocols.walk import IterationOptions, Walk, iteration_calls


class InContextOptions(IterationOptions):
    max_context_tokens: int = Field(6000, ge=100, description="stop once the conversation uses this many tokens")


@register
class InContextIteration(Protocol):
    name = "in-context-iteration"
    summary = "one conversation: after each revision the model reflects on it and may change more"
    Options = InContextOptions

    @classmethod
    def estimate_calls(cls, options: BaseModel) -> int:
        assert isinstance(options, IterationOptions)
        return iteration_calls(options)

    async def run(self, start: Constitution) -> Stop:
        options = self.options
        assert isinstance(options, InContextOptions)
        begun = await self.begin(start)
        if isinstance(begun, Stop):
            return begun
        walk = Walk(self, options, begun[0], begun[1])
        messages = self.conversation("user.md", walk.current)
        for step in range(begun[2], begun[2] + options.max_steps):
            try:
                call = await self.call(messages, step, "revise")
            except CallFailed as failed:
                return walk.failed(step, failed)
            stop = walk.advance(step, call.text or "", [call])
            if stop is not None:
                return stop
            if call.input_tokens + call.output_tokens >= options.max_context_tokens:
                return Stop(reason="context_budget")
            followup = fill(self.templates["followup.md"], constitution=walk.current.text.strip())
            messages = [*messages, Message(role="assistant", content=(call.text or "").strip()),
                        Message(role="user", content=followup)]
        return Stop(reason="max_steps")
