"""The writer's snapshot for readers: consistent, atomic, throttled, and gone once the writer closes."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from stability.constitution import Constitution
from stability.store import Store


def test_snapshots_are_consistent_copies_taken_while_commits_go_on(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_SNAPSHOT_SECONDS", "0.05")
    snapshot = Path(f"{db}.snapshot")
    seen: list[int] = []
    store = Store.open(db)
    publisher = store._publisher
    assert publisher is not None and Path(f"{db}.writer").is_file()
    for i in range(80):
        store.put_constitution(Constitution(principles=tuple(f"principle {i}.{j}" for j in range(i % 5 + 1))))
        store.flush()  # a commit: a snapshot starts in the background when one is due
        if snapshot.exists():
            con = duckdb.connect(str(snapshot), read_only=True)
            try:  # rows committed together are in the snapshot together
                nodes, expected = con.execute("SELECT count(*), coalesce(sum(n_principles), 0) "
                                              "FROM constitutions").fetchone()  # type: ignore[misc]
                [principles] = con.execute("SELECT count(*) FROM principles").fetchone()  # type: ignore[misc]
            finally:
                con.close()
            assert principles == expected
            seen.append(nodes)
        time.sleep(0.002)
    store.close()
    assert publisher.published >= 2 and len(set(seen)) >= 2 and seen == sorted(seen), (publisher.published, seen)
    assert sorted(p.name for p in db.parent.iterdir() if p.name.startswith(db.name)) == [db.name]


def test_the_first_commit_publishes_a_snapshot_then_none_before_its_interval_and_a_stale_one_is_replaced(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = Path(f"{db}.snapshot")
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("left by a writer that was killed")
    with Store.open(db) as store:  # the default interval (30 s) is far off
        publisher = store._publisher
        assert not stale.exists() and publisher is not None
        store.put_constitution(Constitution(principles=("a",)))
        store.flush()  # the first commit: readers get a snapshot at once, not one interval later
        assert publisher._thread is not None
        publisher._thread.join()
        assert publisher.published == 1 and stale.exists()
        con = duckdb.connect(str(stale), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM constitutions").fetchone() == (1,)
        finally:
            con.close()
        store.put_constitution(Constitution(principles=("b",)))
        store.flush()  # the next one waits for the interval
        publisher._thread.join()
        assert publisher.published == 1
