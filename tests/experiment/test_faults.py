"""A grid under a seeded 20% mix of provider faults, and kill -9 at random moments: nothing lost, nothing paid twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stability.experiment import run_experiment
from stability.store import Store
from stability.testing.wire_server import FaultMix, WireServer
from tests.conftest import ROOT, write


def grow(messages: list[dict[str, Any]]) -> str:
    """A deterministic function of the request: add principles up to four, then decline."""
    lines = [line for line in messages[-1]["content"].splitlines() if line.startswith("- ")]
    if len(lines) >= 4:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(lines + [f"- principle {len(lines) + 1}"])


def grid_spec(tmp_path: Path, name: str, replicates: int, concurrency: int, parallel: int) -> Path:
    """One principle grows to four (3 edits) then 2 declines: 5 calls a run, 4 constitutions x replicates runs."""
    for i in range(4):
        write(tmp_path / "c" / f"c{i}.md", f"- principle 1 of set {i}\n")
    return write(tmp_path / f"{name}.yaml", f"""
name: {name}
models: [openai/fake]
constitutions: ["{tmp_path}/c/*.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 8, max_parse_failures: 3}}
replicates: {replicates}
concurrency: {{openai: {concurrency}}}
max_parallel_runs: {parallel}
""")


def final_hashes(db: Path, experiment_id: str) -> dict[str, str]:
    with Store.open(db, read_only=True) as store:
        return {c.cell: store.revisions(c.run_id)[-1].constitution_hash for c in store.cells(experiment_id)
                if c.run_id}


def test_grid_of_200_calls_under_20_percent_faults(tmp_path: Path, db: Path, wire: WireServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_HTTP_TIMEOUT", "1")  # the mix's timeouts hold requests for 1.5 s
    wire.reply = grow
    wire.mix = FaultMix(rate=0.2, seed=1, retry_after=0.02, hold=1.5)
    spec = grid_spec(tmp_path, "faults", replicates=10, concurrency=50, parallel=40)
    result = run_experiment(spec, db)  # no exception escapes
    assert result.cells == 40 and result.done + result.failed == 40 and result.done >= 38
    with Store.open(db, read_only=True) as store:
        runs = [store.run(r) for r in result.runs]
        calls = [c for r in result.runs for c in store.calls(r)]
        revisions = [v for r in result.runs for v in store.revisions(r)]
    assert all(r.status in ("done", "failed") and r.stop_reason for r in runs)
    assert all(r.error for r in runs if r.status == "failed")
    assert len(calls) >= 200
    # Every fault kind happened, and every request the server saw is an attempt recorded on a stored call. On a
    # loaded machine a client may also time out on its own before the server reads or answers a request: those
    # extra failures are recorded too (as timeouts), and bound every difference below.
    retries = [r for c in calls for r in c.retries]
    failures = [r["error"] for r in retries] + [c.error or "" for c in calls if c.status == "error"]
    transient = sum(wire.injected.values()) - wire.injected["no_content"]
    extra_timeouts = len(failures) - transient
    assert set(wire.injected) == set(wire.mix.kinds)
    assert 0 <= extra_timeouts <= sum("Timeout" in error for error in failures)
    assert wire.count <= sum(c.attempts for c in calls) <= wire.count + extra_timeouts
    # Every good answer is stored exactly once; none was asked for twice.
    ok = [c for c in calls if c.status == "ok"]
    assert len({(c.run_id, c.cache_key, c.sample_index) for c in ok}) == len(ok)
    assert len(ok) <= sum(wire.answered.values()) + wire.injected["no_content"] <= len(ok) + extra_timeouts
    assert sum(n - 1 for n in wire.answered.values()) <= extra_timeouts
    # An answer with no content is a parse failure of the step, never a crash.
    assert sum(v.decision == "parse_failure" for v in revisions) == wire.injected["no_content"]
    # Retries honour Retry-After: every 429/529 retry waited at least what the server asked for.
    honoured = [r for c in calls for r in c.retries if r["status"] in (429, 529)]
    assert honoured and all(r["wait_s"] >= 0.02 for r in honoured)
    assert {r["status"] for c in calls for r in c.retries} >= {429, 500, 529, None}


def test_kill_9_at_five_random_moments_then_resume(tmp_path: Path, allow_network: None) -> None:
    spec = grid_spec(tmp_path, "killed", replicates=3, concurrency=4, parallel=6)  # 12 runs, 60 calls
    db, reference_db = tmp_path / "killed.duckdb", tmp_path / "reference.duckdb"
    rng = random.Random(6)
    with WireServer(reply=grow, latency=0.15) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-kill-grid-key-0000",
               "STABILITY_ALLOW_NETWORK": "1"}
        command = [sys.executable, "-m", "stability", "run", str(spec), "--db", str(db)]
        for kill in range(6):
            started = server.count
            process = subprocess.Popen(command + (["--resume"] if kill else []), env=env, cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if kill == 5:  # the last one runs to the end, after kills that left work undone
                with Store.open(db, read_only=True) as store:
                    assert sum(c.status == "done" for c in store.cells(store.experiments()[0].id)) < 12
                _, stderr = process.communicate(timeout=120)
                assert process.returncode == 0, stderr
                break
            deadline = time.monotonic() + 60
            target = started + rng.randint(1, 10)
            while server.count < target and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.3))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        bodies = Counter(server.bodies)
        sent = server.count - server.incomplete  # a kill can also cut a request mid-send: never answered
    with Store.open(db, read_only=True) as store:
        [experiment] = store.experiments()
        cells = store.cells(experiment.id)
        calls = [c for cell in cells if cell.run_id for c in store.calls(cell.run_id)]
    assert [c.status for c in cells] == ["done"] * 12
    ok = [c for c in calls if c.status == "ok"]
    # Every completed call is stored exactly once ...
    assert len({(c.run_id, c.cache_key, c.sample_index) for c in ok}) == len(ok) == len(calls) == 60
    # ... and only requests in flight at a kill (at most the concurrency, per kill) were ever sent again.
    assert sent == sum(bodies.values()) and len(bodies) == 60
    assert sum(n - 1 for n in bodies.values()) <= 5 * 4
    print(f"requests {sent}, sent twice {sum(n - 1 for n in bodies.values())}")
    assert b"sk-kill-grid-key" not in db.read_bytes()
    # The results are those of an uninterrupted run with the same seeds.
    with WireServer(reply=grow) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        patch.setenv("OPENAI_API_KEY", "sk-kill-grid-key-0000")
        reference = run_experiment(spec, reference_db)
    assert reference.done == 12
    assert final_hashes(db, experiment.id) == final_hashes(reference_db, experiment.id)
