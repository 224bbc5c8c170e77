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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ConfigDict, Field

from stability.bounds import Budget as BudgetAmount
from stability.bounds import check
from stability.calls import BudgetExceeded, Flights
from stability.engine import ModelPool, Prepared, ReadOnce, create_run, execute, prepare, prepare_resume
from stability.errors import InputError, StabilityError
from stability.experiment.estimate import Estimate, estimate
from stability.experiment.spec import ExperimentSpec, call_slots, cell_key, expand, load_spec, parallel_runs
from stability.models.base import Model
from stability.prices import PriceTable, load_prices
from stability.records import CellRecord, ExperimentRecord, now
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


class Limits:
    """Per-provider call limits, shared by every run of the experiment."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        self.limiters: dict[str, AsyncLimiter] = {}

    @asynccontextmanager
    async def __call__(self, model: Model) -> AsyncIterator[None]:
        prefix = model.name.split("/", 1)[0]
        if prefix not in self.semaphores:
            size = self.spec.concurrency.get(prefix, self.spec.concurrency.get("default", 4))
            self.semaphores[prefix] = asyncio.Semaphore(size)
            rate = self.spec.rate_limits.get(prefix)
            if rate:
                self.limiters[prefix] = AsyncLimiter(rate, 60)
        async with self.semaphores[prefix]:
            limiter = self.limiters.get(prefix)
            if limiter is not None:
                await limiter.acquire()
            yield


class Budget:
    """The experiment's spending: read from the store once (earlier sessions' calls), then kept up to date by the
    call path as each paid call is stored, so checking it before every call costs no query."""

    def __init__(self, store: Store, experiment_id: str, max_cost: float | None) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self.max_cost = max_cost
        self.reached = False
        self.running_total: float | None = None

    def spent(self) -> float:
        return self.store.experiment_spent(self.experiment_id)

    def check(self) -> None:
        if self.max_cost is None:
            return
        if self.running_total is None:
            self.running_total = self.spent()
        if self.reached or self.running_total >= self.max_cost:
            self.reached = True
            raise BudgetExceeded(f"budget of ${self.max_cost:.4f} reached")

    def paid(self, cost_usd: float) -> None:
        if self.running_total is not None:
            self.running_total += cost_usd


def run_experiment(spec_path: Path | str, db: Path | str | None = None, dry_run: bool = False,
                   max_cost: float | None = None, resume: bool = False, prices_file: Path | str | None = None,
                   on_cell: Callable[[CellRecord], None] | None = None) -> ExperimentResult:
    if max_cost is not None:
        check(max_cost, BudgetAmount, "--max-cost")
    spec = load_spec(spec_path)
    try:
        cells = expand(spec, Path(spec_path))
        prices = PriceTable().with_overrides(spec.prices)
        if prices_file is not None:
            prices = prices.with_overrides(load_prices(prices_file))
        files = ReadOnce()  # every cell's templates and starting file, read once
        figures = estimate(cells, prices, files)  # validates every cell (files, options, model names), loads no model
    except InputError:
        raise  # it names its own file (a constitution, the prices file)
    except StabilityError as err:  # a cell the spec describes is invalid: name the spec
        raise InputError(str(spec_path), None, str(err)) from None
    result = ExperimentResult(experiment_id=spec.experiment_id, estimate=figures, dry_run=dry_run, cells=len(cells),
                              cache=spec.cache_scope(), parallel_runs=parallel_runs(spec, cells),
                              concurrency=call_slots(spec, cells))
    if dry_run:
        return result
    if max_cost is not None:
        unpriced = sorted({c.model for c in cells if prices.price(c.model) is None}
                          | {m for c in cells for m in c.roles.values() if prices.price(m) is None})
        if unpriced:
            raise StabilityError(f"--max-cost cannot be enforced: no price for {', '.join(unpriced)} "
                                 "(add them to the spec's prices: or pass --prices FILE)")
    pool = ModelPool()
    prepared = [prepare(config, pool, files) for config in cells]
    with Store.open(db, create=not resume) as store:
        if resume and store.experiment(spec.experiment_id) is None:
            raise StabilityError(f"{spec_path}: no experiment {spec.experiment_id} to resume; run it without --resume")
        record = ExperimentRecord(id=result.experiment_id, name=spec.name, spec=spec.model_dump(mode="json"),
                                  spec_path=str(spec_path), created_at=now())
        store.put_experiment(record, [CellRecord(experiment_id=result.experiment_id, cell=cell_key(c), position=i,
                                                 config=c.model_dump(mode="json")) for i, c in enumerate(cells)])
        budget = Budget(store, spec.experiment_id, max_cost)
        asyncio.run(_run_cells(store, spec, prepared, pool, prices, budget, on_cell, result.parallel_runs))
        final = store.cells(spec.experiment_id)
        result.done = sum(c.status == "done" for c in final)
        result.failed = sum(c.status == "failed" for c in final)
        result.not_started = sum(c.status == "not_started" for c in final)
        result.spent_usd = budget.spent()
        result.budget_reached = budget.reached
        result.runs = [c.run_id for c in final if c.run_id]
    return result


async def _run_cells(store: Store, spec: ExperimentSpec, prepared: list[Prepared], pool: ModelPool,
                     prices: PriceTable, budget: Budget, on_cell: Callable[[CellRecord], None] | None,
                     parallel: int) -> None:
    limits = Limits(spec)
    flights = Flights()  # identical questions of two runs in flight at once are sent once
    slots = asyncio.Semaphore(parallel)
    experiment_id = spec.experiment_id  # a hash of the whole spec: computed once
    by_key = {c.cell: c for c in store.cells(experiment_id)}

    async def one(item: Prepared) -> None:
        cell = by_key[cell_key(item.config)]
        if cell.status == "done":
            return
        async with slots:
            if budget.reached:
                return
            if cell.run_id:  # started before: replay it, so no completed call is sent again
                run = store.run(cell.run_id)
                item = prepare_resume(store, run, pool)
                store.reopen_run(run.id)
            else:
                run = create_run(store, item)
            store.set_cell(experiment_id, cell.cell, "running", run.id)
            status = "failed"
            try:
                outcome = await execute(store, run, item, prices=prices, budget=budget, limiter=limits,
                                        flights=flights)
                status = outcome.status
            except BudgetExceeded:
                pass
            except StabilityError:
                pass  # stored on the run; the experiment goes on with the other cells
            finally:
                final = "done" if status == "done" else "failed"
                store.set_cell(experiment_id, cell.cell, final, run.id)  # the same columns as "running": one UPDATE
                if on_cell is not None:
                    on_cell(cell.model_copy(update={"status": final, "run_id": run.id}))

    tasks = [asyncio.ensure_future(one(item)) for item in prepared]
    try:
        await asyncio.gather(*tasks)
    finally:  # one cell failing unexpectedly stops the others (interrupted, resumable) before clients close
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pool.aclose()


