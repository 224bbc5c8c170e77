"""``rate-alternatives``: would the model swap a principle (or its whole constitution) for an alternative?

Principle mode: for a target principle, K alternatives are shown in an order randomised per trial (reproducible
from the seed, and stored); the model rates each from 1 to 5 for how much it would want it to replace the current
one, and names a favourite. Constitution mode rates whole alternative constitutions or identities instead (the
identity-preference design: a source identity as the system prompt, every identity offered).

Variants: ``reflect: first`` asks for a reflection before the rating (stored as its own call);
``source: free`` asks the model to write its own replacement instead of rating provided ones. Ratings use
structured output where the provider enforces it, and tolerant parsing otherwise; an unreadable rating is stored
as unscored. Where the provider exposes log-probabilities, the probability of each rating and the expected rating
are stored too. Each trial also adds a revision: the constitution with the favourite swapped in.

Status quo (``include_current``, default on): the current principle (constitution mode: the starting constitution)
is one of the options, shuffled like the others and stored with relation ``current``; a favourite that is the
current option is a decline, so the provided and free sources can both keep what is there, and the status-quo
rate is the favourite rate of relation ``current``. Off, the favourite always replaces the target (the design
before the control existed).

A cut-off answer (``finish_reason`` at the token limit) is recorded as ``truncated`` and swaps nothing, even when
it named a favourite (or a replacement) before the cut: its ratings are stored, but none is the favourite.
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from stability.alternatives import ALTERNATIVES_SUFFIX
from stability.answer import truncation
from stability.constitution import Constitution, normalise_principle
from stability.errors import InputError
from stability.protocols.base import FewShotOptions, ReflectionProtocol, Stop, fill, register
from stability.protocols.inputs import InputKind, Inputs
from stability.ratings import expected_rating, parse_ratings, rating_schema
from stability.records import CallRecord, RatingRecord, RevisionRecord
from stability.vocabulary import CallFailed, Message, TokenLogprob, derive_seed

if TYPE_CHECKING:
    from stability.engine.run import Run

LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: the relation of the option that is the current principle (or constitution): the status quo
CURRENT = "current"


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    relation: str | None = None
    constitution: Constitution | None = None  # constitution mode: what choosing it would make


class RateAlternativesOptions(FewShotOptions):
    mode: Literal["principle", "constitution"] = "principle"
    principle: int = Field(1, ge=1, description="principle mode: 1-based index of the principle to replace")
    alternatives: str | None = Field(None, description="principle mode: a library pool (NAME.alternatives.yaml) or "
                                     "a YAML list of text or {text, relation}; constitution mode: a folder or a "
                                     "YAML list of .md files")
    alternatives_list: list[str] = Field(default_factory=list, description="inline alternatives (principle mode)")
    source: Literal["provided", "free"] = Field("provided", description="rate provided alternatives, or let the "
                                                "model write its own replacement")
    reflect: Literal["first", "none"] = "none"
    trials: int = Field(3, ge=1)
    option_text: Literal["full", "description"] = Field("full", description="constitution mode: show each option "
                                                        "in full, or its metadata description")
    system_from_start: bool = Field(False, description="constitution mode: the starting constitution (the source "
                                    "identity) is the system prompt")
    logprobs: bool | None = Field(None, description="store rating probabilities; default: when the model exposes "
                                  "log-probabilities")
    include_current: bool = Field(True, description="the current principle (or constitution) is among the options, "
                                  "shuffled like the others; choosing it keeps it (a decline)")


def alternative_files(options: RateAlternativesOptions) -> dict[str, InputKind]:
    """The input file ``alternatives`` names, and how the engine reads it."""
    if options.source == "free" or not options.alternatives:
        return {}
    if options.mode == "constitution":
        return {"alternatives": "constitutions"}
    return {"alternatives": "alternatives-pool" if options.alternatives.endswith(ALTERNATIVES_SUFFIX) else "yaml"}


def load_options(options: RateAlternativesOptions, inputs: Inputs) -> list[Option]:
    """The alternatives the options name (their files as the engine read them into ``inputs``); bad contents raise
    InputError (before anything is written)."""
    if options.source == "free":
        return []
    if options.mode == "constitution":
        if not options.alternatives:
            raise InputError("<options>", None, "constitution mode needs alternatives: a folder or a YAML list of "
                                                "files")
        files = inputs.constitutions("alternatives")
        if len(files) < 2:
            raise InputError(options.alternatives, None, "constitution mode needs at least 2 alternative "
                                                         "constitutions")
        return [constitution_option(c, options.option_text) for c in files]
    found = [Option(text=normalise_principle(t)) for t in options.alternatives_list]
    if options.alternatives and options.alternatives.endswith(ALTERNATIVES_SUFFIX):
        # The library's pool format: one pool per principle of the constitution beside it.
        pool = inputs.pool("alternatives").for_principle(options.principle)
        found += [Option(text=a.text, relation=a.relation) for a in pool.alternatives]
    elif options.alternatives:
        data = inputs.data("alternatives")
        items = data.get("alternatives") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise InputError(options.alternatives, None, "expected a YAML list of alternatives")
        for n, item in enumerate(items, 1):
            if isinstance(item, str):
                found.append(Option(text=normalise_principle(item)))
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                found.append(Option(text=normalise_principle(item["text"]), relation=item.get("relation")))
            else:
                raise InputError(options.alternatives, None, f"alternative {n}: expected text or {{text, relation}}")
    if len(found) < 2:
        raise InputError(options.alternatives or "<options>", None, "rate-alternatives needs at least 2 alternatives")
    if len(found) > len(LABELS) - options.include_current:
        raise InputError(options.alternatives or "<options>", None,
                         f"at most {len(LABELS) - options.include_current} alternatives")
    return found


def with_current(choices: list[Option], start: Constitution, options: RateAlternativesOptions) -> list[Option]:
    """The options a trial shows: ``choices``, plus the status quo when ``include_current`` (an alternative equal
    to it is marked ``current`` rather than shown twice)."""
    if not options.include_current:
        return choices
    if options.mode == "constitution":
        current = constitution_option(start, options.option_text)
        same = [i for i, c in enumerate(choices) if c.constitution is not None and c.constitution.hash == start.hash]
    else:
        current = Option(text=start.principles[options.principle - 1])
        same = [i for i, c in enumerate(choices) if c.text == current.text]
    if same:
        return [c.model_copy(update={"relation": CURRENT}) if i in same else c for i, c in enumerate(choices)]
    return [*choices, current.model_copy(update={"relation": CURRENT})]


def constitution_option(constitution: Constitution, option_text: str) -> Option:
    name = constitution.title or constitution.metadata.get("name") or constitution.hash[:19]
    if option_text == "description" and constitution.metadata.get("description"):
        text = f"{name}: {constitution.metadata['description']}"
    else:
        text = f"{name}\n" + "\n".join(f"   - {p}" for p in constitution.principles)
    return Option(text=text, constitution=constitution)


@register
class RateAlternatives(ReflectionProtocol[RateAlternativesOptions]):
    name = "rate-alternatives"
    summary = "rate alternative principles (or whole constitutions) 1-5 and name a favourite, over trials"
    Options = RateAlternativesOptions
    chain = False
    cli_flags = {"principle": "principle", "alternatives": "alternatives", "mode": "mode", "reflect": "reflect",
                 "source": "source", "trials": "trials"}

    step_unit = "trials"

    def step_bound(self) -> int:
        return self.options.trials

    def input_files(self) -> dict[str, InputKind]:
        return alternative_files(self.options)

    def estimate_calls(self, start: Constitution) -> int:
        options = self.options
        return options.trials * (2 if options.reflect == "first" and options.source == "provided" else 1)

    def check(self, start: Constitution) -> None:
        options = self.options
        load_options(options, self.inputs)
        if options.mode == "principle" and options.principle > len(start.principles):
            raise InputError("<options>", None, f"principle {options.principle} does not exist: the constitution "
                             f"has {len(start.principles)}")

    async def run(self, run: Run, start: Constitution) -> Stop:
        options = self.options
        origin = run.record(0, start, "origin", None, [])
        provided = options.source == "provided"
        choices = with_current(load_options(options, self.inputs), start, options) if provided else []
        for trial in range(options.trials):
            try:
                if options.source == "free":
                    await self._propose(run, start, origin, trial)
                else:
                    await self._rate(run, start, origin, trial, choices)
            except CallFailed as failed:
                run.record(trial + 1, start, "error", origin, [failed.call], detail=failed.call.error)
                return Stop(reason="error", status="failed", error=failed.call.error)
        return Stop(reason="rated")

    def _target(self, start: Constitution) -> str:
        return start.principles[self.options.principle - 1]

    def _system(self, run: Run, start: Constitution) -> Message:
        if self.options.mode == "constitution" and self.options.system_from_start:
            return Message(role="system", content="\n\n".join(start.principles))
        return Message(role="system", content=run.templates()["system.md"].strip())

    def _context(self, run: Run, start: Constitution) -> str:
        if self.options.mode == "constitution":
            return run.templates()["context-constitution.md"].strip()
        return fill(run.templates()["context-principle.md"], constitution=start.text.strip(),
                    index=str(self.options.principle), target=self._target(start))

    def _examples(self, run: Run) -> list[Message]:
        if not self.few_shot(run.traits()):
            return []
        turns = []
        for example in run.templates().yaml("examples.yaml"):
            turns.append(Message(role="user", content=example["request"].strip()))
            turns.append(Message(role="assistant", content=example["answer"].strip()))
        return turns

    async def _rate(self, run: Run, start: Constitution, origin: RevisionRecord, trial: int,
                    choices: list[Option]) -> None:
        options = self.options
        order = list(range(len(choices)))
        random.Random(derive_seed(run.seed, trial, "order")).shuffle(order)
        shown = [choices[i] for i in order]
        labels = list(LABELS[: len(shown)])
        listing = "\n".join(f"{label}. {option.text}" for label, option in zip(labels, shown, strict=True))
        answer_format = "\n".join(f"{label}: <rating>" for label in labels) + "\nFAVOURITE: <letter>"
        step = trial + 1
        messages = [self._system(run, start), *self._examples(run)]
        reflection: CallRecord | None = None
        if options.reflect == "first":
            ask = fill(run.templates()["reflect.md"], context=self._context(run, start), options=listing)
            reflection = await run.ask([*messages, Message(role="user", content=ask)], step, "reflect")
            messages += [Message(role="user", content=ask),
                         Message(role="assistant", content=(reflection.text or "").strip())]
            rate = fill(run.templates()["rate-after-reflection.md"], format=answer_format)
        else:
            rate = fill(run.templates()["rate.md"], context=self._context(run, start), options=listing,
                        format=answer_format)
        want_logprobs = options.logprobs if options.logprobs is not None else run.traits().exposes_logprobs
        config = run.generate.model_copy(update={
            "json_schema": rating_schema(labels) if run.traits().structured_output else None,
            "logprobs": 5 if want_logprobs else None,
        })
        call = await run.ask([*messages, Message(role="user", content=rate)], step, "rate", config=config)
        stored = call.response.get("stability_logprobs") if call.response else None
        logprobs = [TokenLogprob(**t) for t in stored] if stored else None
        parsed = parse_ratings(call.text or "", labels, logprobs)
        cut = truncation(call.text or "", call.finish_reason)
        favourite = None if cut is not None else parsed.favourite  # a cut-off answer names no favourite
        records = []
        for position, (label, option) in enumerate(zip(labels, shown, strict=True)):
            probs = parsed.probs.get(label)
            records.append(RatingRecord(
                id=f"{run.run_id}:{trial}:{label}", run_id=run.run_id, trial=trial, step=step,
                mode=options.mode, target_index=options.principle if options.mode == "principle" else None,
                target=self._target(start) if options.mode == "principle" else (start.title or start.hash),
                label=label, position=position, option_text=option.text, relation=option.relation,
                rating=parsed.ratings.get(label), rating_probs=probs, expected_rating=expected_rating(probs),
                favourite=favourite == label, call_id=call.id,
                reflection_call_id=reflection.id if reflection else None))
        run.emit(records)
        calls = [c for c in (reflection, call) if c is not None]
        if cut is not None:
            run.record(step, start, "truncated", origin, calls, detail=cut.problem)
            return
        if favourite is None:
            run.record(step, start, "parse_failure", origin, calls, detail="no favourite named")
            return
        chosen = shown[labels.index(favourite)]
        if chosen.relation == CURRENT:
            run.record(step, start, "declined", origin, calls, detail=f"favourite {favourite}: the status quo")
            return
        revised = chosen.constitution if chosen.constitution is not None else self._swap(start, chosen.text)
        run.record(step, revised, "declined" if revised.hash == start.hash else "changed", origin, calls,
                    detail=f"favourite {favourite}")

    def _swap(self, start: Constitution, replacement: str) -> Constitution:
        principles = list(start.principles)
        principles[self.options.principle - 1] = replacement
        return Constitution(principles=tuple(dict.fromkeys(principles)))

    async def _propose(self, run: Run, start: Constitution, origin: RevisionRecord, trial: int) -> None:
        step = trial + 1
        ask = fill(run.templates()["propose.md"], context=self._context(run, start))
        call = await run.ask([self._system(run, start), Message(role="user", content=ask)], step, "propose")
        text = call.text or ""
        cut = truncation(text, call.finish_reason)
        match = re.search(r"replacement\s*:\s*(?P<p>.+)", text, re.IGNORECASE)
        if cut is not None:  # a replacement line may itself be cut short
            run.record(step, start, "truncated", origin, [call], detail=cut.problem)
        elif match and normalise_principle(match.group("p")):
            revised = self._swap(start, normalise_principle(match.group("p")))
            run.record(step, revised, "declined" if revised.hash == start.hash else "changed", origin, [call])
        elif "NO CHANGE" in text.upper():
            run.record(step, start, "declined", origin, [call])
        else:
            run.record(step, start, "parse_failure", origin, [call], detail="no REPLACEMENT: line")
