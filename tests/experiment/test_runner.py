"""Grids against a local OpenAI-compatible server that counts requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stability.errors import StabilityError
from stability.experiment import run_experiment
from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.conftest import write


def grow(messages: list[dict[str, Any]]) -> str:
    lines = [line for line in messages[-1]["content"].splitlines() if line.startswith("- ")]
    if len(lines) >= 4:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(lines + [f"- principle {len(lines) + 1}"])


@pytest.fixture
def spec(tmp_path: Path, wire: WireServer) -> Path:
    wire.reply = grow
    write(tmp_path / "c" / "one.md", "- principle 1\n")
    write(tmp_path / "c" / "two.md", "- principle 1\n- principle 2\n")
    return write(tmp_path / "spec.yaml", f"""
name: budget-test
models: [openai/fake]
constitutions: ["{tmp_path}/c/*.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 6}}
replicates: 2
cache: global
concurrency: {{openai: 2}}
prices: {{"openai/fake": {{input: 1000, output: 1000}}}}
""")


def test_dry_run_counts_and_spends_nothing(spec: Path, db: Path, wire: WireServer) -> None:
    result = run_experiment(spec, db, dry_run=True)
    assert result.estimate.runs == 4 and result.estimate.calls == 4 * 6
    assert result.estimate.cost_usd is not None and result.estimate.cost_usd > 0
    assert wire.count == 0 and not db.exists()


def test_budget_stop_then_resume_pays_nothing_twice(spec: Path, db: Path, wire: WireServer) -> None:
    first = run_experiment(spec, db, max_cost=0.5)
    assert first.budget_reached
    assert first.done < 4 and first.not_started + first.failed > 0
    sent_first = wire.count
    with Store.open(db) as store:
        stored_first = sum(len(store.calls(r)) for r in first.runs)
    assert stored_first == sent_first  # every request that was answered is stored
    second = run_experiment(spec, db, resume=True)
    assert (second.done, second.failed, second.not_started) == (4, 0, 0)
    # Runs: "principle 1" grows to 4 principles in 3 edits + 2 declines = 5 calls; from 2 principles, 2 + 2 = 4.
    # Where two runs ask the identical question (same constitution, step and seed), the second is a cache hit.
    with Store.open(db) as store:
        calls = [c for r in second.runs for c in store.calls(r)]
    assert len(calls) == 2 * 5 + 2 * 4
    assert wire.count == sum(c.cached_from is None for c in calls) < len(calls)
    assert max(wire.bodies.values()) == 1  # no request was ever sent twice
    sent = wire.count
    third = run_experiment(spec, db)
    assert third.done == 4 and wire.count == sent  # re-running a finished spec sends nothing


def test_unpriced_models_refuse_a_budget(tmp_path: Path, db: Path) -> None:
    path = write(tmp_path / "s.yaml", "name: x\nmodels: [openai/unknown-model]\nconstitutions: []\n"
                                      "protocols: [blank-slate]\n")
    with pytest.raises(StabilityError, match="no price for openai/unknown-model"):
        run_experiment(path, db, max_cost=1.0)
    assert not db.exists()


def test_failed_runs_do_not_stop_the_experiment(tmp_path: Path, db: Path, wire: WireServer) -> None:
    wire.fail_next(401, times=1)  # not retried; (a 400 could be a refusal of structured output: see models)
    write(tmp_path / "c.md", "- a\n")
    path = write(tmp_path / "s.yaml", f"name: y\nmodels: [openai/m]\nconstitutions: [{tmp_path}/c.md]\n"
                                      "protocols: [fresh-instance]\nreplicates: 2\nmax_parallel_runs: 1\n")
    result = run_experiment(path, db)
    assert (result.done, result.failed) == (1, 1)
    with Store.open(db) as store:
        failed = [store.run(r) for r in result.runs if store.run(r).status == "failed"]
    assert failed and "401" in (failed[0].error or "")


def test_a_model_named_by_its_bare_name_runs_its_cells(tmp_path: Path, db: Path, wire: WireServer) -> None:
    """A spec naming ``gpt-…`` (the registry's bare name for ``openai/gpt-…``): each cell is run under the key it
    was registered with (its prepared config names the model canonically, so it keys differently; the runner looked
    cells up by that key and failed with a KeyError)."""
    wire.reply = grow
    write(tmp_path / "c.md", "- principle 1\n")
    spec = write(tmp_path / "spec.yaml", f"""
name: bare-name
models: [gpt-bench]
constitutions: ["{tmp_path / 'c.md'}"]
protocols: [{{name: fresh-instance, options: {{max_steps: 2, declines_to_stop: 1}}}}]
replicates: 2
""")
    result = run_experiment(spec, db)
    assert (result.done, result.failed, result.not_started) == (2, 0, 0)
    with Store.open(db, read_only=True) as store:
        assert {store.run(r).model for r in result.runs} == {"openai/gpt-bench"}
