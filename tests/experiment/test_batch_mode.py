"""``--batch`` through the real SDKs against the wire server: the same graph as direct calls, at half the price."""

from __future__ import annotations

from pathlib import Path

import pytest

from stability.experiment import run_experiment
from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.conftest import write
from tests.experiment.test_faults import final_hashes, grow


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_BATCH_POLL", "0.05")
    monkeypatch.setenv("STABILITY_BATCH_SETTLE", "0.2")


def batch_spec(tmp_path: Path, name: str, models: list[str], replicates: int = 2, extra: str = "") -> Path:
    """One principle grows to four (3 edits) then 2 declines: 5 calls a run."""
    for i in range(3):
        write(tmp_path / "c" / f"c{i}.md", f"- principle 1 of set {i}\n")
    return write(tmp_path / f"{name}.yaml", f"""
name: {name}
models: [{", ".join(models)}]
constitutions: ["{tmp_path}/c/*.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 8, max_parse_failures: 3}}
replicates: {replicates}
prices:
  openai/gpt-4o-mini: {{input: 1000, output: 2000}}
  anthropic/claude-haiku-4: {{input: 1000, output: 2000}}
{extra}
""")


def calls_of(db: Path, experiment_id: str) -> list:  # type: ignore[type-arg]
    with Store.open(db, read_only=True) as store:
        return [c for cell in store.cells(experiment_id) if cell.run_id for c in store.calls(cell.run_id)]


def test_a_grid_in_batch_mode_gives_the_graph_of_direct_calls_at_half_price(tmp_path: Path, wire: WireServer) -> None:
    wire.reply = grow
    models = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4"]
    spec = batch_spec(tmp_path, "batchgrid", models)
    direct = run_experiment(spec, tmp_path / "direct.duckdb")
    assert direct.done == 12 and wire.count == 60
    events: list[object] = []
    batched = run_experiment(spec, tmp_path / "batch.duckdb", batch=True, on_batch=events.append)
    assert batched.done == 12 and batched.batch
    assert wire.count == 60  # not one direct request more: every call went in a batch
    assert batched.batched_requests == 60 and sum(wire.batches.submitted.values()) == 60
    assert wire.batches.twice() == {}
    # one batch per model per wave: each of the 5 steps of the 6 runs of a model is one wave
    assert batched.waves == 5 and len(wire.batches.batches) == 10
    assert final_hashes(tmp_path / "batch.duckdb", batched.experiment_id) == \
        final_hashes(tmp_path / "direct.duckdb", direct.experiment_id)
    plain, half = calls_of(tmp_path / "direct.duckdb", direct.experiment_id), \
        calls_of(tmp_path / "batch.duckdb", batched.experiment_id)
    assert len(half) == len(plain) == 60 and all(c.status == "ok" for c in half)
    assert sorted(c.cache_key for c in half) == sorted(c.cache_key for c in plain)
    assert batched.spent_usd == pytest.approx(direct.spent_usd / 2)
    with Store.open(tmp_path / "batch.duckdb", read_only=True) as store:
        rows = store.batches.all()
    assert {r.state for r in rows} == {"imported"} and sum(r.n_requests for r in rows) == 60
    assert {e.state for e in events} >= {"live", "imported"}  # type: ignore[attr-defined]
