"""Framework overhead against the latency floor and a bare-SDK baseline, replay cost, and storage per call.

    python bench/overhead.py [--steps 1000] [--concurrency 50] [--latency 0.1] [--reps 3] [--profile FILE]
                             [--provider openai|anthropic] [--max-parallel-runs N] [--grow BATCHES]

A wire server (``python -m stability.testing.wire_server``) runs in its own process with a fixed latency and
answers every request with ``NO CHANGE``. The SDKs are imported before anything is timed. Each repetition, in
this one process:

1. **framework**: an experiment of ``steps / 2`` fresh-instance runs (two declining steps each, distinct seeds,
   so no call is a cache hit) of ``PROVIDER/bench``, into a fresh database. The spec sets only
   ``concurrency: {PROVIDER: N}``: how many runs go at once follows from it (``max_parallel_runs`` unset,
   unless ``--max-parallel-runs`` sets it);
2. **replay**: the same spec again on that database: it must send 0 requests;
3. **bare**: the very request bodies the framework stored, sent with ``openai.AsyncOpenAI`` (or
   ``anthropic.AsyncAnthropic``) under an ``asyncio.Semaphore(concurrency)``, nothing stored;
4. **peer** (``--peer-python PY``, a Python where ``pip install -e '.[bench]'`` put inspect_ai, which needs
   ``openai>=3.4`` while the project's environment has 2.x): the same requests as an inspect_ai eval run by
   ``bench/inspect_peer.py``, one sample each, ``max_connections`` = concurrency, logs in a temporary folder.

Reported per repetition and as medians: wall seconds, CPU seconds of this process, requests the server counted
and the most it held at once, the ratio to the floor (``steps * latency / concurrency``) and the framework/bare
ratio of the same repetition, database bytes per call and per revision, and /proc/loadavg before and after (the
machine is shared); once: the versions of Python, the SDKs, their transports, DuckDB and pydantic.

``--grow BATCHES`` instead writes BATCHES experiments of ``steps`` calls each, one after another, into ONE
database, and reports each one's CPU per call beside the number of calls already stored: the cost per call as
the store grows. Each batch's requests are new (a principle of its own in the start); with ``--grow-same`` every
batch sends batch 0's requests again, so every key is looked up in SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import importlib.metadata
import json
import os
import platform
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


#: distributions whose versions every figure depends on (the SDKs and their transports above all)
PACKAGES = ("openai", "anthropic", "httpx", "httpx2", "httpcore", "httpcore2", "anyio", "duckdb", "pydantic")


def versions() -> dict[str, str | None]:
    """Python and the installed version of each of :data:`PACKAGES` (None: not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def server_count(url: str) -> int:
    with urllib.request.urlopen(url + "/count") as response:
        return int(json.load(response)["count"])


def server_max_in_flight(url: str) -> int:
    """The most requests the server held at once since the last call (which this one resets)."""
    with urllib.request.urlopen(url + "/count?reset_max_in_flight") as response:
        return int(json.load(response)["max_in_flight"])


def write_spec(folder: Path, steps: int, concurrency: int, provider: str = "openai",
               max_parallel_runs: int | None = None, name: str = "overhead", extra: str = "") -> Path:
    (folder / "c.md").write_text("- I am honest.\n- I avoid causing harm.\n- I am helpful.\n" + extra,
                                 encoding="utf-8")
    spec = folder / f"{name}.yaml"
    spec.write_text(f"""name: {name}
models: [{provider}/bench]
constitutions: ["{folder}/c.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 2, declines_to_stop: 2}}
replicates: {steps // 2}
concurrency: {{{provider}: {concurrency}}}
""" + (f"max_parallel_runs: {max_parallel_runs}\n" if max_parallel_runs else ""), encoding="utf-8")
    return spec


@contextlib.contextmanager
def wire_server(latency: float) -> Iterator[str]:
    """The wire server in its own process, answering after ``latency`` seconds; yields its URL."""
    here = str(Path(__file__).resolve().parents[1])  # this checkout's server, whichever stability is measured
    server = subprocess.Popen([sys.executable, "-m", "stability.testing.wire_server", "--latency", str(latency)],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": here})
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


async def bare(url: str, bodies: list[dict[str, Any]], concurrency: int, provider: str = "openai") -> None:
    slots = asyncio.Semaphore(concurrency)
    if provider == "anthropic":
        import anthropic

        messages = anthropic.AsyncAnthropic(api_key=os.environ["ANTHROPIC_API_KEY"], base_url=url,
                                            max_retries=0)

        async def one(body: dict[str, Any]) -> Any:
            fields = dict(body)
            extra = {k: fields.pop(k) for k in ("temperature", "top_p") if k in fields}  # as the provider sends
            async with slots:
                response = await messages.messages.create(**fields, extra_body=extra or None)
                return response.content

        await asyncio.gather(*(one(body) for body in bodies))
        await messages.close()
        return
    import openai

    client = openai.AsyncOpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=url + "/v1", max_retries=0)

    async def ask(body: dict[str, Any]) -> str:
        async with slots:
            response = await client.chat.completions.create(**body)
            return response.choices[0].message.content or ""

    await asyncio.gather(*(ask(body) for body in bodies))
    await client.close()


def peer(python: str, url: str, bodies: list[dict[str, Any]], concurrency: int, folder: Path) -> dict[str, Any]:
    """The same requests as an inspect_ai eval, run by ``python`` (an environment with inspect_ai)."""
    (folder / "bodies.json").write_text(json.dumps(bodies), encoding="utf-8")
    done = subprocess.run([python, str(Path(__file__).with_name("inspect_peer.py")), url, str(folder / "bodies.json"),
                           str(concurrency), str(folder / "peer-logs")], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def one_rep(url: str, steps: int, concurrency: int, folder: Path, peer_python: str | None,
            provider: str = "openai", max_parallel_runs: int | None = None) -> dict[str, Any]:
    from stability.experiment import run_experiment
    from stability.store import Store

    spec = write_spec(folder, steps, concurrency, provider, max_parallel_runs)
    db = folder / "bench.duckdb"
    row: dict[str, Any] = {"loadavg_before": loadavg()}
    before = server_count(url)
    server_max_in_flight(url)
    result, row["framework_s"], row["framework_cpu_s"] = timed(lambda: run_experiment(spec, db))
    row["framework_requests"] = server_count(url) - before
    row["framework_max_in_flight"] = server_max_in_flight(url)
    row["parallel_runs"] = getattr(result, "parallel_runs", max_parallel_runs)  # (code before the knob: as set)
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
    server_max_in_flight(url)
    _, row["bare_s"], row["bare_cpu_s"] = timed(lambda: asyncio.run(bare(url, bodies, concurrency, provider)))
    row["bare_requests"] = server_count(url) - before
    row["bare_max_in_flight"] = server_max_in_flight(url)
    if peer_python:
        before = server_count(url)
        measured = peer(peer_python, url, bodies, concurrency, folder)
        row["peer_s"], row["peer_cpu_s"], row["peer_log_bytes"] = (measured["wall_s"], measured["cpu_s"],
                                                                   measured["log_bytes"])
        row["peer_requests"] = server_count(url) - before
        row["peer_over_bare"] = round(row["peer_s"] / row["bare_s"], 3)
    row["loadavg_after"] = loadavg()
    row["framework_over_bare"] = round(row["framework_s"] / row["bare_s"], 3)
    row["framework_cpu_ms_per_call"] = round(1000 * row["framework_cpu_s"] / len(calls), 3)
    row["bare_cpu_ms_per_call"] = round(1000 * row["bare_cpu_s"] / len(calls), 3)
    return row


def grow(url: str, steps: int, concurrency: int, batches: int, provider: str, folder: Path,
         max_parallel_runs: int | None = None, same: bool = False) -> list[dict[str, Any]]:
    """``batches`` experiments of ``steps`` calls each into one database: CPU per call as the store grows. Each
    batch's starting constitution has a principle of its own, so its requests are new (their keys are misses the
    in-memory key set answers); ``same``: every batch sends batch 0's requests again under a new experiment name,
    so every request's key is stored and looked up in SQL (a miss there: the cache scope is ``run``)."""
    from stability.experiment import run_experiment

    db = folder / "grow.duckdb"
    rows = []
    for batch in range(batches):
        spec = write_spec(folder, steps, concurrency, provider, max_parallel_runs, f"grow-{batch}",
                          "" if same else f"- I remember batch {batch}.\n")
        row: dict[str, Any] = {"batch": batch, "calls_stored_before": batch * steps, "loadavg_before": loadavg()}
        before = server_count(url)
        result, row["framework_s"], row["framework_cpu_s"] = timed(lambda: run_experiment(spec, db))  # noqa: B023
        row["framework_requests"] = server_count(url) - before
        assert result.done == steps // 2 and row["framework_requests"] == steps, (result, row)
        row["framework_cpu_ms_per_call"] = round(1000 * row["framework_cpu_s"] / steps, 3)
        row["db_bytes"] = db.stat().st_size
        row["loadavg_after"] = loadavg()
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--peer-python", help="a Python with inspect_ai: also run the requests as an inspect_ai eval")
    parser.add_argument("--profile", type=Path, help="also run the framework once under cProfile; write stats here")
    parser.add_argument("--provider", choices=("openai", "anthropic"), default="openai")
    parser.add_argument("--max-parallel-runs", type=int, help="set it in the spec (default: follow concurrency)")
    parser.add_argument("--grow", type=int, metavar="BATCHES", help="CPU per call as one database grows instead")
    parser.add_argument("--grow-same", action="store_true",
                        help="with --grow: every batch sends batch 0's requests again (each key looked up in SQL)")
    args = parser.parse_args()
    importlib.import_module(args.provider)  # imported before anything is timed: no side pays for the imports
    importlib.import_module("stability.experiment")

    with wire_server(args.latency) as url:
        os.environ.update(OPENAI_BASE_URL=url + "/v1", OPENAI_API_KEY="sk-bench-not-a-key",
                          ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY="sk-ant-bench-not-a-key")
        head = {"provider": args.provider, "versions": versions(), "cpus": os.cpu_count()}
        if args.grow:
            with tempfile.TemporaryDirectory() as folder:
                batches = grow(url, args.steps, args.concurrency, args.grow, args.provider, Path(folder),
                               args.max_parallel_runs, args.grow_same)
            print(json.dumps({**head, "steps_per_batch": args.steps, "concurrency": args.concurrency,
                              "latency_s": args.latency, "same_requests": args.grow_same, "batches": batches},
                             indent=2))
            return
        floor = args.steps * args.latency / args.concurrency
        rows = []
        for _ in range(args.reps):
            with tempfile.TemporaryDirectory() as folder:
                rows.append(one_rep(url, args.steps, args.concurrency, Path(folder), args.peer_python,
                                    args.provider, args.max_parallel_runs))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        summary: dict[str, Any] = {**head, "steps": args.steps, "concurrency": args.concurrency,
                                   "latency_s": args.latency, "floor_s": floor, "reps": rows}
        for key in ("framework_s", "bare_s", "replay_s", "framework_cpu_s", "bare_cpu_s", "framework_over_bare",
                    "framework_max_in_flight", "bare_max_in_flight", "peer_s", "peer_cpu_s", "peer_over_bare"):
            if key in rows[0]:
                summary[f"median_{key}"] = round(statistics.median(r[key] for r in rows), 3)
        summary["median_framework_over_floor"] = round(summary["median_framework_s"] / floor, 3)
        summary["median_bare_over_floor"] = round(summary["median_bare_s"] / floor, 3)
        summary["framework_cpu_ms_per_call"] = round(1000 * summary["median_framework_cpu_s"] / args.steps, 2)
        summary["bare_cpu_ms_per_call"] = round(1000 * summary["median_bare_cpu_s"] / args.steps, 2)
        if args.profile:
            with tempfile.TemporaryDirectory() as folder:
                from stability.experiment import run_experiment

                spec = write_spec(Path(folder), args.steps, args.concurrency, args.provider,
                                  args.max_parallel_runs)
                profiler = cProfile.Profile()
                profiler.runcall(run_experiment, spec, Path(folder) / "p.duckdb")
                profiler.dump_stats(args.profile)
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
