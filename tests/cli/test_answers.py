"""``stability answers``: the readings of each model's answers, tabulated, with examples (issue 31)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stability.engine import IterateConfig, iterate
from stability.testing.wire_server import WireServer
from stability.vocabulary import Output
from tests.conftest import revised, run_cli, run_protocol, write

CUT = Output(text="REVISED CONSTITUTION:\n- a\n- b was about to", finish_reason="length")


def test_readings_per_model_with_reasons_and_examples(tmp_path: Path, db: Path, wire: WireServer,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    scripted, _ = run_protocol(tmp_path, db, "fresh-instance", max_parse_failures=5, declines_to_stop=1, outputs=[
        revised("a", "b", "c"), "I would rather not say.", CUT, '{"decision": "keep" "constitution"', "NO CHANGE"])
    wire.refuse_structured = 400  # refuses json_schema and json_object: the run answers in text
    wire.reply = lambda messages: "NO CHANGE"
    start = write(tmp_path / "c.md", "- a\n- b\n")
    served = iterate(IterateConfig(model="openai/m", constitution=str(start), options={"declines_to_stop": 2}), db)

    code, out, err = run_cli(["answers", scripted, served.run.id, "--db", str(db), "--json"], capsys, monkeypatch)
    assert code == 0, err
    report = json.loads(out)
    assert report["runs"] == [scripted, served.run.id]
    by_model = {m["model"]: m for m in report["models"]}
    mixed, text = by_model["scripted/test"], by_model["openai/m"]
    assert mixed["readings"] == 5
    assert mixed["kinds"] == {"changed": 1, "declined": 1, "truncated": 1, "parse_failure": 2, "error": 0}
    assert mixed["parse_failures"] == {"no bullet list and no NO CHANGE in answer": 1,
                                       "structured answer is not valid JSON": 1}
    assert mixed["text_fallback"] == 0
    assert mixed["examples"]["truncated"][0]["answer"].startswith("REVISED CONSTITUTION: - a")
    assert text["kinds"]["declined"] == 2 and text["text_fallback"] == 2 and text["structured"] == 0
    [(why, count)] = text["fallback_reasons"].items()
    assert count == 2 and "json_object" in why

    code, out, err = run_cli(["answers", scripted, "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    assert "scripted/test" in out and "parse failure ×1: structured answer is not valid JSON" in out
    assert "openai/m" not in out  # only the runs asked for


def test_an_unknown_target_is_one_line_and_exit_2(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run_protocol(tmp_path, db, "fresh-instance", outputs=["NO CHANGE"] * 3)
    code, out, err = run_cli(["answers", "no-such-run", "--db", str(db)], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no-such-run" in err and not out
