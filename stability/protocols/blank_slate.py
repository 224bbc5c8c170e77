"""``blank-slate``: the model authors its own constitution from nothing.

Step 0 is the empty constitution; step 1 is what the model wrote (an ``author`` edge), optionally guided by a
size or topic hint. Every iteration protocol can start from such a constitution with ``from_blank``, so "does it
then keep what it wrote?" is one command: ``stability iterate --from-blank --protocol fresh-instance ...``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from stability.constitution import Constitution
from stability.protocols.authoring import BLANK_SLATE, author
from stability.protocols.base import AnswerOptions, ReflectionProtocol, Stop, register

if TYPE_CHECKING:
    from stability.engine.run import Run


class BlankSlateOptions(AnswerOptions):
    size: int | None = Field(None, ge=1, description="how many principles to ask for")
    topic: str | None = Field(None, description="a topic hint, e.g. 'tutoring children'")
    max_parse_failures: int = Field(3, ge=1, description="tries before giving up on an unparseable answer")


@register
class BlankSlate(ReflectionProtocol[BlankSlateOptions]):
    name = BLANK_SLATE
    summary = "the model writes its own constitution from nothing (optionally with a size or topic hint)"
    Options = BlankSlateOptions
    chain = False
    cli_flags = {"size": "size", "topic": "topic", "max_parse_failures": "max_parse_failures",
                 "max_principles": "max_principles"}

    def estimate_calls(self, start: Constitution) -> int:
        return self.options.max_parse_failures

    def step_bound(self) -> int:
        return self.options.max_parse_failures  # one step per authoring attempt

    def starts_blank(self) -> bool:
        return True

    async def run(self, run: Run, start: Constitution) -> Stop:
        options = self.options
        origin = run.record(0, Constitution(principles=()), "origin", None, [])
        authored = await author(self, run, step=1, parent=origin, size=options.size, topic=options.topic,
                                attempts=options.max_parse_failures)
        return authored if isinstance(authored, Stop) else Stop(reason="authored")
