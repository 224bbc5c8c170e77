"""Batch mode (``--batch``): the call path's requests to models with a batch API go out in provider batches.

Contract:

- **Waves.** A request to a model with a batch API (:meth:`~stability.models.base.Model.batch_api`) waits in
  the next wave instead of being sent. A wave is submitted when every run registered with the batcher
  (:meth:`Batcher.running`) is waiting on it, or, when some are not, ``settle`` seconds after the last request
  joined (a run busy with a model without batches; :meth:`Batcher._wave_ready`). One batch per model per wave.
  Models without a batch API (local, scripted, litellm) are asked directly, as without ``--batch``.
- **Nothing lost.** The batch's intent (a local key, every request and the call key it becomes) is committed
  before the batch is submitted, its provider id right after. On start (:meth:`Batcher.reattach`) every open batch
  is re-attached: an intent without an id is looked for at the provider (OpenAI by its metadata, Anthropic by time
  and size) and abandoned when it never got there; finished batches are imported. A request pending in an open
  batch joins it and is never submitted again.
- **Imported as ordinary calls.** An answer is stored through :func:`stability.calls.call_record`, priced at the
  batch rate, before the run waiting on it sees it; an import read twice stores nothing twice (an answer is found
  by its call key; a failed call by its id, derived from the batch and the request: :func:`imported_call_id`). An
  expired request, or one that met a transient error (429, 5xx, a failed batch), joins the next wave, up to the
  retry policy's attempts; another error is stored as a failed call and raised as
  :class:`~stability.vocabulary.CallFailed`.
- **Spending.** The batcher is made by the call session (:meth:`stability.engine.session.CallSession.batching`) with
  the session's price table, budget (:class:`stability.budget.Spending`) and retry policy, the call path's own: a
  request is checked when it joins a wave and its estimate (:meth:`Batcher._estimate`, at the batch rate) is
  committed; the import replaces it by the actual cost. A request gives up after the policy's attempts
  (:meth:`stability.calls.RetryPolicy.gives_up`), as a direct call does.
- **Progress.** ``on_event`` receives a :class:`BatchEvent` on each submission and each change a poll sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from stability.budget import Spending
from stability.calls import RetryPolicy, call_record
from stability.errors import StabilityError
from stability.models.base import Model
from stability.models.batch_api import BatchAPI, BatchRequest, BatchResult, custom_id, request_for
from stability.prices import Price, PriceTable
from stability.records import CallRecord, now
from stability.redaction import redact, secret_values
from stability.store.batches import BatchRecord, BatchRequestRecord, RequestState
from stability.vocabulary import CallFailed, GenerateConfig, Message

if TYPE_CHECKING:
    from stability.calls import CallPath
    from stability.store.store import Store

POLL_ENV = "STABILITY_BATCH_POLL"
SETTLE_ENV = "STABILITY_BATCH_SETTLE"


class BatchFailed(StabilityError):
    """A batch the provider refuses to report on (not a transient failure): the runs waiting on it fail."""


class BatchEvent(BaseModel):
    """One batch as a progress display sees it."""

    model_config = ConfigDict(extra="forbid")

    wave: int
    local_key: str
    provider_id: str | None
    model: str
    state: str
    raw_status: str | None
    n_requests: int
    counts: dict[str, int]
    submitted_at: datetime | None


@dataclass
class Ticket:
    """One request waiting for its batch."""

    request: BatchRequestRecord
    calls: CallPath
    future: asyncio.Future[CallRecord]
    attempts: int = 0
    retries: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LiveBatch:
    record: BatchRecord
    api: BatchAPI
    tickets: dict[str, Ticket] = field(default_factory=dict)
    polled: float = 0.0


class Batcher:
    """The batches of one session (an experiment, or one run). Create it inside the event loop that uses it."""

    def __init__(self, store: Store, prices: PriceTable | None = None, budget: Spending | None = None,
                 policy: RetryPolicy | None = None, poll_interval: float | None = None, settle: float | None = None,
                 on_event: Callable[[BatchEvent], None] | None = None) -> None:
        self.store = store
        self.prices = prices or PriceTable()
        self.budget = budget
        self.policy = policy or RetryPolicy.from_env()
        self.poll_interval = poll_interval if poll_interval is not None else float(os.environ.get(POLL_ENV) or 30)
        self.settle = settle if settle is not None else float(os.environ.get(SETTLE_ENV) or 1.0)
        self.on_event = on_event or (lambda event: None)
        self.queue: list[Ticket] = []
        self.live: dict[str, LiveBatch] = {}
        self.active = 0  # runs registered
        self.in_path = 0  # calls to batch models in the call path (waiting here, or still looking up the cache)
        self.wave = 0
        self.submitted = 0  # requests submitted by this session
        self.apis: dict[str, BatchAPI | None] = {}
        self._own_models: list[Model] = []
        self._last_join = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- runs and requests --------------------------------------------------------------------------------------

    def api(self, model: Model) -> BatchAPI | None:
        if model.name not in self.apis:
            self.apis[model.name] = model.batch_api()
        return self.apis[model.name]

    def takes(self, model: Model) -> bool:
        return self.api(model) is not None

    @contextlib.contextmanager
    def asking(self) -> Iterator[None]:
        """A run's call to a batch model is in the call path (looking up its cache, or waiting here)."""
        self.in_path += 1
        self._last_join = time.monotonic()
        try:
            yield
        finally:
            self.in_path -= 1
            self._wake.set()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Register a run whose requests go in batches: a wave waits for every registered run."""
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._wake.set()

    async def ask(self, calls: CallPath, model: Model, messages: list[Message], config: GenerateConfig, key: str,
                  index: int, step: int, purpose: str) -> CallRecord:
        """The stored answer to this request, from a batch (an open one holding it, or the next wave)."""
        api = self.api(model)
        assert api is not None
        cid = custom_id(calls.run_id, key, index)
        future: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
        holder = self.store.batches.pending(cid)
        if holder is not None and holder not in self.live:
            await self._attach(self.store.batches.get(holder))
            holder = self.store.batches.pending(cid)
        if holder is None:  # imported meanwhile (by a poll while the run looked it up)?
            found = self.store.find_call(key, index, calls.run_id, "run")
            if found is not None:
                return found
        if holder is not None and holder in self.live:
            request = next(r for r in self.store.batches.requests(holder) if r.custom_id == cid)
            self.live[holder].tickets[cid] = Ticket(request, calls, future)
        else:
            if self.budget is not None:
                self.budget.check()
            body = api.body(messages, config)
            req = request_for(messages, config, body, cid)
            request = BatchRequestRecord(local_key="", custom_id=cid, run_id=calls.run_id, cache_key=key,
                                         sample_index=index, step=step, purpose=purpose, model=model.name,
                                         body=body, answer_format=req.answer_format,
                                         committed_usd=self._estimate(model.name, messages, config))
            self._commit(request.committed_usd)
            self.queue.append(Ticket(request, calls, future))
            self._last_join = time.monotonic()
        self._start()
        self._wake.set()
        return await future

    def _estimate(self, model: str, messages: list[Message], config: GenerateConfig) -> float | None:
        """A request's committed cost at the batch rate: 4 characters a token, an answer as long as its prompt
        (a revised constitution is shorter than the prompt that holds it) plus thinking, within ``max_tokens``."""
        prompt = sum(len(m.content) for m in messages) // 4 + 1
        answer = min(config.max_tokens, prompt + 40 + (config.thinking_budget or 0))
        return self.prices.cost(model, prompt, answer, batch=True)

    def _commit(self, usd: float | None) -> None:
        if self.budget is not None and usd:
            self.budget.commit(usd)

    def _release(self, usd: float | None) -> None:
        if self.budget is not None and usd:
            self.budget.release(usd)

    # -- the loop: waves and polls ------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        try:
            await self._waves_and_polls()
        except Exception as err:  # every run waiting here fails with it (stored on the run; resumable)
            failure = err if isinstance(err, BatchFailed) else BatchFailed(f"batch mode failed: "
                                                                           f"{type(err).__name__}: {err}")
            for ticket in [*self.queue, *(t for b in self.live.values() for t in b.tickets.values())]:
                if not ticket.future.done():
                    ticket.future.set_exception(failure)
            self.queue, self.live = [], {}

    async def _waves_and_polls(self) -> None:
        while True:
            self._wake.clear()
            if self.queue and self._wave_ready():
                await self._submit_wave()
            for batch in list(self.live.values()):
                if time.monotonic() - batch.polled >= self.poll_interval:
                    await self._poll(batch)
            if not self.queue and not self.live:
                return
            tick = min(self.poll_interval, 0.05 if self.queue else self.poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)

    @property
    def waiting(self) -> int:
        """Requests not yet answered: in the next wave, or in a live batch."""
        return sum(not t.future.done() for t in self.queue) + sum(
            not t.future.done() for batch in self.live.values() for t in batch.tickets.values())

    def _wave_ready(self) -> bool:
        """No call is still on its way here, and every registered run waits here or nothing joined for ``settle``
        seconds (a run busy elsewhere); or nothing joined for ten times that (a call waiting on an identical request
        of another run, which is in this wave)."""
        idle = time.monotonic() - self._last_join
        waiting = self.waiting
        joined = self.in_path == waiting  # no call is still on its way here (looking up its cache)
        return (joined and (waiting >= self.active or idle >= self.settle)) or idle >= 10 * self.settle

    async def _submit_wave(self) -> None:
        tickets = [t for t in self.queue if not t.future.done()]
        for ticket in self.queue:
            if ticket.future.done():  # its run was cancelled: nobody waits for it, so it is not sent
                self._release(ticket.request.committed_usd)
        self.queue = []
        self.wave += 1
        by_model: dict[str, list[Ticket]] = {}
        for ticket in tickets:
            by_model.setdefault(ticket.request.model, []).append(ticket)
        for name, group in by_model.items():
            await self._submit(name, group)

    async def _submit(self, model: str, tickets: list[Ticket]) -> None:
        api = self.apis[model]
        assert api is not None
        key = "sb-" + uuid.uuid4().hex[:16]
        record = BatchRecord(local_key=key, provider=api.provider, model=model, wave=self.wave,
                             n_requests=len(tickets), created_at=now())
        requests = [t.request.model_copy(update={"local_key": key, "state": "pending"}) for t in tickets]
        for ticket, request in zip(tickets, requests, strict=True):
            ticket.request = request
        secrets = secret_values()  # stored without secrets, as calls are; sent as asked
        self.store.batches.write_intent(record, [r.model_copy(update={"body": redact(r.body, secrets)})
                                                 for r in requests])  # committed before anything is submitted
        try:
            provider_id: str | None = await api.submit([_wire(r) for r in requests], key)
        except Exception:  # noqa: BLE001 - it may still have been created: look for it
            provider_id = await self._find(api, record)
        if provider_id is None:
            self.store.batches.set_state(key, "abandoned", raw_status="submitting it failed; not found at the "
                                                                      "provider")
            await self._requeue(tickets, "submitting the batch failed, and the provider has no batch of it")
            return
        self.store.batches.submitted(key, provider_id, now())
        self.submitted += len(tickets)
        for ticket in tickets:
            ticket.calls.sent += 1
        live = LiveBatch(self.store.batches.get(key), api, {t.request.custom_id: t for t in tickets},
                         polled=time.monotonic())
        self.live[key] = live
        self._emit(live)

    async def _find(self, api: BatchAPI, record: BatchRecord) -> str | None:
        try:
            return await api.find(record.local_key, record.created_at, record.n_requests,
                                  self.store.batches.claimed(record.provider))
        except Exception:  # noqa: BLE001 - the provider cannot say now: nothing was found
            return None

    async def _poll(self, batch: LiveBatch) -> None:
        batch.polled = time.monotonic()
        assert batch.record.provider_id is not None
        try:
            status = await batch.api.status(batch.record.provider_id)
        except Exception as err:
            if batch.api.transient(err):
                return  # a poll that failed for now is tried again at the next one
            if getattr(err, "status_code", None) == 404:  # the provider has no such batch: nothing runs or bills
                self.store.batches.set_state(batch.record.local_key, "abandoned", "not found at the provider")
                del self.live[batch.record.local_key]
                await self._requeue([t for t in batch.tickets.values() if not t.future.done()],
                                    f"batch {batch.record.provider_id} not found at the provider")
                return
            raise BatchFailed(f"batch {batch.record.provider_id} ({batch.record.model}): {err}") from err
        changed = (status.raw_status, status.counts) != (batch.record.raw_status, batch.record.counts)
        if status.state == "live":
            if changed:
                self.store.batches.set_state(batch.record.local_key, "live", status.raw_status, status.counts)
                batch.record = self.store.batches.get(batch.record.local_key)
                self._emit(batch)
            return
        self.store.batches.set_state(batch.record.local_key, status.state, status.raw_status, status.counts)
        batch.record = self.store.batches.get(batch.record.local_key)
        try:
            await self._import(batch)
        except Exception as err:
            if batch.api.transient(err):
                return  # reading the results failed for now: the next poll reads them again
            raise BatchFailed(f"batch {batch.record.provider_id} ({batch.record.model}): reading its results: "
                              f"{err}") from err
        del self.live[batch.record.local_key]
        self._emit(batch)

    # -- results ------------------------------------------------------------------------------------------------

    async def _import(self, batch: LiveBatch) -> None:
        """Store every answer as a call (once), record each request's outcome, then answer the waiting runs."""
        key = batch.record.local_key
        assert batch.record.provider_id is not None
        requests = {r.custom_id: r for r in self.store.batches.requests(key) if r.state == "pending"}
        results = await batch.api.results(batch.record.provider_id, {c: _wire(r) for c, r in requests.items()})
        submitted = batch.record.submitted_at or batch.record.created_at
        latency = max(0.0, (now() - submitted).total_seconds() * 1000)
        outcomes: dict[str, tuple[RequestState, str | None, str | None]] = {}
        stored: dict[str, CallRecord] = {}
        fresh: set[str] = set()
        retry: list[tuple[BatchRequestRecord, BatchResult]] = []
        ids = {result.custom_id: imported_call_id(key, result.custom_id) for result in results}
        already = self.store.batches.stored_calls(list(ids.values()))
        for result in results:
            request = requests[result.custom_id]
            ticket = batch.tickets.get(result.custom_id)
            attempts = (ticket.attempts if ticket else 0) + 1
            if result.output is None and result.retry and not self.policy.gives_up(attempts):
                outcomes[result.custom_id] = ("retry", None, result.error)
                retry.append((request, result))
                continue
            record = self.store.find_call(request.cache_key, request.sample_index, request.run_id, "run")
            if record is None:
                record = call_record(run_id=request.run_id, step=request.step, purpose=request.purpose,
                                     model=request.model, key=request.cache_key, index=request.sample_index,
                                     request=request.body, output=result.output, error=result.error,
                                     latency_ms=latency, attempts=attempts,
                                     retries=ticket.retries if ticket else [], prices=self.prices, batch=True
                                     ).model_copy(update={"id": ids[result.custom_id]})
                if record.id not in already:  # a failed call imported before a kill is not stored twice
                    self.store.insert_call(record)
                    fresh.add(result.custom_id)
            stored[result.custom_id] = record
            outcomes[result.custom_id] = ("done" if record.status == "ok" else "failed", record.id, result.error)
        await self.store.committed()  # persisted before used
        self.store.batches.settle(key, outcomes)
        self.store.batches.set_state(key, "imported", finished_at=now())
        batch.record = self.store.batches.get(key)
        for cid, request in requests.items():
            self._release(request.committed_usd)
            if cid in fresh and stored[cid].cost_usd and self.budget is not None:
                self.budget.paid(stored[cid].cost_usd or 0.0)
        for cid, record in stored.items():
            ticket = batch.tickets.get(cid)
            if ticket is None or ticket.future.done():
                continue
            if record.status == "ok":
                ticket.future.set_result(record)
            else:
                ticket.future.set_exception(CallFailed(record.error or "call failed", record))
        again = [t for r, _ in retry if (t := batch.tickets.get(r.custom_id)) is not None]
        errors = {r.custom_id: res.error or "" for r, res in retry}
        for ticket in again:
            ticket.retries.append({"attempt": ticket.attempts + 1, "error": errors[ticket.request.custom_id][:500],
                                   "status": None, "wait_s": 0.0, "batch": batch.record.provider_id})
        await self._requeue(again, None)

    async def _requeue(self, tickets: list[Ticket], error: str | None) -> None:
        """Put requests in the next wave; one that has had its attempts is stored as a failed call instead."""
        for ticket in tickets:
            ticket.attempts += 1
            if error is not None:
                ticket.retries.append({"attempt": ticket.attempts, "error": error[:500], "status": None,
                                       "wait_s": 0.0})
            if self.policy.gives_up(ticket.attempts):
                request = ticket.request
                record = call_record(run_id=request.run_id, step=request.step, purpose=request.purpose,
                                     model=request.model, key=request.cache_key, index=request.sample_index,
                                     request=request.body, output=None, error=error or "batch retries exhausted",
                                     latency_ms=0.0, attempts=ticket.attempts, retries=ticket.retries,
                                     prices=self.prices, batch=True)
                self.store.insert_call(record)
                await self.store.committed()
                if not ticket.future.done():
                    ticket.future.set_exception(CallFailed(record.error or "call failed", record))
                continue
            ticket.request = ticket.request.model_copy(update={"local_key": "", "state": "pending"})
            self._commit(ticket.request.committed_usd)
            self.queue.append(ticket)
        if tickets:
            self._last_join = time.monotonic()
            self._wake.set()

    # -- re-attaching, cancelling, closing ----------------------------------------------------------------------

    async def reattach(self, follow: bool = True) -> list[BatchRecord]:
        """Take up every open batch in the store: find lost ids, import finished batches, and (``follow``) poll the
        live ones until they end."""
        for record in self.store.batches.open():
            await self._attach(record)
        if self.live and follow:
            self._start()
        return self.store.batches.all()

    async def _attach(self, record: BatchRecord) -> None:
        """Take up one open batch: find its id if it was lost (or abandon it), then poll it (importing it if done)."""
        api = self._api_for(record.model)
        if api is None or record.local_key in self.live:
            return
        if record.provider_id is None:
            provider_id = await self._find(api, record)
            if provider_id is None:
                self.store.batches.set_state(record.local_key, "abandoned", raw_status="never submitted")
                return
            self.store.batches.submitted(record.local_key, provider_id, now())
            record = self.store.batches.get(record.local_key)
        live = LiveBatch(record, api)
        self.live[record.local_key] = live
        await self._poll(live)

    async def cancel_open(self) -> int:
        """Cancel every live batch at its provider (orphans: no run of this session waits on them)."""
        cancelled = 0
        for batch in list(self.live.values()):
            assert batch.record.provider_id is not None
            await batch.api.cancel(batch.record.provider_id)
            cancelled += 1
            await self._poll(batch)
        return cancelled

    def _api_for(self, name: str) -> BatchAPI | None:
        if name not in self.apis:
            from stability.models.registry import get_model

            model = get_model(name)
            self._own_models.append(model)
            self.apis[name] = model.batch_api()
        return self.apis[name]

    async def aclose(self) -> None:
        """Stop polling (open batches stay in the store, re-attached next time) and close the models made here."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for model in self._own_models:
            await model.aclose()

    def _emit(self, batch: LiveBatch) -> None:
        record = batch.record
        self.on_event(BatchEvent(wave=record.wave, local_key=record.local_key, provider_id=record.provider_id,
                                 model=record.model, state=record.state, raw_status=record.raw_status,
                                 n_requests=record.n_requests, counts=record.counts or {},
                                 submitted_at=record.submitted_at))


class BatchesReport(BaseModel):
    """What ``stability batches`` found and did."""

    model_config = ConfigDict(extra="forbid")

    batches: list[BatchRecord]
    imported: int = Field(description="batches whose results were imported now")
    cancelled: int = Field(description="live batches cancelled now (--cancel)")
    abandoned: int = Field(description="intents found never submitted now")
    live: int = Field(description="batches still running at the provider")


def sync_batches(db: Path | str | None = None, cancel: bool = False,
                 prices_file: Path | str | None = None) -> BatchesReport:
    """Re-attach the store's open batches: import finished ones as calls, find lost ids, and with ``cancel``
    cancel the live ones (orphans: the store is held here, so no run waits on them). Calls are priced with the
    built-in table, the store's experiments' ``prices:`` and ``prices_file``."""
    from stability.prices import load_prices
    from stability.store.store import Store

    with Store.open(db, create=False) as store:
        prices = PriceTable()
        for experiment in store.experiments():
            overrides = experiment.spec.get("prices") or {}
            prices = prices.with_overrides({k: Price.model_validate(v) for k, v in overrides.items()})
        if prices_file is not None:
            prices = prices.with_overrides(load_prices(prices_file))
        before = {b.local_key: b.state for b in store.batches.all()}

        async def go() -> int:
            batcher = Batcher(store, prices=prices)
            try:
                await batcher.reattach(follow=False)
                return await batcher.cancel_open() if cancel else 0
            finally:
                await batcher.aclose()

        cancelled = asyncio.run(go())
        after = store.batches.all()
    changed = [b for b in after if before.get(b.local_key) != b.state]
    return BatchesReport(batches=after, imported=sum(b.state == "imported" for b in changed), cancelled=cancelled,
                         abandoned=sum(b.state == "abandoned" for b in changed),
                         live=sum(b.state in ("intent", "live") for b in after))


def check_no_pending_batches(store: Store, run_ids: list[str], what: str) -> None:
    """Refuse (one line) to go on with runs without ``--batch`` while requests of theirs wait in open provider
    batches: sent directly they would be paid for twice, and the batches would go on billing."""
    pending = store.batches.pending_count(run_ids)
    if pending:
        raise StabilityError(f"{what}: {pending} requests wait in provider batches; resume with --batch (their "
                             "answers are imported, nothing is sent again), or cancel them first with "
                             "`stability batches --cancel`")


def imported_call_id(local_key: str, custom_id: str) -> str:
    """The id of the call a batch's answer to a request is stored as: derived from both, so an import read again
    (killed after its calls were committed, before the requests' outcomes were) finds the calls it stored."""
    return "c-" + hashlib.sha256(f"{local_key}\0{custom_id}".encode()).hexdigest()[:16]


def _wire(request: BatchRequestRecord) -> BatchRequest:
    return BatchRequest(custom_id=request.custom_id, body=request.body, answer_format=request.answer_format)

