"""Wall time and cost of one grid with direct calls and with ``--batch``, against the wire server.

    python bench/batch_mode.py [--runs-per-model 12] [--latency 0.2] [--batch-delay 2] [--out FILE]

The grid: fresh-instance over ``openai/gpt-4o-mini`` and ``anthropic/claude-haiku-4`` (the wire server, through the
real SDKs), each run growing one principle to four and then declining twice: 5 calls a run. Prices are the
built-in table's for both models. Direct calls wait ``--latency`` seconds each (a provider's answer time);
each batch completes ``--batch-delay`` seconds after it is created (real batches take minutes to 24 hours, so the
batch wall time here says how many waves a grid needs and what the framework adds, not how long a provider takes).
Polls every 0.2 s. Prints one JSON object (also written to ``--out``) with both modes' wall seconds, spent USD,
requests, waves, the 1-minute load average before and after, and the package versions.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stability.experiment import run_experiment  # noqa: E402
from stability.testing.wire_server import WireServer  # noqa: E402


def grow(messages: list[dict[str, Any]]) -> str:
    """A deterministic answer: add principles up to four, then decline."""
    lines = [line for line in messages[-1]["content"].splitlines() if line.startswith("- ")]
    if len(lines) >= 4:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(lines + [f"- principle {len(lines) + 1}"])


def spec(folder: Path, runs: int) -> Path:
    for i in range(runs):
        (folder / "c").mkdir(parents=True, exist_ok=True)
        (folder / "c" / f"c{i}.md").write_text(f"- principle 1 of set {i}\n", encoding="utf-8")
    path = folder / "bench.yaml"
    path.write_text(f"""
name: batch-bench
models: [openai/gpt-4o-mini, anthropic/claude-haiku-4]
constitutions: ["{folder}/c/*.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 8}}
concurrency: {{openai: 8, anthropic: 8}}
max_parallel_runs: 64
""", encoding="utf-8")
    return path


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs-per-model", type=int, default=12)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--batch-delay", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.update(STABILITY_BATCH_POLL="0.2", STABILITY_BATCH_SETTLE="0.5", STABILITY_ALLOW_NETWORK="1")
    figures: dict[str, Any] = {"runs": 2 * args.runs_per_model, "latency_s": args.latency,
                               "batch_delay_s": args.batch_delay, "load_before": load()}
    with tempfile.TemporaryDirectory() as tmp, WireServer(reply=grow, latency=args.latency,
                                                          batch_delay=args.batch_delay) as server:
        os.environ.update(OPENAI_BASE_URL=server.url + "/v1", OPENAI_API_KEY="sk-bench",
                          ANTHROPIC_BASE_URL=server.url, ANTHROPIC_API_KEY="sk-ant-bench")
        path = spec(Path(tmp), args.runs_per_model)
        for mode in ("direct", "batch"):
            started = time.perf_counter()
            result = run_experiment(path, Path(tmp) / f"{mode}.duckdb", batch=mode == "batch")
            wall = time.perf_counter() - started
            figures[mode] = {"wall_s": round(wall, 2), "spent_usd": round(result.spent_usd, 8), "done": result.done,
                             "estimate_usd": result.estimate.cost_usd, "waves": result.waves,
                             "batched_requests": result.batched_requests}
        figures["direct"]["requests"] = server.count
        figures["batch"]["requests"] = sum(server.batches.submitted.values())
        figures["batch"]["batches"] = len(server.batches.batches)
    figures["cost_ratio"] = round(figures["batch"]["spent_usd"] / figures["direct"]["spent_usd"], 4)
    figures["batch"]["wall_minus_delays_s"] = round(figures["batch"]["wall_s"]
                                                    - figures["batch"]["waves"] * args.batch_delay, 2)
    figures["load_after"] = load()
    figures["versions"] = {"python": platform.python_version(),
                           **{p: importlib.metadata.version(p) for p in ("openai", "anthropic", "duckdb")}}
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
