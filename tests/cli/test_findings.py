"""``stability findings``: the questions' table, ``--json`` as Findings, and one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stability.analysis.findings.record import Findings
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
