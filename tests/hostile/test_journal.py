"""Hostile write journals beside a store, met through the CLI (``stability runs``, a read-only open).

A store received from a collaborator may come with a ``DB.journal.*`` beside it, and the next open of the store
applies what a journal holds. Each case here asserts the journal's promise: exit 2 and one line naming the file
(or the documented safe behaviour: a stale journal discarded, a stray name left alone, a value stored as the
data it is), nothing executed (no file appears), nothing written (the store and its folder are as they were),
nothing lost (the refused journal is kept for a person to look at).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from stability.records import RunRecord
from stability.store import Store, journal
from tests.conftest import run_cli
from tests.store.test_queue import call_record

TOKEN = "0123456789ab"  # the journal of a store that was killed: its bookmark is in the store
CANARY = "pwned"  # the file every injected statement tries to write


def _run() -> RunRecord:
    return RunRecord(id="r-1", protocol="fresh-instance", model="scripted/x", model_params={}, config={}, seed=0,
                     start_hash="sha256:s", template_hash="sha256:t", package_version="0", git_commit=None,
                     created_at=datetime(2026, 1, 1), stop_reason="")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with one finished run and one call, and the open bookmark of a killed writer's journal."""
    db = tmp_path / "shared.duckdb"
    with Store.open(db) as opened:
        opened.insert_run(_run())
        opened.insert_call(call_record(1))
        opened.finish_run("r-1", "done", "declined")
        opened.flush()
        opened.con.execute("INSERT INTO journal (token, through) VALUES (?, 0)", [TOKEN])
    return db


def state(db: Path) -> tuple[Any, ...]:
    """Everything a journal could change, read without applying anything."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return (con.execute("SELECT * FROM runs ORDER BY id").fetchall(),
                con.execute("SELECT id, text, input_tokens, cost_usd FROM calls ORDER BY id").fetchall(),
                con.execute("SELECT * FROM journal ORDER BY token").fetchall(),
                con.execute("SELECT count(*) FROM migrations").fetchall())
    finally:
        con.close()


def call_row(number: int, **changes: Any) -> dict[str, Any]:
    return {**call_record(number).model_dump(), "chain": None, **changes}


def line(seq: Any = 1, prev: int = 0, **body: Any) -> dict[str, Any]:
    """A round inserting one call (c-0002 for round 1)."""
    number = seq + 1 if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 9000 else 2
    return {"seq": seq, "prev": prev, "inserts": {"calls": [call_row(number)]}, "row_updates": [], **body}


def encoded(*records: dict[str, Any]) -> bytes:
    return b"".join(journal.encode(r) for r in records)


def copy_to(tmp_path: Path) -> str:
    return f"COPY (SELECT 'x') TO '{tmp_path / CANARY}'"


def update(table: str = "runs", key: dict[str, Any] | None = None, **values: Any) -> dict[str, Any]:
    return {"table": table, "key": key if key is not None else {"id": "r-1"}, "values": values or {"status": "x"}}


# -- refused: exit 2, one line naming the file, nothing applied --------------------------------------------------
# each builder returns the journal's bytes (written as DB.journal.TOKEN); ``sql`` is a statement writing the canary

Builder = Callable[[str], bytes]

REFUSED: dict[str, tuple[Builder, str]] = {
    # statements, wherever they are put
    "statement entries (the old format)": (
        lambda sql: encoded(line(updates=[[sql, []]])), "updates"),
    "a statement as a table to insert into": (
        lambda sql: encoded(line(inserts={f"calls (id) SELECT 1; {sql}; --": [call_row(2)]})),
        "may not insert into"),
    "a statement as a column name": (
        lambda sql: encoded(line(inserts={"calls": [{**call_row(2), f"id) SELECT 1; {sql}; --": 1}]})),
        "has no column"),
    "a statement as a table to update": (
        lambda sql: encoded(line(row_updates=[update(f"runs SET status = 1; {sql}; --")])), "may not update"),
    "a statement as a key column": (
        lambda sql: encoded(line(row_updates=[update(key={f"id = id; {sql}; --": "r-1"})])), "keyed by id"),
    "a statement as a column to set": (
        lambda sql: encoded(line(row_updates=[update(**{f"status = 'x'; {sql}; --": "x"})])), "may not set"),
    "a statement as a top-level field": (
        lambda sql: encoded(line(sql=sql)), "sql"),
    "a statement as the seq": (
        lambda sql: encoded(line(seq=sql)), "seq"),
    "a statement as a whole line": (
        lambda sql: (sql + ";\n").encode() + encoded(line(2, 1)), "line 1"),
    # tables and columns the journal may not touch
    "an insert into the bookmarks": (
        lambda sql: encoded(line(inserts={"journal": [{"token": "ffffffffffff", "through": 0}]})),
        "may not insert into 'journal'"),
    "an insert into migrations": (
        lambda sql: encoded(line(inserts={"migrations": [{"name": "x", "applied_at": {"$datetime": "2026-01-01"}}]})),
        "may not insert into 'migrations'"),
    "an insert into experiments": (
        lambda sql: encoded(line(inserts={"experiments": [{"id": "e"}]})), "may not insert into 'experiments'"),
    "an insert into a table that does not exist": (
        lambda sql: encoded(line(inserts={"nothing": [{"id": "e"}]})), "may not insert into 'nothing'"),
    "an update of the bookmarks": (
        lambda sql: encoded(line(row_updates=[update("journal", {"token": TOKEN}, through=10**9)])),
        "may not update 'journal'"),
    "an update of calls": (
        lambda sql: encoded(line(row_updates=[update("calls", {"id": "c-0001"}, text="forged")])),
        "may not update 'calls'"),
    "an update of a run's id": (
        lambda sql: encoded(line(row_updates=[update(id="r-2")])), "may not set runs.id"),
    "an update of a run's config": (
        lambda sql: encoded(line(row_updates=[update(config={"x": 1})])), "may not set runs.config"),
    "an update keyed by another column": (
        lambda sql: encoded(line(row_updates=[update(key={"model": "scripted/x"})])), "keyed by id"),
    "an update with no values": (
        lambda sql: encoded(line(row_updates=[{"table": "runs", "key": {"id": "r-1"}, "values": {}}])), "values"),
    "an update with an unknown field": (
        lambda sql: encoded(line(row_updates=[{**update(), "where": "true"}])), "where"),
    "an unknown column in a row": (
        lambda sql: encoded(line(inserts={"calls": [call_row(2, secret=1)]})), "has no column 'secret'"),
    # wrong types and shapes
    "the seq as text": (lambda sql: encoded(line(seq="1")), "seq"),
    "the seq as true": (lambda sql: encoded(line(seq=True)), "seq"),
    "a negative seq": (lambda sql: encoded(line(seq=-1)), "seq"),
    "a seq beyond BIGINT": (lambda sql: encoded(line(seq=2**64, prev=0)), "seq"),
    "a round before the one it follows": (lambda sql: encoded(line(seq=3, prev=5)), "does not follow"),
    "inserts as a list": (lambda sql: encoded(line(inserts=[call_row(2)])), "inserts"),
    "row updates as a dict": (lambda sql: encoded(line(row_updates={"runs": 1})), "row_updates"),
    "a line that is a list": (lambda sql: b"[1, 2]\n", "not a JSON object"),
    "a line that is a number": (lambda sql: b"1\n", "not a JSON object"),
    "binary garbage": (lambda sql: b"\x00\xff\xfe garbage\n" + encoded(line(2, 1)), "line 1"),
    "an empty line": (lambda sql: b"\n" + encoded(line(1, 0)), "line 1"),
    "a deeply nested line": (lambda sql: b"[" * 200_000 + b"\n", "line 1"),
    "a step as text": (lambda sql: encoded(line(inserts={"calls": [call_row(2, step="two")]})), "calls.step"),
    "a step beyond INTEGER": (lambda sql: encoded(line(inserts={"calls": [call_row(2, step=2**40)]})),
                              "calls.step"),
    "a seed beyond BIGINT": (
        lambda sql: encoded(line(inserts={"runs": [{**_run().model_dump(), "id": "r-2", "seed": 2**70}]})),
        "runs.seed"),
    "a token count as text": (
        lambda sql: encoded(line(inserts={"calls": [call_row(2, input_tokens="1e15")]})), "calls.input_tokens"),
    "a negative cost": (lambda sql: encoded(line(inserts={"calls": [call_row(2, cost_usd=-59.99)]})),
                        "calls.cost_usd"),
    "an infinite cost": (lambda sql: encoded(line(inserts={"calls": [call_row(2, cost_usd=float("inf"))]})),
                         "calls.cost_usd"),
    "a cost that is not a number": (lambda sql: encoded(line(inserts={"calls": [call_row(2, cost_usd=float("nan"))]})),
                                    "calls.cost_usd"),
    "a date that is no date": (
        lambda sql: encoded(line(inserts={"calls": [call_row(2, created_at={"$datetime": sql})]})), "line 1"),
    "a date as a number": (
        lambda sql: encoded(line(inserts={"calls": [call_row(2, created_at={"$datetime": 5})]})), "line 1"),
    "a date as plain text": (
        lambda sql: encoded(line(inserts={"calls": [call_row(2, created_at="2026-01-01")]})), "calls.created_at"),
    "a null where none may be": (
        lambda sql: encoded(line(inserts={"calls": [call_row(2, cache_key=None)]})), "calls.cache_key"),
    "a row lacking a column": (
        lambda sql: encoded(line(inserts={"calls": [{k: v for k, v in call_row(2).items() if k != "run_id"}]})),
        "lacks run_id"),
    "a status set to a number": (
        lambda sql: encoded(line(row_updates=[update(status=7)])), "runs.status"),
    # lines lost in the middle or at the head
    "a line missing from the middle": (
        lambda sql: encoded(line(1, 0), line(3, 2)), "line 2 of the write journal does not follow"),
    "a line repeated": (
        lambda sql: encoded(line(1, 0), line(1, 0)), "does not follow"),
    "lines missing from the head": (
        lambda sql: encoded(line(5, 4), line(6, 5)), "missing from its head"),
}


@pytest.mark.parametrize("builder, message", list(REFUSED.values()), ids=list(REFUSED))
def test_a_hostile_journal_is_refused_and_nothing_runs(store: Path, tmp_path: Path, builder: Builder,
                                                      message: str, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(f"{store}.journal.{TOKEN}")
    path.write_bytes(builder(copy_to(tmp_path)))
    before, files = state(store), sorted(os.listdir(tmp_path))
    code, out, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(path) in err and message in err, err
    assert not (tmp_path / CANARY).exists()  # nothing executed
    assert state(store) == before and sorted(os.listdir(tmp_path)) == files  # nothing written
    assert path.exists()  # nothing lost: kept for a person to look at


# -- cut short: a crash's cut is expected, any other is refused naming what the rest holds ----------------------

def rounds(n: int, calls: int = 3) -> list[bytes]:
    return [journal.encode({"seq": s, "prev": s - 1, "row_updates": [],
                            "inserts": {"calls": [call_row(100 + s * 10 + c) for c in range(calls)]}})
            for s in range(1, n + 1)]


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.3, 0.5, 0.62, 0.77, 0.95, 0.999])
def test_a_journal_truncated_mid_file_is_refused_naming_its_calls(store: Path, fraction: float,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"".join(rounds(6))
    cut = int(len(data) * fraction)
    while cut % journal.PAGE == 0 or data[cut - 1:cut] == b"\n":  # a cut at a line's end is no cut to see
        cut += 1
    path = Path(f"{store}.journal.{TOKEN}")
    path.write_bytes(data[:cut])
    whole = data[:cut].count(b"\n")
    before = state(store)
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1
    assert f"cut off at byte {cut}" in err and f"{whole} complete rounds before it hold {whole * 3} calls" in err
    assert state(store) == before and path.exists()


def test_a_torn_last_line_alone_is_a_crash_and_the_rest_is_applied(store: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    complete = rounds(2)
    torn = journal.encode({"seq": 3, "prev": 2, "row_updates": [],
                           "inserts": {"calls": [call_row(500 + n) for n in range(30)]}})
    cut = -sum(map(len, complete)) % journal.PAGE
    path = Path(f"{store}.journal.{TOKEN}")
    path.write_bytes(b"".join(complete) + torn[:cut])  # the write of round 3 stopped at a page boundary
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 0, err
    calls = [c[0] for c in state(store)[1]]
    assert len(calls) == 1 + 6 and not any(c.startswith("c-05") for c in calls)
    assert not path.exists()


# -- not a journal: one line, never a traceback -----------------------------------------------------------------

def test_a_folder_with_a_journals_name_is_refused(store: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(f"{store}.journal.{TOKEN}")
    folder.mkdir()
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and f"{folder}: a folder, not a write journal" in err
    assert folder.is_dir()


@pytest.mark.parametrize("target", ["journal", "passwd", "missing"])
def test_a_symbolic_link_with_a_journals_name_is_refused(store: Path, tmp_path: Path, target: str,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pointed = tmp_path / f"elsewhere-{target}"
    if target == "journal":
        pointed.write_bytes(encoded(line()))
    elif target == "passwd":
        pointed.write_text("root:x:0:0:root:/root:/bin/bash\n")
    link = Path(f"{store}.journal.{TOKEN}")
    link.symlink_to(pointed)
    before = state(store)
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and f"{link}: a symbolic link, not a write journal" in err
    assert state(store) == before and link.is_symlink()


def test_a_pipe_with_a_journals_name_is_refused_without_waiting(store: Path, capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = Path(f"{store}.journal.{TOKEN}")
    os.mkfifo(pipe)
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and f"{pipe}: not a plain file" in err


def test_a_journal_this_store_never_started_is_refused(store: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = Path(f"{store}.journal.ffffffffffff")
    foreign.write_bytes(encoded(line()))
    before = state(store)
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and f"{foreign}: a write journal this store never started" in err
    assert state(store) == before and foreign.exists()


def test_a_journal_larger_than_any_store_writes_is_refused(store: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "MAX_BYTES", 1000)
    path = Path(f"{store}.journal.{TOKEN}")
    path.write_bytes(b"".join(rounds(5)))
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "larger than any write journal" in err


# -- the documented safe behaviour ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["old.bak", "0123456789ab.bak", "x", "0123456789AB"])
def test_a_stray_name_beside_the_store_is_left_alone(store: Path, name: str, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    stray = Path(f"{store}.journal.{name}")
    stray.write_bytes(encoded(line(updates=[["DROP TABLE runs", []]])))
    before = state(store)
    code, out, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 0 and "r-1" in out
    assert f"{stray}: not a write journal's name" in err and err.count("\n") == 1
    assert state(store) == before and stray.exists()


def test_a_stale_journal_is_discarded_with_a_line(store: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(store) as opened:
        opened.con.execute("UPDATE journal SET closed_at = now()::TIMESTAMP WHERE token = ?", [TOKEN])
    path = Path(f"{store}.journal.{TOKEN}")
    path.write_bytes(encoded(line(row_updates=[update(status="running", stop_reason=None)])))
    before = state(store)
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 0 and "stale write journal" in err and err.count("\n") == 1
    assert state(store)[:2] == before[:2]  # the finished run stays finished
    assert not path.exists()


@pytest.mark.parametrize("column", ["text", "error", "purpose", "model", "finish_reason", "thinking"])
def test_sql_in_a_value_is_stored_as_the_text_it_is(store: Path, tmp_path: Path, column: str,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sql = f"'); {copy_to(tmp_path)}; --"
    path = Path(f"{store}.journal.{TOKEN}")
    path.write_bytes(encoded(line(inserts={"calls": [call_row(2, **{column: sql})]})))
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 0, err
    assert not (tmp_path / CANARY).exists()
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute(f"SELECT {column} FROM calls WHERE id = 'c-0002'").fetchone() == (sql,)
    finally:
        con.close()


@pytest.mark.parametrize("tokens, stored", [(10**15, 2**31 - 1), (-59_990_000, 0), (2**31, 2**31 - 1)])
def test_absurd_token_counts_in_a_journal_are_bounded_and_block_nothing(store: Path, tokens: int, stored: int,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(f"{store}.journal.{TOKEN}")
    path.write_bytes(encoded(line(inserts={"calls": [call_row(2, input_tokens=tokens), call_row(3)]})))
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 0, err
    assert {c[0]: c[2] for c in state(store)[1]} == {"c-0001": 1, "c-0002": stored, "c-0003": 1}
    code, _, err = run_cli(["runs", "--db", str(store)], capsys, monkeypatch)
    assert code == 0 and not path.exists()  # applied once, every later command works


def test_a_store_reached_through_a_link_finds_the_journal_beside_the_real_file(
        store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    link = tmp_path / "link.duckdb"
    link.symlink_to(store)
    Path(f"{store}.journal.{TOKEN}").write_bytes(encoded(line()))
    code, out, err = run_cli(["runs", "--db", str(link)], capsys, monkeypatch)
    assert code == 0, err
    assert [c[0] for c in state(store)[1]] == ["c-0001", "c-0002"]
    assert not list(tmp_path.glob("link.duckdb.*"))


# -- every way in that opens a store applies (or refuses) its journal the same way --------------------------------

ENTRY_POINTS = {
    "show": lambda db, tmp: ["show", "r-1", "--db", str(db)],
    "merge source": lambda db, tmp: ["merge", str(db), "-o", str(tmp / "merged.duckdb")],
    "export": lambda db, tmp: ["export", "--all", "-o", str(tmp / "exported"), "--db", str(db)],
    "cache-from": lambda db, tmp: ["run", str(tmp / "spec.yaml"), "--db", str(tmp / "new.duckdb"), "--cache-from",
                                   str(db)],
}


@pytest.mark.parametrize("command", list(ENTRY_POINTS.values()), ids=list(ENTRY_POINTS))
def test_a_statement_in_a_journal_runs_through_no_way_in(store: Path, tmp_path: Path, command: Any,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "c.md").write_text("- a\n")
    (tmp_path / "spec.yaml").write_text(f"name: x\nmodels: [scripted/decline]\nconstitutions: ['{tmp_path}/c.md']\n"
                                        "protocols: [fresh-instance]\n")
    path = Path(f"{store}.journal.{TOKEN}")
    path.write_bytes(encoded(line(updates=[[copy_to(tmp_path), []]])))
    before, files = state(store), sorted(os.listdir(tmp_path))
    code, _, err = run_cli(command(store, tmp_path), capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and str(path) in err, err
    assert not (tmp_path / CANARY).exists()
    assert state(store) == before and path.exists()
    left = set(os.listdir(tmp_path)) - set(files)  # no merged store, no export left behind
    # (``run --cache-from`` creates its own new store before it reads the other: the runner's order, not the
    # journal's; the refused journal's store is untouched all the same)
    assert left <= ({"new.duckdb"} if "--cache-from" in command(store, tmp_path) else set()), left
