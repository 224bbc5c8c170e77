"""The run object: everything a protocol may do during one run, and nothing more.

Contract: a protocol decides; the run object acts. It is the protocol's only way to
- ask a model (:meth:`Run.ask`, through the one call path: cache, retries, persisted before the answer is used),
- record a node visit and the edge that led to it (:meth:`Run.record`),
- emit extra rows (:meth:`Run.emit`: ratings, generation summaries), which the engine writes,
- read its prompt templates (:meth:`Run.templates`: read once by the engine, the very bytes that are hashed),
- learn what a model can do (:meth:`Run.traits`) without holding it,
- train the subject and switch its adapter (:meth:`Run.train_adapter`, :meth:`Run.use_adapter`): model
  lifecycles belong to the engine;
- embed constitutions (:meth:`Run.embed`), through the analysis embedder and its cache, for decisions that compare
  meanings.

Every model role (subject, teacher, judge, agents) is resolved, opened and closed by the engine; a role that was
given no model of its own is played by the subject. Protocols are deterministic given their calls' answers, which
is what makes ``--resume`` a replay: every completed call is answered from the store, and recorded steps are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stability.calls import CallPath
from stability.constitution import Constitution
from stability.engine.templates import Templates, TemplateSet
from stability.errors import StabilityError
from stability.finetune import Adapter, TrainerParams, TrainingExample, data_hash, folder_hash
from stability.models.base import Model
from stability.records import (
    AdapterRecord,
    CallRecord,
    Decision,
    EdgeKind,
    EdgeRecord,
    GenerationRecord,
    ProbeRecord,
    RatingRecord,
    RevisionRecord,
    now,
)
from stability.store.store import Store
from stability.vocabulary import GenerateConfig, Message, ModelTraits, derive_seed

EDGE_KIND: dict[Decision, EdgeKind] = {"changed": "edit", "declined": "decline", "parse_failure": "parse_failure",
                                       "truncated": "truncated",
                                       "error": "error", "authored": "author"}
SUBJECT = "subject"

#: rows a protocol may emit besides its revisions
Emitted = RatingRecord | GenerationRecord


@dataclass(frozen=True)
class StepEvent:
    """A recorded step, as progress displays see it."""

    step: int
    decision: str
    constitution_hash: str
    n_principles: int
    detail: str | None = None
    total: int | None = None  #: the highest step the run may record (its protocol's ``step_bound``)
    unit: str = "steps"  #: what a step is (its protocol's ``step_unit``: generations, trials, steps)


class Run:
    """One run, as its protocol sees it. Made by the engine; a protocol never builds one."""

    def __init__(self, *, run_id: str, seed: int, protocol: str, generate: GenerateConfig, store: Store,
                 calls: CallPath, models: dict[str, Model], templates: TemplateSet,
                 on_step: Callable[[StepEvent], None] | None = None, step_total: int | None = None,
                 step_unit: str = "steps") -> None:
        if SUBJECT not in models:
            raise StabilityError(f"run {run_id}: no subject model")
        self.run_id = run_id
        self.seed = seed
        self.protocol = protocol
        self.generate = generate
        self._store = store
        self._calls = calls
        self._models = dict(models)
        self._subject = models[SUBJECT]
        self._templates = templates
        self._on_step = on_step or (lambda event: None)
        self._step_total = step_total
        self._step_unit = step_unit
        self._embedders: dict[str, Any] = {}

    # -- reading ------------------------------------------------------------------------------------------------

    def templates(self, folder: str | None = None) -> Templates:
        """The protocol's own template folder, or another one it declared (e.g. ``blank-slate``)."""
        return self._templates[folder or self.protocol]

    def traits(self, role: str = SUBJECT) -> ModelTraits:
        return self._model(role).traits()

    def _model(self, role: str) -> Model:
        return self._models.get(role, self._models[SUBJECT])

    # -- asking -------------------------------------------------------------------------------------------------

    async def ask(self, messages: list[Message], step: int, purpose: str, config: GenerateConfig | None = None,
                  role: str = SUBJECT) -> CallRecord:
        """Ask the model playing ``role`` through the call path; the answer is stored before it is returned.

        The seed is derived from the run seed, the step and the purpose, so every question is its own sample.
        Raises :class:`stability.vocabulary.CallFailed` (already stored) when the call fails for good.
        """
        base = config or self.generate
        seeded = base.model_copy(update={"seed": derive_seed(self.seed, step, purpose)})
        return await self._calls(messages, seeded, step=step, purpose=purpose, model=self._model(role))

    # -- recording ----------------------------------------------------------------------------------------------

    def record(self, step: int, constitution: Constitution, decision: Decision, parent: RevisionRecord | None,
               calls: list[CallRecord], cycle_to: str | None = None, detail: str | None = None) -> RevisionRecord:
        """Store the node visit for this step and the edge from its parent (idempotent on replay)."""
        digest = self._store.put_constitution(constitution)
        revision = RevisionRecord(id=f"{self.run_id}:{step}", run_id=self.run_id, step=step,
                                  constitution_hash=digest, parent_id=parent.id if parent else None,
                                  decision=decision, cycle_to=cycle_to, detail=detail, created_at=now())
        edge = None
        if parent is not None:
            edge = EdgeRecord(id=revision.id, run_id=self.run_id, source_id=parent.id, target_id=revision.id,
                              source_hash=parent.constitution_hash, target_hash=digest, kind=EDGE_KIND[decision],
                              protocol=self.protocol, call_ids=[c.id for c in calls])
        self._store.insert_revision(revision, edge)
        self._on_step(StepEvent(step, decision, digest, len(constitution.principles), detail,
                                total=self._step_total, unit=self._step_unit))
        return revision

    def record_probe(self, probe: ProbeRecord, proposed: Constitution | None) -> None:
        """Store one probe of a node (``stability probe``) and the constitution it proposed; idempotent on replay."""
        if proposed is not None:
            self._store.put_constitution(proposed)
        self._store.insert_probe(probe)

    def emit(self, records: Sequence[Emitted]) -> None:
        """Write extra rows the protocol produced (ratings, generation summaries); idempotent on replay."""
        ratings = [r for r in records if isinstance(r, RatingRecord)]
        if ratings:
            self._store.insert_ratings(ratings)
        for record in records:
            if isinstance(record, GenerationRecord):
                self._store.insert_generation(record)

    # -- the subject's weights ----------------------------------------------------------------------------------

    def use_adapter(self, adapter: AdapterRecord | None) -> None:
        """Let the subject generate through ``adapter`` from now on (``None``: the untuned subject)."""
        loaded = Adapter(path=adapter.path, hash=adapter.content_hash) if adapter else None
        self._models[SUBJECT] = self._subject.with_adapter(loaded)

    async def train_adapter(self, generation: int, examples: list[TrainingExample], params: TrainerParams,
                            parent: AdapterRecord | None, folder: str | None = None) -> AdapterRecord:
        """Generation ``generation``'s adapter of the subject: the recorded one on replay, else trained and recorded.

        Adapters are written under ``folder`` (default: ``adapters/`` beside the database) as ``RUN/gen-NN``.
        """
        digest = data_hash(examples)
        found = self._store.adapter(self.run_id, generation)
        if found is not None:
            if found.data_hash != digest:
                raise StabilityError(f"run {self.run_id}: generation {generation}'s training data now hashes to "
                                     f"{digest}, not the recorded {found.data_hash}; the replay diverged")
            stored = Path(found.path)
            if not stored.is_dir() or folder_hash(stored) != found.content_hash:
                raise StabilityError(f"{stored}: the adapter of generation {generation} is missing or changed "
                                     f"(recorded {found.content_hash}); restore it to resume this run")
            return found
        out = self._adapters_root(folder) / self.run_id / f"gen-{generation:02d}"
        init = Adapter(path=parent.path, hash=parent.content_hash) if parent else None
        result = await self._subject.train(examples, params, out, init)
        record = AdapterRecord(
            id=f"{self.run_id}:gen-{generation}", run_id=self.run_id, generation=generation,
            parent_id=parent.id if parent else None, base_model=self._subject.name,
            base_params=self._subject.with_adapter(None).describe(), path=result.adapter.path,
            content_hash=result.adapter.hash, data_hash=digest, data=[e.model_dump() for e in examples],
            trainer=params.model_dump(), losses=result.losses, loss_before=result.loss_before,
            loss_after=result.loss_after, train_seconds=result.seconds, created_at=now())
        self._store.insert_adapter(record)
        return record

    # -- meanings ------------------------------------------------------------------------------------------------

    def embed(self, constitutions: Sequence[Constitution], embedder: str) -> list[list[float]]:
        """Unit vectors of ``constitutions`` by ``embedder`` (``all-MiniLM-L6-v2``, or ``hashing`` for tests), loaded
        once per run, derived from their principles' vectors exactly as analysis derives them, and cached in the
        embedding cache, so a replay reads the very vectors the run decided with."""
        from stability.analysis.embeddings import embed_constitutions, get_embedder

        if embedder not in self._embedders:
            self._embedders[embedder] = get_embedder(embedder)
        vectors, _ = embed_constitutions(self._embedders[embedder], [c.principles for c in constitutions])
        return [[float(x) for x in row] for row in vectors]

    def _adapters_root(self, folder: str | None) -> Path:
        if folder:
            return Path(folder)
        if self._store.path == ":memory:":
            from stability.models.local import cache_dir

            return cache_dir() / "adapters"
        return Path(self._store.path).parent / "adapters"
