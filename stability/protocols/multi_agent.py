"""``multi-agent-discussion``: several instances, each with a role name, discuss the constitution.

Each cycle has R rounds; in each round every agent, in turn, sees the constitution and the transcript so far and
adds a turn ending in its proposal (``NO CHANGE`` or a full revised list). The speaking order is shuffled for
every round, reproducibly from the run seed, the step and the round, so no agent always speaks first or last; the
orders are stored in the step's revision detail (``order r1=bob,alice,carol; ...``). Every turn is its own stored
call (purpose ``discuss:AGENT:rROUND``), so the transcript is reconstructable from the calls. If every agent's
final proposal is to keep the constitution, the step is a decline, and ``declines_to_stop`` (K) such unanimous
steps in a row stop the run, as in the other iteration protocols. Otherwise an editor writes the revision: a
designated agent (``editor: NAME``), or a vote in which each agent picks one of the final proposals (plurality;
a vote is a structured answer ``{reasoning, vote}`` from models that enforce structured output, else an explicit
line ``VOTE: N`` (the last one), never any other number in the answer; a cut-off or unreadable answer is no vote,
and the detail says whose and why (``no vote: bob (cut off)``); a tie is broken by a random draw from the seed,
stored in the detail). Agents may be different models (``agents: [{name: alice, model: openai/gpt-4o}, ...]``).
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stability.json_text import json_object
from stability.protocols.base import Stop, fill, register
from stability.protocols.walk import ITERATION_FLAGS, IterationOptions, IterationProtocol, Walk
from stability.records import CallRecord
from stability.vocabulary import Message, derive_seed, is_truncated

if TYPE_CHECKING:
    from stability.engine.run import Run


#: default agent names: words, so no name in a prompt or a transcript can be read as a number (``agent1`` could)
AGENT_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


def agent_names(n: int) -> list[str]:
    """``n`` distinct default agent names without digits: alice, bob, …, judy, then alice-b, bob-b, …"""
    suffixes = [""] + [f"-{letter}" for letter in "bcdefghijklmnopqrstuvwxyz"]
    return [AGENT_NAMES[i % len(AGENT_NAMES)] + suffixes[i // len(AGENT_NAMES) % len(suffixes)]
            for i in range(n)]


class Agent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    model: str | None = Field(default=None, description="model id; default: the run's model")


MAX_AGENTS = 32  # each round asks every agent: more would be a typo, not a discussion
MAX_ROUNDS = 100


class MultiAgentOptions(IterationOptions):
    agents: list[Agent] = Field(default_factory=lambda: [Agent(name=name) for name in agent_names(3)],
                                min_length=2, max_length=MAX_AGENTS,
                                description="the agents: N (3), or alice,bob=MODEL,... (a model each, optionally)")
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
    route = "multi-agent"
    cli_flags = {**ITERATION_FLAGS, "agents": "agents", "rounds": "rounds", "editor": "editor"}

    @classmethod
    def flag_kind(cls, flag: str) -> type | None:
        return str if flag == "agents" else None

    @classmethod
    def options_from_flags(cls, flags: dict[str, Any]) -> dict[str, Any]:
        """``--agents 3`` (three agents, named without digits: never read as a vote) or
        ``--agents alice,bob=openai/gpt-4o``."""
        value = flags.get("agents")
        if isinstance(value, str):
            if value.isdigit():
                agents = [{"name": name} for name in agent_names(int(value))]
            else:
                agents = []
                for part in value.split(","):
                    name, _, model = part.strip().partition("=")
                    agents.append({"name": name, **({"model": model} if model else {})})
            flags = {**flags, "agents": agents}
        return super().options_from_flags(flags)

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
        no_votes: list[str] = []
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
            choice, why = read_vote(call.text or "", len(proposals), call.finish_reason)
            if choice is not None:
                votes[choice] += 1
            else:
                no_votes.append(f"{agent.name} ({why})")
        winner, tie = plurality(votes, derive_seed(run.seed, step, "tie"))
        detail += f"; votes {','.join(map(str, votes))}"
        if no_votes:
            detail += f"; no vote: {', '.join(no_votes)}"
        detail += f"; proposal {winner + 1}"
        if tie:
            detail += f" drawn from the tie {','.join(str(i + 1) for i in tie)}"
        return walk.advance(step, self.read(run, by_text[proposals[winner]]), calls, detail)

    def _keeps(self, run: Run, proposal: CallRecord, walk: Walk) -> bool:
        reading = self.read(run, proposal)
        if reading.kind == "declined":
            return True
        return reading.constitution is not None and reading.constitution.hash == walk.current.hash


#: the explicit vote line the vote template asks for: a line of its own, ``VOTE: 2`` (markdown and a
#: "proposal" word allowed: ``**VOTE:** Proposal 2``)
_VOTE_LINE = re.compile(r"^[ \t>*_`#-]*vote[ \t*_`]*[:=][ \t*_`]*(?:proposal[ \t*_`]*)?#?(?P<n>\d+)[ \t*_`.!]*$",
                        re.IGNORECASE | re.MULTILINE)
#: an answer that is nothing but the number (``2``, ``Proposal 2.``)
_BARE = re.compile(r"^[\s*_`]*(?:proposal[ \t*_`]*)?#?(?P<n>\d+)[\s*_`.!]*$", re.IGNORECASE)


def vote_schema(n: int) -> dict[str, Any]:
    """The structured vote: reasoning first, then the number of the chosen proposal."""
    return {"type": "object", "additionalProperties": False, "required": ["reasoning", "vote"],
            "properties": {"reasoning": {"type": "string"}, "vote": {"type": "integer", "minimum": 1, "maximum": n}}}


def read_vote(answer: str, n: int, finish_reason: str | None = None) -> tuple[int | None, str | None]:
    """(the 0-based proposal voted for, None) or (None, why this answer is no vote).

    A vote is read only from a structured answer's ``vote`` or from an explicit vote line (``VOTE: 2`` on a line
    of its own; the last one counts), or an answer that is only the number. Numbers anywhere else are never a
    vote: "round 2 of 3", "You are agent1.", "(no more than 2 sentences)". A cut-off answer is no vote, whatever
    it said before the cut."""
    if is_truncated(finish_reason):
        return None, "cut off"
    data = json_object(answer)
    if data is not None:
        chosen = data.get("vote")
        if isinstance(chosen, int) and not isinstance(chosen, bool) and 1 <= chosen <= n:
            return chosen - 1, None
        return None, f"structured vote {chosen!r} is not a proposal 1-{n}"
    lines = _VOTE_LINE.findall(answer)
    bare = _BARE.match(answer)
    stated = lines[-1] if lines else bare.group("n") if bare else None
    if stated is None:
        return None, "no VOTE line"
    if not 1 <= int(stated) <= n:
        return None, f"VOTE {stated} is not a proposal 1-{n}"
    return int(stated) - 1, None


def vote(answer: str, n: int, finish_reason: str | None = None) -> int | None:
    """The 0-based proposal an answer votes for, or None (see :func:`read_vote`)."""
    return read_vote(answer, n, finish_reason)[0]


def plurality(votes: list[int], seed: int) -> tuple[int, list[int]]:
    """The proposal with the most votes, and the tied proposals (empty without a tie) a draw from ``seed`` chose
    among."""
    best = max(votes)
    tied = [i for i, v in enumerate(votes) if v == best]
    if len(tied) == 1:
        return tied[0], []
    return random.Random(seed).choice(tied), tied
