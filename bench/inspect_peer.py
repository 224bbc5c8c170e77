"""The peer side of ``bench/overhead.py``: the same requests as an inspect_ai eval, timed in this process.

    python bench/inspect_peer.py URL BODIES.json CONCURRENCY LOG_DIR

Runs in its own environment (inspect_ai needs a newer ``openai`` than the project pins), so it imports nothing
from ``stability``. Prints ``{"wall_s", "cpu_s", "samples", "log_bytes"}`` as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    url, bodies_file, concurrency, log_dir = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser
    from inspect_ai.solver import generate

    bodies = json.loads(bodies_file.read_text(encoding="utf-8"))
    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser}
    samples = [Sample(input=[kinds[m["role"]](content=m["content"]) for m in body["messages"]], id=i)
               for i, body in enumerate(bodies)]
    wall, cpu = time.perf_counter(), time.process_time()
    [log] = eval(Task(dataset=samples, solver=generate()), model="openai/bench", model_base_url=url + "/v1",
                 model_args={"responses_api": False},  # the wire server speaks chat completions
                 max_connections=concurrency, max_samples=concurrency, max_retries=0, log_dir=str(log_dir),
                 display="none", temperature=1.0, max_tokens=1024)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert log.status == "success", (log.status, log.error)
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "samples": len(log.samples or []),
                      "log_bytes": sum(p.stat().st_size for p in log_dir.rglob("*") if p.is_file())}))


if __name__ == "__main__":
    main()
