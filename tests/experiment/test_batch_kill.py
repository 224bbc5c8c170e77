"""kill -9 while batches are live, a wire server restart, then resume: batches re-attached, nothing submitted twice.
And the intents whose provider id was never stored: found again (OpenAI by metadata, Anthropic by time and size)
or abandoned, by ``stability batches``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stability.engine.batcher import sync_batches
from stability.experiment import run_experiment
from stability.models.batch_api import custom_id, request_for
from stability.models.registry import get_model
from stability.records import now
from stability.store import Store
from stability.store.batches import BatchRecord, BatchRequestRecord
from stability.testing.wire_server import WireServer
from stability.vocabulary import GenerateConfig, Message
from tests.conftest import ROOT
from tests.experiment.test_batch_mode import batch_spec, calls_of
from tests.experiment.test_faults import final_hashes, grow


def _env(server: WireServer) -> dict[str, str]:
    return {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-batch-kill-key-0000",
            "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-ant-batch-kill-0000",
            "STABILITY_ALLOW_NETWORK": "1", "STABILITY_BATCH_POLL": "0.05", "STABILITY_BATCH_SETTLE": "0.2"}


def _live(server: WireServer) -> int:
    with server.batches.lock:
        return sum(b["status"] == "in_progress" for b in server.batches.batches.values())


def test_kill_9_with_live_batches_and_a_server_restart_then_resume(tmp_path: Path, allow_network: None) -> None:
    spec = batch_spec(tmp_path, "killbatch", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4"], replicates=1)
    db, state = tmp_path / "kill.duckdb", tmp_path / "wire-batches.json"
    command = [sys.executable, "-m", "stability", "run", str(spec), "--db", str(db), "--batch"]
    port = 0
    for kill, wanted in enumerate((1, 4, 7)):  # kill when the 1st, 4th and 7th batch is live at the provider
        with WireServer(reply=grow, batch_state=str(state), batch_delay=0.8, port=port) as server:
            port = server.httpd.server_address[1]
            process = subprocess.Popen(command + (["--resume"] if kill else []), env=_env(server), cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 180
            while (len(server.batches.batches) < wanted or not _live(server)) and time.monotonic() < deadline:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.02)
            assert _live(server), "no batch was live"
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        # the server is stopped and started again on its state file (a restart) before the resume
    with WireServer(reply=grow, batch_state=str(state), batch_delay=0.8, port=port) as server:
        live_at_kill = {b["id"] for b in server.batches.batches.values() if b["status"] == "in_progress"}
        done = subprocess.run(command + ["--resume"], env=_env(server), cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert server.batches.twice() == {}  # not one request submitted twice, over three kills
        assert sum(server.batches.submitted.values()) == 30
        assert server.count == 0  # and none sent directly
    with Store.open(db, read_only=True) as store:
        [experiment] = store.experiments()
        rows = store.batches.all()
        # a kill between writing a batch's intent and creating it leaves an intent that never reached the provider
        assert {r.state for r in rows} <= {"imported", "abandoned"} and "imported" in {r.state for r in rows}
        assert all(r.provider_id is None for r in rows if r.state == "abandoned")
        assert live_at_kill <= {r.provider_id for r in rows}  # the batch live at the last kill was re-attached
    calls = calls_of(db, experiment.id)
    assert len(calls) == 30 and len({(c.run_id, c.cache_key, c.sample_index) for c in calls}) == 30
    assert b"sk-batch-kill" not in db.read_bytes() and b"sk-ant-batch" not in db.read_bytes()
    with WireServer(reply=grow) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in _env(server).items():
            patch.setenv(name, value)
        reference = run_experiment(spec, tmp_path / "reference.duckdb")
    assert final_hashes(db, experiment.id) == final_hashes(tmp_path / "reference.duckdb", reference.experiment_id)


def _intent(store: Store, name: str, run_id: str, n: int) -> tuple[BatchRecord, list[BatchRequestRecord]]:
    api = get_model(name).batch_api()
    assert api is not None
    config = GenerateConfig(max_tokens=50)
    key = f"sb-{name.split('/')[0]}"
    record = BatchRecord(local_key=key, provider=api.provider, model=name, wave=1, n_requests=n, created_at=now())
    requests = []
    for i in range(n):
        messages = [Message(role="user", content=f"question {i}")]
        cache = f"sha256:{name}{i}"
        body = api.body(messages, config)
        wire = request_for(messages, config, body, custom_id(run_id, cache, 0))
        requests.append(BatchRequestRecord(local_key=key, custom_id=wire.custom_id, run_id=run_id, cache_key=cache,
                                           sample_index=0, step=i, purpose="revise", model=name, body=body))
    store.batches.write_intent(record, requests)
    return record, requests


@pytest.mark.parametrize("name", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4"])
def test_an_intent_whose_id_was_lost_is_found_and_imported(tmp_path: Path, wire: WireServer, name: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Killed after the provider created the batch, before its id was stored: found, never submitted again."""
    wire.reply = lambda messages: "an answer"
    db = tmp_path / "lost.duckdb"
    with Store.open(db) as store:
        record, requests = _intent(store, name, "r-lost", 3)
    api = get_model(name).batch_api()
    assert api is not None
    from stability.engine.batcher import _wire

    time.sleep(0.01)
    asyncio.run(api.submit([_wire(r) for r in requests], record.local_key))  # the id never reached the store
    report = sync_batches(db)
    assert report.imported == 1 and report.live == 0 and wire.batches.twice() == {}
    with Store.open(db, read_only=True) as store:
        [row] = store.batches.all()
        calls = store.calls("r-lost")
        states = {r.state for r in store.batches.requests(row.local_key)}
    assert row.provider_id is not None and row.state == "imported" and states == {"done"}
    assert sorted(c.text or "" for c in calls) == ["an answer"] * 3
    assert all(c.cost_usd is not None for c in calls)
    # read again: nothing is stored twice
    assert sync_batches(db).imported == 0
    with Store.open(db, read_only=True) as store:
        assert len(store.calls("r-lost")) == 3


def test_an_intent_never_submitted_is_abandoned_and_live_orphans_cancelled(tmp_path: Path, wire: WireServer) -> None:
    db = tmp_path / "orphans.duckdb"
    with Store.open(db) as store:
        _intent(store, "openai/gpt-4o-mini", "r-never", 2)
    report = sync_batches(db)
    assert report.abandoned == 1 and wire.batches.submitted == {}
    # a live batch nobody waits on: --cancel cancels it, and what it holds is marked to be asked again
    wire.batches.delay = 60
    with Store.open(db) as store:
        record, requests = _intent(store, "anthropic/claude-haiku-4", "r-orphan", 2)
    api = get_model("anthropic/claude-haiku-4").batch_api()
    assert api is not None
    from stability.engine.batcher import _wire

    provider_id = asyncio.run(api.submit([_wire(r) for r in requests], record.local_key))
    with Store.open(db) as store:
        store.batches.submitted(record.local_key, provider_id, now())
    assert sync_batches(db).live == 1
    cancelled = subprocess.run([sys.executable, "-m", "stability", "batches", "--cancel", "--json", "--db", str(db)],
                               env={**os.environ}, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert cancelled.returncode == 0, cancelled.stderr
    out = json.loads(cancelled.stdout)
    assert out["cancelled"] == 1 and out["live"] == 0
    with Store.open(db, read_only=True) as store:
        row = store.batches.get(record.local_key)
        assert row.state == "imported" and {r.state for r in store.batches.requests(row.local_key)} == {"retry"}
        assert store.calls("r-orphan") == []
