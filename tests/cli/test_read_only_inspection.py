"""The inspection commands only read the store, print stored text safely, and count only answered calls as paid."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import revised, run_cli, run_protocol


def _cli(args: list[str], capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    return run_cli(args, capsys, monkeypatch)


def _bytes(db: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(db.parent.glob(db.name + "*"))}


def test_analyze_report_and_graph_leave_the_store_byte_identical(tmp_path: Path, db: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run_protocol(tmp_path, db, "fresh-instance", outputs=[revised("a", "b", "c"), "NO CHANGE", "NO CHANGE"])
    before = _bytes(db)
    db.chmod(0o444)
    for args in (["analyze", "--all", "--embedder", "hashing"], ["analyze", "--all", "--embedder", "hashing"],
                 ["report", "--all", "--embedder", "hashing", "-o", str(tmp_path / "r.html")],
                 ["graph", "--all", "-o", str(tmp_path / "g.graphml")], ["runs"]):
        code, _, err = _cli([*args, "--db", str(db)], capsys, monkeypatch)
        assert code == 0, (args, err)
    assert _bytes(db) == before  # no embeddings table, no migration, no WAL: the store was only read
    assert (tmp_path / "embedding-cache.duckdb").is_file()  # the vectors went to the cache's own file


def test_control_characters_in_principles_are_escaped_on_the_terminal(tmp_path: Path, db: Path,
                                                                       capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run_id, _ = run_protocol(tmp_path, db, "fresh-instance", start="- plain\n- \x1b[2J\x1b[31mred alert\n",
                             outputs=[revised("plain", "\x1b]0;title\x07 now \u202eevil"), "NO CHANGE", "NO CHANGE"])
    code, out, err = _cli(["show", run_id, "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[31mred alert" in out and "\\x1b]0;title\\x07 now \\u202eevil" in out
    code, out, _ = _cli(["show", run_id, "--json", "--db", str(db)], capsys, monkeypatch)
    assert code == 0 and "\x1b" not in out and "\\u001b[31mred alert" in out  # JSON escapes them itself


def test_a_call_that_failed_is_not_counted_as_paid(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(messages: list[object]) -> object:
        return ValueError("temperature: not a number")  # refused by the client: nothing was answered

    run_protocol(tmp_path, db, "fresh-instance", fn=refuse)
    code, out, err = _cli(["runs", "--json", "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    [run] = json.loads(out)
    assert (run["status"], run["calls"], run["paid_calls"]) == ("failed", 1, 0)
    code, out, err = _cli(["iterate", "--resume", run["id"], "--db", str(db)], capsys, monkeypatch)
    assert "(paid 0)" in out


def test_runs_on_a_duckdb_file_without_a_runs_table_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE notes (text VARCHAR)")
    con.close()
    before = other.read_bytes()
    code, out, err = run_cli(["runs", "--db", str(other)], capsys, monkeypatch)
    assert code == 2 and out == ""
    assert err.strip() == f"error: {other}: not a stability database (it has no runs table)"
    assert other.read_bytes() == before  # read-only: nothing written
