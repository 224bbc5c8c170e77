"""Run one protocol over one model and one constitution: ``iterate`` starts a run, ``resume`` continues one.

Everything that can be wrong with the input (the constitution file, the model name, the protocol and its
options, the templates) is checked before the database is opened, so bad input writes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stability.calls import CallPath
from stability.constitution import Constitution, parse_file
from stability.errors import StabilityError
from stability.models.base import GenerateConfig, Model, get_model
from stability.protocols.base import Protocol, RunContext, StepEvent, Templates, protocol_class
from stability.provenance import git_commit, package_version
from stability.redaction import redact
from stability.store.records import RevisionRecord, RunRecord
from stability.store.store import Store, now


class IterateConfig(BaseModel):
    """Everything needed to re-run a run; stored whole on the run."""

    model_config = ConfigDict(extra="forbid")

    protocol: str = "fresh-instance"
    model: str
    constitution: str
    seed: int = 0
    temperature: float = 1.0
    max_tokens: int = Field(1024, ge=1)
    top_p: float | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    use_cache: bool = True

    def generate(self) -> GenerateConfig:
        return GenerateConfig(temperature=self.temperature, max_tokens=self.max_tokens, top_p=self.top_p)


class RunResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: RunRecord
    revisions: list[RevisionRecord]
    sent: int = Field(description="requests sent to the provider by this process (retries included)")


def _options(cls: type[Protocol], values: dict[str, Any]) -> BaseModel:
    try:
        return cls.Options(**values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise StabilityError(f"protocol {cls.name}: option {where}: {first['msg']}") from None


def iterate(config: IterateConfig, db: Path | str | None = None,
            on_step: Callable[[StepEvent], None] | None = None) -> RunResult:
    cls = protocol_class(config.protocol)
    options = _options(cls, config.options)
    max_principles = getattr(options, "max_principles", 100)
    start = parse_file(config.constitution, max_principles=max_principles)
    templates = Templates(cls.name)
    model = get_model(config.model)
    cls.check(model, options)
    config = config.model_copy(update={"model": model.name})
    store = Store.open(db)
    try:
        run = RunRecord(
            id="r-" + uuid.uuid4().hex[:12], protocol=cls.name, model=model.name, model_params=model.describe(),
            config=config.model_dump(), seed=config.seed, start_hash=start.hash, template_hash=templates.hash,
            package_version=package_version(), git_commit=git_commit(), created_at=now(),
        )
        with store.transaction():
            store.insert_run(run)
        store.put_constitution(start)
        store.add_source(start, config.constitution)
        return _drive(store, run, model, cls, options, start, config, on_step)
    finally:
        store.close()


def resume(run_id: str, db: Path | str | None = None,
           on_step: Callable[[StepEvent], None] | None = None) -> RunResult:
    """Continue a killed or failed run by replaying it: completed calls come from the store, not the model."""
    store = Store.open(db)
    try:
        run = store.run(run_id)
        if run.status == "done":
            raise StabilityError(f"run {run.id} already finished ({run.stop_reason}); nothing to resume")
        config = IterateConfig(**run.config)
        cls = protocol_class(run.protocol)
        templates = Templates(cls.name)
        if templates.hash != run.template_hash:
            raise StabilityError(
                f"run {run.id}: the templates in {templates.folder} changed since the run started; "
                "resuming would ask different questions (restore them, or start a new run)")
        options = _options(cls, config.options)
        model = get_model(run.model)
        start = store.constitution(run.start_hash)
        store.reopen_run(run.id)
        return _drive(store, run, model, cls, options, start, config, on_step)
    finally:
        store.close()


def _drive(store: Store, run: RunRecord, model: Model, cls: type[Protocol], options: BaseModel,
           start: Constitution, config: IterateConfig, on_step: Callable[[StepEvent], None] | None) -> RunResult:
    calls = CallPath(store, model, run.id, use_cache=config.use_cache)
    context = RunContext(run_id=run.id, seed=run.seed, generate=config.generate(), store=store, calls=calls,
                         on_step=on_step or (lambda event: None))
    protocol = cls(context, options)
    try:
        stop = asyncio.run(protocol.run(start))
    except KeyboardInterrupt:
        store.finish_run(run.id, "failed", "interrupted", "interrupted by the user; resume with --resume")
        raise
    except StabilityError as err:
        store.finish_run(run.id, "failed", "error", redact(str(err)))
        raise
    except Exception as err:
        store.finish_run(run.id, "failed", "error", redact(f"{type(err).__name__}: {err}"))
        raise
    store.finish_run(run.id, stop.status, stop.reason, stop.error)
    return RunResult(run=store.run(run.id), revisions=store.revisions(run.id), sent=calls.sent)

