"""``fresh-instance``: a brand-new conversation at every step.

Each step shows the current constitution to a fresh instance and asks whether it would change anything. A
changed list becomes the next node; ``NO CHANGE`` (or the same list back) is a decline. It stops when K
consecutive fresh instances decline (a fixed point), when a change returns to an earlier node (a cycle), at
``max_steps``, or after too many consecutive parse failures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stability.constitution import Constitution
from stability.protocols.base import Stop, conversation, register
from stability.protocols.walk import IterationOptions, IterationProtocol, Walk
from stability.vocabulary import Message

if TYPE_CHECKING:
    from stability.engine.run import Run
    from stability.engine.templates import Templates

FRESH_INSTANCE = "fresh-instance"


class FreshInstanceOptions(IterationOptions):
    pass


def revision_messages(templates: Templates, constitution: Constitution, few_shot: bool) -> list[Message]:
    """The fresh-instance question about ``constitution`` (other protocols reuse it, e.g. fine-tune-reflect)."""
    return conversation(templates, "user.md", constitution, few_shot)


@register
class FreshInstance(IterationProtocol[FreshInstanceOptions]):
    name = FRESH_INSTANCE
    summary = "a new instance each step reviews the constitution, until K in a row decline to change it"
    Options = FreshInstanceOptions
    route = "fresh-instances"

    async def step(self, run: Run, walk: Walk, step: int) -> Stop | None:
        call = await run.ask(self.conversation(run, "user.md", walk.current), step, "revise", self.answer_config(run))
        return walk.advance(step, self.read(run, call), [call])
