"""``--batch`` through the real SDKs against the wire server: the same graph as direct calls, at half the price."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stability.engine import BatchEvent
from stability.experiment import run_experiment
from stability.records import CallRecord
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


def calls_of(db: Path, experiment_id: str) -> list[CallRecord]:
    with Store.open(db, read_only=True) as store:
        return [c for cell in store.cells(experiment_id) if cell.run_id for c in store.calls(cell.run_id)]


def test_a_grid_in_batch_mode_gives_the_graph_of_direct_calls_at_half_price(tmp_path: Path, wire: WireServer) -> None:
    wire.reply = grow
    # scripted/decline has no batch API: its runs are asked directly, in the same experiment
    models = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4", "scripted/decline"]
    spec = batch_spec(tmp_path, "batchgrid", models)
    direct = run_experiment(spec, tmp_path / "direct.duckdb")
    assert direct.done == 18 and wire.count == 60
    events: list[BatchEvent] = []
    batched = run_experiment(spec, tmp_path / "batch.duckdb", batch=True, on_batch=events.append)
    assert batched.done == 18 and batched.batch
    assert wire.count == 60  # not one direct request more: every call went in a batch
    assert batched.batched_requests == 60 and sum(wire.batches.submitted.values()) == 60
    assert wire.batches.twice() == {}
    # one batch per model per wave: each of the 5 steps of the 6 runs of a model is one wave
    assert batched.waves == 5 and len(wire.batches.batches) == 10
    assert final_hashes(tmp_path / "batch.duckdb", batched.experiment_id) == \
        final_hashes(tmp_path / "direct.duckdb", direct.experiment_id)
    plain, half = calls_of(tmp_path / "direct.duckdb", direct.experiment_id), \
        calls_of(tmp_path / "batch.duckdb", batched.experiment_id)
    assert len(half) == len(plain) == 60 + 12 and all(c.status == "ok" for c in half)
    assert sum(c.model == "scripted/decline" for c in half) == 12  # 6 runs x 2 declines, asked directly
    assert sorted(c.cache_key for c in half if c.model != "scripted/decline") == \
        sorted(c.cache_key for c in plain if c.model != "scripted/decline")  # (a scripted model's key is its own)
    assert batched.spent_usd == pytest.approx(direct.spent_usd / 2)
    with Store.open(tmp_path / "batch.duckdb", read_only=True) as store:
        rows = store.batches.all()
    assert {r.state for r in rows} == {"imported"} and sum(r.n_requests for r in rows) == 60
    assert {r.model for r in rows} == {"openai/gpt-4o-mini", "anthropic/claude-haiku-4"}
    assert {e.state for e in events} >= {"live", "imported"}


def test_expired_and_errored_requests_are_retried_in_the_next_wave(tmp_path: Path, wire: WireServer) -> None:
    wire.reply = grow
    spec = batch_spec(tmp_path, "expiry", ["openai/gpt-4o-mini"], replicates=1)
    reference = run_experiment(spec, tmp_path / "direct.duckdb")
    wire.batches.expire_next(2)
    wire.batches.error_next(1, 500)
    result = run_experiment(spec, tmp_path / "batch.duckdb", batch=True)
    assert result.done == 3
    twice = wire.batches.twice()
    assert len(twice) == 3 and set(twice.values()) == {2}  # the three, once more each, nothing else
    assert final_hashes(tmp_path / "batch.duckdb", result.experiment_id) == \
        final_hashes(tmp_path / "direct.duckdb", reference.experiment_id)
    calls = calls_of(tmp_path / "batch.duckdb", result.experiment_id)
    assert len(calls) == 15 and all(c.status == "ok" for c in calls)
    retried = [c for c in calls if c.attempts == 2]
    assert len(retried) == 3 and all(len(c.retries) == 1 for c in retried)
    assert any("expired" in c.retries[0]["error"] for c in retried)
    with Store.open(tmp_path / "batch.duckdb", read_only=True) as store:
        states = [r.state for b in store.batches.all() for r in store.batches.requests(b.local_key)]
    assert states.count("retry") == 3 and states.count("done") == 15


def test_a_failed_batch_is_sent_again(tmp_path: Path, wire: WireServer) -> None:
    wire.reply = grow
    spec = batch_spec(tmp_path, "failing", ["openai/gpt-4o-mini"], replicates=1)
    wire.batches.fail_next_batch()
    result = run_experiment(spec, tmp_path / "batch.duckdb", batch=True)
    assert result.done == 3
    assert len(wire.batches.twice()) == 3  # the first wave's three requests, once more
    with Store.open(tmp_path / "batch.duckdb", read_only=True) as store:
        assert [b.raw_status for b in store.batches.all()][0] == "failed"


def test_the_budget_stops_the_grid_cleanly_at_batch_prices(tmp_path: Path, wire: WireServer) -> None:
    wire.reply = grow
    spec = batch_spec(tmp_path, "budget", ["openai/gpt-4o-mini"], replicates=2)
    full = run_experiment(spec, tmp_path / "full.duckdb")
    budget = full.spent_usd / 3
    direct = run_experiment(spec, tmp_path / "direct.duckdb", max_cost=budget)
    batched = run_experiment(spec, tmp_path / "batch.duckdb", max_cost=budget, batch=True)
    assert direct.budget_reached and batched.budget_reached
    assert batched.failed + batched.not_started > 0
    plain = calls_of(tmp_path / "direct.duckdb", direct.experiment_id)
    half = calls_of(tmp_path / "batch.duckdb", batched.experiment_id)
    assert plain and half
    for call in plain:
        assert call.cost_usd == pytest.approx((call.input_tokens * 1000 + call.output_tokens * 2000) / 1e6)
    for call in half:  # the batch rate: half
        assert call.cost_usd == pytest.approx((call.input_tokens * 1000 + call.output_tokens * 2000) / 2e6)
    wave = max(c.cost_usd or 0.0 for c in half) * 6  # at most one wave (6 runs) beyond the budget
    assert batched.spent_usd <= budget + wave
    with Store.open(tmp_path / "batch.duckdb", read_only=True) as store:
        assert {b.state for b in store.batches.all()} == {"imported"}  # nothing left running at the provider
        runs = [store.run(c.run_id) for c in store.cells(batched.experiment_id) if c.run_id]
    assert {r.stop_reason for r in runs if r.status == "failed"} == {"budget"}
    resumed = run_experiment(spec, tmp_path / "batch.duckdb", resume=True, batch=True)
    assert resumed.done == 6 and wire.batches.twice() == {}
    assert final_hashes(tmp_path / "batch.duckdb", batched.experiment_id) == \
        final_hashes(tmp_path / "full.duckdb", full.experiment_id)


def test_dry_run_prices_batch_calls_at_half(tmp_path: Path) -> None:
    spec = batch_spec(tmp_path, "dry", ["openai/gpt-4o-mini", "scripted/x"], replicates=1)
    plain = run_experiment(spec, tmp_path / "x.duckdb", dry_run=True).estimate
    half = run_experiment(spec, tmp_path / "x.duckdb", dry_run=True, batch=True).estimate
    costs = {row.model: row.cost_usd for row in plain.by_model}
    batch_costs = {row.model: row.cost_usd for row in half.by_model}
    assert batch_costs["openai/gpt-4o-mini"] == pytest.approx((costs["openai/gpt-4o-mini"] or 0) / 2) != 0
    assert batch_costs["scripted/x"] == costs["scripted/x"] == 0


def test_iterate_in_batch_mode_then_resume_replays_from_the_store(tmp_path: Path, db: Path, wire: WireServer) -> None:
    from stability.engine import IterateConfig, iterate, resume

    wire.reply = grow
    start = write(tmp_path / "start.md", "- principle 1\n")
    config = IterateConfig(protocol="fresh-instance", model="anthropic/claude-haiku-4", constitution=str(start),
                           options={"max_steps": 8})
    events: list[BatchEvent] = []
    result = iterate(config, db, batch=True, on_batch=events.append)
    assert result.run.status == "done" and len(result.revisions) == 6  # origin, 3 edits, 2 declines
    assert wire.count == 0 and sum(wire.batches.submitted.values()) == 5 and result.sent == 5
    assert len({e.local_key for e in events}) == 5
    with Store.open(db) as store:  # as if the run had been killed: reopen it and replay
        store.reopen_run(result.run.id)
    again = resume(result.run.id, db, batch=True)
    assert again.sent == 0 and sum(wire.batches.submitted.values()) == 5
    assert [r.constitution_hash for r in again.revisions] == [r.constitution_hash for r in result.revisions]


def test_a_batch_the_provider_lost_is_sent_again_and_a_refused_poll_fails_the_run(tmp_path: Path, db: Path,
                                                                                  wire: WireServer) -> None:
    import threading

    from stability.engine import IterateConfig, iterate
    from stability.engine.batcher import BatchFailed

    wire.reply = grow
    wire.batches.delay = 0.5
    start = write(tmp_path / "start.md", "- principle 1\n")
    config = IterateConfig(protocol="fresh-instance", model="openai/gpt-4o-mini", constitution=str(start),
                           options={"max_steps": 8})

    def lose_the_first_batch() -> None:
        while not wire.batches.batches:
            time.sleep(0.01)
        with wire.batches.lock:
            wire.batches.batches.clear()  # 404 from now on for that id

    thread = threading.Thread(target=lose_the_first_batch)
    thread.start()
    result = iterate(config, db, batch=True)
    thread.join()
    assert result.run.status == "done" and len(result.revisions) == 6
    assert len(wire.batches.twice()) == 1  # the lost batch's request, sent again once
    with Store.open(db, read_only=True) as store:
        assert [b.state for b in store.batches.all()].count("abandoned") == 1

    # a poll the provider refuses for good (a revoked key): the run fails with it, stored, instead of waiting forever
    original = wire.batches.get

    def unauthorised(path: str) -> tuple[int, bytes, str]:
        if "/batches/" in path:
            return 401, b'{"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}', \
                "application/json"
        return original(path)

    wire.batches.get = unauthorised  # type: ignore[method-assign]
    with pytest.raises(BatchFailed, match="Incorrect API key"):
        iterate(config.model_copy(update={"seed": 1}), db, batch=True)
    with Store.open(db, read_only=True) as store:
        failed = [r for r in store.runs() if r.status == "failed"]
    assert len(failed) == 1 and "Incorrect API key" in (failed[0].error or "")


def test_an_import_read_again_after_a_kill_stores_no_call_twice(tmp_path: Path, wire: WireServer) -> None:
    from stability.engine.batcher import imported_call_id, sync_batches

    wire.reply = grow
    spec = batch_spec(tmp_path, "refused", ["openai/gpt-4o-mini"], replicates=1)
    db = tmp_path / "batch.duckdb"
    wire.batches.error_next(1, 400)  # not transient: stored as a failed call, its run fails
    result = run_experiment(spec, db, batch=True)
    assert result.failed == 1 and result.done == 2
    calls = calls_of(db, result.experiment_id)
    [failed] = [c for c in calls if c.status == "error"]
    with Store.open(db) as store:
        [holder] = [b for b in store.batches.all() if any(r.call_id == failed.id
                                                          for r in store.batches.requests(b.local_key))]
        request = next(r for r in store.batches.requests(holder.local_key) if r.call_id == failed.id)
        assert failed.id == imported_call_id(holder.local_key, request.custom_id)
        # as if killed after the import committed its calls, before it recorded the requests' outcomes
        store.con.execute("UPDATE batches SET state = 'ended' WHERE local_key = ?", [holder.local_key])
        store.con.execute("UPDATE batch_requests SET state = 'pending', call_id = NULL WHERE local_key = ?",
                          [holder.local_key])
    report = sync_batches(db)
    assert report.imported == 1 and sum(wire.batches.submitted.values()) == 15 - 4  # nothing sent again
    again = calls_of(db, result.experiment_id)
    assert sorted(c.id for c in again) == sorted(c.id for c in calls)  # the failed call and the answers: once each
    with Store.open(db, read_only=True) as store:
        assert {r.custom_id: r.call_id for r in store.batches.requests(holder.local_key)}[request.custom_id] \
            == failed.id


def test_batch_commands_refuse_bad_input_in_one_line_and_write_nothing(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    spec = batch_spec(tmp_path, "bad", ["openai/gpt-4o-mini"], replicates=1)
    db = tmp_path / "none.duckdb"
    for args, message in [(["run", str(spec), "--batch", "--max-cost", "-1"], "--max-cost -1.0"),
                          (["run", str(tmp_path / "missing.yaml"), "--batch"], "missing.yaml: no such file"),
                          (["batches", "--json"], "none.duckdb: no such database")]:
        done = subprocess.run([sys.executable, "-m", "stability", *args, "--db", str(db)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr
        if "--json" in args:  # the error as a JSON object on stdout too (stability.cli.boundary)
            assert json.loads(done.stdout)["exit"] == 2 and message in json.loads(done.stdout)["error"]
        else:
            assert done.stdout == ""
    assert not db.exists()


def test_resuming_without_batch_while_requests_wait_in_a_batch_is_refused(tmp_path: Path, db: Path,
                                                                          wire: WireServer) -> None:
    """Sent directly they would be paid twice (the batch goes on and bills): one line, nothing sent or written."""
    from stability.engine import resume
    from stability.engine.batcher import sync_batches
    from stability.errors import StabilityError
    from stability.records import now
    from stability.store.batches import BatchRecord, BatchRequestRecord

    wire.reply = grow
    spec = batch_spec(tmp_path, "pending", ["openai/gpt-4o-mini"], replicates=1)
    result = run_experiment(spec, db, batch=True)
    run_id = result.runs[0]
    with Store.open(db) as store:  # as if killed with a request of this run in a batch not yet imported
        store.batches.write_intent(
            BatchRecord(local_key="sb-pending", provider="openai", model="openai/gpt-4o-mini", wave=9, n_requests=1,
                        created_at=now()),
            [BatchRequestRecord(local_key="sb-pending", custom_id="x" * 64, run_id=run_id, cache_key="sha256:k",
                                sample_index=0, step=1, purpose="revise", model="openai/gpt-4o-mini", body={})])
        store.reopen_run(run_id)
    sent = wire.count + sum(wire.batches.submitted.values())
    before = db.read_bytes()
    with pytest.raises(StabilityError, match="1 requests wait in provider batches; resume with --batch"):
        run_experiment(spec, db, resume=True)
    with pytest.raises(StabilityError, match=f"run {run_id}: 1 requests wait in provider batches"):
        resume(run_id, db)
    assert wire.count + sum(wire.batches.submitted.values()) == sent and db.read_bytes() == before
    assert sync_batches(db).abandoned == 1  # never submitted: abandoned, so a direct resume is safe again
    assert resume(run_id, db).run.status == "done"
