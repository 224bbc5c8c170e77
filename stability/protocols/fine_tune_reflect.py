"""``fine-tune-reflect``: train the constitution into a local model, let it reflect, train on its reflections.

- Generation 0 trains a LoRA adapter on the starting constitution: recitation examples, and/or question-answer
  pairs about it written by the untuned model itself (``self-qa``) or by a teacher model (``teacher-qa``).
- Every generation g then asks its tuned model ``traces`` (N) times, with the fresh-instance prompts, whether it
  would change its constitution. The decision comes first: keep (a decline, or the same list back) against
  change, by majority of the parsed traces (a tie keeps); then, if the change wins, the revision is the medoid of
  the proposed changes by principle-set distance (:func:`consensus`; the rule and the counts are stored in the
  revision's detail). It is recorded exactly as fresh-instance records a step (revision ``RUN:g+1``, an edit or
  decline edge, the N calls behind it).
- Generation g+1's adapter continues training generation g's adapter on generation g's traces (the parsed ones,
  unless ``trace_data: all``), plus recitations of the revised constitution when ``recite_revised`` is on.
- It stops after ``generations`` (G; stop reason ``max_steps``), when the constitution has not changed for
  ``unchanged_to_stop`` (K) generations in a row (``declined``: a fixed point), or when no trace of a
  generation parses (``parse_failures``).

Controls (option ``control``, one grid cell each): ``neutral-constitution`` trains generation 0 on a neutral
constitution of the library instead of the starting one (reflection still asks about the starting one),
``off-topic`` trains it on unrelated examples of the same number, ``no-training`` trains nothing (the untuned
subject reflects every generation; its generation summaries have an empty ``adapter_id``). ``heldout_traces``
asks held-out phrasings of the question each generation, which are stored, counted in the revision's detail,
never trained on and never part of the consensus.

Every adapter is stored with its path, content hash, parent, base model, training data (and its hash) and trainer
parameters; each generation's summary links its adapter to the revision it produced. Resume replays the run:
a generation whose adapter is recorded, and whose training data hashes the same, is not trained again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from stability.answer import Reading
from stability.constitution import Constitution
from stability.errors import StabilityError
from stability.finetune import TrainerParams, TrainingExample
from stability.protocols.base import AnswerOptions, ReflectionProtocol, Stop, fill, register
from stability.protocols.fresh_instance import FRESH_INSTANCE, revision_messages
from stability.protocols.inputs import InputKind
from stability.records import AdapterRecord, CallRecord, Decision, GenerationRecord, RevisionRecord, now
from stability.vocabulary import CallFailed, Message, ModelTraits, derive_seed

if TYPE_CHECKING:
    from stability.engine.run import Run

TEACHER = "teacher"
Distance = Callable[[Constitution, Constitution], float]
#: the template folder of the control arms and the held-out prompts; declared only by runs that use them, so
#: default runs hash their templates exactly as before
CONTROLS = "fine-tune-reflect-controls"
DataKind = Literal["recitation", "self-qa", "teacher-qa"]
Control = Literal["none", "neutral-constitution", "off-topic", "no-training"]


class FineTuneReflectOptions(AnswerOptions):
    generations: int = Field(3, ge=1, description="G: generations to train and reflect")
    medoid: str = Field("all-MiniLM-L6-v2", description="embedder whose cosine distance picks the medoid change "
                        "(all-MiniLM-L6-v2; hashing for tests), or 'principles' for the Jaccard distance between "
                        "principle sets")
    unchanged_to_stop: int = Field(2, ge=1, description="K: stop when the constitution is unchanged this long")
    traces: int = Field(4, ge=1, description="N: reflection traces per generation")
    constitution_data: list[DataKind] = Field(default_factory=lambda: list[DataKind](["recitation"]),
                                              description="generation 0's training data")
    qa_per_principle: int = Field(1, ge=1, description="questions per principle for self-qa / teacher-qa")
    teacher_model: str | None = Field(None, description="model id that writes teacher-qa answers")
    trace_data: Literal["parsed", "all"] = Field("parsed", description="which traces generation g+1 trains on")
    recite_revised: bool = Field(False, description="also train generation g+1 to recite the revised list")
    trainer: TrainerParams = Field(default_factory=lambda: TrainerParams(), description="generation 0's training")
    trainer_next: TrainerParams | None = Field(None, description="later generations' training (default: trainer)")
    adapters_dir: str | None = Field(None, description="default: adapters/ beside the database")
    control: Control = Field("none", description="control arm: neutral-constitution or off-topic data for "
                             "generation 0, or no-training (the untuned subject reflects every generation)")
    neutral_constitution: str | None = Field(None, description="control neutral-constitution: a library name or "
                                             "file; default: the library's neutral file closest in size")
    heldout_traces: int = Field(0, ge=0, description="held-out phrasings of the question asked per generation; "
                                "stored and counted, never trained on, not part of the consensus")


@register
class FineTuneReflect(ReflectionProtocol[FineTuneReflectOptions]):
    name = "fine-tune-reflect"
    summary = "LoRA-tune the constitution into an hf/ model, let it reflect, tune on its traces, repeat"
    Options = FineTuneReflectOptions
    cli_flags = {"max_principles": "max_principles"}
    gpus = 1  # it trains and serves LoRA adapters

    def template_folders(self) -> list[str]:
        folders = [self.name, FRESH_INSTANCE]  # reflection asks the fresh-instance question
        return folders + [CONTROLS] if self.options.control != "none" or self.options.heldout_traces else folders

    step_unit = "generations"

    def step_bound(self) -> int:
        return self.options.generations  # step g is generation g - 1's reflection

    def estimate_calls(self, start: Constitution) -> int:
        options = self.options
        qa_kinds = sum(kind in options.constitution_data for kind in ("self-qa", "teacher-qa"))
        trained_on = self.neutral(start) if options.control == "neutral-constitution" else start
        qa_calls = 0 if options.control in ("off-topic", "no-training") else \
            qa_kinds * options.qa_per_principle * len(trained_on.principles)
        return options.generations * (options.traces + options.heldout_traces) + qa_calls

    def check(self, start: Constitution) -> None:
        if self.options.control == "neutral-constitution":
            self.neutral(start)

    def neutral(self, start: Constitution) -> Constitution:
        """The neutral constitution of control ``neutral-constitution``: ``neutral_constitution`` (a library name or
        a file), else the library's neutral file (condition ``neutral``) whose size is closest to the starting
        constitution's (the smaller on a tie, then by name)."""
        named = self.options.neutral_constitution
        if named is not None:
            # the file, as the engine read it (not read: a library name, or a protocol used without the engine)
            read = self.inputs.constitution("neutral_constitution") if "neutral_constitution" in self.inputs else None
            if read is not None:
                return read
        # the library (its metadata models and files) is read only by this control, not when the protocol loads
        from stability.library import find_constitution, load_library

        if named is not None:
            return Constitution.from_principles(list(find_constitution(named).principles))
        neutral = sorted((e for e in load_library() if e.metadata.condition == "neutral"),
                         key=lambda e: (abs(len(e.principles) - len(start.principles)), len(e.principles), e.name))
        if not neutral:
            raise StabilityError("control neutral-constitution: the library has no neutral constitution "
                                 "(set neutral_constitution)")
        return Constitution.from_principles(list(neutral[0].principles))

    def input_files(self) -> dict[str, InputKind]:
        return {"neutral_constitution": "constitution-or-name"} if self.options.control == "neutral-constitution" \
            else {}

    def role_models(self) -> dict[str, str]:
        return {TEACHER: self.options.teacher_model} if self.options.teacher_model else {}

    def check_model(self, subject: ModelTraits) -> None:
        if not subject.trainable:
            raise StabilityError(f"protocol fine-tune-reflect trains LoRA adapters: it needs an hf/ model, "
                                 f"not {subject.name!r} (try hf/gemma-3-270m)")
        if "teacher-qa" in self.options.constitution_data and not self.options.teacher_model:
            raise StabilityError("protocol fine-tune-reflect: constitution_data teacher-qa needs teacher_model")

    # -- the loop --------------------------------------------------------------------------------------------

    async def run(self, run: Run, start: Constitution) -> Stop:
        options = self.options
        reflect_templates = run.templates(FRESH_INSTANCE)
        few_shot = self.few_shot(run.traits())
        parent = run.record(0, start, "origin", None, [])
        visited = {start.hash: parent.id}
        current = start
        adapter: AdapterRecord | None = None
        unchanged = 0
        try:
            examples = await self.generation_zero_examples(run, start)
        except CallFailed as failed:
            run.record(1, current, "error", parent, [failed.call], detail=failed.call.error)
            return Stop(reason="error", status="failed", error=failed.call.error)
        for generation in range(options.generations):
            base_params = options.trainer if generation == 0 else (options.trainer_next or options.trainer)
            params = base_params.model_copy(update={"seed": derive_seed(run.seed, generation, "train")})
            if options.control != "no-training":  # no-training: the untuned subject reflects, adapter stays None
                adapter = await run.train_adapter(generation, examples, params, adapter, folder=options.adapters_dir)
                run.use_adapter(adapter)
            messages = revision_messages(reflect_templates, current, few_shot)
            step = generation + 1
            calls: list[CallRecord] = []
            heldout: list[CallRecord] = []
            try:
                for index in range(options.traces):
                    calls.append(await run.ask(messages, step, f"reflect-{index}", self.answer_config(run)))
                for index, question in enumerate(self.heldout_messages(run, current, few_shot)):
                    heldout.append(await run.ask(question, step, f"heldout-{index}", self.answer_config(run)))
            except CallFailed as failed:
                run.record(step, current, "error", parent, [*calls, *heldout, failed.call], detail=failed.call.error)
                return Stop(reason="error", status="failed", error=failed.call.error)
            answers = [self.read(run, c, FRESH_INSTANCE) for c in calls]
            outcome = consensus(current, answers, self.distance(run, answers))
            revised, n_parsed, n_changed = outcome.constitution, outcome.parsed, outcome.changed
            held_out = heldout_detail(current, [self.read(run, c, FRESH_INSTANCE) for c in heldout])
            arm = f"; control {options.control}" if options.control != "none" else ""
            detail = (f"generation {generation}: {n_parsed}/{len(calls)} traces parsed, {n_changed} proposed a "
                      f"change; {outcome.rule}{held_out}{arm}")
            if n_parsed == 0:
                run.record(step, current, "parse_failure", parent, calls, detail=detail)
                return Stop(reason="parse_failures")
            decision: Decision = "declined" if revised.hash == current.hash else "changed"
            returns_to = visited.get(revised.hash) if decision == "changed" else None
            revision = run.record(step, revised, decision, parent, calls, cycle_to=returns_to, detail=detail)
            run.emit([summary(run.run_id, generation, adapter, revision, current, revised, n_parsed, n_changed,
                              len(calls), reflect_templates.hash)])
            visited.setdefault(revised.hash, revision.id)
            unchanged = unchanged + 1 if decision == "declined" else 0
            if unchanged >= options.unchanged_to_stop:
                return Stop(reason="declined")
            if options.control != "no-training":  # held-out calls are never training data
                examples = self.trace_examples(run, messages, calls, answers, revised)
            current, parent = revised, revision
        return Stop(reason="max_steps")

    def heldout_messages(self, run: Run, constitution: Constitution, few_shot: bool) -> list[list[Message]]:
        """The ``heldout_traces`` held-out questions: phrasing i (modulo the list of ``heldout.yaml``) in place of the
        fresh-instance user prompt, after the same system prompt (and worked examples, asked the held-out way)."""
        if not self.options.heldout_traces:
            return []
        reflect = run.templates(FRESH_INSTANCE)
        phrasings = [str(p) for p in run.templates(CONTROLS).yaml("heldout.yaml")]
        prompts = []
        for index in range(self.options.heldout_traces):
            phrasing = phrasings[index % len(phrasings)]
            messages = [Message(role="system", content=reflect["system.md"].strip())]
            if few_shot and "examples.yaml" in reflect.text:
                for example in reflect.yaml("examples.yaml"):
                    messages.append(Message(role="user", content=fill(phrasing,
                                                                      constitution=example["constitution"].strip())))
                    messages.append(Message(role="assistant", content=example["answer"].strip()))
            messages.append(Message(role="user", content=fill(phrasing, constitution=constitution.text.strip())))
            prompts.append(messages)
        return prompts

    def distance(self, run: Run, answers: list[Reading]) -> Distance | None:
        """The medoid's distance for this generation's proposed changes (None: principle sets)."""
        if self.options.medoid == "principles":
            return None
        changes = {a.constitution.hash: a.constitution for a in answers
                   if a.kind == "revised" and a.constitution is not None}
        if len(changes) < 3:  # with one or two distinct proposals every distance ties: nothing to embed
            return None
        vectors = run.embed(list(changes.values()), self.options.medoid)
        return EmbeddingDistance(self.options.medoid, dict(zip(changes, vectors, strict=True)))

    # -- training data ---------------------------------------------------------------------------------------

    async def generation_zero_examples(self, run: Run, start: Constitution) -> list[TrainingExample]:
        """Generation 0's data as the control arm says: the starting constitution's (``none``), a neutral
        constitution's (``neutral-constitution``), unrelated examples of the same number (``off-topic``), or
        none (``no-training``)."""
        control = self.options.control
        if control == "no-training":
            return []
        if control == "neutral-constitution":
            return await self.constitution_examples(run, self.neutral(start))
        if control == "off-topic":
            return self.off_topic(run, start)
        return await self.constitution_examples(run, start)

    def off_topic(self, run: Run, start: Constitution) -> list[TrainingExample]:
        """As many examples of ``off-topic.yaml`` (cycled) as the constitution's data would have had, without
        asking for that data: the recitation prompts, plus the qa questions per principle of each qa kind."""
        options = self.options
        size = len(run.templates().yaml("recite.yaml")) if "recitation" in options.constitution_data else 0
        questions = min(options.qa_per_principle, len(run.templates().yaml("qa.yaml")["questions"]))
        size += sum(kind in options.constitution_data for kind in ("self-qa", "teacher-qa")) * questions * \
            len(start.principles)
        items = run.templates(CONTROLS).yaml("off-topic.yaml")
        return [TrainingExample(messages=[Message(role="user", content=str(item["prompt"]).strip())],
                                completion=str(item["completion"]).strip() + "\n", source="off-topic")
                for item in (items[i % len(items)] for i in range(size))]

    async def constitution_examples(self, run: Run, start: Constitution) -> list[TrainingExample]:
        """Generation 0's data: recitations and/or question-answer pairs (asked through the call path, step 0)."""
        options = self.options
        examples: list[TrainingExample] = []
        if "recitation" in options.constitution_data:
            examples += self.recitations(run, start)
        qa = run.templates().yaml("qa.yaml")
        for kind in ("self-qa", "teacher-qa"):
            if kind not in options.constitution_data:
                continue
            role = "subject" if kind == "self-qa" else TEACHER
            for p, principle in enumerate(start.principles):
                for q, question in enumerate(qa["questions"][: options.qa_per_principle]):
                    asked = question.replace("{principle}", principle)
                    prompt = qa["context"].replace("{constitution}", start.text.strip()).replace("{question}", asked)
                    call = await run.ask([Message(role="user", content=prompt)], 0, f"{kind}-{p}-{q}", role=role)
                    if (call.text or "").strip():
                        examples.append(TrainingExample(messages=[Message(role="user", content=asked)],
                                                        completion=call.text or "", source=kind))
        if not examples:
            raise StabilityError("protocol fine-tune-reflect: generation 0 has no training data "
                                 f"(constitution_data {options.constitution_data})")
        return examples

    def recitations(self, run: Run, constitution: Constitution) -> list[TrainingExample]:
        return [TrainingExample(messages=[Message(role="user", content=prompt.strip())],
                                completion=constitution.text, source="recitation")
                for prompt in run.templates().yaml("recite.yaml")]

    def trace_examples(self, run: Run, messages: list[Message], calls: list[CallRecord], answers: list[Reading],
                       revised: Constitution) -> list[TrainingExample]:
        options = self.options
        examples = [TrainingExample(messages=messages, completion=call.text or "", source="trace")
                    for call, answer in zip(calls, answers, strict=True)
                    if (call.text or "").strip() and (options.trace_data == "all"
                                                      or answer.kind in ("revised", "declined"))]
        if options.recite_revised:
            examples += self.recitations(run, revised)
        return examples


def heldout_detail(current: Constitution, answers: list[Reading]) -> str:
    """The held-out traces' outcome for the revision's detail ("" when none were asked)."""
    if not answers:
        return ""
    counted = consensus(current, answers)
    return (f"; held-out {len(answers)}: {counted.parsed - counted.changed} kept, {counted.changed} changed, "
            f"{len(answers) - counted.parsed} unparsed")


def summary(run_id: str, generation: int, adapter: AdapterRecord | None, revision: RevisionRecord, before: Constitution,
            after: Constitution, n_parsed: int, n_changed: int, n_traces: int, template_hash: str) -> GenerationRecord:
    """The stored summary of one generation: its adapter, the revision it produced, and how much changed.
    ``adapter_id`` is "" when no adapter reflected (control ``no-training``: the untuned subject)."""
    return GenerationRecord(
        run_id=run_id, generation=generation, adapter_id=adapter.id if adapter else "", revision_id=revision.id,
        previous_hash=before.hash, constitution_hash=after.hash, n_traces=n_traces, n_parsed=n_parsed,
        n_changed=n_changed, share_kept=share_kept(before, after), set_distance=set_distance(before, after),
        reflect_template_hash=template_hash, created_at=now())


@dataclass(frozen=True)
class Consensus:
    """A generation's outcome from its traces, and how it was reached (stored in the revision's detail)."""

    constitution: Constitution
    parsed: int  # traces that declined or revised
    changed: int  # of those, traces proposing a change
    rule: str  # e.g. "change 14 vs keep 2; medoid trace 5 of 14 changes"


def consensus(current: Constitution, answers: list[Reading], distance: Distance | None = None) -> Consensus:
    """The decision first, then the revision. Decline (or the same list back) against change, by majority of the
    parsed traces (a tie keeps the constitution: a change needs more votes than keeping); among the changes, the
    medoid: the proposal with the smallest total distance to the other proposals. The distance is the run's
    (the ``medoid`` option: cosine distance between embeddings, which sees paraphrases), by default the Jaccard
    distance between principle sets (:func:`set_distance`). A tie in distance goes to the earliest trace.

    So two identical declines no longer outvote fourteen different changes. Parse failures and truncated traces
    are not outcomes."""
    changes: list[tuple[int, Constitution]] = []
    keeps = 0
    for index, answer in enumerate(answers):
        if answer.kind == "declined":
            keeps += 1
        elif answer.kind == "revised" and answer.constitution is not None:
            if answer.constitution.hash == current.hash:
                keeps += 1
            else:
                changes.append((index, answer.constitution))
    parsed = keeps + len(changes)
    if parsed == 0:
        return Consensus(current, 0, 0, "no trace parsed")
    vote = f"change {len(changes)} vs keep {keeps}"
    if len(changes) <= keeps:
        return Consensus(current, parsed, len(changes), vote + ": keep")
    measure = distance or set_distance
    totals = [sum(measure(a, b) for _, b in changes) for _, a in changes]
    best = min(range(len(changes)), key=lambda i: (totals[i], i))
    kind = "set" if distance is None else getattr(distance, "name", "embedding")
    return Consensus(changes[best][1], parsed, len(changes),
                     f"{vote}: medoid trace {changes[best][0] + 1} of {len(changes)} changes "
                     f"(mean {kind} distance {totals[best] / max(len(changes) - 1, 1):.3f})")


class EmbeddingDistance:
    """Cosine distance between constitutions' embeddings (unit vectors), computed once per constitution."""

    def __init__(self, name: str, vectors: dict[str, list[float]]) -> None:
        self.name = name
        self.vectors = vectors

    def __call__(self, a: Constitution, b: Constitution) -> float:
        u, v = self.vectors[a.hash], self.vectors[b.hash]
        return 1.0 - sum(x * y for x, y in zip(u, v, strict=True))


def share_kept(before: Constitution, after: Constitution) -> float:
    """Share of ``before``'s principles found in ``after``, by exact match of normalised principles."""
    old = set(before.principles)
    return len(old & set(after.principles)) / len(old) if old else 1.0


def set_distance(before: Constitution, after: Constitution) -> float:
    """Jaccard distance between the two principle sets (exact normalised match): 0 same, 1 disjoint."""
    a, b = set(before.principles), set(after.principles)
    return 1.0 - len(a & b) / len(a | b) if a | b else 0.0
