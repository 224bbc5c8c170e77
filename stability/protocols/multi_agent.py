"""``multi-agent-discussion``: several instances, each with a role name, discuss the constitution.

Each cycle has R rounds; in each round every agent, in turn, sees the constitution and the transcript so far and
adds a turn ending in its proposal (``NO CHANGE`` or a full revised list). The speaking order is shuffled for
every round, reproducibly from the run seed, the step and the round, so no agent always speaks first or last; the
orders are stored in the step's revision detail (``order r1=bob,alice,carol; ...``). Every turn is its own stored
call (purpose ``discuss:AGENT:rROUND``), so the transcript is reconstructable from the calls. If every agent's
final proposal is to keep the constitution, the step is a decline, and ``declines_to_stop`` (K) such unanimous
steps in a row stop the run, as in the other iteration protocols. Otherwise an editor writes the revision: a
designated agent (``editor: NAME``), or a vote in which each agent picks one of the final proposals (plurality;
a vote is a structured answer ``{reasoning, vote}`` from models that enforce structured output, else read from
the last choice the answer states; a tie is broken by a random draw from the seed, stored
in the detail). Agents may be different models (``agents: [{name: alice, model: openai/gpt-4o}, ...]``).
"""

from __future__ import annotations

import json
import random
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stability.engine.run import derive_seed
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


MAX_AGENTS = 32  # each round asks every agent: more would be a typo, not a discussion
MAX_ROUNDS = 100


class MultiAgentOptions(IterationOptions):
    agents: list[Agent] = Field(default_factory=lambda: [Agent(name="alice"), Agent(name="bob"),
                                                         Agent(name="carol")], min_length=2, max_length=MAX_AGENTS)
    rounds: int = Field(2, ge=1, le=MAX_ROUNDS, description="discussion rounds before each edit")
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
        orders: list[str] = []
        for round_ in range(1, options.rounds + 1):
            speakers = list(options.agents)
            random.Random(derive_seed(run.seed, step, f"order:r{round_}")).shuffle(speakers)
            orders.append(f"r{round_}=" + ",".join(a.name for a in speakers))
            for agent in speakers:
                system = fill(templates["system.md"], agent=agent.name, participants=participants)
                user = fill(templates["discussion.md"], constitution=constitution, round=str(round_),
                            rounds=str(options.rounds), transcript="\n\n".join(transcript) or "(nobody has spoken yet)")
                call = await run.ask([Message(role="system", content=system), Message(role="user", content=user)],
                                       step, f"discuss:{agent.name}:r{round_}", role=agent.name)
                calls.append(call)
                transcript.append(f"{agent.name}: {(call.text or '').strip()}")
                finals[agent.name] = call
        detail = "order " + "; ".join(orders)
        if all(self._keeps(run, final, walk) for final in finals.values()):
            return walk.decline(step, calls, detail)
        if options.editor != "vote":
            user = fill(templates["editor.md"], constitution=constitution, transcript="\n\n".join(transcript))
            call = await run.ask([Message(role="system", content=fill(templates["system.md"],
                                    agent=options.editor, participants=participants)),
                                    Message(role="user", content=user)], step, "edit", role=options.editor)
            calls.append(call)
            return walk.advance(step, self.read(run, call), calls, detail)
        by_text = {finals[a.name].text or "": finals[a.name] for a in options.agents}  # identical proposals are one
        proposals = list(by_text)
        votes = [0] * len(proposals)
        listing = "\n\n".join(f"PROPOSAL {i + 1}:\n{p.strip()}" for i, p in enumerate(proposals))
        for agent in options.agents:
            user = fill(templates["vote.md"], constitution=constitution, proposals=listing)
            structured = run.generate.model_copy(update={"json_schema": vote_schema(len(proposals))}) \
                if run.traits(agent.name).structured_output else None
            call = await run.ask([Message(role="system", content=fill(templates["system.md"],
                                    agent=agent.name, participants=participants)),
                                    Message(role="user", content=user)], step, f"vote:{agent.name}", structured,
                                 role=agent.name)
            calls.append(call)
            choice = vote(call.text or "", len(proposals))
            if choice is not None:
                votes[choice] += 1
        winner, tie = plurality(votes, derive_seed(run.seed, step, "tie"))
        detail += f"; votes {','.join(map(str, votes))}; proposal {winner + 1}"
        if tie:
            detail += f" drawn from the tie {','.join(str(i + 1) for i in tie)}"
        return walk.advance(step, self.read(run, by_text[proposals[winner]]), calls, detail)

    def _keeps(self, run: Run, proposal: CallRecord, walk: Walk) -> bool:
        reading = self.read(run, proposal)
        if reading.kind == "declined":
            return True
        return reading.constitution is not None and reading.constitution.hash == walk.current.hash


#: an explicit statement of a choice: "VOTE: 2", "proposal 2", "I choose 2"
_STATED = re.compile(r"(?:vote|proposal|choice|choose|prefer|pick)\W{0,5}(?:for\W{1,3})?(?:proposal\W{1,3})?#?(\d+)",
                     re.IGNORECASE)


def vote_schema(n: int) -> dict[str, Any]:
    """The structured vote: reasoning first, then the number of the chosen proposal."""
    return {"type": "object", "additionalProperties": False, "required": ["reasoning", "vote"],
            "properties": {"reasoning": {"type": "string"}, "vote": {"type": "integer", "minimum": 1, "maximum": n}}}


def vote(answer: str, n: int) -> int | None:
    """The 0-based proposal an answer votes for: a structured answer's ``vote``; else the last choice the text
    states ("VOTE: 2", "proposal 2"), else the last number from 1 to n in it (a model reasons first and concludes
    last)."""
    try:
        data = json.loads(answer)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and "vote" in data:
        chosen = data["vote"]
        return chosen - 1 if isinstance(chosen, int) and 1 <= chosen <= n else None
    for pattern in (_STATED, re.compile(r"(?<![\d.])(\d+)(?![\d.]\d)")):
        numbers = [int(m.group(1)) for m in pattern.finditer(answer)]
        chosen = [k for k in numbers if 1 <= k <= n]
        if chosen:
            return chosen[-1] - 1
    return None


def plurality(votes: list[int], seed: int) -> tuple[int, list[int]]:
    """The proposal with the most votes, and the tied proposals (empty without a tie) a draw from ``seed`` chose
    among."""
    best = max(votes)
    tied = [i for i, v in enumerate(votes) if v == best]
    if len(tied) == 1:
        return tied[0], []
    return random.Random(seed).choice(tied), tied
