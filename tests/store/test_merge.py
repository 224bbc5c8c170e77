"""``stability merge``: content-addressed rows dedupe, ids keep their provenance, conflicts write nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from stability.errors import StabilityError
from stability.store import Store
from stability.store import migrations as store_migrations
from stability.store.merge import KEYS, merge_files, table_keys
from tests.conftest import revised, run_cli, run_protocol


def contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but each store's own bookkeeping (``migrations``, the ``journal`` bookmarks), rows sorted: equal
    stores give equal contents."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name NOT IN "
                                            "('migrations', 'journal') ORDER BY table_name").fetchall()]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def altered_copy(source: Path, target: Path, *statements: str) -> Path:
    """A copy of the store ``source`` at ``target``, changed by SQL behind the store's back."""
    shutil.copy(source, target)
    con = duckdb.connect(str(target))
    for statement in statements:
        con.execute(statement)
    con.close()
    return target


@pytest.fixture
def two_stores(tmp_path: Path) -> tuple[Path, Path]:
    """Two stores from one starting constitution: the start node is in both, each has its own run."""
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    run_protocol(tmp_path, a, "fresh-instance", outputs=[revised("a", "b", "c"), "NO CHANGE", "NO CHANGE"])
    run_protocol(tmp_path, b, "fresh-instance", outputs=[revised("a", "b", "d"), "NO CHANGE", "NO CHANGE"], seed=1)
    return a, b


def test_merge_dedupes_nodes_and_keeps_runs(two_stores: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_stores
    out = tmp_path / "all.duckdb"
    report = merge_files([a, b], out)
    ca, cb, merged = contents(a), contents(b), contents(out)
    assert len(merged["runs"]) == 2 and len(merged["calls"]) == len(ca["calls"]) + len(cb["calls"])
    hashes = {r[0] for r in ca["constitutions"]} | {r[0] for r in cb["constitutions"]}
    assert len(hashes) < len(ca["constitutions"]) + len(cb["constitutions"])  # the start node is shared
    assert {r[0] for r in merged["constitutions"]} == hashes and len(merged["constitutions"]) == len(hashes)
    start = next(iter({r[0] for r in ca["constitutions"]} & {r[0] for r in cb["constitutions"]}))
    first_seen = min(r[3] for r in ca["constitutions"] + cb["constitutions"] if r[0] == start)
    assert next(r[3] for r in merged["constitutions"] if r[0] == start) == first_seen
    assert report.written["runs"] == 2
    with Store.open(out, read_only=True) as store:  # a merged store reads like any other
        assert {r.id for r in store.runs()} == {ca["runs"][0][0], cb["runs"][0][0]}


def test_merge_is_order_independent_and_idempotent(two_stores: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_stores
    ab, ba, aa = tmp_path / "ab.duckdb", tmp_path / "ba.duckdb", tmp_path / "aa.duckdb"
    merge_files([a, b], ab)
    merge_files([b, a], ba)
    assert contents(ab) == contents(ba)
    merge_files([a, a], aa)
    assert contents(aa) == contents(a)  # a store merged into itself changes nothing
    before = contents(ab)
    again = merge_files([a, b], ab)  # the existing output is an input too
    assert contents(ab) == before and again.written == {}


def test_a_finished_run_supersedes_its_running_copy(two_stores: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = two_stores
    old = altered_copy(a, tmp_path / "old.duckdb",
                       "UPDATE runs SET status = 'running', stop_reason = NULL, finished_at = NULL")
    one, two = tmp_path / "1.duckdb", tmp_path / "2.duckdb"
    merge_files([old, a], one)
    merge_files([a, old], two)
    assert contents(one) == contents(two) == contents(a)


def test_conflict_is_refused_and_nothing_is_written(two_stores: tuple[Path, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two_stores
    forged = altered_copy(a, tmp_path / "forged.duckdb",
                          "UPDATE calls SET text = 'something else' WHERE id = (SELECT min(id) FROM calls)")
    out = tmp_path / "out.duckdb"
    with pytest.raises(StabilityError, match=r"forged\.duckdb: calls row id=c-\w+ differs .*\(text"):
        merge_files([a, b, forged], out)
    assert not out.exists() and not list(tmp_path.glob(".out.duckdb*"))
    merge_files([a], out)
    before = contents(out)
    code, stdout, err = run_cli(["merge", str(b), str(forged), "-o", str(out)], capsys, monkeypatch)
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1 and "forged.duckdb" in err
    assert contents(out) == before  # the existing output is untouched


def test_merge_cli_reports_rows(two_stores: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two_stores
    code, out, _ = run_cli(["merge", str(a), str(b), "-o", str(tmp_path / "m.duckdb")], capsys, monkeypatch)
    assert code == 0 and "merged 2 stores" in out and "runs 2" in out
    code, _, err = run_cli(["merge", str(tmp_path / "missing.duckdb"), "-o", str(tmp_path / "m.duckdb")], capsys,
                           monkeypatch)
    assert code == 2 and "missing.duckdb: no such database file" in err


def test_every_table_has_a_merge_key(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        keys = table_keys(store.con)
        primary = {r[0] for r in store.con.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'").fetchall()}
    assert "migrations" not in keys and set(KEYS) <= set(keys)
    assert all(table in KEYS or table in primary for table in keys)  # none falls back to "all columns"


def test_a_table_added_later_merges_by_its_primary_key(two_stores: tuple[Path, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def m999_annotations(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE annotations (id VARCHAR PRIMARY KEY, run_id VARCHAR, verdict VARCHAR)")

    monkeypatch.setattr(store_migrations, "MIGRATIONS", [*store_migrations.MIGRATIONS, m999_annotations])
    a, b = two_stores
    for path, rows in ((a, [("j1", "x"), ("j2", "y")]), (b, [("j2", "y"), ("j3", "z")])):
        Store.open(path).close()  # migrates
        con = duckdb.connect(str(path))
        con.executemany("INSERT INTO annotations VALUES (?, 'r', ?)", [list(r) for r in rows])
        con.close()
    out = tmp_path / "out.duckdb"
    merge_files([a, b], out)
    assert contents(out)["annotations"] == [("j1", "r", "x"), ("j2", "r", "y"), ("j3", "r", "z")]
    con = duckdb.connect(str(b))
    con.execute("UPDATE annotations SET verdict = 'changed' WHERE id = 'j2'")
    con.close()
    with pytest.raises(StabilityError, match="annotations row id=j2"):
        merge_files([a, b], tmp_path / "other.duckdb")


def test_merging_into_a_store_in_use_is_refused(two_stores: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_stores
    with Store.open(a), pytest.raises(StabilityError, match=r"a\.duckdb: cannot merge into it while it is in use"):
        merge_files([b], a)
    assert not list(tmp_path.glob(".a.duckdb.merging*"))


def test_rows_that_would_break_a_constraint_are_refused(two_stores: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = two_stores
    twin = altered_copy(a, tmp_path / "twin.duckdb",  # the same (run, step) under another revision id
                        "UPDATE revisions SET id = id || 'x' WHERE step = 1",
                        "UPDATE edges SET id = id || 'x', target_id = target_id || 'x' WHERE target_id LIKE '%:1'")
    out = tmp_path / "out.duckdb"
    with pytest.raises(StabilityError, match="would break a constraint"):
        merge_files([a, twin], out)
    assert not out.exists()
