"""``stability run --ray``: cells on local Ray workers through the wire server. One local Ray (two worker CPUs)
and one wire server serve the whole module; Ray's start-up is most of its time."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stability.experiment import run_experiment
from stability.experiment.spec import cell_key, expand, load_spec
from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.conftest import write

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'stability[ray]')")
pytestmark = pytest.mark.ray

STALL = threading.Event()  # set: the next request of a stall constitution is held until RELEASE
HELD = threading.Event()
RELEASE = threading.Event()


IN_FLIGHT = {"now": 0, "most": 0, "hold": 0.0}
FLIGHT_LOCK = threading.Lock()


def grow(messages: list[dict[str, Any]]) -> str:
    with FLIGHT_LOCK:
        IN_FLIGHT["now"] += 1
        IN_FLIGHT["most"] = max(IN_FLIGHT["most"], IN_FLIGHT["now"])
    try:
        time.sleep(IN_FLIGHT["hold"])
        return _grow(messages)
    finally:
        with FLIGHT_LOCK:
            IN_FLIGHT["now"] -= 1


def _grow(messages: list[dict[str, Any]]) -> str:
    lines = [line for line in messages[-1]["content"].splitlines() if line.startswith("- ")]
    if STALL.is_set() and any("stall" in line for line in lines) and len(lines) == 2:
        STALL.clear()
        HELD.set()
        RELEASE.wait(60)
    if len(lines) >= 4:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(lines + [f"- principle {len(lines) + 1}"])


@pytest.fixture(scope="module")
def cluster() -> Iterator[WireServer]:
    """A wire server, and a local Ray whose workers reach it (their environment is taken at start)."""
    saved = dict(os.environ)
    with WireServer(reply=grow) as server:
        os.environ.update({"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-test-ray-key-00000",
                           "STABILITY_ALLOW_NETWORK": "1", "STABILITY_RETRY_INITIAL": "0",
                           "STABILITY_RETRY_JITTER": "0", "STABILITY_SNAPSHOT_SECONDS": "0",
                           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                       os.environ.get("PYTHONPATH")]))})
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            yield server
        finally:
            ray.shutdown()
            os.environ.clear()
            os.environ.update(saved)


@pytest.fixture
def wire(cluster: WireServer, monkeypatch: pytest.MonkeyPatch) -> WireServer:
    """The module's server, for the driver too (the autouse fixture cleared the driver's environment)."""
    monkeypatch.setenv("OPENAI_BASE_URL", cluster.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-ray-key-00000")
    monkeypatch.setenv("STABILITY_ALLOW_NETWORK", "1")
    return cluster


def spec_file(tmp_path: Path, names: list[str], extra: str = "") -> Path:
    for name in names:
        write(tmp_path / "c" / f"{name}.md", f"- {name} 1\n")
    return write(tmp_path / "spec.yaml", f"""
name: ray-grid
models: [openai/fake]
constitutions: ["{tmp_path}/c/*.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 6}}
cache: run
max_parallel_runs: 2
prices: {{"openai/fake": {{input: 1000, output: 1000}}}}
{extra}""")


def canonical(db: Path) -> dict[str, Any]:
    """What must not depend on where a cell ran: per cell, its run's outcome, revisions and calls."""
    with Store.open(db, read_only=True) as store:
        [experiment] = store.experiments()
        out: dict[str, Any] = {}
        for cell in store.cells(experiment.id):
            run = store.run(str(cell.run_id))
            out[cell.cell] = (cell.status, run.status, run.stop_reason,
                              [(r.step, r.decision, r.constitution_hash) for r in store.revisions(run.id)],
                              sorted((c.cache_key, c.sample_index, c.status, c.text, c.cached_from is None)
                                     for c in store.calls(run.id)))
        nodes = sorted(r[0] for r in store.con.execute("SELECT hash FROM constitutions").fetchall())
    return {"cells": out, "nodes": nodes}


def test_two_workers_one_killed_mid_cell_equals_a_single_process_run(wire: WireServer, tmp_path: Path) -> None:
    from stability.experiment.distributed import run_experiment_ray

    spec = spec_file(tmp_path, ["alpha", "beta", "gamma", "stall"])
    local_db, ray_db = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    run_experiment(spec, local_db)
    stall_cell = next(cell_key(c) for c in expand(load_spec(spec), spec) if "stall" in str(c.constitution))
    before = wire.bodies.copy()
    HELD.clear()
    RELEASE.clear()
    STALL.set()
    outcome: dict[str, Any] = {}
    driver = threading.Thread(target=lambda: outcome.update(result=run_experiment_ray(spec, ray_db)))
    driver.start()
    assert HELD.wait(120), "the stall request never arrived"
    ledger = ray.get_actor(f"ledger-{load_spec(spec).experiment_id}")
    pid = ray.get(ledger.running.remote())[stall_cell]
    os.kill(pid, signal.SIGKILL)  # the worker dies holding an unanswered request and an open shard
    time.sleep(0.5)
    RELEASE.set()
    driver.join(300)
    result = outcome["result"]
    assert (result.done, result.failed, result.not_started) == (4, 0, 0)
    assert canonical(ray_db) == canonical(local_db)
    sent = {body: n - before[body] for body, n in wire.bodies.items() if n > before[body]}
    with Store.open(ray_db, read_only=True) as store:
        paid = [c for r in store.runs() for c in store.calls(r.id) if c.cached_from is None]
    assert len(paid) == len(sent)  # every request the driver's store holds was answered once
    assert sorted(sent.values()) == [1] * (len(sent) - 1) + [2]  # only the request the dead worker held went twice
    assert not list((Path(f"{ray_db}.shards") / load_spec(spec).experiment_id).glob("*.duckdb"))  # merged, removed


def test_budget_stops_new_cells_and_a_rerun_finishes(wire: WireServer, tmp_path: Path) -> None:
    from stability.experiment.distributed import run_experiment_ray

    spec = spec_file(tmp_path, ["one", "two", "three", "four", "five"], "max_parallel_runs: 1\n")
    db = tmp_path / "budget.duckdb"
    before = wire.bodies.copy()
    seen: list[str] = []
    first = run_experiment_ray(spec, db, max_cost=0.05, on_cell=lambda c: seen.append(c.status))
    assert first.budget_reached and first.not_started > 0 and first.done < 5
    assert first.spent_usd >= 0.05 and len(seen) == first.done + first.failed
    second = run_experiment_ray(spec, db)
    assert (second.done, second.failed, second.not_started) == (5, 0, 0)
    sent = {body: n - before[body] for body, n in wire.bodies.items() if n > before[body]}
    with Store.open(db, read_only=True) as store:
        paid = [c for r in store.runs() for c in store.calls(r.id) if c.cached_from is None]
    assert set(sent.values()) == {1} and len(paid) == len(sent)  # the budget stop lost nothing, paid nothing twice


def test_a_local_partial_run_resumes_on_ray_paying_nothing_twice(wire: WireServer, tmp_path: Path) -> None:
    from stability.experiment.distributed import run_experiment_ray

    spec = spec_file(tmp_path, ["one", "two", "three"], "max_parallel_runs: 1\n")
    db = tmp_path / "mixed.duckdb"
    before = wire.bodies.copy()
    first = run_experiment(spec, db, max_cost=0.05)  # local, stopped by its budget inside a run
    assert first.budget_reached and first.failed == 1
    second = run_experiment_ray(spec, db)  # the half-done run goes to a worker with its rows, and resumes
    assert (second.done, second.failed, second.not_started) == (3, 0, 0)
    assert {n - before[b] for b, n in wire.bodies.items() if n > before[b]} == {1}


def test_shards_a_crashed_driver_left_are_merged_first(wire: WireServer, tmp_path: Path) -> None:
    from stability.experiment.distributed import run_experiment_ray

    spec = spec_file(tmp_path, ["one", "two"])
    elsewhere = tmp_path / "elsewhere.duckdb"
    run_experiment(spec, elsewhere)
    experiment = load_spec(spec).experiment_id
    key = cell_key(expand(load_spec(spec), spec)[0])
    folder = Path(f"{tmp_path / 'crashed.duckdb'}.shards") / experiment
    folder.mkdir(parents=True)
    elsewhere.rename(folder / f"{key}.duckdb")  # finished work the driver never merged
    sent = wire.count
    result = run_experiment_ray(spec, tmp_path / "crashed.duckdb")
    assert (result.done, result.failed, result.not_started) == (2, 0, 0) and wire.count == sent
    assert not list(folder.glob("*.duckdb"))


@pytest.mark.parametrize(("args", "address"), [
    (["run", "SPEC", "--ray"], "local"),
    (["run", "--ray", "SPEC"], "local"),
    (["run", "--ray", "auto", "SPEC"], "auto"),
    (["run", "SPEC", "--ray", "ray://head:10001", "--max-cost", "1"], "ray://head:10001"),
    (["run", "SPEC", "--ray", "10.0.0.1:6379"], "10.0.0.1:6379"),
    (["run", "SPEC", "--ray", "--max-cost", "1"], "local"),
])
def test_ray_takes_an_optional_address(args: list[str], address: str, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from stability.experiment import distributed
    from tests.conftest import run_cli

    seen: list[tuple[str, str]] = []

    def fake(spec: Path, db: Any, address: str, **_: Any) -> Any:
        seen.append((str(spec), address))
        raise SystemExit(0)

    monkeypatch.setattr(distributed, "run_experiment_ray", fake)
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert seen == [("SPEC", address)]


def test_workers_share_the_providers_concurrency_limit(wire: WireServer, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import run_cli

    spec = spec_file(tmp_path, ["one", "two", "three", "four"], "concurrency: {openai: 1}\n")
    IN_FLIGHT.update(most=0, hold=0.05)  # each answer takes a moment, so two workers would overlap
    try:
        code, out, err = run_cli(["run", str(spec), "--ray", "--db", str(tmp_path / "limited.duckdb")], capsys,
                                 monkeypatch)
    finally:
        IN_FLIGHT["hold"] = 0.0
    assert code == 0, err
    assert "done 4 · failed 0 · not started 0" in out
    assert IN_FLIGHT["most"] == 1  # two workers, one request in flight at a time: the limits actor held them



def test_cache_from_answers_ray_workers_from_another_store(wire: WireServer, tmp_path: Path) -> None:
    from stability.experiment.distributed import run_experiment_ray

    spec = spec_file(tmp_path, ["one", "two"], "cache: global\n")  # (a later key wins) never for cache: run
    theirs = tmp_path / "theirs.duckdb"
    run_experiment(spec, theirs)
    sent = wire.count
    result = run_experiment_ray(spec, tmp_path / "mine.duckdb", cache_from=theirs)
    assert result.done == 2 and wire.count == sent  # every call answered from their store
    with Store.open(tmp_path / "mine.duckdb", read_only=True) as store:
        calls = [c for r in store.runs() for c in store.calls(r.id)]
    assert calls and all(c.cached_from is not None for c in calls)
