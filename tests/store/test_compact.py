"""Compaction on close: the same rows, schema and indexes in a file without DuckDB's free blocks; never while
another process holds the store, and never at the risk of the only copy."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from stability.records import CallRecord, now
from stability.store import Store, compact
from stability.store.call_keys import CallKeys


def _call(i: int, run: str = "r-1") -> CallRecord:
    # distinct system prompts and user messages: every call adds its own message chain nodes
    messages = [{"role": "system", "content": f"system {i % 7} " + "x" * 400},
                {"role": "user", "content": f"user {i} " + "principle text " * 40}]
    return CallRecord(id=f"c-{i:05d}", run_id=run, step=i, purpose="revise", model="openai/m",
                      cache_key=f"sha256:{hashlib.sha256(str(i).encode()).hexdigest()}", sample_index=0,
                      status="ok", request={"model": "m", "messages": messages},
                      response={"choices": [{"message": {"content": f"answer {i} " * 30}}]}, text=f"answer {i}",
                      created_at=now())


def _written(db: Path, n: int = 150) -> None:
    """A store whose file holds free blocks: what a checkpoint rewrote (here: after half the calls were deleted,
    and a table was dropped) is released inside the file and kept there."""
    store = Store.open(db)
    for i in range(n):
        store.insert_call(_call(i))
    store.con.execute("CHECKPOINT")
    store.con.execute("DELETE FROM calls WHERE step % 2 = 0")
    store.con.execute("CHECKPOINT")
    store.close(compact=False)
    con = duckdb.connect(str(db))
    try:
        con.execute("CREATE TABLE scratch AS SELECT sha256(i::VARCHAR) AS h FROM range(20000) r(i)")
        con.execute("CHECKPOINT")
        con.execute("DROP TABLE scratch")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _contents(db: Path) -> dict[str, object]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        out: dict[str, object] = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
        out["_columns"] = con.execute("SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
                                      "ORDER BY ALL").fetchall()
        out["_indexes"] = con.execute("SELECT index_name, table_name, sql FROM duckdb_indexes() ORDER BY ALL"
                                      ).fetchall()
        out["_constraints"] = con.execute("SELECT table_name, constraint_type, constraint_column_names "
                                          "FROM duckdb_constraints() ORDER BY ALL").fetchall()
    finally:
        con.close()
    return out


def _copied_then_closed(db: Path) -> compact.Compaction:
    """What ``Store.close`` does up to the swap: the compacted copy written, the writer's connection closed."""
    store = Store.open(db)
    job = compact.Compaction(str(db))
    store.queue.close()
    assert store._publisher is not None
    store._publisher.stop()
    job.prepare(store._con, force=True)
    store._con.close()
    store._publisher.close()
    CallKeys.release(store._keys_path)
    assert job.copy is not None and job.copy.exists()
    return job


def _free_blocks(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return compact.blocks(con).free
    finally:
        con.close()


def test_compaction_keeps_every_row_and_drops_the_free_blocks(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    _written(db)
    before, size = _contents(db), db.stat().st_size
    assert _free_blocks(db) > 0  # the premise: commits and checkpoints left free blocks
    Store.open(db).close(compact=True)
    assert _contents(db) == before
    assert _free_blocks(db) == 0
    assert db.stat().st_size < size
    assert not compact.copy_path(str(db)).exists()
    with Store.open(db) as store:  # opens, migrates nothing, reads its calls back whole
        assert [c.request for c in store.calls("r-1")][:3] == [_call(i).request for i in (1, 3, 5)]


def test_close_compacts_only_when_enough_is_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "s.duckdb"
    _written(db)
    size = db.stat().st_size
    monkeypatch.setattr(compact, "MIN_FREE_BYTES", 1 << 40)
    Store.open(db).close()
    assert db.stat().st_size == size and _free_blocks(db) > 0
    monkeypatch.setattr(compact, "MIN_FREE_BYTES", 1)
    monkeypatch.setattr(compact, "FREE_SHARE", 0.01)  # a small file: any free block is due
    Store.open(db).close()
    assert db.stat().st_size < size and _free_blocks(db) == 0


def test_not_while_another_process_holds_the_store(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    _written(db)
    before, size = _contents(db), db.stat().st_size
    job = _copied_then_closed(db)  # the copy is written while the writer holds the store, ...
    # ... and between the writer's close and the swap another process opens the store to read it
    reader = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(db)!r}, "
                               "read_only=True); print('open', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        assert job.finish() is False
    finally:
        reader.communicate("")
    assert job.copy is not None and not job.copy.exists()
    assert db.stat().st_size == size and _contents(db) == before


def test_not_when_the_store_changed_after_its_writer_closed(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    _written(db)
    job = _copied_then_closed(db)
    with Store.open(db) as other:  # another writer got in first and wrote a call
        other.insert_call(_call(10_000))
    assert job.finish() is False
    with Store.open(db, read_only=True) as reader:
        assert reader.con.execute("SELECT count(*) FROM calls").fetchone() == (76,)


def test_a_crash_before_the_swap_leaves_the_store_whole(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    _written(db)
    before = _contents(db)
    _copied_then_closed(db)  # the copy is written; the process "dies" here, before the swap
    compact.copy_path(str(db)).write_bytes(b"a torn copy")  # even a torn copy beside it is harmless
    assert _contents(db) == before
    Store.open(db).close(compact=True)  # the next compaction replaces the stray copy
    assert _contents(db) == before and not compact.copy_path(str(db)).exists()


def test_a_migration_s_released_blocks_are_compacted_on_the_first_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """m016 makes two columns of calls again: the old ones' blocks are free once checkpointed, and the close that
    follows the migration counts them and compacts."""
    from stability.store import migrations

    db = tmp_path / "s.duckdb"
    names = [m.__name__ for m in migrations.MIGRATIONS]
    with monkeypatch.context() as old:
        old.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:names.index("m016_answers_zstd")])
        store = Store.open(db)
        for i in range(300):
            store.insert_call(_call(i))
        store.close(compact=False)
    monkeypatch.setattr(compact, "MIN_FREE_BYTES", 1)
    monkeypatch.setattr(compact, "FREE_SHARE", 0.01)
    Store.open(db).close()
    assert _free_blocks(db) == 0
    with Store.open(db) as store:
        assert "m016_answers_zstd" in store.migrations_applied()
        assert [c.response for c in store.calls("r-1")][:2] == [_call(i).response for i in (0, 1)]
