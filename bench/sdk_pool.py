"""Where the bare SDK's CPU goes: ``bare()`` of ``bench/overhead.py`` under cProfile at several concurrencies.

    python bench/sdk_pool.py [--requests 400] [--latency 0.1] 1 10 50

Starts the wire server, sends ``--requests`` distinct chat requests with ``openai.AsyncOpenAI`` under a semaphore
of each concurrency, and prints one JSON line per concurrency: wall and CPU seconds (profiled, so inflated) and
how many times httpcore's ``is_idle`` ran per request (its connection pool scans every pooled connection on
every request event). The first concurrency also pays the SDK's import.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from overhead import bare, wire_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("concurrency", type=int, nargs="+")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    with wire_server(args.latency) as url:
        os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-key")
        body = {"model": "bench", "messages": [{"role": "user", "content": "x" * 900}], "max_tokens": 100}
        for concurrency in args.concurrency:
            bodies = [dict(body, seed=i) for i in range(args.requests)]
            profiler = cProfile.Profile()
            wall, cpu = time.perf_counter(), time.process_time()
            profiler.runcall(lambda: asyncio.run(bare(url, bodies, concurrency)))  # noqa: B023
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
            idle = sum(value[0] for key, value in stats.items() if key[2] == "is_idle")
            print(json.dumps({"concurrency": concurrency, "requests": len(bodies), "wall_s": round(wall, 2),
                              "cpu_ms_per_request_profiled": round(1000 * cpu / len(bodies), 2),
                              "is_idle_calls_per_request": round(idle / len(bodies))}), flush=True)


if __name__ == "__main__":
    main()
