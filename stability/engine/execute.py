"""Executing a run: the engine owns every side effect of one run.

Contract: :func:`execute` takes the run's call path from its :class:`~stability.engine.session.CallSession`,
builds its :class:`~stability.engine.run.Run` object, hands it to the protocol, and records how the run ended (a
failure of any kind is stored on the run before it is raised). It returns a :class:`RunOutcome`: status, stop
reason, final node and the requests sent.
:func:`start_or_resume` is the one way a run begins (new, or replayed). :func:`iterate` and :func:`resume` are the
one-run entry points: prepare (nothing written on bad input), open the store, start or resume, execute in a call
session of their own, close the models inside the loop that made them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stability.budget import BudgetExceeded
from stability.engine.batcher import BatchEvent, check_no_pending_batches
from stability.engine.prepare import IterateConfig, ModelPool, Prepared, prepare, prepare_resume
from stability.engine.run import Run, StepEvent
from stability.engine.session import CallSession
from stability.errors import StabilityError
from stability.provenance import git_commit, package_version
from stability.records import RevisionRecord, RunRecord, now
from stability.redaction import redact
from stability.store.store import Store

OnStep = Callable[[StepEvent], None]
OnBatch = Callable[[BatchEvent], None]


class RunOutcome(BaseModel):
    """How one execution of a run ended."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="done | failed")
    stop_reason: str
    error: str | None = None
    final_hash: str | None = Field(None, description="the constitution of the last recorded node")
    sent: int = Field(description="requests sent to the provider by this process (retries included)")


class RunResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: RunRecord
    revisions: list[RevisionRecord]
    sent: int = Field(description="requests sent to the provider by this process (retries included)")


def create_run(store: Store, prepared: Prepared) -> RunRecord:
    """Store a new run (and its start) for a prepared configuration."""
    config = prepared.config
    run = RunRecord(
        id="r-" + uuid.uuid4().hex[:12], protocol=prepared.protocol.name, model=prepared.model.name,
        model_params={role: m.describe() for role, m in prepared.models.items()},
        # the template variant is stored even at its default, so analysis can group runs by it
        config={**config.model_dump(), "templates": config.templates}, seed=config.seed,
        start_hash=prepared.start.hash,
        template_hash=prepared.templates.hash, package_version=package_version(), git_commit=git_commit(),
        created_at=now(),
    )
    store.insert_run(run)
    store.put_constitution(prepared.start)
    if config.constitution:
        store.add_source(prepared.start, config.constitution)
    return run


async def execute(session: CallSession, run: RunRecord, prepared: Prepared, on_step: OnStep | None = None
                  ) -> RunOutcome:
    """Run (or replay) the protocol through the session's calls and record how it ended. In a batching session
    (``--batch``), the requests to models with a batch API go in provider batches."""
    store, batcher = session.store, session.batcher
    calls = session.for_run(run.id, prepared)
    last: list[str] = []

    def stepped(event: StepEvent) -> None:
        last[:] = [event.constitution_hash]
        if on_step is not None:
            on_step(event)

    handle = Run(run_id=run.id, seed=run.seed, protocol=prepared.protocol.name,
                 generate=prepared.config.generate(), store=store, calls=calls, models=prepared.models,
                 templates=prepared.templates, on_step=stepped, step_total=prepared.protocol.step_bound(),
                 step_unit=prepared.protocol.step_unit)
    batched = batcher.running() if batcher is not None and batcher.takes(prepared.model) else nullcontext()
    try:
        with batched:
            stop = await prepared.protocol.run(handle, prepared.start)
    except BudgetExceeded as err:
        store.finish_run(run.id, "failed", "budget", str(err))
        raise
    except (KeyboardInterrupt, asyncio.CancelledError):
        store.finish_run(run.id, "failed", "interrupted", "interrupted; resume with --resume")
        raise
    except StabilityError as err:
        store.finish_run(run.id, "failed", "error", redact(str(err)))
        raise
    except Exception as err:
        store.finish_run(run.id, "failed", "error", redact(f"{type(err).__name__}: {err}"))
        raise
    store.finish_run(run.id, stop.status, stop.reason, stop.error)
    return RunOutcome(status=stop.status, stop_reason=stop.reason, error=stop.error,
                      final_hash=last[0] if last else None, sent=calls.sent)


def start_or_resume(store: Store, pool: ModelPool, prepared: Prepared | None = None, run_id: str | None = None
                    ) -> tuple[RunRecord, Prepared]:
    """The one way a run begins: a new run of ``prepared``, stored; or (``run_id``) a run started before, prepared
    again from the store (its models, options and templates as it ran; refused if its templates changed) and
    reopened, so executing it replays it and no completed call is sent again. ``iterate``, ``resume``, an
    experiment's cells and a Ray shard's cell all begin here."""
    if run_id is None:
        if prepared is None:
            raise ValueError("start_or_resume: give a prepared configuration or a run id")
        return create_run(store, prepared), prepared
    run = store.run(run_id)
    prepared = prepare_resume(store, run, pool)
    store.reopen_run(run.id)
    return run, prepared


def iterate(config: IterateConfig, db: Path | str | None = None, on_step: OnStep | None = None,
            batch: bool = False, on_batch: OnBatch | None = None) -> RunResult:
    """Start one run: prepare it (bad input writes nothing), store it, execute it (``batch``: in provider
    batches, where the model has a batch API)."""
    pool = ModelPool()
    prepared = prepare(config, pool)
    with Store.open(db) as store:
        run, prepared = start_or_resume(store, pool, prepared)
        outcome = asyncio.run(_closing(_session(store, run, prepared, on_step, batch, on_batch), pool))
        return RunResult(run=store.run(run.id), revisions=store.revisions(run.id), sent=outcome.sent)


async def _session(store: Store, run: RunRecord, prepared: Prepared, on_step: OnStep | None, batch: bool,
                   on_batch: OnBatch | None) -> RunOutcome:
    """:func:`execute` in a call session of its own (``batch``: batching, open batches re-attached first)."""
    session = CallSession(store)
    if not batch:
        return await execute(session, run, prepared, on_step)
    async with session.batching(on_batch):
        return await execute(session, run, prepared, on_step)


def resume(run_id: str, db: Path | str | None = None, on_step: OnStep | None = None, batch: bool = False,
           on_batch: OnBatch | None = None) -> RunResult:
    """Continue a killed or failed run by replaying it: completed calls come from the store, not the model."""
    with Store.open(db, create=False) as store:
        run = store.run(run_id)
        if run.status == "done":
            raise StabilityError(f"run {run.id} already finished ({run.stop_reason}); nothing to resume")
        if not batch:
            check_no_pending_batches(store, [run.id], f"run {run.id}")
        pool = ModelPool()
        run, prepared = start_or_resume(store, pool, run_id=run.id)
        outcome = asyncio.run(_closing(_session(store, run, prepared, on_step, batch, on_batch), pool))
        return RunResult(run=store.run(run.id), revisions=store.revisions(run.id), sent=outcome.sent)


async def _closing(work: Any, pool: ModelPool) -> RunOutcome:
    """Await ``work``, then close the models' SDK clients inside the loop that made them."""
    try:
        outcome: RunOutcome = await work
        return outcome
    finally:
        await pool.aclose()
