"""`stability analyze` verdicts end to end: an exact cycle outranks ε, and --k governs the declines rule."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stability.cli.app import app
from stability.engine import IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.vocabulary import Message
from tests.analysis.conftest import experiment_copy, experiment_db  # noqa: F401 - shared fixtures

runner = CliRunner()
ALWAYS, NEVER = "I always tell the truth.", "I never tell the truth."
OTHERS = [f"I keep rule number {i} of the house charter in mind when I answer." for i in range(2, 42)]


def negate(messages: list[Message]) -> str:
    current = [line[2:] for line in messages[-1].content.splitlines() if line.startswith("- ")]
    flipped = [NEVER if p == ALWAYS else ALWAYS if p == NEVER else p for p in current]
    return "REVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in flipped)


def test_a_negation_flip_that_returns_is_a_cycle_not_a_fixed_point(tmp_path: Path) -> None:
    scripted.register("negate", lambda: ScriptedModel(fn=negate, name="scripted/negate"))
    start = tmp_path / "charter.md"
    start.write_text("".join(f"- {p}\n" for p in [ALWAYS, *OTHERS]), encoding="utf-8")
    db = tmp_path / "negate.duckdb"
    iterate(IterateConfig(model="scripted/negate", constitution=str(start),
                          options={"max_steps": 10, "cycle_returns": 3}), db)
    done = runner.invoke(app, ["analyze", "--all", "--db", str(db), "--json", "--embedder", "hashing",
                               "--epsilon", "0.02"])
    assert done.exit_code == 0, done.output
    [run] = json.loads(done.output)["runs"]
    assert run["stop_reason"] == "cycle" and len(run["steps"][0]["node"]) > 0
    assert max(s["d_prev"] for s in run["steps"][1:]) < 0.02  # one principle of 41: within ε
    assert run["verdict"] == "cycle" and run["fixed_point"] is None
    assert [c["returns"] for c in run["cycles"]] == [3]


def test_k_governs_the_declines_rule_from_the_cli(experiment_copy: Path) -> None:  # noqa: F811
    def verdicts(*extra: str) -> dict[str, list[str]]:
        done = runner.invoke(app, ["analyze", "--all", "--db", str(experiment_copy), "--json", "--embedder",
                                   "hashing", *extra])
        assert done.exit_code == 0, done.output
        out: dict[str, list[str]] = {}
        for run in json.loads(done.output)["runs"]:
            if run["stop_reason"] == "declined":
                out.setdefault(run["verdict"], []).append(run["fixed_point"] and run["fixed_point"]["how"])
        return out

    default = verdicts()  # the runs stopped on their K = 2 declines
    assert set(default) == {"fixed_point"} and set(default["fixed_point"]) == {"declines"}
    strict = verdicts("--k", "5")  # two declines are not five
    assert set(strict) == {"unsettled"} and len(strict["unsettled"]) == len(default["fixed_point"])
