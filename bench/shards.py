"""Benchmark: merging stores, and a grid on local Ray with 1 and 2 workers against the wire server.

    python bench/shards.py merge 100000 FOLDER     # build a synthetic store (bench/analysis.py), time merges
    python bench/shards.py ray WORKERS CELLS LATENCY_S   # one grid on a local Ray of WORKERS CPUs (one process)
    python bench/shards.py all FOLDER              # both, each Ray size in a fresh process; JSON lines out

``merge`` times ``merge_files`` three ways on the same store: into a new file (every row written), into a copy
of itself (nothing new: the whole comparison, no write), and two copies into a new file (every row met twice).
``ray`` runs a fresh-instance grid of CELLS constitutions (five calls per cell) against a wire server that answers
each request after LATENCY_S seconds, as an API would, with ``max_parallel_runs`` above the worker count so Ray's
CPUs are the only limit; it reports the driver's wall time (Ray's start-up apart; the actors' and the workers'
processes start within it) and the span from the first run's start to the last run's end. Every line carries the load
average before and after, and the package versions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def versions() -> dict[str, str]:
    out = {}
    for name in ("duckdb", "ray"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def merge_times(revisions: int, folder: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    from analysis import build  # type: ignore[import-not-found]
    from stability.store.merge import merge_files

    base = Path(folder)
    base.mkdir(parents=True, exist_ok=True)
    source = base / f"merge-{revisions}.duckdb"
    if not source.exists():
        build(revisions, str(source))
    twin = base / f"merge-{revisions}-twin.duckdb"
    shutil.copyfile(source, twin)
    out: dict[str, Any] = {"revisions": revisions, "file_mb": round(source.stat().st_size / 1e6, 1),
                           "load_before": loadavg(), **versions()}
    for label, inputs, target, seed in (("into_new_file", [source], base / "merged-new.duckdb", None),
                                        ("into_itself_nothing_new", [source], base / "merged-self.duckdb", source),
                                        ("two_copies_into_new_file", [source, twin], base / "merged-two.duckdb",
                                         None)):
        target.unlink(missing_ok=True)
        if seed is not None:
            shutil.copyfile(seed, target)
        started = time.perf_counter()
        report = merge_files(inputs, target)
        out[label + "_s"] = round(time.perf_counter() - started, 2)
        out[label + "_rows_written"] = sum(report.written.values())
        target.unlink(missing_ok=True)
    out["load_after"] = loadavg()
    return out


def grow(messages: list[dict[str, Any]]) -> str:
    lines = [line for line in messages[-1]["content"].splitlines() if line.startswith("- ")]
    if len(lines) >= 4:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(lines + [f"- principle {len(lines) + 1}"])


def ray_grid(workers: int, cells: int, latency: float) -> dict[str, Any]:
    import ray

    from stability.experiment.distributed import run_experiment_ray
    from stability.testing.wire_server import WireServer

    with tempfile.TemporaryDirectory() as tmp, WireServer(reply=grow, latency=latency) as server:
        folder = Path(tmp)
        for n in range(cells):
            (folder / "c").mkdir(exist_ok=True)
            (folder / "c" / f"c{n}.md").write_text(f"- start {n}\n", encoding="utf-8")
        spec = folder / "spec.yaml"
        spec.write_text(f"""name: ray-bench
models: [openai/fake]
constitutions: ["{folder}/c/*.md"]
protocols: [{{name: fresh-instance, options: {{max_steps: 6}}}}]
cache: run
max_parallel_runs: {cells}
""", encoding="utf-8")
        os.environ.update({"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-bench-fake-key-0000",
                           "STABILITY_ALLOW_NETWORK": "1", "PYTHONPATH": str(ROOT)})
        before = loadavg()
        started = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray_start = time.perf_counter() - started
        started = time.perf_counter()
        result = run_experiment_ray(spec, folder / "bench.duckdb")
        wall = time.perf_counter() - started
        ray.shutdown()
        from stability.store import Store

        with Store.open(folder / "bench.duckdb", read_only=True) as store:
            first, last = store.con.execute("SELECT min(created_at), max(finished_at) FROM runs").fetchone() or (0, 0)
        return {"workers": workers, "cells": cells, "latency_s": latency, "requests": server.count,
                "done": result.done, "grid_wall_s": round(wall, 2),
                "cells_span_s": round((last - first).total_seconds(), 2), "ray_start_s": round(ray_start, 2),
                "load_before": before, "load_after": loadavg(), **versions()}


def main() -> None:
    command = sys.argv[1]
    if command == "merge":
        print(json.dumps(merge_times(int(sys.argv[2]), sys.argv[3])))
    elif command == "ray":
        print(json.dumps(ray_grid(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))))
    elif command == "all":
        for workers in (1, 2, 1, 2):  # interleaved: the machine's load drifts
            subprocess.run([sys.executable, __file__, "ray", str(workers), "8", "1.0"], check=True)
        print(json.dumps(merge_times(100_000, sys.argv[2])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
