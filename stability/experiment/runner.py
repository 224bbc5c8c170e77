"""Running an experiment: every cell prepared first (bad input writes nothing), then run concurrently.

- Concurrency and rate limits are per provider (the model id's prefix): an ``asyncio.Semaphore`` bounds calls in
  flight and ``aiolimiter`` bounds requests per minute.
- ``max_cost`` is a budget in US dollars over the experiment's paid calls. Before each call is sent the budget
  is checked; once it is spent, no new call or run starts, runs in flight stop with ``stop_reason = budget``
  (resumable), and cells never started stay ``not_started``. Re-running the spec (or ``--resume``) with a higher
  budget finishes only what is missing: finished runs are skipped and interrupted ones are replayed, so no
  completed call is sent again.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ConfigDict, Field

from stability.bounds import Budget as BudgetAmount
from stability.bounds import check
from stability.budget import Budget, BudgetExceeded
from stability.engine import (
    BatchEvent,
    CallSession,
    IterateConfig,
    ModelPool,
    Prepared,
    ReadOnce,
    execute,
    experiment_budget,
    prepare,
    start_or_resume,
)
from stability.engine.batcher import check_no_pending_batches
from stability.errors import InputError, StabilityError
from stability.experiment.estimate import Estimate, estimate
from stability.experiment.spec import ExperimentSpec, call_slots, cell_key, expand, load_spec, parallel_runs
from stability.models.base import Model
from stability.models.preload import preload
from stability.models.registry import canonical_name
from stability.prices import PriceTable, load_prices
from stability.records import CellRecord, ExperimentRecord, now
from stability.store.export import attach_cache_from, cache_source
from stability.store.store import Store


class ExperimentResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    estimate: Estimate
    dry_run: bool
    cells: int
    cache: str = Field(description="the cache scope of its runs: run | experiment | global")
    parallel_runs: int = Field(description="runs in progress at once (max_parallel_runs, or from concurrency)")
    concurrency: dict[str, int] = Field(description="calls in flight at most, per provider the cells use")
    done: int = 0
    failed: int = 0
    not_started: int = 0
    spent_usd: float = 0.0
    budget_reached: bool = False
    runs: list[str] = []
    batch: bool = False
    waves: int = Field(default=0, description="batch waves submitted by this session")
    batched_requests: int = Field(default=0, description="requests this session submitted in provider batches")


class Limits:
    """Per-provider call limits, shared by every run of the experiment."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        self.limiters: dict[str, AsyncLimiter] = {}

    @asynccontextmanager
    async def __call__(self, model: Model) -> AsyncIterator[None]:
        prefix = model.name.split("/", 1)[0]
        await self.acquire(prefix)
        try:
            yield
        finally:
            self.release(prefix)

    async def acquire(self, prefix: str) -> None:
        """Take a call slot of the provider ``prefix`` (and, with a rate limit, a request of its minute)."""
        if prefix not in self.semaphores:
            size = self.spec.concurrency.get(prefix, self.spec.concurrency.get("default", 4))
            self.semaphores[prefix] = asyncio.Semaphore(size)
            rate = self.spec.rate_limits.get(prefix)
            if rate:
                self.limiters[prefix] = AsyncLimiter(rate, 60)
        await self.semaphores[prefix].acquire()
        limiter = self.limiters.get(prefix)
        if limiter is not None:
            try:
                await limiter.acquire()
            except BaseException:
                self.semaphores[prefix].release()
                raise

    def release(self, prefix: str) -> None:
        self.semaphores[prefix].release()


def plan_experiment(spec_path: Path | str, max_cost: float | None = None, prices_file: Path | str | None = None,
                    batch: bool = False, files: ReadOnce | None = None
                    ) -> tuple[ExperimentSpec, list[IterateConfig], PriceTable, Estimate]:
    """Load and check a spec completely, writing nothing: its cells, prices and estimate. With a budget, every
    model must have a price. ``files``: every cell's templates and starting file, read once."""
    if max_cost is not None:
        check(max_cost, BudgetAmount, "--max-cost")
    spec = load_spec(spec_path)
    try:
        cells = expand(spec, Path(spec_path))
        prices = PriceTable().with_overrides(spec.prices)
        if prices_file is not None:
            prices = prices.with_overrides(load_prices(prices_file))
        # validates every cell (files, options, model names), loads no model
        figures = estimate(cells, prices, files, batch=batch)
    except InputError:
        raise  # it names its own file (a constitution, the prices file)
    except StabilityError as err:  # a cell the spec describes is invalid: name the spec
        raise InputError(str(spec_path), None, str(err)) from None
    if max_cost is not None:
        unpriced = sorted({c.model for c in cells if prices.price(c.model) is None}
                          | {m for c in cells for m in c.roles.values() if prices.price(m) is None})
        if unpriced:
            raise StabilityError(f"--max-cost cannot be enforced: no price for {', '.join(unpriced)} "
                                 "(add them to the spec's prices: or pass --prices FILE)")
    return spec, cells, prices, figures


def run_experiment(spec_path: Path | str, db: Path | str | None = None, dry_run: bool = False,
                   max_cost: float | None = None, resume: bool = False, prices_file: Path | str | None = None,
                   on_cell: Callable[[CellRecord], None] | None = None,
                   cache_from: Path | str | None = None, batch: bool = False,
                   on_batch: Callable[[BatchEvent], None] | None = None,
                   on_start: Callable[[int, int], None] | None = None) -> ExperimentResult:
    """Run (or estimate) a spec's grid. ``on_start(done, cells)`` is told, before any cell runs, how many of the
    grid's cells earlier sessions finished and how many it has; ``on_cell`` then hears of each cell that ends.
    ``cache_from``: another store (DuckDB file or export folder) whose calls
    answer this one's requests read-only, within the cache scope (never ``run``), recorded with ``cached_from``."""
    if cache_from is not None and not Path(cache_from).exists():
        raise StabilityError(f"{cache_from}: no such store for --cache-from")
    files = ReadOnce()  # every cell's templates and starting file, read once
    spec, cells, prices, figures = plan_experiment(spec_path, max_cost, prices_file, batch, files)
    result = ExperimentResult(experiment_id=spec.experiment_id, estimate=figures, dry_run=dry_run, cells=len(cells),
                              cache=spec.cache_scope(), batch=batch,
                              parallel_runs=len(cells) if batch else parallel_runs(spec, cells),
                              concurrency=call_slots(spec, cells))
    if dry_run:
        return result
    for model in sorted({canonical_name(m) for c in cells for m in (c.model, *c.roles.values())}):
        preload(model)  # each provider's SDK imports on a thread while the cells are prepared and the store made
    # each cell's key, once (registering and running both ask), from the spec's config: a prepared config names
    # its model canonically (gpt-4o -> openai/gpt-4o) and so keys differently
    keys = [cell_key(c) for c in cells]
    pool = ModelPool()
    prepared = [prepare(config, pool, files) for config in cells]
    with tempfile.TemporaryDirectory() as scratch:
        # an export is verified and loaded before the store is opened: a refused one writes nothing
        answers = None if cache_from is None else cache_source(Path(cache_from), Path(scratch) / "cache-from.duckdb")
        with Store.open(db, create=not resume) as store:
            if answers is not None:
                attach_cache_from(store, answers)
            if resume and store.experiment(spec.experiment_id) is None:
                raise StabilityError(f"{spec_path}: no experiment {spec.experiment_id} to resume; run it without "
                                     "--resume")
            register_experiment(store, spec, spec_path, cells, batch, keys)
            registered = store.cells(spec.experiment_id)  # read once: the start's count and the runs' cells
            if on_start is not None:
                on_start(sum(c.status == "done" for c in registered), len(cells))
            budget = experiment_budget(store, spec.experiment_id, max_cost)
            session = CallSession(store, prices=prices, budget=budget, limiter=Limits(spec))
            waves = asyncio.run(_run_cells(session, spec, prepared, pool, on_cell, result.parallel_runs, batch,
                                           on_batch, keys, registered))
            result.waves, result.batched_requests = waves
            final = store.cells(spec.experiment_id)
            result.done = sum(c.status == "done" for c in final)
            result.failed = sum(c.status == "failed" for c in final)
            result.not_started = sum(c.status == "not_started" for c in final)
            result.spent_usd = store.experiment_spent(spec.experiment_id)
            result.budget_reached = budget.reached
            result.runs = [c.run_id for c in final if c.run_id]
    return result


def register_experiment(store: Store, spec: ExperimentSpec, spec_path: Path | str, cells: list[IterateConfig],
                        batch: bool = False, keys: list[str] | None = None) -> ExperimentRecord:
    """Store the experiment and its cells (kept as they are when it exists), and return it. Unless this session
    runs in batch mode, refused while requests of its runs wait in open provider batches: they would be sent again
    while the batches bill. ``keys``: each cell's :func:`cell_key`, when the caller has them."""
    if not batch:
        check_no_pending_batches(store, [c.run_id for c in store.cells(spec.experiment_id) if c.run_id],
                                 str(spec_path))
    record = ExperimentRecord(id=spec.experiment_id, name=spec.name, spec=spec.model_dump(mode="json"),
                              spec_path=str(spec_path), created_at=now())
    keys = keys or [cell_key(c) for c in cells]
    store.put_experiment(record, [CellRecord(experiment_id=record.id, cell=keys[i], position=i,
                                             config=c.model_dump(mode="json")) for i, c in enumerate(cells)])
    return record


async def _run_cells(session: CallSession, spec: ExperimentSpec, prepared: list[Prepared], pool: ModelPool,
                     on_cell: Callable[[CellRecord], None] | None, parallel: int, batch: bool = False,
                     on_batch: Callable[[BatchEvent], None] | None = None, keys: list[str] | None = None,
                     registered: list[CellRecord] | None = None) -> tuple[int, int]:
    """Run the cells in one call session (its limits, budget and in-flight table shared by every run: identical
    questions of two runs in flight at once are sent once); (batch waves, batched requests) of this session.
    ``keys``: each prepared cell's key as registered (default: its config's); ``registered``: the experiment's
    cells as the store has them (default: read now)."""
    store = session.store
    # (in batch mode every run waits on its batch, so all of them run at once to fill the waves)
    slots = asyncio.Semaphore(parallel)
    by_key = {c.cell: c for c in (store.cells(spec.experiment_id) if registered is None else registered)}

    async def one(item: Prepared, key: str) -> None:
        cell = by_key[key]
        if cell.status == "done":
            return
        async with slots:
            if _reached(session):
                return
            final, run_id = await run_cell(session, cell, item, pool)
            if on_cell is not None:
                on_cell(cell.model_copy(update={"status": final, "run_id": run_id}))

    async def cells() -> None:
        tasks = [asyncio.ensure_future(one(item, key)) for item, key in
                 zip(prepared, keys or [cell_key(p.config) for p in prepared], strict=True)]
        try:
            await asyncio.gather(*tasks)
        finally:  # one cell failing unexpectedly stops the others (interrupted, resumable) before clients close
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    try:
        if not batch:
            await cells()
            return 0, 0
        # earlier sessions' batches: imported if done, else their requests join them
        async with session.batching(on_batch) as batcher:
            await cells()
        return batcher.wave, batcher.submitted
    finally:
        await pool.aclose()


def _reached(session: CallSession) -> bool:
    return isinstance(session.budget, Budget) and session.budget.reached


async def run_cell(session: CallSession, cell: CellRecord, item: Prepared | None, pool: ModelPool
                   ) -> tuple[str, str]:
    """Run one cell of an experiment in the session (replaying its run when it was started before; ``item`` may
    then be None); returns its final status (done | failed) and its run id. A failure is stored on the run; the
    experiment goes on with the other cells."""
    store = session.store
    run, item = start_or_resume(store, pool, item, cell.run_id)
    store.set_cell(cell.experiment_id, cell.cell, "running", run.id)
    status = "failed"
    try:
        outcome = await execute(session, run, item)
        status = outcome.status
    except (BudgetExceeded, StabilityError):
        pass  # stored on the run
    finally:
        final = "done" if status == "done" else "failed"
        store.set_cell(cell.experiment_id, cell.cell, final, run.id)  # the same columns as "running": one UPDATE
    return final, run.id
