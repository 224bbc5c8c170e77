"""``fine-tune-reflect``: train the constitution into a local model, let it reflect, train on its reflections.

- Generation 0 trains a LoRA adapter on the starting constitution: recitation examples, and/or question-answer
  pairs about it written by the untuned model itself (``self-qa``) or by a teacher model (``teacher-qa``).
- Every generation g then asks its tuned model ``traces`` (N) times, with the fresh-instance prompts, whether it
  would change its constitution. The most common outcome among the parsed traces is the generation's revised
  constitution (a decline counts as the current one; ties go to the first seen). It is recorded exactly as
  fresh-instance records a step (revision ``RUN:g+1``, an edit or decline edge, the N calls behind it).
- Generation g+1's adapter continues training generation g's adapter on generation g's traces (the parsed ones,
  unless ``trace_data: all``), plus recitations of the revised constitution when ``recite_revised`` is on.
- It stops after ``generations`` (G; stop reason ``max_steps``), when the constitution has not changed for
  ``unchanged_to_stop`` (K) generations in a row (``declined``: a fixed point), or when no trace of a
  generation parses (``parse_failures``).

Every adapter is stored with its path, content hash, parent, base model, training data (and its hash) and trainer
parameters; each generation's summary links its adapter to the revision it produced. Resume replays the run:
a generation whose adapter is recorded, and whose training data hashes the same, is not trained again.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from stability.calls import CallFailed
from stability.constitution import AnswerParse, Constitution, parse_answer
from stability.errors import InputError, StabilityError
from stability.finetune import TrainerParams, TrainingExample, data_hash, train_lora
from stability.input_files import invalid, load_yaml
from stability.models.base import Message, Model, get_model
from stability.models.hf import Adapter, HFModel, folder_hash
from stability.models.local import cache_dir
from stability.protocols.base import AnswerOptions, Protocol, Stop, Templates, derive_seed, register
from stability.protocols.fresh_instance import revision_messages
from stability.store.records import AdapterRecord, CallRecord, Decision, GenerationRecord, RevisionRecord
from stability.store.store import Store, now

DataKind = Literal["recitation", "self-qa", "teacher-qa"]


class FineTuneReflectOptions(AnswerOptions):
    generations: int = Field(3, ge=1, description="G: generations to train and reflect")
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


@register
class FineTuneReflect(Protocol):
    name = "fine-tune-reflect"
    summary = "LoRA-tune the constitution into an hf/ model, let it reflect, tune on its traces, repeat"
    Options = FineTuneReflectOptions

    @classmethod
    def check_model(cls, model: Model, options: BaseModel) -> None:
        assert isinstance(options, FineTuneReflectOptions)
        if not isinstance(model, HFModel):
            raise StabilityError(f"protocol fine-tune-reflect trains LoRA adapters: it needs an hf/ model, "
                                 f"not {model.name!r} (try hf/gemma-3-270m)")
        if "teacher-qa" in options.constitution_data and not options.teacher_model:
            raise StabilityError("protocol fine-tune-reflect: constitution_data teacher-qa needs teacher_model")
        if options.teacher_model:
            get_model(options.teacher_model)

    # -- the loop --------------------------------------------------------------------------------------------

    async def run(self, start: Constitution) -> Stop:
        options = self.options
        assert isinstance(options, FineTuneReflectOptions)
        hf = self.model
        assert isinstance(hf, HFModel)
        reflect_templates = Templates("fresh-instance")
        few_shot = options.few_shot if options.few_shot is not None else hf.base_model
        parent = self.record(0, start, "origin", None, [])
        visited = {start.hash: parent.id}
        current = start
        adapter: AdapterRecord | None = None
        unchanged = 0
        try:
            examples = await self.constitution_examples(start)
        except CallFailed as failed:
            self.record(1, current, "error", parent, [failed.call], detail=failed.call.error)
            return Stop(reason="error", status="failed", error=failed.call.error)
        for generation in range(options.generations):
            adapter = await self.trained_adapter(generation, examples, adapter)
            self.use(hf.with_adapter(Adapter(path=adapter.path, hash=adapter.content_hash)))
            messages = revision_messages(reflect_templates, current, few_shot)
            step = generation + 1
            calls: list[CallRecord] = []
            try:
                for index in range(options.traces):
                    calls.append(await self.call(messages, step, f"reflect-{index}"))
            except CallFailed as failed:
                self.record(step, current, "error", parent, [*calls, failed.call], detail=failed.call.error)
                return Stop(reason="error", status="failed", error=failed.call.error)
            answers = [parse_answer(c.text or "", options.max_principles) for c in calls]
            revised, n_parsed, n_changed = consensus(current, answers)
            detail = f"generation {generation}: {n_parsed}/{len(calls)} traces parsed, {n_changed} proposed a change"
            if n_parsed == 0:
                self.record(step, current, "parse_failure", parent, calls, detail=detail)
                return Stop(reason="parse_failures")
            decision: Decision = "declined" if revised.hash == current.hash else "changed"
            returns_to = visited.get(revised.hash) if decision == "changed" else None
            revision = self.record(step, revised, decision, parent, calls, cycle_to=returns_to, detail=detail)
            self.summarise(generation, adapter, revision, current, revised, n_parsed, n_changed, len(calls),
                           reflect_templates.hash)
            visited.setdefault(revised.hash, revision.id)
            unchanged = unchanged + 1 if decision == "declined" else 0
            if unchanged >= options.unchanged_to_stop:
                return Stop(reason="declined")
            examples = self.trace_examples(messages, calls, answers, revised)
            current, parent = revised, revision
        return Stop(reason="max_steps")

    def use(self, model: Model) -> None:
        """Send the next calls to ``model`` (this generation's adapter, or the teacher) through the same call path."""
        self.context.calls.model = model

    # -- training data ---------------------------------------------------------------------------------------

    async def constitution_examples(self, start: Constitution) -> list[TrainingExample]:
        """Generation 0's data: recitations and/or question-answer pairs (asked through the call path, step 0)."""
        options = self.options
        assert isinstance(options, FineTuneReflectOptions)
        examples: list[TrainingExample] = []
        if "recitation" in options.constitution_data:
            examples += self.recitations(start)
        qa = self.templates.yaml("qa.yaml")
        for kind in ("self-qa", "teacher-qa"):
            if kind not in options.constitution_data:
                continue
            answerer = self.model if kind == "self-qa" else get_model(options.teacher_model or "")
            self.use(answerer)
            try:
                for p, principle in enumerate(start.principles):
                    for q, question in enumerate(qa["questions"][: options.qa_per_principle]):
                        asked = question.replace("{principle}", principle)
                        prompt = qa["context"].replace("{constitution}", start.text.strip()).replace(
                            "{question}", asked)
                        call = await self.call([Message(role="user", content=prompt)], 0, f"{kind}-{p}-{q}")
                        if (call.text or "").strip():
                            examples.append(TrainingExample(messages=[Message(role="user", content=asked)],
                                                            completion=call.text or "", source=kind))
            finally:
                self.use(self.model)
        if not examples:
            raise StabilityError("protocol fine-tune-reflect: generation 0 has no training data "
                                 f"(constitution_data {options.constitution_data})")
        return examples

    def recitations(self, constitution: Constitution) -> list[TrainingExample]:
        return [TrainingExample(messages=[Message(role="user", content=prompt.strip())],
                                completion=constitution.text, source="recitation")
                for prompt in self.templates.yaml("recite.yaml")]

    def trace_examples(self, messages: list[Message], calls: list[CallRecord], answers: list[AnswerParse],
                       revised: Constitution) -> list[TrainingExample]:
        options = self.options
        assert isinstance(options, FineTuneReflectOptions)
        examples = [TrainingExample(messages=messages, completion=call.text or "", source="trace")
                    for call, answer in zip(calls, answers, strict=True)
                    if (call.text or "").strip() and (options.trace_data == "all" or answer.kind != "failure")]
        if options.recite_revised:
            examples += self.recitations(revised)
        return examples

    # -- adapters --------------------------------------------------------------------------------------------

    def adapters_root(self) -> Path:
        options = self.options
        assert isinstance(options, FineTuneReflectOptions)
        if options.adapters_dir:
            return Path(options.adapters_dir)
        store_path = self.context.store.path
        return (cache_dir() if store_path == ":memory:" else Path(store_path).parent) / "adapters"

    async def trained_adapter(self, generation: int, examples: list[TrainingExample],
                              parent: AdapterRecord | None) -> AdapterRecord:
        """Generation ``generation``'s adapter: the recorded one on replay, else trained now and recorded."""
        options = self.options
        assert isinstance(options, FineTuneReflectOptions)
        store, run_id = self.context.store, self.context.run_id
        digest = data_hash(examples)
        found = store.adapter(run_id, generation)
        if found is not None:
            if found.data_hash != digest:
                raise StabilityError(f"run {run_id}: generation {generation}'s training data now hashes to "
                                     f"{digest}, not the recorded {found.data_hash}; the replay diverged")
            folder = Path(found.path)
            if not folder.is_dir() or folder_hash(folder) != found.content_hash:
                raise StabilityError(f"{folder}: the adapter of generation {generation} is missing or changed "
                                     f"(recorded {found.content_hash}); restore it to resume this run")
            return found
        base_params = options.trainer if generation == 0 else (options.trainer_next or options.trainer)
        params = base_params.model_copy(update={"seed": derive_seed(self.context.seed, generation, "train")})
        hf = self.model
        assert isinstance(hf, HFModel)
        folder = self.adapters_root() / run_id / f"gen-{generation:02d}"
        init = Adapter(path=parent.path, hash=parent.content_hash) if parent else None
        result = await asyncio.to_thread(train_lora, hf.base, examples, params, folder, init)
        record = AdapterRecord(
            id=f"{run_id}:gen-{generation}", run_id=run_id, generation=generation,
            parent_id=parent.id if parent else None, base_model=hf.name, base_params=hf.with_adapter(None).describe(),
            path=result.adapter.path, content_hash=result.adapter.hash, data_hash=digest,
            data=[e.model_dump() for e in examples], trainer=params.model_dump(), losses=result.losses,
            loss_before=result.loss_before, loss_after=result.loss_after,
            train_seconds=result.seconds, created_at=now())
        store.insert_adapter(record)
        return record

    def summarise(self, generation: int, adapter: AdapterRecord, revision: RevisionRecord, before: Constitution,
                  after: Constitution, n_parsed: int, n_changed: int, n_traces: int, template_hash: str) -> None:
        self.context.store.insert_generation(GenerationRecord(
            run_id=self.context.run_id, generation=generation, adapter_id=adapter.id, revision_id=revision.id,
            previous_hash=before.hash, constitution_hash=after.hash, n_traces=n_traces, n_parsed=n_parsed,
            n_changed=n_changed, share_kept=share_kept(before, after), set_distance=set_distance(before, after),
            reflect_template_hash=template_hash, created_at=now()))


def consensus(current: Constitution, answers: list[AnswerParse]) -> tuple[Constitution, int, int]:
    """(the most common outcome, parsed traces, traces proposing a change); a decline counts as ``current``."""
    outcomes: list[Constitution] = []
    for answer in answers:
        if answer.kind == "no_change":
            outcomes.append(current)
        elif answer.kind == "list" and answer.constitution is not None:
            outcomes.append(answer.constitution)
    if not outcomes:
        return current, 0, 0
    counts = collections.Counter(c.hash for c in outcomes)
    best = max(counts.values())
    winner = next(c for c in outcomes if counts[c.hash] == best)
    return winner, len(outcomes), sum(c.hash != current.hash for c in outcomes)


def share_kept(before: Constitution, after: Constitution) -> float:
    """Share of ``before``'s principles found in ``after``, by exact match of normalised principles."""
    old = set(before.principles)
    return len(old & set(after.principles)) / len(old) if old else 1.0


def set_distance(before: Constitution, after: Constitution) -> float:
    """Jaccard distance between the two principle sets (exact normalised match): 0 same, 1 disjoint."""
    a, b = set(before.principles), set(after.principles)
    return 1.0 - len(a & b) / len(a | b) if a | b else 0.0


# -- reading a run back: the per-generation summary the analysis uses -------------------------------------------


class GenerationSummary(GenerationRecord):
    """A stored generation, with its adapter's hash and losses, and the caller's distance measure."""

    adapter_hash: str
    distance: float | None = Field(None, description="the caller's distance (e.g. embeddings); None if not given")
    loss_before: float = Field(description="mean loss over the adapter's training data before its training")
    loss_after: float = Field(description="the same after training")


def generation_summaries(db: Path | str | None, run_id: str,
                         distance: Callable[[Constitution, Constitution], float] | None = None
                         ) -> list[GenerationSummary]:
    """One row per generation. ``distance`` is the hook for other measures between successive constitutions
    (the analysis passes an embedding distance); exact-match share-kept and Jaccard distance are always there."""
    with Store.open(db, read_only=True) as store:
        run = store.run(run_id)
        adapters = {a.id: a for a in store.adapters(run.id)}
        rows = []
        for g in store.generations(run.id):
            adapter = adapters[g.adapter_id]
            measured = None
            if distance is not None:
                measured = distance(store.constitution(g.previous_hash), store.constitution(g.constitution_hash))
            rows.append(GenerationSummary(**g.model_dump(), adapter_hash=adapter.content_hash, distance=measured,
                                          loss_before=adapter.loss_before, loss_after=adapter.loss_after))
        return rows


# -- ready specs ----------------------------------------------------------------------------------------------


def load_spec(path: Path | str) -> dict[str, Any]:
    """A ready spec (``protocols/fine-tune-reflect/specs/*.yaml``) as ``IterateConfig`` fields, validated."""
    from stability.iteration import IterateConfig

    data, text = load_yaml(path, "a YAML spec of iterate settings")
    if not isinstance(data, dict):
        raise InputError(str(path), None, "a spec is a mapping of iterate settings with an options: mapping")
    try:
        config = IterateConfig(**{"protocol": FineTuneReflect.name, **data})
    except ValidationError as err:
        raise invalid(err, str(path), text) from None
    try:
        FineTuneReflectOptions(**config.options)
    except ValidationError as err:
        raise invalid(err, str(path), text, prefix=("options",)) from None
    return config.model_dump()
