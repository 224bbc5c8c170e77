"""One invocation's call session: the only place a :class:`~stability.calls.CallPath` is made.

Contract: a :class:`CallSession` holds what every call of one command shares: the store, the price table (built-in,
a spec's ``prices:`` and ``--prices``), the one budget (:class:`stability.budget.Budget`, or a Ray worker's view of
the ledger behind the same :class:`~stability.budget.Spending` interface), the per-provider limiter, the in-flight
table (identical requests of two runs sent once), the retry policy and, in batch mode, the batcher (made by
:meth:`CallSession.batching` with the session's prices, budget and retry policy, so batched requests are priced,
counted and retried as direct ones). :meth:`CallSession.calls` gives a run its call path, with the cache scope its
configuration names (``run | experiment | global``). ``iterate``/``resume``, the experiment runner, a Ray shard,
``probe`` and the judge all build one here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from stability.budget import Budget, Spending
from stability.calls import CacheScope, CallPath, Flights, RetryPolicy
from stability.engine.batcher import Batcher, BatchEvent
from stability.engine.prepare import Prepared
from stability.models.base import Model
from stability.prices import PriceTable, load_prices
from stability.store.store import Store

#: per-provider concurrency and rate limits, held while a request is sent
Limiter = Callable[[Model], AbstractAsyncContextManager[Any]]


class CallSession:
    """The calls of one invocation (one ``iterate``, an experiment's cells, a Ray shard, a probe, a judge)."""

    def __init__(self, store: Store, prices: PriceTable | None = None, budget: Spending | None = None,
                 limiter: Limiter | None = None, policy: RetryPolicy | None = None) -> None:
        self.store = store
        self.prices = prices or PriceTable()
        self.budget = budget
        self.limiter = limiter
        self.policy = policy or RetryPolicy.from_env()
        self.flights = Flights()
        self.batcher: Batcher | None = None

    def calls(self, run_id: str, model: Model, use_cache: bool = True, scope: CacheScope = "global") -> CallPath:
        """A call path for one run (``run_id``; a judge's call-run id) whose subject is ``model``."""
        return CallPath(self.store, model, run_id, policy=self.policy, use_cache=use_cache, prices=self.prices,
                        budget=self.budget, limiter=self.limiter, flights=self.flights, scope=scope,
                        batcher=self.batcher)

    def for_run(self, run_id: str, prepared: Prepared) -> CallPath:
        """A run's call path, with the cache use and scope of its configuration."""
        return self.calls(run_id, prepared.model, use_cache=prepared.config.use_cache, scope=prepared.config.cache)

    @asynccontextmanager
    async def batching(self, on_event: Callable[[BatchEvent], None] | None = None) -> AsyncIterator[Batcher]:
        """Batch mode (``--batch``) for the session's call paths made inside: the store's open batches are
        re-attached first; polling stops at the end (open batches stay in the store, re-attached next time)."""
        self.batcher = Batcher(self.store, prices=self.prices, budget=self.budget, policy=self.policy,
                               on_event=on_event)
        try:
            await self.batcher.reattach()
            yield self.batcher
        finally:
            await self.batcher.aclose()


def prices_from(prices_file: Path | str | None) -> PriceTable:
    """The built-in price table with a ``--prices`` file's overrides (a bad file is one line naming it)."""
    return PriceTable() if prices_file is None else PriceTable().with_overrides(load_prices(prices_file))


def command_budget(max_cost: float | None) -> Budget:
    """One command's budget (``probe``, ``judge``): spending from nothing."""
    return Budget(max_cost)


def experiment_budget(store: Store, experiment_id: str, max_cost: float | None) -> Budget:
    """An experiment's budget: its earlier sessions' spending and open batches' estimates, read at the first check
    (none without a limit), then kept up to date by the call path."""
    return Budget(max_cost, opening=lambda: (store.experiment_spent(experiment_id),
                                             store.batches.committed_usd(experiment_id)))
