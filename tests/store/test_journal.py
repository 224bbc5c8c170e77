"""The write journal: rounds persisted before DuckDB sees them, applied in batches, and recovered after a kill."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from stability.errors import StabilityError
from stability.records import RunRecord
from stability.store import Store, journal, queue
from stability.store.journal import Journal, encode
from tests.conftest import ROOT
from tests.store.test_queue import call_record, committed_count

KILLED_WRITER = """
import asyncio, os, signal, sys
from tests.store.test_queue import call_record
from stability.store import Store

store = Store.open(sys.argv[1])

async def main() -> None:
    for n in range(1, 31):
        store.insert_call(call_record(n))
        if n % 10 == 0:
            await store.committed()  # three journalled rounds
    os.kill(os.getpid(), signal.SIGKILL)  # nothing flushed, nothing closed

asyncio.run(main())
"""


def kill_a_writer(db: Path) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(db)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    [left] = journal.paths(str(db))
    assert Path(left).stat().st_size > 0


@pytest.mark.parametrize("reader", ["writable", "read-only"])
def test_a_killed_writers_journal_is_applied_by_the_next_open_and_removed(db: Path, reader: str) -> None:
    kill_a_writer(db)
    with Store.open(db, read_only=reader == "read-only") as store:
        assert [c.id for c in store.calls("r-1")] == [f"c-{n:04d}" for n in range(1, 31)]
    assert journal.paths(str(db)) == []
    with Store.open(db) as store:  # and only once
        assert len(store.calls("r-1")) == 30
        # every bookmark closed (a copy of the journal found later is stale); a store that wrote nothing has none
        assert store.con.execute("SELECT count(*), count(closed_at) FROM journal").fetchone() == (1, 1)


def test_a_merge_sees_what_a_killed_shard_journalled(tmp_path: Path) -> None:
    from stability.store.merge import merge_files

    shard, target = tmp_path / "shard.duckdb", tmp_path / "merged.duckdb"
    kill_a_writer(shard)
    merge_files([shard], target)
    with Store.open(target, read_only=True) as store:
        assert len(store.calls("r-1")) == 30


def test_a_live_stores_journal_is_nobody_elses(db: Path) -> None:
    with Store.open(db) as store:
        store.insert_call(call_record(1))

        async def main() -> None:
            await store.committed()

        asyncio.run(main())
        assert len(journal.paths(str(db))) == 1
        assert journal.orphans(str(db)) == []  # locked by its store: recovery leaves it alone
    assert journal.paths(str(db)) == []  # a clean close applied and removed it


def write_journal(db: Path, token: str, lines: list[bytes]) -> Path:
    path = Path(f"{db}.journal.{token}")
    path.write_bytes(b"".join(lines))
    return path


def round_of(seq: int, calls: list[int], prev: int | None = None,
             row_updates: list[dict[str, object]] | None = None) -> bytes:
    return encode({"seq": seq, "prev": seq - 1 if prev is None else prev,
                   "inserts": {"calls": [call_record(n).model_dump() for n in calls]},
                   "row_updates": row_updates or []})


def bookmark(db: Path, token: str, through: int = 0) -> None:
    """The bookmark a killed store left for its journal ``token`` (written when its journal started)."""
    with Store.open(db) as store:
        store.con.execute("INSERT INTO journal (token, through) VALUES (?, ?)", [token, through])


def torn_at_a_page(complete: list[bytes], torn: bytes) -> list[bytes]:
    """``complete`` lines, then the start of ``torn`` cut where a kill stops a write: at a page boundary."""
    size = sum(map(len, complete))
    cut = -size % journal.PAGE or journal.PAGE
    assert len(torn) > cut, "the torn round must reach past the next page boundary"
    return [*complete, torn[:cut]]


def test_a_cut_off_last_line_is_ignored_and_a_damaged_one_refused(db: Path) -> None:
    bookmark(db, "aaaaaaaaaaaa")
    # killed mid-write: the round's write stopped at a page boundary, and was never acknowledged
    write_journal(db, "aaaaaaaaaaaa", torn_at_a_page([round_of(1, [1, 2])], round_of(2, list(range(3, 20)))))
    with Store.open(db) as store:
        assert [c.id for c in store.calls("r-1")] == ["c-0001", "c-0002"]  # the cut-off round was never used
    bookmark(db, "bbbbbbbbbbbb")
    damaged = write_journal(db, "bbbbbbbbbbbb", [round_of(1, [4])[:30] + b"\n", round_of(2, [5])])
    with pytest.raises(StabilityError, match=f"{damaged}: line 1 of the write journal is refused"):
        Store.open(db)
    assert damaged.exists()  # kept for a person to look at, not dropped


def test_a_journal_cut_where_no_crash_cuts_is_refused_naming_what_it_holds(db: Path) -> None:
    bookmark(db, "dddddddddddd")
    lines = [round_of(1, [1, 2]), round_of(2, [3]), round_of(3, [4, 5])]
    cut = len(lines[0]) + len(lines[1]) // 2  # truncated mid-file: round 2 torn, round 3 gone
    path = write_journal(db, "dddddddddddd", [b"".join(lines)[:cut]])
    with pytest.raises(StabilityError, match=f"{path}: cut off at byte {cut}, inside line 2.* 1 complete rounds "
                                             r"before it hold 2 calls \(c-0001, c-0002\)"):
        Store.open(db)
    assert path.exists()
    path.unlink()
    with Store.open(db) as store:
        assert store.calls("r-1") == []


def test_rounds_the_database_already_holds_are_not_applied_again(db: Path) -> None:
    run = RunRecord(id="r-1", protocol="fresh-instance", model="scripted/x", model_params={}, config={}, seed=0,
                    start_hash="sha256:s", template_hash="sha256:t", package_version="0", git_commit=None,
                    created_at=datetime(2026, 1, 1), stop_reason="")
    with Store.open(db) as store:
        store.insert_run(run)
        store.flush()
        # round 1 was applied (its bookmark moved with it) just before the kill that kept it in the file
        store.con.execute("INSERT INTO journal (token, through) VALUES ('cccccccccccc', 1)")
        store.con.execute("UPDATE runs SET stop_reason = 'one'")
    done = {"table": "runs", "key": {"id": "r-1"}, "values": {"stop_reason": "two", "status": "done"}}
    back = {"table": "runs", "key": {"id": "r-1"}, "values": {"stop_reason": "zero"}}
    write_journal(db, "cccccccccccc", [round_of(1, [1], row_updates=[back]), round_of(2, [2], row_updates=[done])])
    with Store.open(db) as store:
        assert store.run("r-1").stop_reason == "two"  # round 2's update only
        assert [c.id for c in store.calls("r-1")] == ["c-0002"]  # round 1's call is not re-inserted either


def test_a_stale_journal_never_moves_the_store_back(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    kill_a_writer(db)
    [left] = journal.paths(str(db))
    stale = Path(left).read_bytes()
    with Store.open(db) as store:  # applies it
        assert len(store.calls("r-1")) == 30
        store.con.execute("DELETE FROM calls WHERE id = 'c-0001'")  # a later change the stale copy must not undo
    Path(left).write_bytes(stale)  # the same journal again (a copy, a backup put back)
    with Store.open(db) as store:
        assert len(store.calls("r-1")) == 29
    assert journal.paths(str(db)) == [] and "stale write journal" in caplog.text


def test_a_journal_whose_file_went_missing_is_stale_when_it_turns_up(db: Path, tmp_path: Path) -> None:
    kill_a_writer(db)
    [left] = journal.paths(str(db))
    aside = tmp_path / "aside"
    os.rename(left, aside)  # hidden from the next open (as a journal named after another path was)
    with Store.open(db) as store:
        assert store.calls("r-1") == []  # the resume went on without it (and would re-send its calls)
    os.rename(aside, left)
    with Store.open(db) as store:
        assert store.calls("r-1") == []  # applying it now would mix two histories: discarded
    assert journal.paths(str(db)) == []


def test_a_store_through_a_symbolic_link_is_one_store(tmp_path: Path) -> None:
    real = tmp_path / "real.duckdb"
    link = tmp_path / "link.duckdb"
    kill_a_writer(real)
    link.symlink_to(real)
    [left] = journal.paths(str(link))  # found through the link: named after the resolved file
    assert left.startswith(str(real) + ".journal.")
    with Store.open(link, read_only=True) as store:
        assert len(store.calls("r-1")) == 30
    with Store.open(link) as store:
        store.insert_call(call_record(31))
        store.flush()
        [own] = journal.paths(str(real))
        assert own.startswith(str(real) + ".journal.")
    assert journal.paths(str(real)) == [] and not list(tmp_path.glob("link.duckdb.*"))


def test_journalled_rounds_reach_duckdb_soon_without_a_flush(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue, "APPLY_SECONDS", 0.05)
    with Store.open(db) as store:

        async def main() -> int:
            store.insert_call(call_record(1))
            await store.committed()
            for _ in range(100):
                await asyncio.sleep(0.02)
                if committed_count(store, "calls"):
                    break
            return committed_count(store, "calls")

        assert asyncio.run(main()) == 1  # readers (snapshots) see it within about APPLY_SECONDS
        assert store.queue.applies >= 1


def test_a_journal_file_is_locked_while_its_store_writes(tmp_path: Path) -> None:
    held = Journal(str(tmp_path / "x.duckdb"))
    fd = os.open(held.path, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
        held.close(remove=True)
    assert not Path(held.path).exists()


def test_values_round_trip_through_the_journal() -> None:
    import numpy as np

    from stability.store.journal import decode

    row = {"at": datetime(2026, 1, 2, 3, 4, 5, 6), "score": np.float32(0.25), "n": np.int64(3),
           "request": {"messages": [{"role": "user", "content": "é"}]}, "none": None}
    back = decode(encode(row))
    assert back == {**row, "score": 0.25, "n": 3}
    assert type(back["score"]) is float and type(back["n"]) is int


def test_a_lookup_applies_the_journal_only_when_a_waiting_call_has_its_key(db: Path) -> None:
    with Store.open(db) as store:
        store.insert_call(call_record(1, key="k-old"))
        store.flush()  # in DuckDB
        assert store.call_keys.may_hold("k-old", lambda: store.con)  # the key set loaded now, not in a lookup

        async def main() -> tuple[list[object], int, list[object], int]:
            store.insert_call(call_record(2, key="k-new"))
            await store.committed()  # journalled, not applied
            other = await store.lookup_call("k-old", 0, "r-1", "run")
            applies_after_other = store.queue.applies
            own = await store.lookup_call("k-new", 0, "r-1", "run")
            return [other], applies_after_other, [own], store.queue.applies

        applies_before = store.queue.applies
        other, after_other, own, after_own = asyncio.run(main())
        assert [c.id for c in other] == ["c-0001"] and after_other == applies_before  # DuckDB answered alone
        assert [c.id for c in own] == ["c-0002"] and after_own == applies_before + 1  # applied first, then found


def test_a_journal_written_before_rounds_named_their_predecessor_is_still_applied(db: Path) -> None:
    """A killed store's journal in the shape of the version before (no ``prev``, ``updates`` always empty, row
    updates grouped), whose store bookmarked it: applied, so upgrading loses none of its calls."""
    with Store.open(db) as store:
        store.insert_run(RunRecord(id="r-1", protocol="fresh-instance", model="scripted/x", model_params={},
                                   config={}, seed=0, start_hash="sha256:s", template_hash="sha256:t",
                                   package_version="0", git_commit=None, created_at=datetime(2026, 1, 1)))
    bookmark(db, "eeeeeeeeeeee", through=0)
    old = [encode({"seq": 3, "inserts": {"calls": [call_record(1).model_dump() | {"chain": None}]},
                   "row_updates": [], "updates": []}),
           encode({"seq": 5, "inserts": {}, "updates": [],
                   "row_updates": [["runs", ["id"], [[["r-1"], {"status": "done", "stop_reason": "declined"}]]]]})]
    write_journal(db, "eeeeeeeeeeee", old)
    with Store.open(db) as store:
        assert [c.id for c in store.calls("r-1")] == ["c-0001"]
        assert (store.run("r-1").status, store.run("r-1").stop_reason) == ("done", "declined")
    assert journal.paths(str(db)) == []
