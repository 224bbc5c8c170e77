"""``in-context-iteration``: one growing conversation.

The model sees the constitution once, then after each answer is asked to reflect on the constitution as it now
stands and on its own change, and to change more if it wants. Unlike fresh-instance, the model remembers its
earlier edits. It stops on K consecutive declines, a revisit (cycle), the step cap, or when the conversation
passes a context-token budget (measured from the provider's reported usage).
"""

from __future__ import annotations

from pydantic import Field

from stability.models.base import Message
from stability.protocols.base import Stop, fill, register
from stability.protocols.walk import IterationOptions, IterationProtocol, Walk


class InContextOptions(IterationOptions):
    max_context_tokens: int = Field(6000, ge=100, description="stop once the conversation uses this many tokens")


@register
class InContextIteration(IterationProtocol):
    name = "in-context-iteration"
    summary = "one conversation: after each revision the model reflects on it and may change more"
    Options = InContextOptions
    messages: list[Message] | None = None  # the one conversation, grown after each answer

    async def step(self, walk: Walk, step: int) -> Stop | None:
        options = self.options
        assert isinstance(options, InContextOptions)
        if self.messages is None:
            self.messages = self.conversation("user.md", walk.current)
        call = await self.call(self.messages, step, "revise")
        stop = walk.advance(step, call.text or "", [call], call.finish_reason)
        if stop is not None:
            return stop
        if call.input_tokens + call.output_tokens >= options.max_context_tokens:
            return Stop(reason="context_budget")
        followup = fill(self.templates["followup.md"], constitution=walk.current.text.strip())
        self.messages = [*self.messages, Message(role="assistant", content=(call.text or "").strip()),
                         Message(role="user", content=followup)]
        return None
