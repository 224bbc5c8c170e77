"""Run one protocol over one model and one constitution: ``iterate`` starts a run, ``resume`` continues one.

Everything that can be wrong with the input (the constitution file, the model names, the protocol, its options
and the files they name, the templates) is checked by :func:`prepare` before the database is opened, so bad
input writes nothing. Experiments prepare every cell first, then execute them concurrently with
:func:`execute`.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stability.bounds import MaxTokens, Seed, Temperature, TopP
from stability.calls import BudgetExceeded, CallPath, Flights, Spending
from stability.constitution import Constitution, parse_file
from stability.errors import StabilityError
from stability.models.base import GenerateConfig, Model, check_model_name, close_models, get_model
from stability.prices import PriceTable
from stability.protocols.base import Protocol, RunContext, StepEvent, Templates, protocol_class
from stability.provenance import git_commit, package_version
from stability.redaction import redact
from stability.store.records import RevisionRecord, RunRecord
from stability.store.store import Store, now
from stability.yaml_location import first_problem, where

OnStep = Callable[[StepEvent], None]


class IterateConfig(BaseModel):
    """Everything needed to re-run a run; stored whole on the run."""

    model_config = ConfigDict(extra="forbid")

    protocol: str = "fresh-instance"
    model: str
    constitution: str | None = Field(None, description="starting file; not needed from a blank slate")
    roles: dict[str, str] = Field(default_factory=dict, description="model ids by role: editor, judge, agents")
    seed: Seed = 0
    temperature: Temperature = 1.0
    max_tokens: MaxTokens = 1024
    top_p: TopP | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    use_cache: bool = True

    def generate(self) -> GenerateConfig:
        return GenerateConfig(temperature=self.temperature, max_tokens=self.max_tokens, top_p=self.top_p)


class RunResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: RunRecord
    revisions: list[RevisionRecord]
    sent: int = Field(description="requests sent to the provider by this process (retries included)")


@dataclass
class Prepared:
    """A validated run, ready to execute: nothing has been written yet."""

    config: IterateConfig
    cls: type[Protocol]
    options: BaseModel
    start: Constitution
    model: Model
    roles: dict[str, Model]
    template_hash: str


def _options(cls: type[Protocol], values: dict[str, Any]) -> BaseModel:
    try:
        return cls.Options(**values)
    except ValidationError as err:
        loc, message = first_problem(err)
        if err.errors()[0]["type"] == "extra_forbidden":
            message = "unknown option"
        raise StabilityError(f"protocol {cls.name}: " + (f"option {where(loc)}: " if loc else "") + message) \
            from None


def template_hash(cls: type[Protocol], options: BaseModel) -> str:
    hashes = [Templates(name).hash for name in cls.template_names(options)]
    if len(hashes) == 1:
        return hashes[0]
    return "sha256:" + hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def prepare(config: IterateConfig, models: dict[str, Model] | None = None) -> Prepared:
    """Validate a configuration completely, without writing anything. ``models`` shares loaded models."""
    cls, options, start, hashed = validate(config)
    model, roles = _models(config, cls, options, models)
    return Prepared(config.model_copy(update={"model": model.name}), cls, options, start, model, roles, hashed)


def validate(config: IterateConfig) -> tuple[type[Protocol], BaseModel, Constitution, str]:
    """Check the protocol, its options, the files they name, and the model names, loading no model."""
    cls = protocol_class(config.protocol)
    options = _options(cls, config.options)
    max_principles = getattr(options, "max_principles", 100)
    blank = cls.name == "blank-slate" or getattr(options, "from_blank", False)
    if config.constitution:
        start = parse_file(config.constitution, max_principles=max_principles)
    elif blank:
        start = Constitution(principles=())
    else:
        raise StabilityError(f"protocol {cls.name}: give a constitution (or start from a blank slate)")
    cls.check(options, start)
    for name in [config.model, *cls.role_models(options).values(), *config.roles.values()]:
        check_model_name(name)
    return cls, options, start, template_hash(cls, options)


def _models(config: IterateConfig, cls: type[Protocol], options: BaseModel,
            models: dict[str, Model] | None) -> tuple[Model, dict[str, Model]]:
    """The subject and the role models, each loaded once (``models`` is shared across an experiment's cells)."""
    models = {} if models is None else models

    def resolve(name: str) -> Model:
        if name not in models:
            models[name] = get_model(name)
        return models[name]

    roles = {role: resolve(name) for role, name in {**cls.role_models(options), **config.roles}.items()}
    subject = resolve(config.model)
    cls.check_model(subject, options)
    return subject, roles


def create_run(store: Store, prepared: Prepared) -> RunRecord:
    config = prepared.config
    run = RunRecord(
        id="r-" + uuid.uuid4().hex[:12], protocol=prepared.cls.name, model=prepared.model.name,
        model_params={"subject": prepared.model.describe(),
                      **{role: m.describe() for role, m in prepared.roles.items()}},
        config=config.model_dump(), seed=config.seed, start_hash=prepared.start.hash,
        template_hash=prepared.template_hash, package_version=package_version(), git_commit=git_commit(),
        created_at=now(),
    )
    store.insert_run(run)
    store.put_constitution(prepared.start)
    if config.constitution:
        store.add_source(prepared.start, config.constitution)
    return run


def iterate(config: IterateConfig, db: Path | str | None = None, on_step: OnStep | None = None) -> RunResult:
    prepared = prepare(config)
    with Store.open(db) as store:
        run = create_run(store, prepared)
        calls = asyncio.run(_closing(execute(store, run, prepared, on_step), prepared))
        return RunResult(run=store.run(run.id), revisions=store.revisions(run.id), sent=calls.sent)


def prepare_resume(store: Store, run: RunRecord, models: dict[str, Model] | None = None) -> Prepared:
    """Re-validate a stored run for resuming from its stored start; refuse if its templates changed."""
    try:
        config = IterateConfig(**run.config)
    except ValidationError as err:  # stored before its values were range-checked (a temperature of nan)
        loc, message = first_problem(err)
        raise StabilityError(f"run {run.id} cannot be resumed: its {where(loc)} is invalid ({message}); "
                             "start a new run") from None
    cls = protocol_class(run.protocol)
    options = _options(cls, config.options)
    hashed = template_hash(cls, options)
    if hashed != run.template_hash:
        raise StabilityError(
            f"run {run.id}: the prompt templates of {cls.name} changed since the run started; "
            "resuming would ask different questions (restore them, or start a new run)")
    start = store.constitution(run.start_hash)
    cls.check(options, start)
    model, roles = _models(config, cls, options, models)
    return Prepared(config, cls, options, start, model, roles, hashed)


def resume(run_id: str, db: Path | str | None = None, on_step: OnStep | None = None) -> RunResult:
    """Continue a killed or failed run by replaying it: completed calls come from the store, not the model."""
    with Store.open(db, create=False) as store:
        run = store.run(run_id)
        if run.status == "done":
            raise StabilityError(f"run {run.id} already finished ({run.stop_reason}); nothing to resume")
        prepared = prepare_resume(store, run)
        store.reopen_run(run.id)
        calls = asyncio.run(_closing(execute(store, run, prepared, on_step), prepared))
        return RunResult(run=store.run(run.id), revisions=store.revisions(run.id), sent=calls.sent)


async def _closing(work: Awaitable[CallPath], prepared: Prepared) -> CallPath:
    """Await ``work``, then close the models' SDK clients inside the loop that made them."""
    try:
        return await work
    finally:
        await close_models([prepared.model, *prepared.roles.values()])


async def execute(store: Store, run: RunRecord, prepared: Prepared, on_step: OnStep | None = None,
                  prices: PriceTable | None = None, budget: Spending | None = None,
                  limiter: Callable[[Model], AbstractAsyncContextManager[Any]] | None = None,
                  flights: Flights | None = None) -> CallPath:
    """Run (or replay) the protocol and record how it ended. Returns the call path (for its counters)."""
    calls = CallPath(store, prepared.model, run.id, use_cache=prepared.config.use_cache, prices=prices, budget=budget,
                     limiter=limiter, flights=flights)
    context = RunContext(run_id=run.id, seed=run.seed, generate=prepared.config.generate(), store=store,
                         calls=calls, on_step=on_step or (lambda event: None), roles=prepared.roles)
    protocol = prepared.cls(context, prepared.options)
    try:
        stop = await protocol.run(prepared.start)
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
    calls.stop = stop
    return calls
