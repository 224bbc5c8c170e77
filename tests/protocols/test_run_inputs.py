"""A protocol's input files (alternatives, a neutral constitution) are read and hashed by the engine: recorded with
the run, shown with its provenance, checked again on resume."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from stability.engine import resume
from stability.engine.inputs import read_inputs
from stability.errors import StabilityError
from stability.protocols import protocol_class
from stability.store import Store
from stability.vocabulary import Message
from tests.conftest import run_cli, run_protocol, write

START = "- Be honest.\n- Be kind.\n"
ALTERNATIVES = "- Be truthful.\n- Be candid.\n"


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def failing_after_one_trial(tmp_path: Path, db: Path, alternatives: Path) -> str:
    """A two-trial rate-alternatives run whose second trial fails: its id."""
    answers: list[str | Exception] = ["A: 5\nB: 1\nC: 1\nFAVOURITE: A", ValueError("provider down")]
    run_id, _ = run_protocol(tmp_path, db, "rate-alternatives", answers, start=START,
                             alternatives=str(alternatives), trials=2)
    with Store.open(db) as store:
        assert store.run(run_id).status == "failed"
    return run_id


def favour_first(messages: list[Message]) -> str:
    return "A: 5\nB: 1\nC: 1\nFAVOURITE: A"


def test_the_alternatives_file_hash_is_recorded_and_shown(tmp_path: Path, db: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    alternatives = write(tmp_path / "alts.yaml", ALTERNATIVES)
    run_id, _ = run_protocol(tmp_path, db, "rate-alternatives", fn=favour_first, start=START,
                             alternatives=str(alternatives), trials=1)
    with Store.open(db) as store:
        recorded = store.run_inputs(run_id)
    assert [(r.option, r.path, r.sha256) for r in recorded] == [("alternatives", str(alternatives), sha(alternatives))]
    code, out, _ = run_cli(["show", run_id, "--db", str(db), "--json"], capsys, monkeypatch)
    assert code == 0
    assert json.loads(out)["inputs"] == [{"run_id": run_id, "option": "alternatives", "path": str(alternatives),
                                          "sha256": sha(alternatives)}]
    code, out, _ = run_cli(["show", run_id, "--db", str(db)], capsys, monkeypatch)
    assert f"input alternatives: {alternatives} · {sha(alternatives)[:19]}" in out


def test_every_constitution_of_a_yaml_list_is_hashed_relative_to_the_list(tmp_path: Path) -> None:
    one = write(tmp_path / "ids" / "one.md", "# One\n- I am one.\n")
    two = write(tmp_path / "ids" / "two.md", "# Two\n- I am two.\n")
    listing = write(tmp_path / "ids" / "list.yaml", "- one.md\n- two.md\n")
    protocol = protocol_class("rate-alternatives").configure({"mode": "constitution", "alternatives": str(listing)})
    read = read_inputs(protocol)
    assert [(r.path, r.sha256) for r in read] == [(str(listing), sha(listing)), (str(one), sha(one)),
                                                  (str(two), sha(two))]
    assert [c.principles for c in protocol.inputs.constitutions("alternatives")] == [("I am one.",), ("I am two.",)]


def test_resume_refuses_a_changed_alternatives_file_and_continues_an_unchanged_one(tmp_path: Path,
                                                                                   db: Path) -> None:
    alternatives = write(tmp_path / "alts.yaml", ALTERNATIVES)
    run_id = failing_after_one_trial(tmp_path, db, alternatives)
    write(alternatives, ALTERNATIVES + "- Be forthright.\n")
    with pytest.raises(StabilityError, match=f"input file {alternatives} changed since the run started"):
        resume(run_id, db)
    with Store.open(db) as store:
        assert store.run(run_id).status == "failed"  # refused before anything was written
    write(alternatives, ALTERNATIVES)
    run_protocol_model(favour_first)
    result = resume(run_id, db)
    assert result.run.status == "done", result.run.error


def test_a_run_stored_before_inputs_were_recorded_resumes_and_records_them(tmp_path: Path, db: Path) -> None:
    alternatives = write(tmp_path / "alts.yaml", ALTERNATIVES)
    run_id = failing_after_one_trial(tmp_path, db, alternatives)
    with duckdb.connect(str(db)) as con:  # as a store before m013_run_inputs would have it
        con.execute("DELETE FROM run_inputs")
    with Store.open(db) as store:
        assert store.run_inputs(run_id) == []
    run_protocol_model(favour_first)
    assert resume(run_id, db).run.status == "done"
    with Store.open(db) as store:
        assert [(r.path, r.sha256) for r in store.run_inputs(run_id)] == [(str(alternatives), sha(alternatives))]


def test_an_unreadable_alternatives_file_is_one_line_naming_it_and_writes_nothing(tmp_path: Path,
                                                                                  db: Path) -> None:
    bad = tmp_path / "alts.yaml"
    bad.write_bytes(b"- Be \xff truthful.\n- Be candid.\n")
    with pytest.raises(StabilityError, match=f"{bad}:1: not UTF-8"):
        run_protocol(tmp_path, db, "rate-alternatives", ["x"], start=START, alternatives=str(bad))
    with pytest.raises(StabilityError, match="nowhere.yaml: no such file"):
        run_protocol(tmp_path, db, "rate-alternatives", ["x"], start=START, alternatives=str(tmp_path / "nowhere.yaml"))
    assert not db.exists()


def run_protocol_model(fn: Callable[[list[Message]], str]) -> None:
    """Register the scripted subject a resume will load."""
    from stability.models import scripted
    from stability.models.scripted import ScriptedModel

    model = ScriptedModel(fn=fn, name="scripted/test")
    scripted.register("test", lambda: model)


def test_a_neutral_constitution_file_is_read_by_the_engine_and_a_library_name_is_not(tmp_path: Path) -> None:
    own = write(tmp_path / "mine.md", "- I use metric units.\n")
    fine_tune = protocol_class("fine-tune-reflect")
    protocol = fine_tune.configure({"control": "neutral-constitution", "neutral_constitution": str(own)})
    assert [(r.option, r.path, r.sha256) for r in read_inputs(protocol)] == [
        ("neutral_constitution", str(own), sha(own))]
    assert protocol.inputs.constitution("neutral_constitution") is not None
    named = fine_tune.configure({"control": "neutral-constitution", "neutral_constitution": "neutral/procedure-3"})
    assert read_inputs(named) == []
    assert named.inputs.constitution("neutral_constitution") is None  # a library name: the protocol resolves it
    assert read_inputs(fine_tune.configure({"neutral_constitution": str(own)})) == []  # not its control arm
