"""One call session per invocation (issue 27): the one place a call path is made, the one budget, and ``probe`` and
``judge`` priced with ``--prices`` and asking within their cache scope, through the CLI."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stability.budget import Budget, BudgetExceeded
from stability.cli import boundary
from stability.cli.app import app
from stability.engine import CallSession, IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.prices import Price, PriceTable
from stability.store import Store
from stability.testing.judges import rule_judge
from tests.analysis import experiment
from tests.conftest import write

PACKAGE = Path(__file__).resolve().parents[1] / "stability"


def _makers(source: str) -> list[int]:
    """The lines of ``source`` that construct a ``CallPath``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name == "CallPath":
                lines.append(node.lineno)
    return lines


def test_a_call_path_is_made_in_one_module_only() -> None:
    makers = {str(p.relative_to(PACKAGE.parent)): _makers(p.read_text(encoding="utf-8"))
              for p in PACKAGE.rglob("*.py")}
    assert sorted(path for path, lines in makers.items() if lines) == ["stability/engine/session.py"]
    # the check could fail: a call path made elsewhere is found
    assert _makers("from stability.calls import CallPath\npath = CallPath(store, model, 'r-1')\n") == [2]


def test_one_budget_for_a_command_an_experiment_and_a_ledger() -> None:
    command = Budget(0.05)
    command.check()
    command.paid(0.05)
    with pytest.raises(BudgetExceeded, match=r"\$0\.0500"):
        command.check()
    assert command.reached and not command.allowed()  # once refused, always refused
    reads: list[int] = []

    def opening() -> tuple[float, float]:  # an experiment's earlier spending, and its open batches' estimates
        reads.append(1)
        return 0.5, 0.25

    experiment_budget = Budget(1.0, opening=opening)
    experiment_budget.paid(0.1)  # before the first check: already in what the store says
    experiment_budget.check()
    assert (experiment_budget.spent, experiment_budget.committed, len(reads)) == (0.5, 0.25, 1)
    experiment_budget.commit(0.2)  # a batch request's estimate counts as spent
    experiment_budget.check()
    experiment_budget.commit(0.1)
    with pytest.raises(BudgetExceeded):
        experiment_budget.check()
    assert len(reads) == 1  # read once
    unlimited = Budget(None, opening=opening)
    unlimited.paid(100.0)
    unlimited.check()
    assert len(reads) == 1 and not unlimited.reached  # without a limit nothing is read or refused
    released = Budget(1.0)
    released.commit(2.0)
    released.release(1.5)
    released.check()


def test_the_paths_of_a_session_share_its_prices_budget_and_flights(tmp_path: Path) -> None:
    budget = Budget(1.0)
    prices = PriceTable().with_overrides({"scripted/x": Price(input=1, output=1)})
    with Store.open(tmp_path / "s.duckdb") as store:
        session = CallSession(store, prices=prices, budget=budget)
        model = ScriptedModel(outputs=["a"])
        first, second = session.calls("r-1", model), session.calls("r-2", model, scope="run")
        assert first.flights is second.flights and first.budget is budget and first.prices is prices
        assert (first.scope, second.scope) == ("global", "run")


PRICES = "scripted/session-steady: {input: 1000, output: 1000}\nscripted/session-judge: {input: 1000, output: 1000}\n"


def _steady_runs(tmp_path: Path, db: Path, cache: str) -> list[str]:
    model = ScriptedModel(fn=lambda m: "NO CHANGE", name="scripted/session-steady")
    scripted.register("session-steady", lambda: model)  # one instance: its own cache identity
    start = write(tmp_path / "start.md", "- a\n- b\n")
    return [iterate(IterateConfig(model="scripted/session-steady", constitution=str(start), cache=cache),  # type: ignore[arg-type]
                    db).run.id for _ in range(2)]


def test_probe_takes_prices_and_its_runs_cache_scope(tmp_path: Path, db: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _steady_runs(tmp_path, db, cache="run")
    prices = write(tmp_path / "prices.yaml", PRICES)
    runner = CliRunner()
    done = runner.invoke(app, ["probe", first, "--samples", "2", "--prices", str(prices), "--db", str(db), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["sent"] == 2
    # the second run asks the very same questions; its cache scope is `run`, so the first run's answers are not its
    again = runner.invoke(app, ["probe", second, "--samples", "2", "--prices", str(prices), "--db", str(db), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["sent"] == 2
    with Store.open(db) as store:
        probes = {run: [c for c in store.calls(run) if c.purpose == "probe"] for run in (first, second)}
    assert {c.cache_key for c in probes[first]} == {c.cache_key for c in probes[second]}  # identical requests
    assert all(c.cached_from is None and c.cost_usd for calls in probes.values() for c in calls)  # priced, paid
    capsys.readouterr()
    bad = boundary.run(app, ["probe", first, "--samples", "3", "--prices", str(tmp_path / "none.yaml"), "--db",
                             str(db)])
    assert bad == 2 and "none.yaml: no such file" in capsys.readouterr().err  # one line, exit 2


def test_probe_spends_within_max_cost_at_the_given_prices(tmp_path: Path, db: Path) -> None:
    first, _ = _steady_runs(tmp_path, db, cache="global")
    prices = write(tmp_path / "prices.yaml", PRICES)
    stopped = CliRunner().invoke(app, ["probe", first, "--samples", "5", "--prices", str(prices), "--max-cost",
                                       "0.000001", "--db", str(db), "--json"])
    assert stopped.exit_code == 0, stopped.output  # --json reports; the table form exits 1
    result = json.loads(stopped.output)
    assert result["budget_reached"] and result["sent"] == 1  # priced: the first paid call spent the budget


def test_judge_takes_prices(tmp_path: Path, db: Path) -> None:
    runs = experiment.build(db, tmp_path)
    model = ScriptedModel(fn=rule_judge, name="scripted/session-judge")
    scripted.register("session-judge", lambda: model)
    prices = write(tmp_path / "prices.yaml", PRICES)
    args = ["judge", *runs, "--judge", "scripted/session-judge", "--questions", "clash", "--embedder", "hashing",
            "--db", str(db), "--json"]
    stopped = CliRunner().invoke(app, [*args, "--prices", str(prices), "--max-cost", "0.000001"])
    assert stopped.exit_code == 0, stopped.output
    result = json.loads(stopped.output)
    assert result["budget_reached"] and result["sent"] >= 1
    with Store.open(db) as store:
        calls = store.calls("judge-" + result["judge_key"].removeprefix("sha256:")[:16])
    assert calls and all(c.cost_usd for c in calls)  # priced by --prices
    unpriced = CliRunner().invoke(app, [*args, "--max-cost", "0.000001"])
    assert json.loads(unpriced.output)["budget_reached"] is False  # no price: nothing counted as spent
