"""Stores shared and reached in more than one way: through a symbolic link, merged into at once, and answered with
absurd usage. Nothing lost, nothing paid twice: counted at the wire server, through the CLI and the real SDKs."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from stability.experiment import run_experiment
from stability.store import Store
from stability.testing.wire_server import WireServer
from stability.tokens import TOKEN_LIMIT
from tests.conftest import ROOT, write
from tests.experiment.test_faults import grid_spec, grow
from tests.store.test_queue import call_record


def stability(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stability", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT, timeout=240)


def test_resume_through_the_link_or_the_real_file_is_one_store(tmp_path: Path, allow_network: None) -> None:
    """The issue's case: a grid run through ``link.duckdb`` killed, resumed through ``real.duckdb``, then through
    the link again. Only calls in flight at the kill are sent twice, and the finished grid stays finished."""
    spec = grid_spec(tmp_path, "linked", replicates=2, concurrency=4, parallel=4)  # 8 runs, 40 calls
    real, link = tmp_path / "real.duckdb", tmp_path / "link.duckdb"
    link.symlink_to(real)
    with WireServer(reply=grow, latency=0.1) as server:
        env = {"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-link-test-key-0000",
               "STABILITY_ALLOW_NETWORK": "1"}
        run = [sys.executable, "-m", "stability", "run", str(spec)]
        process = subprocess.Popen([*run, "--db", str(link)], env={**os.environ, **env}, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while server.count < 19 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert server.count >= 19, "the first run ended before it was killed"
        resumed = stability("run", str(spec), "--db", str(real), "--resume", env=env)
        assert resumed.returncode == 0, resumed.stderr
        sent = server.count
        again = stability("run", str(spec), "--db", str(link), "--resume", env=env)
        assert again.returncode == 0, again.stderr
        assert server.count == sent  # through the link: nothing re-sent, nothing moved back
        bodies = Counter(server.bodies)
    assert len(bodies) == 40 and sum(n - 1 for n in bodies.values()) <= 4  # at most the calls in flight
    with Store.open(link, read_only=True) as store:
        cells = store.cells(store.experiments()[0].id)
        calls = [c for cell in cells for c in store.calls(str(cell.run_id))]
    assert [c.status for c in cells] == ["done"] * 8 and len(calls) == 40
    assert not list(tmp_path.glob("link.duckdb.*"))  # every file beside the store is named after the real one


def _store_with_run(path: Path, run: str) -> None:
    from tests.hostile.test_journal import _run

    with Store.open(path) as store:
        store.insert_run(_run().model_copy(update={"id": run}))
        store.insert_call(call_record(int(run[2:]), run_id=run))


def test_two_merges_into_one_target_at_once_keep_both(tmp_path: Path) -> None:
    """Two ``stability merge`` processes into one target: the second waits for the first (the target's folder
    is locked), then merges into its result; neither side's runs are missing."""
    sources = [tmp_path / "a.duckdb", tmp_path / "b.duckdb"]
    for number, source in enumerate(sources, 1):
        _store_with_run(source, f"r-{number}")
    target = tmp_path / "out" / "all.duckdb"
    target.parent.mkdir()
    _store_with_run(target, "r-9")
    held = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX)  # a merge in progress: both wait for it
    try:
        merges = [subprocess.Popen([sys.executable, "-m", "stability", "merge", str(s), "-o", str(target)],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for s in sources]
        for merge in merges:  # each says that it waits (an event, not a sleep)
            assert merge.stderr is not None
            assert "another merge into this folder is running; waiting" in merge.stderr.readline()
    finally:
        os.close(held)
    outputs = [m.communicate(timeout=120) for m in merges]
    assert [m.returncode for m in merges] == [0, 0], outputs
    assert all("merged 1 stores" in out for out, _ in outputs)
    with Store.open(target, read_only=True) as store:
        assert sorted(r.id for r in store.runs()) == ["r-1", "r-2", "r-9"]
        assert sorted(c.id for r in ("r-1", "r-2", "r-9") for c in store.calls(r)) == ["c-0001", "c-0002", "c-0009"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["all.duckdb"]  # no lock file, no leftovers


def test_merges_into_a_target_through_a_link_replace_the_real_file(tmp_path: Path) -> None:
    from stability.store.merge import merge_files

    source, real, link = tmp_path / "a.duckdb", tmp_path / "real.duckdb", tmp_path / "link.duckdb"
    _store_with_run(source, "r-1")
    _store_with_run(real, "r-2")
    link.symlink_to(real)
    merge_files([source], link)
    assert link.is_symlink()
    with Store.open(real, read_only=True) as store:
        assert sorted(r.id for r in store.runs()) == ["r-1", "r-2"]


@pytest.fixture
def priced_spec(tmp_path: Path) -> Path:
    write(tmp_path / "c" / "one.md", "- principle 1\n")
    return write(tmp_path / "spec.yaml", f"""
name: usage-test
models: [openai/fake]
constitutions: ["{tmp_path}/c/*.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 6}}
replicates: 4
concurrency: {{openai: 1}}
max_parallel_runs: 1
prices: {{"openai/fake": {{input: 1, output: 1}}}}
""")


def _serve(monkeypatch: pytest.MonkeyPatch, server: WireServer) -> None:
    monkeypatch.setenv("STABILITY_ALLOW_NETWORK", "1")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-usage-test-key-0000")


def test_a_server_reporting_10_to_the_15_tokens_is_bounded_and_the_budget_stops(
        priced_spec: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with WireServer(reply=grow, usage=(10**15, 10**15)) as server:
        _serve(monkeypatch, server)
        result = run_experiment(priced_spec, db, max_cost=5000.0)
        sent = server.count
    assert result.budget_reached and sent < 4 * 5  # $1 per million tokens: a capped call costs ~$4,295
    with Store.open(db, read_only=True) as store:
        calls = [c for r in result.runs for c in store.calls(r)]
        spent = store.experiment_spent(store.experiments()[0].id)
    assert len(calls) == sent and calls  # every answered call stored, none blocked the rest
    assert all(c.input_tokens == c.output_tokens == TOKEN_LIMIT for c in calls)
    assert all(c.response and c.response["usage"]["prompt_tokens"] == 10**15 for c in calls)  # the server's word
    assert spent == pytest.approx(sent * 2 * TOKEN_LIMIT / 1e6)
    done = stability("runs", "--db", str(db))  # every later command works
    assert done.returncode == 0, done.stderr


def test_negative_token_counts_cost_nothing_and_never_lower_what_was_spent(
        priced_spec: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with WireServer(reply=grow, usage=(-59_990_000, -5)) as server:
        _serve(monkeypatch, server)
        first = run_experiment(priced_spec, db, max_cost=0.0001)
    with Store.open(db, read_only=True) as store:
        calls = [c for r in first.runs for c in store.calls(r)]
        spent = store.experiment_spent(store.experiments()[0].id)
    assert calls and all(c.input_tokens == 0 and c.output_tokens == 0 for c in calls)
    assert all(c.cost_usd is not None and c.cost_usd >= 0 for c in calls) and spent >= 0
    assert all(c.response and c.response["usage"]["prompt_tokens"] == -59_990_000 for c in calls)
    # with honest usage the same budget stops: the lying server's calls spent nothing, never a negative amount
    with WireServer(reply=grow) as server:
        _serve(monkeypatch, server)
        second = run_experiment(priced_spec, tmp_path_db(db), max_cost=0.0001)
    assert second.budget_reached


def tmp_path_db(db: Path) -> Path:
    return db.with_name("honest.duckdb")
