"""The store's write queue: read-your-writes, group commit on the committer thread, batched call lookups."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from stability.constitution import Constitution
from stability.records import CallRecord, EdgeRecord, RevisionRecord, RunRecord
from stability.store import Store
from stability.store.journal import decode
from stability.store.queue import QueueBroken


def call_record(number: int, run_id: str = "r-1", key: str | None = None, index: int = 0,
                status: str = "ok") -> CallRecord:
    return CallRecord(
        id=f"c-{number:04d}", run_id=run_id, step=number, purpose="revise", model="scripted/x",
        cache_key=key or f"sha256:{number}", sample_index=index, status=status, request={"n": number},
        response={"text": "NO CHANGE"}, text="NO CHANGE", input_tokens=1, output_tokens=2, latency_ms=1.0,
        attempts=1, retries=[], cost_usd=0.0, created_at=datetime(2026, 1, 1, 0, 0, number % 60),
    )


def committed_count(store: Store, table: str) -> int:
    """Rows another connection sees: only what is committed."""
    other = store._con.cursor()
    try:
        row = other.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0
    finally:
        other.close()


def test_queued_writes_are_read_back_and_committed_on_close(db: Path) -> None:
    with Store.open(db) as store:
        store.insert_call(call_record(1))
        assert committed_count(store, "calls") == 0  # queued, not yet written
        assert [c.id for c in store.calls("r-1")] == ["c-0001"]  # a read commits the queue first
        assert committed_count(store, "calls") == 1
        store.insert_call(call_record(2))
    with Store.open(db, read_only=True) as store:
        assert [c.id for c in store.calls("r-1")] == ["c-0001", "c-0002"]  # close committed the rest


def journalled(store: Store, table: str) -> int:
    """Rows of ``table`` in the store's journal file: persisted, not yet applied to DuckDB."""
    journal = store.queue._journal
    assert journal is not None
    lines = Path(journal.path).read_bytes().splitlines()
    return sum(len(decode(line)["inserts"].get(table, [])) for line in lines)


def test_waiters_arriving_together_share_one_commit(db: Path) -> None:
    with Store.open(db) as store:
        seen_persisted: list[int] = []

        async def one(number: int) -> None:
            store.insert_call(call_record(number))
            await store.committed()
            seen_persisted.append(journalled(store, "calls") + committed_count(store, "calls"))

        async def main() -> None:
            await asyncio.gather(*(one(n) for n in range(50)))

        asyncio.run(main())
        assert store.queue.commits == 1  # 50 calls, one journalled round
        assert seen_persisted == [50] * 50  # nobody went on before its call was persisted
        assert committed_count(store, "calls") == 0  # in the journal: DuckDB gets them in a larger batch
        store.flush()
        assert committed_count(store, "calls") == 50 and journalled(store, "calls") == 0


def test_a_waiter_never_proceeds_on_an_uncommitted_write(db: Path) -> None:
    with Store.open(db) as store:
        store.insert_call(call_record(1))
        store.flush()

        async def main() -> None:
            store.insert_call(call_record(1))  # the same id again: the commit fails
            with pytest.raises(Exception, match="(?i)duplicate|constraint"):
                await store.committed()

        asyncio.run(main())
        assert len(store._con.execute("SELECT * FROM calls").fetchall()) == 1


def test_a_failed_flush_by_a_reader_does_not_release_the_waiters_it_took(db: Path) -> None:
    """A read flushes the queue; if that commit fails, the call it carried was not stored, and whoever waits
    for that call must not be told otherwise (nor may anything later be written)."""
    with Store.open(db) as store:
        store.insert_call(call_record(1))
        store.flush()

        async def main() -> None:
            store.insert_call(call_record(2))
            store.insert_call(call_record(1))  # a bad row in the same batch
            waiter = store.committed()
            with pytest.raises(Exception, match="(?i)duplicate|constraint"):
                store.calls("r-1")  # the reader's flush fails
            with pytest.raises(QueueBroken):
                await waiter  # call 2 was not committed: its waiter learns it
            store.insert_call(call_record(3))
            with pytest.raises(QueueBroken):
                await store.committed()  # the queue stays broken

        asyncio.run(main())
        assert [r[0] for r in store._con.execute("SELECT id FROM calls").fetchall()] == ["c-0001"]


def test_lookups_waiting_together_are_one_query_and_prefer_the_runs_own_call(db: Path) -> None:
    with Store.open(db) as store:
        store.insert_call(call_record(1, run_id="r-a", key="k1"))
        store.insert_call(call_record(2, run_id="r-b", key="k1"))
        store.insert_call(call_record(3, run_id="r-a", key="k2", index=1))
        store.insert_call(call_record(4, run_id="r-a", key="k3", status="error"))
        queries: list[int] = []
        original = store.queue._find

        def spy(con: Any, batch: list[tuple[str, int, str]]) -> list[CallRecord | None]:
            queries.append(len(batch))
            return original(con, batch)

        store.queue._find = spy

        async def main() -> list[CallRecord | None]:
            asks = [("k1", 0, "r-b"), ("k1", 0, "r-a"), ("k1", 0, "r-c"), ("k2", 0, "r-a"), ("k2", 1, "r-z"),
                    ("k3", 0, "r-a")]
            return list(await asyncio.gather(*(store.lookup_call(*ask) for ask in asks)))

        found = asyncio.run(main())
    assert queries == [6]
    assert [c.id if c else None for c in found] == ["c-0002", "c-0001", "c-0001", None, "c-0003", None]


def test_graph_writes_are_idempotent_and_dedupe_within_a_batch(db: Path) -> None:
    constitution = Constitution(principles=("be kind", "be clear"))
    run = RunRecord(id="r-1", protocol="fresh-instance", model="scripted/x", model_params={}, config={}, seed=0,
                    start_hash=constitution.hash, template_hash="sha256:t", package_version="0", git_commit=None,
                    created_at=datetime(2026, 1, 1))
    origin = RevisionRecord(id="r-1:0", run_id="r-1", step=0, constitution_hash=constitution.hash,
                            decision="origin", created_at=datetime(2026, 1, 1))
    step = RevisionRecord(id="r-1:1", run_id="r-1", step=1, constitution_hash=constitution.hash,
                          parent_id="r-1:0", decision="declined", created_at=datetime(2026, 1, 1))
    edge = EdgeRecord(id="r-1:1", run_id="r-1", source_id="r-1:0", target_id="r-1:1",
                      source_hash=constitution.hash, target_hash=constitution.hash, kind="decline",
                      protocol="fresh-instance", call_ids=[])
    with Store.open(db) as store:
        store.insert_run(run)
        for _ in range(2):
            store.put_constitution(constitution)
            store.add_source(constitution, "c.md")
            store.add_source(constitution, "c.md")
            store.insert_revision(origin)
            store.insert_revision(step, edge)
        store.flush()
        store.insert_revision(step.model_copy(update={"decision": "changed"}), edge)  # a replayed step
        assert [r.decision for r in store.revisions("r-1")] == ["origin", "declined"]  # left as it was
        assert len(store.edges("r-1")) == 1
        assert store.constitution(constitution.hash) == constitution
        counts = {t: committed_count(store, t) for t in ("constitutions", "principles", "constitution_sources")}
    assert counts == {"constitutions": 1, "principles": 2, "constitution_sources": 1}


def test_status_updates_follow_the_inserts_they_update(db: Path) -> None:
    run = RunRecord(id="r-1", protocol="fresh-instance", model="scripted/x", model_params={}, config={}, seed=0,
                    start_hash="sha256:s", template_hash="sha256:t", package_version="0", git_commit=None,
                    created_at=datetime(2026, 1, 1))
    with Store.open(db) as store:
        store.finish_run("r-0", "done", "declined")  # a run that does not exist: updates nothing
        store.insert_run(run)
        store.finish_run("r-1", "done", "declined")  # queued after its own insert, in the same batch
        assert store.run("r-1").status == "done"


def test_a_table_the_queue_does_not_commit_is_refused_not_lost(tmp_path: Path) -> None:
    from stability.store.queue import TABLES

    with Store.open(tmp_path / "q.duckdb") as store:
        with pytest.raises(ValueError, match="does not commit table 'adapters'"):
            store.queue.insert("adapters", {"id": "x"}, "x")
        assert "probes" in TABLES  # every queued table is committed
