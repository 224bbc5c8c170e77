from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from stability.cli.app import app
from stability.errors import StabilityError
from tests.analysis.conftest import experiment_copy, experiment_db, grid_db  # noqa: F401 - shared fixtures

runner = CliRunner()


def test_analyze_json_and_tables(experiment_copy: Path) -> None:  # noqa: F811
    done = runner.invoke(app, ["analyze", "--all", "--db", str(experiment_copy), "--json", "--embedder", "hashing",
                               "--epsilon", "0.05"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["schema_version"] == 2 and data["params"]["epsilon"] == 0.05
    assert {"runs", "cross_run", "consistency", "embeddings", "notes"} <= set(data)
    tables = runner.invoke(app, ["analyze", "--all", "--db", str(experiment_copy), "--embedder", "hashing"])
    assert tables.exit_code == 0 and "convergence ratio" in tables.output and "0 embedded now" in tables.output


def test_graph_and_report_commands(experiment_copy: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "g.json"
    done = runner.invoke(app, ["graph", "--all", "--db", str(experiment_copy), "--format", "json", "-o", str(out)])
    assert done.exit_code == 0 and json.loads(out.read_text())["directed"] is True
    report = tmp_path / "r.html"
    done = runner.invoke(app, ["report", "--all", "--db", str(experiment_copy), "-o", str(report), "--embedder",
                               "hashing"])
    assert done.exit_code == 0 and report.read_text().startswith("<!DOCTYPE html>")


def test_errors_are_one_line_exit_2(tmp_path: Path, experiment_copy: Path) -> None:  # noqa: F811
    for args in (["analyze", "--db", str(experiment_copy)],
                 ["analyze", "r-nope", "--db", str(experiment_copy)],
                 ["graph", "--all", "--db", str(experiment_copy), "--format", "dot"],
                 ["analyze", "--all", "--db", str(tmp_path / "none.duckdb")],
                 ["analyze", "--all", "--db", str(experiment_copy), "--reference", str(tmp_path / "nope.md")],
                 ["analyze", "--all", "--db", str(experiment_copy), "--by", "colour"],
                 ["analyze", "no-such-experiment", "--db", str(experiment_copy)]):
        done = subprocess.run([sys.executable, "-m", "stability", *args], capture_output=True, text=True)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr


def test_experiments_and_analysis_by_factor(grid_db: Path, tmp_path: Path) -> None:  # noqa: F811
    import shutil

    from tests.analysis import grid

    grid.register()
    db = tmp_path / "grid.duckdb"
    shutil.copy(grid_db, db)
    listed = runner.invoke(app, ["experiments", "--db", str(db), "--json"])
    assert listed.exit_code == 0, listed.output
    [main] = [e for e in json.loads(listed.output) if e["name"] == "grid"]
    assert main["states"] == {"done": 18} and main["factors"]["model"][0] == "scripted/grid-fail"
    table = runner.invoke(app, ["experiments", "--db", str(db)])
    assert table.exit_code == 0 and main["id"] in table.output
    done = runner.invoke(app, ["analyze", main["id"], "--db", str(db), "--json", "--embedder", "hashing",
                               "--by", "model"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    groups = {g["key"]["model"]: g for g in data["groups"]}
    failing = groups["scripted/grid-fail"]
    assert failing["no_verdict"] == 6 and failing["fixed_point_rate"]["n"] == 0
    assert {"mean", "low", "high", "n"} <= set(groups["scripted/grid-shrink"]["cycle_rate"])
    assert groups["scripted/grid-shrink"]["fixed_point_rate"]["mean"] == 1.0
    assert {"runs", "steps_to_fixed_point", "convergence_ratio"} <= set(failing)
    assert {"starts", "models", "fixed_point_rate_started"} <= set(failing) and data["adjust"] == "holm"
    assert groups["scripted/grid-shrink"]["fixed_point_rate"]["method"] == "wilson-t"
    assert data["contrasts_total"] == 3 and all({"paired", "shared_starts"} <= set(c) for c in data["contrasts"])
    assert all({"p_value", "p_adjusted"} <= set(c["fixed_point_rate"]) for c in data["contrasts"])
    # competing-risks contrasts: their p-values are adjusted in the same family (never below the raw ones)
    risks = [c["incidence"] for c in data["contrasts"] if c["incidence"] is not None]
    tested = [(r[f"p_{cause}"], r[f"p_{cause}_adjusted"]) for r in risks for cause in ("fixed_point", "cycle")
              if r[f"p_{cause}"] is not None]
    assert risks and all(adjusted is not None and adjusted >= raw for raw, adjusted in tested)
    tables = runner.invoke(app, ["analyze", "grid", "--db", str(db), "--embedder", "hashing", "--by", "model",
                                 "--adjust", "bh"])
    assert tables.exit_code == 0 and "groups by model" in tables.output and "contrasts" in tables.output
    assert "p adjusted, bh" in tables.output
    assert "Aalen–Johansen" in tables.output  # each group's competing risks
    wrong = runner.invoke(app, ["analyze", "grid", "--db", str(db), "--embedder", "hashing", "--adjust", "bonf"])
    assert isinstance(wrong.exception, StabilityError) and wrong.exception.exit_code == 2  # main() exits 2
    assert str(wrong.exception) == "--adjust 'bonf': choose one of holm, bh"
    report = tmp_path / "r.html"
    done = runner.invoke(app, ["report", "grid", "--db", str(db), "-o", str(report), "--embedder", "hashing",
                               "--by", "model"])
    assert done.exit_code == 0, done.output
    graph = runner.invoke(app, ["graph", "grid", "--db", str(db), "--format", "json"])
    assert graph.exit_code == 0 and len({e["run_id"] for e in json.loads(graph.output)["edges"]}) == 18
    null = runner.invoke(app, ["analyze", "grid-null", "--db", str(db), "--embedder", "hashing", "--by", "model"])
    assert null.exit_code == 0 and "vs rephrase" in null.output and "suggested ε" in null.output
    done = runner.invoke(app, ["report", "grid-null", "--db", str(db), "-o", str(report), "--embedder", "hashing"])
    assert done.exit_code == 0 and "<h3>Drift against the rephrase null</h3>" in report.read_text()
