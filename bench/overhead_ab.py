"""``bench/overhead.py`` for two checkouts, alternated: old and new code measured in one session, under one load.

    python bench/overhead_ab.py --tree before=PATH --tree after=PATH [--n 5] [-- OVERHEAD ARGS...]

Each repetition runs ``bench/overhead.py --reps 1 OVERHEAD ARGS`` once per tree (in a fresh process with
``PYTHONPATH`` set to the tree, run in it), the trees alternating, so a change in the machine's load falls on both.
Output: one JSON object on stdout with every repetition's row (framework and bare wall and CPU of the same
process, framework/bare, /proc/loadavg before and after) and, per tree, the medians over the repetitions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OVERHEAD = Path(__file__).resolve().with_name("overhead.py")
KEYS = ("framework_s", "bare_s", "framework_over_bare", "framework_cpu_ms_per_call", "bare_cpu_ms_per_call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a checkout (repeatable)")
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- then bench/overhead.py's arguments")
    args = parser.parse_args()
    trees = {k: Path(v).resolve() for k, _, v in (t.partition("=") for t in args.tree)}
    extra = [a for a in args.rest if a != "--"]
    rows: list[dict[str, Any]] = []
    head: dict[str, Any] = {}
    for rep in range(args.n):
        for name, tree in trees.items():
            done = subprocess.run([sys.executable, str(OVERHEAD), "--reps", "1", *extra], capture_output=True,
                                  text=True, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)})
            if done.returncode != 0:
                raise SystemExit(f"{name}: bench/overhead.py failed\n{done.stderr[-3000:]}")
            summary = json.loads(done.stdout)
            head = {k: summary[k] for k in ("versions", "cpus", "steps", "concurrency", "latency_s", "floor_s")}
            row = {"rep": rep, "tree": name, **summary["reps"][0]}
            rows.append(row)
            print(json.dumps({k: row.get(k) for k in ("rep", "tree", *KEYS, "loadavg_before", "loadavg_after")}),
                  file=sys.stderr, flush=True)
    medians = {name: {k: round(statistics.median(r[k] for r in rows if r["tree"] == name), 3) for k in KEYS}
               for name in trees}
    for values in medians.values():
        values["framework_minus_bare_cpu_ms_per_call"] = round(values["framework_cpu_ms_per_call"]
                                                    - values["bare_cpu_ms_per_call"], 3)
    print(json.dumps({**head, "trees": {k: str(v) for k, v in trees.items()}, "n": args.n,
                      "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "median": medians,
                      "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
