"""Benchmark: ``stability import-chain`` on a long sectioned chain, and every reader after it.

    python bench/chain_import.py FOLDER [VERSIONS] [REPEATS]

Writes the synthetic chain of ``bench/sectioned_chain.py`` (default eight versions, 50-230 kB and 550-1,450
bullets each) into ``FOLDER/chain``, then times, each as the command a researcher types (a fresh process, so
start-up included; wall and CPU seconds of the child):

- ``stability import-chain FOLDER/chain`` into a new store;
- ``stability analyze RUN --embedder hashing`` (the default embedder downloads a model; hashing needs none);
- ``stability judge RUN --judge scripted/decline --dry-run`` (what would be asked, nothing sent);
- ``stability export --all -o DIR`` (Parquet) and ``stability import-store DIR`` into a second store;

and the viewer's pages in headless Chromium (Debian's chromium through Playwright, as ``bench/view.py``): the
run page, the graph of the run, one step (its diff) and the search, each from navigation until the page has
rendered its data (``body[data-ready]``), first visit and the median of ``REPEATS`` more. ``stability protocols``
is timed first: the start-up every command pays. Prints one JSON object
and a Markdown table; load averages before and after go with them (the machine may be shared).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sectioned_chain import write_chain  # noqa: E402
from bench.view import CHROMIUM, visit_pages  # noqa: E402


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed(args: list[str]) -> dict[str, Any]:
    """Run ``stability ARGS`` in a child process: wall and CPU seconds, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "stability", *args], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - begin
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"stability {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "stdout": done.stdout}


def pages(db: Path, run: str, repeats: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from stability.view import Viewer

    routes = {"run": (f"#/run/{run}", "run"), "graph of the run": (f"#/graph?runs={run}", "graph"),
              "step 7 (diff)": (f"#/step/{run}/7", "step"), "search 'honesty'": ("#/search?q=honesty", "search")}
    with Viewer(db, embedder="hashing") as viewer, sync_playwright() as playwright:
        begin = time.perf_counter()
        urllib.request.urlopen(viewer.url + "/api/status", timeout=600).read()
        copy = time.perf_counter() - begin
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        first, warm = visit_pages(page, viewer.url, routes, repeats, digits=2)
        browser.close()
    return {"first_read_s": round(copy, 2), "pages_first_s": first, "pages_again_s": warm}


def main() -> None:
    folder = Path(sys.argv[1])
    versions = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    if folder.exists():
        shutil.rmtree(folder)
    chain = folder / "chain"
    facts = write_chain(chain, versions)
    db, other, exported = folder / "chain.duckdb", folder / "copy.duckdb", folder / "export"
    load_before = loadavg()
    steps: dict[str, dict[str, Any]] = {}
    steps["protocols (start-up only)"] = timed(["protocols"])
    steps["import-chain"] = timed(["import-chain", str(chain), "--label", "synthetic", "--db", str(db)])
    run = steps["import-chain"]["stdout"].strip().splitlines()[-1].split()[2].rstrip(":")
    steps["analyze"] = timed(["analyze", run, "--embedder", "hashing", "--db", str(db)])
    steps["judge --dry-run"] = timed(["judge", run, "--judge", "scripted/decline", "--dry-run", "--embedder",
                                      "hashing", "--db", str(db)])
    steps["export (parquet)"] = timed(["export", "--all", "-o", str(exported), "--db", str(db)])
    steps["import-store"] = timed(["import-store", str(exported), "--db", str(other)])
    viewed = pages(db, run, repeats)
    result = {"versions": facts, "run": run, "store_mib": round(db.stat().st_size / 2**20, 1),
              "commands": {k: {"wall_s": v["wall_s"], "cpu_s": v["cpu_s"]} for k, v in steps.items()},
              "read_lines": steps["import-chain"]["stdout"].strip().splitlines(), **viewed,
              "load_before": load_before, "load_after": loadavg()}
    print(json.dumps(result))
    print("\n| step | wall s | CPU s |\n|---|---:|---:|")
    for name, value in result["commands"].items():
        print(f"| `stability {name}` | {value['wall_s']} | {value['cpu_s']} |")
    print(f"| viewer: first read (copy of the store, {result['store_mib']} MiB) | {viewed['first_read_s']} | |")
    for name in viewed["pages_first_s"]:
        print(f"| viewer page: {name} (first / again) | {viewed['pages_first_s'][name]} / "
              f"{viewed['pages_again_s'][name]} | |")


if __name__ == "__main__":
    main()
