"""Framework overhead against the latency floor and a bare-SDK baseline, replay cost, and storage per call.

    python bench/overhead.py [--steps 1000] [--concurrency 50] [--latency 0.1] [--reps 3] [--profile FILE]

A wire server (``python -m stability.testing.wire_server``) runs in its own process with a fixed latency and
answers every request with ``NO CHANGE``. Each repetition, in this one process:

1. **framework**: an experiment of ``steps / 2`` fresh-instance runs (two declining steps each, distinct seeds,
   so no call is a cache hit) with ``concurrency`` calls in flight, into a fresh database;
2. **replay**: the same spec again on that database: it must send 0 requests;
3. **bare**: the very request bodies the framework stored, sent with ``openai.AsyncOpenAI`` under an
   ``asyncio.Semaphore(concurrency)``, nothing stored;
4. **peer** (``--peer-python PY``, a Python where ``pip install -e '.[bench]'`` put inspect_ai, which needs
   ``openai>=3.4`` while the project's environment has 2.x): the same requests as an inspect_ai eval run by
   ``bench/inspect_peer.py``, one sample each, ``max_connections`` = concurrency, logs in a temporary folder.

Reported per repetition and as medians: wall seconds, CPU seconds of this process, requests the server counted,
the ratio to the floor (``steps * latency / concurrency``) and the framework/bare ratio of the same repetition,
database bytes per call and per revision, and /proc/loadavg before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def server_count(url: str) -> int:
    with urllib.request.urlopen(url + "/count") as response:
        return int(json.load(response)["count"])


def write_spec(folder: Path, steps: int, concurrency: int) -> Path:
    (folder / "c.md").write_text("- I am honest.\n- I avoid causing harm.\n- I am helpful.\n", encoding="utf-8")
    spec = folder / "spec.yaml"
    spec.write_text(f"""name: overhead
models: [openai/bench]
constitutions: ["{folder}/c.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 2, declines_to_stop: 2}}
replicates: {steps // 2}
concurrency: {{openai: {concurrency}}}
max_parallel_runs: {concurrency}
""", encoding="utf-8")
    return spec


@contextlib.contextmanager
def wire_server(latency: float) -> Iterator[str]:
    """The wire server in its own process, answering after ``latency`` seconds; yields its URL."""
    server = subprocess.Popen([sys.executable, "-m", "stability.testing.wire_server", "--latency", str(latency)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait()


def timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


async def bare(url: str, bodies: list[dict[str, Any]], concurrency: int) -> None:
    import openai

    client = openai.AsyncOpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=url + "/v1", max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, Any]) -> str:
        async with slots:
            response = await client.chat.completions.create(**body)
            return response.choices[0].message.content or ""

    await asyncio.gather(*(one(body) for body in bodies))
    await client.close()


def peer(python: str, url: str, bodies: list[dict[str, Any]], concurrency: int, folder: Path) -> dict[str, Any]:
    """The same requests as an inspect_ai eval, run by ``python`` (an environment with inspect_ai)."""
    (folder / "bodies.json").write_text(json.dumps(bodies), encoding="utf-8")
    done = subprocess.run([python, str(Path(__file__).with_name("inspect_peer.py")), url, str(folder / "bodies.json"),
                           str(concurrency), str(folder / "peer-logs")], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def one_rep(url: str, steps: int, concurrency: int, folder: Path, peer_python: str | None) -> dict[str, Any]:
    from stability.experiment import run_experiment
    from stability.store import Store

    spec = write_spec(folder, steps, concurrency)
    db = folder / "bench.duckdb"
    row: dict[str, Any] = {"loadavg_before": loadavg()}
    before = server_count(url)
    result, row["framework_s"], row["framework_cpu_s"] = timed(lambda: run_experiment(spec, db))
    row["framework_requests"] = server_count(url) - before
    assert result.done == steps // 2, result
    before = server_count(url)
    replay, row["replay_s"], row["replay_cpu_s"] = timed(lambda: run_experiment(spec, db))
    row["replay_requests"] = server_count(url) - before
    assert replay.done == steps // 2
    with Store.open(db, read_only=True) as store:
        calls = [c for r in result.runs for c in store.calls(r)]
        revisions = sum(len(store.revisions(r)) for r in result.runs)
    bodies = [c.request for c in calls]
    row["db_bytes"] = db.stat().st_size + sum(p.stat().st_size for p in folder.glob("bench.duckdb.wal"))
    row["calls"], row["revisions"] = len(calls), revisions
    row["bytes_per_call"] = round(row["db_bytes"] / len(calls))
    row["bytes_per_revision"] = round(row["db_bytes"] / revisions)
    row["request_response_json_bytes_per_call"] = round(statistics.mean(
        len(json.dumps(c.request)) + len(json.dumps(c.response)) for c in calls))
    before = server_count(url)
    _, row["bare_s"], row["bare_cpu_s"] = timed(lambda: asyncio.run(bare(url, bodies, concurrency)))
    row["bare_requests"] = server_count(url) - before
    if peer_python:
        before = server_count(url)
        measured = peer(peer_python, url, bodies, concurrency, folder)
        row["peer_s"], row["peer_cpu_s"], row["peer_log_bytes"] = (measured["wall_s"], measured["cpu_s"],
                                                                   measured["log_bytes"])
        row["peer_requests"] = server_count(url) - before
        row["peer_over_bare"] = round(row["peer_s"] / row["bare_s"], 3)
    row["loadavg_after"] = loadavg()
    row["framework_over_bare"] = round(row["framework_s"] / row["bare_s"], 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--peer-python", help="a Python with inspect_ai: also run the requests as an inspect_ai eval")
    parser.add_argument("--profile", type=Path, help="also run the framework once under cProfile; write stats here")
    args = parser.parse_args()
    with wire_server(args.latency) as url:
        os.environ.update(OPENAI_BASE_URL=url + "/v1", OPENAI_API_KEY="sk-bench-not-a-key")
        floor = args.steps * args.latency / args.concurrency
        rows = []
        for _ in range(args.reps):
            with tempfile.TemporaryDirectory() as folder:
                rows.append(one_rep(url, args.steps, args.concurrency, Path(folder), args.peer_python))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        summary: dict[str, Any] = {"steps": args.steps, "concurrency": args.concurrency, "latency_s": args.latency,
                                   "floor_s": floor, "reps": rows}
        for key in ("framework_s", "bare_s", "replay_s", "framework_cpu_s", "bare_cpu_s", "framework_over_bare",
                    "peer_s", "peer_cpu_s", "peer_over_bare"):
            if key in rows[0]:
                summary[f"median_{key}"] = round(statistics.median(r[key] for r in rows), 3)
        summary["median_framework_over_floor"] = round(summary["median_framework_s"] / floor, 3)
        summary["median_bare_over_floor"] = round(summary["median_bare_s"] / floor, 3)
        summary["framework_cpu_ms_per_call"] = round(1000 * summary["median_framework_cpu_s"] / args.steps, 2)
        summary["bare_cpu_ms_per_call"] = round(1000 * summary["median_bare_cpu_s"] / args.steps, 2)
        if args.profile:
            with tempfile.TemporaryDirectory() as folder:
                from stability.experiment import run_experiment

                spec = write_spec(Path(folder), args.steps, args.concurrency)
                profiler = cProfile.Profile()
                profiler.runcall(run_experiment, spec, Path(folder) / "p.duckdb")
                profiler.dump_stats(args.profile)
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
