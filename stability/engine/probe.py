"""``stability probe``: is a fixed point really one? Re-ask a run's final node as fresh samples.

Contract: for each selected run (a chain run that finished), the run's own question (its protocol's ``user.md``,
the same templates it ran with) is asked ``samples`` times about its final node, each a fresh sample with its own
seed (:meth:`~stability.protocols.walk.IterationProtocol.probe`, which the ``probe_samples`` option also uses).
Every probe goes through the run's call path (from a :class:`~stability.engine.session.CallSession`: the run's
cache scope, the ``--prices`` overrides), so each answer is a stored call (persisted before it is used), a
re-run sends none that was completed (resumable; asking for more samples adds only the missing ones), and
``max_cost`` bounds what this invocation may spend. ``samples`` is bounded as a grid's size is
(:data:`~stability.bounds.ProbeSamples`, and :data:`~stability.bounds.MAX_PROBES` requests in all, refused with
its size before anything is sent); ``dry_run`` counts what would be sent and sends nothing. Each probe is stored
as a ``probes`` row: the edge from the probed node to what the answer proposed. Analysis turns them into
P(decline | node) with a Wilson interval (docs/analysis.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stability.analysis.experiments import resolve_selection
from stability.bounds import MAX_PROBES, ProbeSamples, check
from stability.budget import BudgetExceeded
from stability.engine.prepare import ModelPool, prepare_resume
from stability.engine.run import Run
from stability.engine.session import CallSession, command_budget, prices_from
from stability.errors import StabilityError
from stability.protocols import protocol_class
from stability.protocols.walk import IterationProtocol
from stability.records import RunRecord
from stability.store.store import Store


class ProbeResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runs: list[str]  # the runs probed
    probes: int  # probe rows the runs now have
    sent: int  # requests sent by this invocation (the rest came from the store)
    budget_reached: bool = False
    dry_run: bool = False
    to_send: int = 0  # requests the probe sends at most (samples not yet stored), counted before sending


async def _probe_run(session: CallSession, run: RunRecord, samples: int, pool: ModelPool, sent: list[int]) -> None:
    store = session.store
    prepared = prepare_resume(store, run, pool)  # refuses a run whose templates changed since it ran
    if not isinstance(prepared.protocol, IterationProtocol):
        raise StabilityError(f"run {run.id}: protocol {run.protocol} does not walk a chain; nothing to probe")
    usable = [r for r in store.revisions(run.id) if r.decision != "error"]
    final = store.constitution(usable[-1].constitution_hash)
    calls = session.for_run(run.id, prepared)  # the run's own cache use and scope
    handle = Run(run_id=run.id, seed=run.seed, protocol=prepared.protocol.name, generate=prepared.config.generate(),
                 store=store, calls=calls, models=prepared.models, templates=prepared.templates)
    try:
        await prepared.protocol.probe(handle, final, samples)
    finally:
        sent.append(calls.sent)
        store.flush()


def probe(selection: list[str], samples: int, db: Path | str | None = None, max_cost: float | None = None,
          dry_run: bool = False, prices_file: Path | str | None = None) -> ProbeResult:
    """Probe the final node of every finished chain run in the selection (experiment names or ids, run ids);
    ``dry_run``: count the requests it would send, send none, write nothing. ``prices_file``: price overrides
    (``--prices``), as ``stability run`` takes them."""
    if samples < 1:
        raise StabilityError(f"--samples {samples}: give at least 1")
    check(samples, ProbeSamples, "--samples")
    prices = prices_from(prices_file)
    with Store.open(db, read_only=dry_run) as store:
        ids, _ = resolve_selection(store, selection, False)
        runs = [store.run(r) for r in ids]
        chosen = [r for r in runs if r.status == "done" and protocol_class(r.protocol).chain]
        if not chosen:
            raise StabilityError("no finished chain run to probe in the selection")
        if samples * len(chosen) > MAX_PROBES:
            raise StabilityError(f"--samples {samples}: {samples * len(chosen):,} probes of {len(chosen)} runs, "
                                 f"more than {MAX_PROBES:,}; probe fewer runs or samples")
        stored: dict[str, int] = {}
        for run_id, _, decision in store.probe_rows([r.id for r in chosen]):
            if decision != "error":
                stored[run_id] = stored.get(run_id, 0) + 1
        to_send = sum(max(0, samples - stored.get(r.id, 0)) for r in chosen)
        if dry_run:
            return ProbeResult(runs=[r.id for r in chosen], probes=sum(stored.values()), sent=0, dry_run=True,
                               to_send=to_send)
        session = CallSession(store, prices=prices, budget=command_budget(max_cost))
        pool = ModelPool()
        sent: list[int] = []
        reached = False

        async def work() -> None:
            nonlocal reached
            try:
                for run in chosen:
                    await _probe_run(session, run, samples, pool, sent)
            except BudgetExceeded:
                reached = True
            finally:
                await pool.aclose()

        asyncio.run(work())
        total = len(store.probe_rows([r.id for r in chosen]))
    return ProbeResult(runs=[r.id for r in chosen], probes=total, sent=sum(sent), budget_reached=reached,
                       to_send=to_send)
