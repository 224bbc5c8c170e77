"""``stability findings``: the questions' table, ``--json`` as Findings (attractor strength and survival on
a drop-last model), and one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stability.analysis.findings.record import Findings
from stability.engine import IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.vocabulary import Message
from tests.analysis.conftest import experiment_copy, experiment_db  # noqa: F401 - shared fixtures
from tests.conftest import run_cli


def test_findings_json_and_table(experiment_copy: Path, capsys: pytest.CaptureFixture[str],  # noqa: F811
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(["findings", "--all", "--db", str(experiment_copy), "--json", "--embedder", "hashing",
                            "--adjust", "bh"], capsys, monkeypatch)
    assert code == 0, out
    result = Findings.model_validate(json.loads(out))  # the schema: findings[] and unanswerable[]
    assert result.adjust == "bh"
    first = json.loads(out)["findings"][0]
    assert {"question", "measure", "groups", "contrast", "note"} <= set(first)
    routes = [f for f in result.findings if f.question == "convergence-by-route"]
    assert routes and routes[0].groups and sum(g.n for g in routes[0].groups) == 9  # the nine runs
    assert {g.group["model"] for g in routes[0].groups} == {"scripted/resolver", "scripted/canon", "scripted/flip"}
    assert routes[0].note == "one route per model: no route contrast"
    assert {u.question for u in result.unanswerable} >= {"blank-slate"}
    code, out, _ = run_cli(["findings", "--all", "--db", str(experiment_copy), "--embedder", "hashing"], capsys,
                           monkeypatch)
    assert code == 0 and "findings · p adjusted by holm" in out and "fixed_point_rate" in out
    assert "blank-slate: cannot answer: no self-authored start" in out


def test_findings_errors_are_one_line_exit_2(experiment_copy: Path, tmp_path: Path,  # noqa: F811
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for args, says in ((["findings", "--db", str(experiment_copy)], "give an experiment"),
                       (["findings", "nope", "--db", str(experiment_copy)], "no experiment 'nope'"),
                       (["findings", "--all", "--db", str(experiment_copy), "--adjust", "bonferroni"], "--adjust"),
                       (["findings", "--all", "--db", str(tmp_path / "missing.duckdb")], "no such database")):
        code, out, err = run_cli(args, capsys, monkeypatch)
        assert code == 2 and out == "" and says in err and len(err.strip().splitlines()) == 1, (args, err)


def _drop_last(messages: list[Message]) -> str:
    current = [line[2:] for line in messages[-1].content.splitlines() if line.startswith("- ")]
    if len(current) <= 1:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in current[:-1])


def test_findings_on_drop_last_runs_give_attractor_strength_one_and_survival(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that drops the last principle ends every start at one principle: strength 1, position 1, and the
    last principle dies first."""
    scripted.register("drop-last-cli", lambda: ScriptedModel(fn=_drop_last, name="scripted/drop-last-cli"))
    db = tmp_path / "drop.duckdb"
    words = ["honesty", "kindness", "brevity", "courage", "patience"]
    for size in (2, 3, 4, 5):
        start = tmp_path / f"start-{size}.md"
        start.write_text("".join(f"- I value {w} ({size}).\n" for w in words[:size]), encoding="utf-8")
        result = iterate(IterateConfig.model_validate({"model": "scripted/drop-last-cli", "constitution": str(start),
                                                       "options": {"max_steps": 8}}), db)
        assert result.run.status == "done", result.run.error
    code, out, _ = run_cli(["findings", "--all", "--db", str(db), "--json", "--embedder", "hashing"], capsys,
                           monkeypatch)
    assert code == 0, out
    document = json.loads(out)
    sizes = [f for f in document["findings"] if f["property"] == "n_principles"]
    assert len(sizes) == 1 and {"property", "slope", "strength", "position"} <= set(sizes[0])
    assert sizes[0]["slope"]["estimate"] == 0.0 and sizes[0]["strength"]["estimate"] == 1.0
    assert sizes[0]["position"]["estimate"] == 1.0 and sizes[0]["strength"]["clusters"] == 4
    by_position = {g["group"]["position"]: g["estimate"] for f in document["findings"]
                   if f["measure"] == "survival_by_position" for g in f["groups"]}
    assert by_position["last"] == 0.0 and by_position["first"] == 1.0
    reasons = {u["question"]: u["reason"] for u in document["unanswerable"]}
    assert "principle-swap" in reasons and "fine-tune-generations" in reasons
    code, out, _ = run_cli(["findings", "--all", "--db", str(db), "--embedder", "hashing"], capsys, monkeypatch)
    assert code == 0
    lines = out.splitlines()  # the table wraps the measure: "...(n_principles):" then "strength" below it
    strength = [i for i, row in enumerate(lines[:-1])
                if "attractor_strength (n_principles):" in row and "│ strength " in lines[i + 1]]
    assert len(strength) == 1 and "│ 1 [1, 1] " in lines[strength[0]]
    assert "survival_by_position" in out and "principle-swap: cannot answer: no rate-alternatives run" in out
