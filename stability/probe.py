"""``stability probe``: is a fixed point really one? Re-ask a run's final node as fresh samples.

Contract: for each selected run (a chain run that finished), the run's own question (its protocol's ``user.md``,
the same templates it ran with) is asked ``samples`` times about its final node, each as a fresh sample with its
own seed (step ``PROBE_STEP + i``). Every probe goes through the run's call path, so each answer is a stored call
(persisted before it is used), a re-run sends none that was completed (resumable; asking for more samples adds
only the missing ones), and ``max_cost`` bounds what this invocation may spend. Each probe is stored as a
``probes`` row: the edge from the probed node to what the answer proposed. Analysis turns them into
P(decline | node) with a Wilson interval (docs/analysis.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stability.analysis.experiments import resolve_selection
from stability.calls import BudgetExceeded, CallFailed, CallPath
from stability.constitution import Constitution, parse_answer
from stability.engine import ModelPool, prepare_resume
from stability.engine.run import Run
from stability.errors import StabilityError
from stability.models.base import Message
from stability.protocols import protocol_class
from stability.records import ProbeRecord, RunRecord, now
from stability.store.store import Store

PROBE_STEP = 1_000_000  # probes are asked as steps PROBE_STEP + i: seeds of their own, after any real step


class ProbeResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runs: list[str]  # the runs probed
    probes: int  # probe rows the runs now have
    sent: int  # requests sent by this invocation (the rest came from the store)
    budget_reached: bool = False


class _Budget:
    """At most ``max_cost`` US dollars of paid calls in this invocation (None: no limit)."""

    def __init__(self, max_cost: float | None) -> None:
        self.max_cost = max_cost
        self.spent = 0.0

    def check(self) -> None:
        if self.max_cost is not None and self.spent >= self.max_cost:
            raise BudgetExceeded(f"budget of ${self.max_cost:.4f} reached")

    def paid(self, cost_usd: float) -> None:
        self.spent += cost_usd


async def _probe_run(store: Store, run: RunRecord, samples: int, budget: _Budget, pool: ModelPool,
                     sent: list[int]) -> None:
    prepared = prepare_resume(store, run, pool)  # refuses a run whose templates changed since it ran
    usable = [r for r in store.revisions(run.id) if r.decision != "error"]
    final = store.constitution(usable[-1].constitution_hash)
    calls = CallPath(store, prepared.model, run.id, use_cache=prepared.config.use_cache, budget=budget)
    handle = Run(run_id=run.id, seed=run.seed, protocol=prepared.protocol.name, generate=prepared.config.generate(),
                 store=store, calls=calls, models=prepared.models, templates=prepared.templates)
    messages = prepared.protocol.conversation(handle, "user.md", final)
    try:
        await _ask(store, run, handle, messages, final, samples, prepared.protocol.principle_limit())
    finally:
        sent.append(calls.sent)
        store.flush()


async def _ask(store: Store, run: RunRecord, handle: Run, messages: list[Message], final: Constitution,
               samples: int, limit: int) -> None:
    for sample in range(samples):
        target: str | None = None
        try:
            call = await handle.ask(messages, PROBE_STEP + sample, "probe")
            parsed = parse_answer(call.text or "", limit)
            if parsed.kind == "failure":
                decision = "parse_failure"
            else:
                revised = parsed.constitution if parsed.constitution is not None else final
                decision = "declined" if revised.hash == final.hash else "changed"
                target = store.put_constitution(revised)
        except CallFailed as failed:
            call, decision = failed.call, "error"
        store.insert_probe(ProbeRecord(id=f"{run.id}:probe:{sample}", run_id=run.id, sample=sample,
                                       source_hash=final.hash, target_hash=target, decision=decision,
                                       call_id=call.id, created_at=now()))


def probe(selection: list[str], samples: int, db: Path | str | None = None, max_cost: float | None = None
          ) -> ProbeResult:
    """Probe the final node of every finished chain run in the selection (experiment names or ids, run ids)."""
    if samples < 1:
        raise StabilityError(f"--samples {samples}: give at least 1")
    with Store.open(db) as store:
        ids, _ = resolve_selection(store, selection, False)
        runs = [store.run(r) for r in ids]
        chosen = [r for r in runs if r.status == "done" and protocol_class(r.protocol).chain]
        if not chosen:
            raise StabilityError("no finished chain run to probe in the selection")
        budget = _Budget(max_cost)
        pool = ModelPool()
        sent: list[int] = []
        reached = False

        async def work() -> None:
            nonlocal reached
            try:
                for run in chosen:
                    await _probe_run(store, run, samples, budget, pool, sent)
            except BudgetExceeded:
                reached = True
            finally:
                await pool.aclose()

        asyncio.run(work())
        total = len(store.probe_rows([r.id for r in chosen]))
    return ProbeResult(runs=[r.id for r in chosen], probes=total, sent=sum(sent), budget_reached=reached)
