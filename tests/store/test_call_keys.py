"""The in-memory set of stored call keys: a key never stored costs no query; every stored or queued one is looked up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from stability.records import CallRecord
from stability.store import Store
from tests.store.test_queue import call_record


def spied(store: Store) -> list[int]:
    """Batches the committer's lookup query was run for."""
    batches: list[int] = []
    original = store.queue._find

    def spy(con: Any, batch: list[tuple[str, int, str, str]]) -> list[CallRecord | None]:
        batches.append(len(batch))
        return original(con, batch)

    store.queue._find = spy
    return batches


def test_a_key_never_stored_is_a_miss_without_a_query(db: Path) -> None:
    with Store.open(db) as store:
        store.insert_call(call_record(1, run_id="r-a", key="k-stored"))
    with Store.open(db) as store:  # a later session: the keys are read from the table once
        batches = spied(store)

        async def main() -> list[CallRecord | None]:
            asks = [("k-new-1", 0, "r-b"), ("k-stored", 0, "r-b"), ("k-new-2", 0, "r-a")]
            return list(await asyncio.gather(*(store.lookup_call(*ask) for ask in asks)))

        found = asyncio.run(main())
    assert [c.id if c else None for c in found] == [None, "c-0001", None]
    assert batches == [1]  # only the stored key reached SQL


def test_a_call_queued_in_this_session_is_found(db: Path) -> None:
    with Store.open(db) as store:
        async def main() -> tuple[CallRecord | None, CallRecord | None]:
            before = await store.lookup_call("k-late", 0, "r-a")  # loads the (empty) set
            store.insert_call(call_record(2, run_id="r-a", key="k-late"))  # queued, not yet committed
            return before, await store.lookup_call("k-late", 0, "r-a")

        before, after = asyncio.run(main())
    assert before is None and after is not None and after.id == "c-0002"
