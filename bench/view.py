"""Benchmark: ``stability view`` page load times in headless Chromium on synthetic stores of 10k and 100k revisions.

    python bench/view.py FOLDER 10000,100000 [REPEATS]

Each size is built with ``bench/analysis.py``'s synthesiser (runs, constitutions, principles, revisions, edges), then
given what a real store also holds: one call per transition (a ~1 kB request and response, linked from its edge)
and one experiment whose cells are all the runs (factors: model, starting constitution, seed). The viewer runs in
this process (``stability.view.Viewer``, hashing embedder) and Debian's chromium loads each page through
Playwright; a page's time runs from navigation until the page has rendered its data (``body[data-ready]``). The
first request after a change copies the store (timed on its own), and the browser opens ``/api/status`` once (its
own start: a renderer, a connection); every page is then loaded once (its first
visit: the viewer computes an experiment's summary and a graph once per state of the store) and ``REPEATS``
times more (median). The analysis groups, their figures and the findings, which the experiment page fetches
after it has rendered, are answered with empty lists by the browser itself (their cost is the analysis's:
``bench/analysis.py``). Prints one JSON line per size and a Markdown table; load averages before and after, and
the versions, go with them.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.analysis import build, loadavg  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: what the browser itself answers for the analysis the experiment page fetches after it has rendered
ANALYSIS_STUBS: dict[str, dict[str, Any]] = {
    "**/api/experiments/*/groups*": {"experiment": "-", "by": [], "embedder": "-", "groups": [], "warnings": [],
                                     "adjust": "-", "contrasts_total": 0, "contrasts": []},
    "**/api/experiments/*/figures*": {"experiment": "-", "by": [], "figures": []},
    "**/api/experiments/*/findings*": {"adjust": "-", "headers": [], "questions": [], "unanswerable": []},
}


def add_calls_and_experiment(db: str) -> dict[str, Any]:
    """One call per edge (linked from it) and one experiment over every run, written straight to the file."""
    import duckdb

    con = duckdb.connect(db)
    try:
        con.execute("""
            INSERT INTO calls (id, run_id, step, purpose, model, cache_key, sample_index, status, request, response,
                               text, input_tokens, output_tokens, latency_ms, attempts, retries, cost_usd, created_at)
            SELECT 'c-' || replace(e.id, ':', '-'), e.run_id, v.step, 'revise', r.model, 'sha256:' || md5(e.id), 0,
                   'ok', json_object('model', r.model, 'messages', json_array(
                       json_object('role', 'system', 'content', repeat('You review your constitution. ', 12)),
                       json_object('role', 'user', 'content', c.text))),
                   json_object('choices', json_array(json_object('message', json_object('content', t.text)))),
                   'REVISED CONSTITUTION:' || chr(10) || t.text, 180, 90, 420.0, 1, '[]', 0.0002, v.created_at
            FROM edges e JOIN revisions v ON v.id = e.target_id JOIN runs r ON r.id = e.run_id
                 JOIN constitutions c ON c.hash = e.source_hash JOIN constitutions t ON t.hash = e.target_hash""")
        con.execute("UPDATE edges SET call_ids = json_array('c-' || replace(id, ':', '-'))")
        con.execute("""INSERT INTO experiments VALUES ('bench-0000', 'bench', '{}', NULL, now())""")
        con.execute("""
            INSERT INTO experiment_runs
            SELECT 'bench-0000', 'cell-' || id, row_number() OVER (ORDER BY created_at, id) - 1,
                   json_object('model', model, 'protocol', protocol, 'seed', seed,
                               'constitution', 'starts/' || substr(start_hash, 8, 8) || '.md'), id, 'done'
            FROM runs""")
        [(calls,)] = con.execute("SELECT count(*) FROM calls").fetchall()
        [(long_run,)] = con.execute("SELECT run_id FROM revisions GROUP BY run_id ORDER BY count(*) DESC, run_id "
                                    "LIMIT 1").fetchall()
        [(call,)] = con.execute("SELECT id FROM calls WHERE run_id = ? ORDER BY step LIMIT 1", [long_run]).fetchall()
    finally:
        con.close()
    return {"calls": calls, "run": long_run, "call": call, "mib": round(Path(db).stat().st_size / 2**20, 1)}


def visit_pages(page: Any, url: str, routes: dict[str, tuple[str, str]], repeats: int,
                digits: int = 3, cpu: dict[str, float] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Each route's first visit (nothing of it cached yet) and the median of ``repeats`` more, in seconds: from
    navigation to the page's ``data-ready`` mark. A page that shows an error stops the benchmark. ``cpu``, when
    given, gets each first visit's CPU seconds in this process (the viewer's, when it runs here, and Playwright's
    client; the browser's own are not counted)."""
    first: dict[str, float] = {}
    warm: dict[str, float] = {}
    for name, (route, ready) in routes.items():
        samples = []
        for _ in range(repeats + 1):
            page.goto("about:blank")
            begin, used = time.perf_counter(), time.process_time()
            page.goto(f"{url}/{route}")
            page.wait_for_selector(f'body[data-ready="{ready}"]', timeout=600_000)
            samples.append(time.perf_counter() - begin)
            if cpu is not None and name not in cpu:
                cpu[name] = round(time.process_time() - used, digits)
            if page.locator("main .error").count():
                raise SystemExit(f"{name}: {page.inner_text('main')}")
        first[name] = round(samples[0], digits)
        warm[name] = round(statistics.median(samples[1:]), digits)
    return first, warm


def stub(body: str) -> Any:
    """A Playwright route handler that answers with this JSON body."""
    return lambda route, request: route.fulfill(status=200, content_type="application/json", body=body)


def measure(db: str, extra: dict[str, Any], repeats: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from stability.view import Viewer

    routes = {"experiments": ("", "experiments"), "experiment": ("#/experiment/bench-0000", "experiment"),
              "live": ("#/live/bench-0000", "live"), "runs": ("#/runs", "runs"),
              "run (longest chain)": (f"#/run/{extra['run']}", "run"), "call": (f"#/call/{extra['call']}", "call"),
              "graph: one run": (f"#/graph?runs={extra['run']}", "graph"),
              "graph: whole experiment": ("#/graph?experiment=bench-0000", "graph"),
              "search 'respect' (common)": ("#/search?q=respect", "search"),
              "search 'minorities truly' (rare)": ("#/search?q=minorities%20truly", "search")}
    with Viewer(db, embedder="hashing") as viewer, sync_playwright() as playwright:
        started = time.perf_counter()
        urllib.request.urlopen(viewer.url + "/api/status", timeout=600).read()
        first = time.perf_counter() - started  # the first read copies the store
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(viewer.url + "/api/status")  # the browser's own start (renderer, connection), not any page's
        for pattern, body in ANALYSIS_STUBS.items():  # the analysis: timed by bench/analysis.py
            page.route(pattern, stub(json.dumps(body)))
        cpu: dict[str, float] = {}
        times, warm = visit_pages(page, viewer.url, routes, repeats, digits=3, cpu=cpu)
        browser.close()
    return {"first_read_s": round(first, 2), "pages_s": times, "warm_s": warm, "server_cpu_first_s": cpu}


def chromium_version() -> str:
    try:
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError:
        return "?"


def main() -> None:
    folder, sizes = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    folder.mkdir(parents=True, exist_ok=True)
    versions = {p: version(p) for p in ("stability", "duckdb", "starlette", "uvicorn", "playwright")}
    versions["chromium"] = chromium_version()
    versions["cytoscape.js"] = "3.34.4"
    results = []
    for size in sizes:
        db = str(folder / f"view-{size}.duckdb")
        for leftover in Path(folder).glob(f"view-{size}.duckdb*"):
            leftover.unlink()
        built = build(size, db)
        built.update(add_calls_and_experiment(db))
        before = loadavg()
        timed = measure(db, built, repeats)
        result = {"size": size, **built, **timed, "load_before": before, "load_after": loadavg(),
                  "versions": versions}
        print(json.dumps(result), flush=True)
        results.append(result)
    names = list(results[0]["pages_s"])
    print("\n| page (first visit / again; the viewer's CPU on the first) | "
          + " | ".join(f"{r['revisions']:,} revisions" for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    print("| first read (copy of the store) | " + " | ".join(f"{r['first_read_s']} s ({r['mib']} MiB)"
                                                          for r in results) + " |")
    for name in names:
        print(f"| {name} | " + " | ".join(f"{r['pages_s'][name]} / {r['warm_s'][name]} s "
                                          f"({r['server_cpu_first_s'][name]} s CPU)" for r in results) + " |")


if __name__ == "__main__":
    main()
