"""``multi-agent-discussion``: several instances, each with a role name, discuss the constitution.

Each cycle has R rounds; in each round every agent, in turn, sees the constitution and the transcript so far and
adds a turn ending in its proposal (``NO CHANGE`` or a full revised list). Every turn is its own stored call
(purpose ``discuss:AGENT:rROUND``), so the transcript is reconstructable from the calls. If every agent's final
proposal is to keep the constitution, the protocol stops. Otherwise an editor writes the revision: a designated
agent (``editor: NAME``), or a vote in which each agent picks one of the final proposals (plurality; ties go to
the earliest proposal). Agents may be different models (``agents: [{name: alice, model: openai/gpt-4o}, ...]``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stability.models.base import Message
from stability.protocols.base import Stop, fill, register
from stability.protocols.walk import ITERATION_FLAGS, IterationOptions, IterationProtocol, Walk
from stability.records import CallRecord

if TYPE_CHECKING:
    from stability.engine.run import Run


class Agent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    model: str | None = Field(default=None, description="model id; default: the run's model")


class MultiAgentOptions(IterationOptions):
    agents: list[Agent] = Field(default_factory=lambda: [Agent(name="alice"), Agent(name="bob"),
                                                         Agent(name="carol")], min_length=2)
    rounds: int = Field(2, ge=1, description="discussion rounds before each edit")
    editor: str = Field("vote", description="'vote', or the name of the agent who writes the revision")

    @model_validator(mode="after")
    def _editor_is_an_agent(self) -> MultiAgentOptions:
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names must be unique: {names}")
        if self.editor != "vote" and self.editor not in names:
            raise ValueError(f"editor {self.editor!r} is not one of the agents {names}")
        return self


@register
class MultiAgentDiscussion(IterationProtocol[MultiAgentOptions]):
    name = "multi-agent-discussion"
    summary = "N named instances discuss for R rounds; an editor or a vote writes each revision"
    Options = MultiAgentOptions
    cli_flags = {**ITERATION_FLAGS, "agents": "agents", "rounds": "rounds", "editor": "editor"}

    def role_models(self) -> dict[str, str]:
        return {agent.name: agent.model for agent in self.options.agents if agent.model}

    def calls_per_step(self) -> int:
        options = self.options
        n = len(options.agents)
        return n * options.rounds + (n if options.editor == "vote" else 1)

    async def step(self, run: Run, walk: Walk, step: int) -> Stop | None:
        options = self.options
        templates = run.templates()
        constitution = walk.current.text.strip()
        participants = ", ".join(a.name for a in options.agents)
        transcript: list[str] = []
        calls: list[CallRecord] = []
        finals: dict[str, CallRecord] = {}  # each agent's last turn: its proposal
        for round_ in range(1, options.rounds + 1):
            for agent in options.agents:
                system = fill(templates["system.md"], agent=agent.name, participants=participants)
                user = fill(templates["discussion.md"], constitution=constitution, round=str(round_),
                            rounds=str(options.rounds), transcript="\n\n".join(transcript) or "(nobody has spoken yet)")
                call = await run.ask([Message(role="system", content=system), Message(role="user", content=user)],
                                       step, f"discuss:{agent.name}:r{round_}", role=agent.name)
                calls.append(call)
                transcript.append(f"{agent.name}: {(call.text or '').strip()}")
                finals[agent.name] = call
        if all(self._keeps(run, final, walk) for final in finals.values()):
            return walk.decline(step, calls)
        if options.editor != "vote":
            user = fill(templates["editor.md"], constitution=constitution, transcript="\n\n".join(transcript))
            call = await run.ask([Message(role="system", content=fill(templates["system.md"],
                                    agent=options.editor, participants=participants)),
                                    Message(role="user", content=user)], step, "edit", role=options.editor)
            calls.append(call)
            return walk.advance(step, self.read(run, call), calls)
        by_text = {final.text or "": final for final in finals.values()}  # identical proposals are one
        proposals = list(by_text)
        votes = [0] * len(proposals)
        listing = "\n\n".join(f"PROPOSAL {i + 1}:\n{p.strip()}" for i, p in enumerate(proposals))
        for agent in options.agents:
            user = fill(templates["vote.md"], constitution=constitution, proposals=listing)
            call = await run.ask([Message(role="system", content=fill(templates["system.md"],
                                    agent=agent.name, participants=participants)),
                                    Message(role="user", content=user)], step, f"vote:{agent.name}", role=agent.name)
            calls.append(call)
            choice = vote(call.text or "", len(proposals))
            if choice is not None:
                votes[choice] += 1
        winner = max(range(len(proposals)), key=lambda i: (votes[i], -i))
        return walk.advance(step, self.read(run, by_text[proposals[winner]]), calls)

    def _keeps(self, run: Run, proposal: CallRecord, walk: Walk) -> bool:
        reading = self.read(run, proposal)
        if reading.kind == "declined":
            return True
        return reading.constitution is not None and reading.constitution.hash == walk.current.hash


def vote(answer: str, n: int) -> int | None:
    """The 0-based proposal an answer votes for: the first number from 1 to n in it."""
    for match in re.finditer(r"\d+", answer):
        number = int(match.group())
        if 1 <= number <= n:
            return number - 1
    return None
