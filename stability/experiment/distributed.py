"""An experiment's cells on Ray workers: ``stability run SPEC --ray [ADDRESS]``.

Ray schedules; we only say what a cell needs. The driver checks the spec completely (nothing written on bad input),
records the experiment in its store, and sends each unfinished cell to a Ray task:

- A task runs one cell through the same engine as a local run (:func:`stability.experiment.runner.run_cell`), in a
  *shard* of its own: a store file ``SHARDS/CELL.duckdb`` (default ``DB.shards/EXPERIMENT/``; on a cluster, a
  folder every machine sees). Every call is persisted in the shard before it is used, as locally.
- The driver merges each shard into its store as the cell finishes (:mod:`stability.store.merge`), advances the
  progress bar, and removes the shard of a finished cell.
- Spending is reported to a ledger actor per paid call; each worker checks the ledger's latest figure before
  every call (``LedgerBudget``), and once the budget (``--max-cost``) is spent no new cell starts. Calls share
  the spec's per-provider ``concurrency`` and ``rate_limits`` through one limits actor, so ten workers do not
  each send the allowed rate.
- A cell asks for the GPUs its protocol declares (``ReflectionProtocol.gpus``: fine-tune-reflect asks one).
- A lost worker: Ray runs the task again, and it resumes from its shard's calls (none is sent again). A driver
  crash: run the spec again with ``--ray``; the shards left behind are merged first, finished cells are skipped,
  and half-finished ones resume from their shards.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from stability.budget import Budget, BudgetExceeded
from stability.engine import CallSession, IterateConfig, ModelPool, prepare
from stability.errors import StabilityError
from stability.experiment.runner import ExperimentResult, Limits, plan_experiment, register_experiment, run_cell
from stability.experiment.spec import ExperimentSpec, call_slots, parallel_runs
from stability.models.base import Model
from stability.prices import PriceTable
from stability.protocols import protocol_class
from stability.records import CellRecord, ExperimentRecord
from stability.store.export import attach_cache_from, cache_source, copy_runs
from stability.store.merge import merge_into
from stability.store.store import Store


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise StabilityError("--ray needs the ray package: pip install 'stability[ray]'") from None
    return ray


class Ledger:
    """The experiment's spending, held by one Ray actor: a :class:`~stability.budget.Budget` every worker tells of
    its paid calls and asks before its calls."""

    def __init__(self, max_cost: float | None, spent: float) -> None:
        self.budget = Budget(max_cost, spent)
        self.workers: dict[str, int] = {}  # cell -> process id of the worker running it (tests kill one)

    def allowed(self) -> bool:
        return self.budget.allowed()

    def paid(self, cost_usd: float) -> bool:
        """Add a paid call; whether more may be sent."""
        self.budget.paid(cost_usd)
        return self.budget.allowed()

    def state(self) -> tuple[float, bool]:
        return self.budget.spent, self.budget.reached

    def started(self, cell: str, pid: int) -> None:
        self.workers[cell] = pid

    def running(self) -> dict[str, int]:
        return dict(self.workers)


class SharedLimits:
    """The spec's per-provider limits, held by one async Ray actor that every worker's calls go through."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.limits = Limits(spec)

    async def acquire(self, prefix: str) -> None:
        await self.limits.acquire(prefix)

    def release(self, prefix: str) -> None:
        self.limits.release(prefix)


class LedgerBudget:
    """The experiment's budget in a worker: the ledger actor's :class:`~stability.budget.Budget`, behind the
    :class:`~stability.budget.Spending` interface the call path asks. It never blocks on the ledger (a
    task blocked in ``ray.get`` lends its CPU to another task, and Ray starts one more worker process for it): it
    keeps the ledger's latest answer, refreshed by each paid call it reports and, between them, at most every
    ``REFRESH_S``. So a worker learns of the others' spending within a call or two: the budget can be overshot by
    the calls in flight, as locally, plus about one call per worker."""

    REFRESH_S = 0.5

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.allowed = True
        self.refreshed = 0.0
        self.pending: set[asyncio.Future[Any]] = set()

    async def refresh(self) -> bool:
        self.refreshed = time.monotonic()
        self.allowed = bool(await asyncio.wrap_future(self.ledger.allowed.remote().future()))
        return self.allowed

    def _follow(self, ref: Any) -> None:
        async def update() -> None:
            self.allowed = bool(await asyncio.wrap_future(ref.future())) and self.allowed

        task = asyncio.ensure_future(update())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def check(self) -> None:
        if not self.allowed:
            raise BudgetExceeded("budget reached")
        if time.monotonic() - self.refreshed > self.REFRESH_S:
            self.refreshed = time.monotonic()
            self._follow(self.ledger.allowed.remote())

    def paid(self, cost_usd: float) -> None:
        self._follow(self.ledger.paid.remote(cost_usd))

    def commit(self, cost_usd: float) -> None:
        """Ray cells run without ``--batch``: nothing is ever committed in a provider batch."""

    def release(self, cost_usd: float) -> None:
        """See :meth:`commit`."""


def _remote_limits(actor: Any) -> Callable[[Model], Any]:
    @asynccontextmanager
    async def limit(model: Model) -> AsyncIterator[None]:
        prefix = model.name.split("/", 1)[0]
        await actor.acquire.remote(prefix)
        try:
            yield
        finally:
            actor.release.remote(prefix)

    return limit


def run_cell_in_shard(experiment: dict[str, Any], cell: dict[str, Any], shard: str, prices: PriceTable,
                      ledger: Any, limits: Any, cache_from: str | None = None) -> tuple[str, str | None]:
    """A Ray task's body: run (or resume) one cell in its shard; returns (status, run id). ``not_started`` when the
    budget was spent before it began. ``cache_from``: a store file whose calls may answer, read-only."""
    record = CellRecord(**cell)
    ledger.started.remote(record.cell, os.getpid())
    with Store.open(shard) as store:
        if cache_from is not None:
            attach_cache_from(store, Path(cache_from))
        store.put_experiment(ExperimentRecord(**experiment), [record])
        current = store.cell(record.experiment_id, record.cell)
        if current.status == "done":
            return "done", current.run_id

        async def go() -> tuple[str, str | None]:
            budget = LedgerBudget(ledger)
            if not await budget.refresh():
                return "not_started", current.run_id
            pool = ModelPool()
            session = CallSession(store, prices=prices, budget=budget, limiter=_remote_limits(limits))
            try:  # a cell started before is prepared again from its run (start_or_resume)
                item = None if current.run_id else prepare(IterateConfig(**current.config), pool)
                return await run_cell(session, current, item, pool)
            finally:
                await pool.aclose()

        return asyncio.run(go())


def run_experiment_ray(spec_path: Path | str, db: Path | str | None = None, address: str | None = None,
                       max_cost: float | None = None, prices_file: Path | str | None = None,
                       on_cell: Callable[[CellRecord], None] | None = None, shards: Path | str | None = None,
                       max_retries: int = 3, cache_from: Path | str | None = None,
                       on_start: Callable[[int, int], None] | None = None) -> ExperimentResult:
    """Run a spec's unfinished cells on Ray (``address``: a cluster's, or None for a local one started here).
    ``cache_from``: another store (a DuckDB file, or an export folder, loaded once into the shards folder) whose
    calls may answer, read-only, as :func:`stability.experiment.runner.run_experiment`'s."""
    if cache_from is not None and not Path(cache_from).exists():
        raise StabilityError(f"{cache_from}: no such store for --cache-from")
    spec, cells, prices, figures = plan_experiment(spec_path, max_cost, prices_file)
    ray = _ray()
    result = ExperimentResult(experiment_id=spec.experiment_id, estimate=figures, dry_run=False, cells=len(cells),
                              cache=spec.cache_scope(), parallel_runs=parallel_runs(spec, cells),
                              concurrency=call_slots(spec, cells))
    if not ray.is_initialized():
        ray.init(address=None if address in (None, "local") else address, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    gpus_available = ray.cluster_resources().get("GPU", 0) > 0
    with Store.open(db) as store:
        folder = Path(shards) if shards else Path(f"{store.path}.shards") / spec.experiment_id
        folder.mkdir(parents=True, exist_ok=True)
        experiment = register_experiment(store, spec, spec_path, cells)
        for shard in sorted(folder.glob("*.duckdb")):  # left by a driver that crashed: merged first
            _merge_shard(store, shard, spec.experiment_id)
        answers = None if cache_from is None else str(_cache_source(Path(cache_from), folder))
        ledger = ray.remote(Ledger).options(num_cpus=0, name=f"ledger-{spec.experiment_id}").remote(
            max_cost, store.experiment_spent(spec.experiment_id))
        limits = ray.remote(SharedLimits).options(num_cpus=0, max_concurrency=1000).remote(spec)
        task = ray.remote(run_cell_in_shard)
        waiting = [c for c in store.cells(spec.experiment_id) if c.status != "done"]
        if on_start is not None:  # (done before, cells in the grid), as run_experiment's
            on_start(len(cells) - len(waiting), len(cells))
        running: dict[Any, CellRecord] = {}
        slots = result.parallel_runs  # Ray's CPUs limit it further
        stopped = False
        while waiting or running:
            while waiting and len(running) < slots and not stopped:
                cell = waiting.pop(0)
                shard = folder / f"{cell.cell}.duckdb"
                if cell.run_id and not shard.exists():  # started elsewhere (a local run, a merged shard)
                    _seed_shard(store, shard, cell.run_id)
                gpus = protocol_class(cell.config["protocol"]).gpus if gpus_available else 0
                ref = task.options(num_gpus=gpus, max_retries=max_retries).remote(
                    experiment.model_dump(mode="json"), cell.model_dump(mode="json"),
                    str(shard), prices, ledger, limits, answers)
                running[ref] = cell
            if not running:
                break
            done, _ = ray.wait(list(running), num_returns=1)
            cell = running.pop(done[0])
            try:
                status, run_id = ray.get(done[0])
            except Exception:  # the task failed for good (every retry lost its worker): resumable later
                status, run_id = "failed", None
            _merge_shard(store, folder / f"{cell.cell}.duckdb", spec.experiment_id)
            stopped = stopped or ray.get(ledger.state.remote())[1]
            if status != "not_started" and on_cell is not None:
                on_cell(cell.model_copy(update={"status": status, "run_id": run_id}))
        spent, reached = ray.get(ledger.state.remote())
        final = store.cells(spec.experiment_id)
        result.done = sum(c.status == "done" for c in final)
        result.failed = sum(c.status == "failed" for c in final)
        result.not_started = sum(c.status == "not_started" for c in final)
        result.spent_usd = store.experiment_spent(spec.experiment_id)
        result.budget_reached = reached
        result.runs = [c.run_id for c in final if c.run_id]
        for handle in (ledger, limits):
            ray.kill(handle)
    return result


def _cache_source(source: Path, folder: Path) -> Path:
    """A store file the workers can attach: the file itself, or an export folder loaded once beside the shards."""
    if not source.is_dir():
        return source
    loaded = folder / ".cache-from.store"
    loaded.unlink(missing_ok=True)
    try:
        return cache_source(source, loaded)
    except BaseException:  # a refused export leaves no half-loaded store beside the shards
        loaded.unlink(missing_ok=True)
        raise


def _seed_shard(store: Store, shard: Path, run_id: str) -> None:
    """A shard holding a started run's rows, so the worker resumes the run instead of paying for it again."""
    Store.open(shard).close()  # created and migrated
    copy_runs(store.con, [run_id], shard)


def _merge_shard(store: Store, shard: Path, experiment_id: str) -> None:
    """Merge a cell's shard into the driver's store; a finished cell's shard is then removed."""
    if not shard.exists():
        return
    merge_into(store.con, [shard])
    if store.cell(experiment_id, shard.stem).status == "done":
        for path in (shard, Path(f"{shard}.wal"), Path(f"{shard}.writer"), Path(f"{shard}.snapshot")):
            path.unlink(missing_ok=True)
