"""``fresh-instance``: a brand-new conversation at every step.

Each step shows the current constitution to a fresh instance and asks whether it would change anything. A
changed list becomes the next node; ``NO CHANGE`` (or the same list back) is a decline. It stops when K
consecutive fresh instances decline (a fixed point), when a change returns to an earlier node (a cycle), at
``max_steps``, or after too many consecutive parse failures.
"""

from __future__ import annotations

import yaml
from pydantic import BaseModel, ConfigDict, Field

from stability.calls import CallFailed
from stability.constitution import Constitution, parse_answer
from stability.models.base import Message
from stability.protocols.base import Protocol, Stop, Templates, register


class FreshInstanceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(20, ge=1, description="stop after this many steps")
    declines_to_stop: int = Field(2, ge=1, description="K: consecutive fresh declines that make a fixed point")
    max_parse_failures: int = Field(3, ge=1, description="stop after this many consecutive unparseable answers")
    max_principles: int = Field(100, ge=1, description="an answer with more principles is a parse failure")
    few_shot: bool | None = Field(None, description="add worked examples; default: only for base models")


def revision_messages(templates: Templates, constitution: Constitution, few_shot: bool) -> list[Message]:
    """The fresh-instance question about ``constitution`` (other protocols reuse it, e.g. fine-tune-reflect)."""
    user = templates["user.md"]
    messages = [Message(role="system", content=templates["system.md"].strip())]
    if few_shot:
        for example in yaml.safe_load(templates["examples.yaml"]):
            messages.append(Message(role="user", content=user.replace("{constitution}",
                                                                      example["constitution"].strip())))
            messages.append(Message(role="assistant", content=example["answer"].strip()))
    messages.append(Message(role="user", content=user.replace("{constitution}", constitution.text.strip())))
    return messages


@register
class FreshInstance(Protocol):
    name = "fresh-instance"
    summary = "a new instance each step reviews the constitution, until K in a row decline to change it"
    Options = FreshInstanceOptions

    def messages(self, constitution: Constitution) -> list[Message]:
        options = self.options
        assert isinstance(options, FreshInstanceOptions)
        few_shot = options.few_shot if options.few_shot is not None else self.model.base_model
        return revision_messages(self.templates, constitution, few_shot)

    async def run(self, start: Constitution) -> Stop:
        options = self.options
        assert isinstance(options, FreshInstanceOptions)
        current = start
        parent = self.record(0, start, "origin", None, [])
        visited = {parent.constitution_hash: parent.id}
        declines = failures = 0
        for step in range(1, options.max_steps + 1):
            try:
                call = await self.call(self.messages(current), step, "revise")
            except CallFailed as failed:
                self.record(step, current, "error", parent, [failed.call], detail=failed.call.error)
                return Stop(reason="error", status="failed", error=failed.call.error)
            answer = parse_answer(call.text or "", options.max_principles)
            if answer.kind == "failure":
                failures += 1
                declines = 0
                parent = self.record(step, current, "parse_failure", parent, [call], detail=answer.problem)
                if failures >= options.max_parse_failures:
                    return Stop(reason="parse_failures")
                continue
            failures = 0
            revised = answer.constitution if answer.kind == "list" else current
            assert revised is not None
            if revised.hash == current.hash:
                declines += 1
                parent = self.record(step, current, "declined", parent, [call])
                if declines >= options.declines_to_stop:
                    return Stop(reason="declined")
                continue
            declines = 0
            returns_to = visited.get(revised.hash)
            parent = self.record(step, revised, "changed", parent, [call], cycle_to=returns_to)
            if returns_to is not None:
                return Stop(reason="cycle")
            visited[revised.hash] = parent.id
            current = revised
        return Stop(reason="max_steps")
