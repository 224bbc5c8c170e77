"""One knob for parallelism: the calls in flight per provider (``concurrency``); runs in parallel follow from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stability.experiment import run_experiment
from stability.experiment.spec import ExperimentSpec, expand, load_spec, parallel_runs
from stability.testing.specs import write_spec
from stability.testing.wire_server import WireServer
from tests.cli.test_app import cli
from tests.conftest import write


def spec_file(tmp_path: Path, replicates: int = 100, **fields: Any) -> Path:
    write(tmp_path / "c.md", "- I am honest.\n- I am kind.\n")
    return write_spec(tmp_path / "spec.yaml", name="parallel", models=["openai/fake"],
                      constitutions=[f"{tmp_path}/c.md"], protocol="fresh-instance",
                      options={"max_steps": 2, "declines_to_stop": 2}, replicates=replicates,
                      concurrency={"default": 50}, **fields)


def test_concurrency_alone_puts_that_many_calls_in_flight(tmp_path: Path, db: Path, wire: WireServer) -> None:
    wire.latency = 0.5  # long enough that every slot fills before the first answer returns
    result = run_experiment(spec_file(tmp_path), db)
    assert result.done == 100 and wire.count == 200
    assert result.parallel_runs == 100 and result.concurrency == {"openai": 50}  # 2 runs per call slot
    assert wire.max_in_flight == 50  # the concurrency the user set, never more


def test_an_explicit_max_parallel_runs_is_kept(tmp_path: Path, db: Path, wire: WireServer) -> None:
    wire.latency = 0.2
    result = run_experiment(spec_file(tmp_path, replicates=20, max_parallel_runs=5), db)
    assert result.done == 20 and result.parallel_runs == 5
    assert 1 <= wire.max_in_flight <= 5  # one call at a time per run


def test_parallel_runs_sums_the_providers_and_never_exceeds_the_cells(tmp_path: Path) -> None:
    spec = ExperimentSpec.model_validate({
        "name": "mixed", "models": ["openai/a", "anthropic/b", "local/c"], "protocols": ["fresh-instance"],
        "constitutions": [str(write(tmp_path / "c.md", "- a\n"))], "replicates": 100,
        "concurrency": {"openai": 10, "default": 3}})
    cells = expand(spec)
    assert parallel_runs(spec, cells) == 2 * (10 + 3 + 3)
    assert parallel_runs(spec, cells[:7]) == 7


def test_an_unset_max_parallel_runs_keeps_old_experiment_ids(tmp_path: Path) -> None:
    """Experiments started before the knob changed are still found by the same spec (resume)."""
    unset = load_spec(spec_file(tmp_path))
    old_default = load_spec(spec_file(tmp_path, max_parallel_runs=8))
    other = load_spec(spec_file(tmp_path, max_parallel_runs=9))
    assert unset.experiment_id == old_default.experiment_id != other.experiment_id


def test_dry_run_prints_the_effective_parallelism(tmp_path: Path, db: Path) -> None:
    spec = spec_file(tmp_path)
    table = cli("run", str(spec), "--dry-run", "--db", str(db), env={"OPENAI_API_KEY": "sk-dry-run-0000000"})
    assert "parallel runs: 100 · calls in flight at most: openai 50" in table.stdout
    dry = json.loads(cli("run", str(spec), "--dry-run", "--json", "--db", str(db),
                         env={"OPENAI_API_KEY": "sk-dry-run-0000000"}).stdout)
    assert dry["parallel_runs"] == 100 and dry["concurrency"] == {"openai": 50}
    assert not db.exists()  # a dry run writes nothing
