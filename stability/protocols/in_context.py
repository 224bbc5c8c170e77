"""``in-context-iteration``: one growing conversation.

The model sees the constitution once, then after each answer is asked to reflect on the constitution as it now
stands and on its own change, and to change more if it wants. Unlike fresh-instance, the model remembers its
earlier edits. It stops on K consecutive declines, a revisit (cycle), the step cap, or when the conversation
passes a context-token budget (measured from the provider's reported usage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from stability.protocols.base import Stop, fill, register
from stability.protocols.walk import ITERATION_FLAGS, IterationOptions, IterationProtocol, Walk
from stability.vocabulary import Message

if TYPE_CHECKING:
    from stability.engine.run import Run


class InContextOptions(IterationOptions):
    max_context_tokens: int = Field(6000, ge=100, description="stop once the conversation uses this many tokens")


@register
class InContextIteration(IterationProtocol[InContextOptions]):
    name = "in-context-iteration"
    summary = "one conversation: after each revision the model reflects on it and may change more"
    Options = InContextOptions
    route = "in-context"
    cli_flags = {**ITERATION_FLAGS, "max_context_tokens": "max_context_tokens"}
    messages: list[Message] | None = None  # the one conversation, grown after each answer

    def estimate_input_tokens(self, calls: int, prompt: int, answer: int, constitution: int) -> int:
        """The conversation grows by an answer and a follow-up (about a constitution's size) each step."""
        return sum(prompt + step * (answer + constitution) for step in range(calls))

    async def step(self, run: Run, walk: Walk, step: int) -> Stop | None:
        if self.messages is None:
            self.messages = self.conversation(run, "user.md", walk.current)
        call = await run.ask(self.messages, step, "revise", self.answer_config(run))
        stop = walk.advance(step, self.read(run, call), [call])
        if stop is not None:
            return stop
        if call.input_tokens + call.output_tokens >= self.options.max_context_tokens:
            return Stop(reason="context_budget")
        followup = fill(run.templates()["followup.md"], constitution=walk.current.text.strip())
        self.messages = [*self.messages, Message(role="assistant", content=(call.text or "").strip()),
                         Message(role="user", content=followup)]
        return None
