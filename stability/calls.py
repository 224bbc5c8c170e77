"""The one call path: cache lookup → ``model.generate`` with retries → persist the call → return it.

Every protocol asks through here, so "nothing lost, nothing paid twice" lives in one place:

- A completed call is written to the store before the protocol sees its answer.
- Each request is keyed by the canonical request (model, its parameters, messages, sampling config) plus a
  *sample index*: the n-th identical request within the run. Replaying a run (``--resume``) finds the run's
  own calls by that key and re-sends none of them, whatever the cache scope. Within the scope, a new run with an
  identical configuration is answered from another run's calls (recorded with ``cached_from``): ``global``, any
  run's; ``experiment``, a run's of the same experiment; ``run``, none (arms and replicates are then independent
  samples, never sharing an answer).
- Identical requests in flight at once (two runs of an experiment asking the same question) are sent once: the
  later asker waits for the first answer and records it as a cache hit (``Flights``).
- In batch mode (``--batch``) a request to a model with a batch API goes into the next provider batch instead
  (:mod:`stability.engine.batcher`); its answer is stored by :func:`call_record` like any other.
- Transient failures (429, 5xx, overloaded, timeouts) are retried with exponential back-off and jitter,
  honouring ``Retry-After``; every failed attempt is recorded on the call.

Its own cost per call is kept small (``bench/overhead.py``): no query for a key never stored
(:mod:`stability.store.call_keys`), a plain retry loop (no per-attempt set-up), the environment's secrets read once
per run, and a provider's call slot freed as soon as the answer is queued for the store (the commit is awaited after,
still before the answer is returned), so the next request does not wait for this one's commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from stability.budget import BudgetExceeded as BudgetExceeded  # the error stays importable from here
from stability.budget import Spending
from stability.models.base import Model
from stability.models.retry import backoff
from stability.prices import PriceTable
from stability.records import CallRecord, now
from stability.redaction import redact, secret_values
from stability.store.store import Store
from stability.vocabulary import CallFailed, GenerateConfig, Message, Output, TransientError

#: which other runs' calls may answer a run's request (its own calls always do, for resume)
CacheScope = Literal["run", "experiment", "global"]


class RetryPolicy(BaseModel):
    """Back-off for transient failures. Tests set ``initial=0, jitter=0`` so retries cost no time."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = 6
    initial: float = 1.0
    maximum: float = 60.0
    jitter: float = 1.0
    max_retry_after: float = 300.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """``STABILITY_RETRY_INITIAL``/``_JITTER``/``_ATTEMPTS`` override the defaults (used by tests)."""
        values: dict[str, Any] = {}
        for field, env in (("initial", "STABILITY_RETRY_INITIAL"), ("jitter", "STABILITY_RETRY_JITTER"),
                           ("max_attempts", "STABILITY_RETRY_ATTEMPTS")):
            if os.environ.get(env):
                values[field] = type(getattr(cls(), field))(os.environ[env])
        return cls(**values)

    def gives_up(self, attempts: int) -> bool:
        """Whether a request that failed transiently ``attempts`` times is stored as failed instead of sent again
        (the call path's retries, and the batcher's next waves, alike)."""
        return attempts >= self.max_attempts


def cache_key(model: Model, messages: list[Message], config: GenerateConfig) -> str:
    canonical = json.dumps(
        {"model": model.describe(), "messages": [m.model_dump() for m in messages], "config": config.model_dump()},
        sort_keys=True, ensure_ascii=False,
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class BatchQueue(Protocol):
    """Batch mode (:class:`stability.engine.batcher.Batcher`), as the call path sees it."""

    def takes(self, model: Model) -> bool:
        """Whether this model's requests go in provider batches."""

    def asking(self) -> AbstractContextManager[None]:
        """Held while a run's call to such a model is in the call path (cache lookup included)."""

    async def ask(self, calls: CallPath, model: Model, messages: list[Message], config: GenerateConfig, key: str,
                  index: int, step: int, purpose: str) -> CallRecord:
        """The stored answer, from a batch; raises :class:`CallFailed` (stored) or :class:`BudgetExceeded`."""


class Flights:
    """Requests being sent right now, by (cache key, sample index); shared by the runs of one experiment."""

    def __init__(self) -> None:
        self.sending: dict[tuple[str, int], asyncio.Future[None]] = {}

    async def wait(self, key: str, index: int) -> bool:
        """Wait for the identical request in flight, if there is one, to end (answered or not)."""
        flight = self.sending.get((key, index))
        if flight is None:
            return False
        await asyncio.shield(flight)
        return True

    def start(self, key: str, index: int) -> asyncio.Future[None]:
        flight: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sending[(key, index)] = flight
        return flight

    def end(self, key: str, index: int, flight: asyncio.Future[None]) -> None:
        if self.sending.get((key, index)) is flight:
            del self.sending[(key, index)]
        if not flight.done():
            flight.set_result(None)


class CallPath:
    """Calls for one run; its sample counters follow the run's order of calls. Made only by
    :class:`stability.engine.session.CallSession` (one per invocation: its store, prices, budget, limiter, in-flight
    table and batcher), so every run of an invocation sends the same way.

    ``model`` is the run's subject; a call may name another model (an editor, a judge, another agent).
    ``budget`` is asked before anything is sent and told what each stored call cost; ``prices`` turns usage
    into cost.
    """

    def __init__(self, store: Store, model: Model, run_id: str, policy: RetryPolicy | None = None,
                 use_cache: bool = True, prices: PriceTable | None = None,
                 budget: Spending | None = None,
                 limiter: Callable[[Model], AbstractAsyncContextManager[Any]] | None = None,
                 flights: Flights | None = None, scope: CacheScope = "global",
                 batcher: BatchQueue | None = None) -> None:
        self.store = store
        self.model = model
        self.run_id = run_id
        self.policy = policy or RetryPolicy.from_env()
        self.use_cache = use_cache
        self.scope: CacheScope = scope if use_cache else "run"
        self.prices = prices or PriceTable()
        self.budget = budget
        self.limiter = limiter
        self.flights = flights or Flights()
        self.batcher = batcher
        self.samples: Counter[str] = Counter()
        self.sent = 0  # requests that reached the provider in this process (tests and progress read it)
        self._secrets: list[str] | None = None  # the environment's secret values, read at the run's first send

    async def __call__(self, messages: list[Message], config: GenerateConfig, step: int,
                       purpose: str, model: Model | None = None) -> CallRecord:
        model = model or self.model
        if self.batcher is not None and self.batcher.takes(model):
            with self.batcher.asking():  # a wave waits for the runs still looking their request up
                return await self._call(messages, config, step, purpose, model)
        return await self._call(messages, config, step, purpose, model)

    async def _call(self, messages: list[Message], config: GenerateConfig, step: int, purpose: str,
                    model: Model) -> CallRecord:
        key = cache_key(model, messages, config)
        index = self.samples[key]
        self.samples[key] += 1
        found = await self.store.lookup_call(key, index, self.run_id, self.scope)
        if found is not None and found.run_id == self.run_id:
            return found
        shared = self.scope != "run"
        if found is None and shared and await self.flights.wait(key, index):
            # answered meanwhile (or failed)
            found = await self.store.lookup_call(key, index, self.run_id, self.scope)
        if found is not None and shared:
            hit = found.model_copy(update={
                "id": _new_id(), "run_id": self.run_id, "step": step, "purpose": purpose, "latency_ms": 0.0,
                "attempts": 0, "retries": [], "cost_usd": 0.0, "cached_from": found.cached_from or found.id,
                "created_at": now(),
            })
            self.store.insert_call(hit)
            await self.store.committed()
            return hit
        flight = self.flights.start(key, index)
        try:
            if self.batcher is not None and self.batcher.takes(model):  # --batch: the next wave, or an open batch
                return await self.batcher.ask(self, model, messages, config, key, index, step, purpose)
            if self.limiter is None:
                if self.budget is not None:
                    self.budget.check()
                record, error = await self._send(model, messages, config, key, index, step, purpose)
            else:
                async with self.limiter(model):  # per-provider concurrency and rate limits
                    if self.budget is not None:
                        self.budget.check()
                    record, error = await self._send(model, messages, config, key, index, step, purpose)
            # the call slot is free once the request is answered and its record queued: the next request need not
            # wait for this one's commit (nor its connection stay idle meanwhile)
            if self.budget is not None and record.cost_usd:
                self.budget.paid(record.cost_usd)  # counted at once: a request let in meanwhile sees it
            await self.store.committed()  # persisted before used (one commit for every call of this loop turn)
            if error is not None:
                raise CallFailed(record.error or "call failed", record) from error
            return record
        finally:
            self.flights.end(key, index, flight)

    async def _send(self, model: Model, messages: list[Message], config: GenerateConfig, key: str, index: int,
                    step: int, purpose: str) -> tuple[CallRecord, BaseException | None]:
        """Send with retries; the call's record, queued for the store (not yet committed), and its failure."""
        retries: list[dict[str, Any]] = []
        policy = self.policy
        started = time.perf_counter()
        output: Output | None = None
        error: BaseException | None = None
        attempt_started = started
        attempts = 0
        while True:
            attempt_started = time.perf_counter()
            attempts += 1
            self.sent += 1
            try:
                output = await model.generate(messages, config)
                break
            except TransientError as err:
                if policy.gives_up(attempts):
                    error = err
                    break
                delay = backoff(attempts, policy.initial, policy.maximum, policy.jitter)
                if err.retry_after is not None:
                    delay = max(delay, min(err.retry_after, policy.max_retry_after))
                retries.append({"attempt": attempts, "error": str(err)[:500], "status": err.status,
                                "wait_s": round(delay, 3)})
                await asyncio.sleep(delay)
            except Exception as err:  # stored, then raised as CallFailed
                error = err
                break
        elapsed = (time.perf_counter() - (attempt_started if output else started)) * 1000
        if self._secrets is None:
            self._secrets = secret_values()
        request = output.request if output else {"model": model.name,
                                                 "messages": [m.model_dump() for m in messages],
                                                 **config.model_dump()}
        record = call_record(run_id=self.run_id, step=step, purpose=purpose, model=model.name, key=key, index=index,
                             request=request, output=output, error=error, latency_ms=elapsed, attempts=attempts,
                             retries=retries, prices=self.prices, secrets=self._secrets)
        self.store.insert_call(record)
        return record, error


def call_record(*, run_id: str, step: int, purpose: str, model: str, key: str, index: int, request: dict[str, Any],
                output: Output | None, error: BaseException | str | None, latency_ms: float, attempts: int,
                retries: list[dict[str, Any]], prices: PriceTable, batch: bool = False,
                secrets: list[str] | None = None) -> CallRecord:
    """The stored call for an answer (``output``) or a failure (``error``), secrets redacted where they would be
    secrets (the error, the request's and response's fields; :func:`stability.redaction.redact`), never in the
    answer: its text, thinking and the response's content stay byte-exact. One shape whether it was asked directly
    or in a provider batch (``batch``: priced at the batch rate). ``secrets``: the environment's secret values,
    when the caller has read them already."""
    if secrets is None:
        secrets = secret_values()
    message = (f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error) if error else None
    return CallRecord(
        id=_new_id(), run_id=run_id, step=step, purpose=purpose, model=model, cache_key=key,
        sample_index=index, status="ok" if output else "error", request=redact(request, secrets),
        response=redact(_with_logprobs(output), secrets) if output else None,
        text=output.text if output else None,
        input_tokens=output.usage.input_tokens if output else 0,
        output_tokens=output.usage.output_tokens if output else 0,
        latency_ms=round(latency_ms, 3), attempts=attempts, retries=retries,
        cost_usd=prices.cost(model, output.usage.input_tokens, output.usage.output_tokens, batch=batch)
        if output else None,
        error=redact(message, secrets)[:2000] if message else None,
        created_at=now(),
        **(_answer_details(output, secrets) if output else {}),
    )


def _answer_details(output: Output, secrets: list[str]) -> dict[str, Any]:
    """The finish reason, the thinking and how the answer was asked for, as stored on the call."""
    return {"finish_reason": output.finish_reason,
            "thinking": output.thinking or None,
            "answer_format": output.answer_format,
            "fallback_reason": redact(output.fallback_reason, secrets) if output.fallback_reason else None}


def _with_logprobs(output: Output) -> dict[str, Any]:
    """The raw response, plus the parsed token log-probabilities when the provider returned them."""
    if output.logprobs is None:
        return output.response
    return {**output.response, "stability_logprobs": [t.model_dump() for t in output.logprobs]}


#: call ids: 64 random bits, from a generator seeded by the OS (and reseeded in a forked child)
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


def _new_id() -> str:
    return f"c-{_ids.getrandbits(64):016x}"
