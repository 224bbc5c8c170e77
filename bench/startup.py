"""Start-up and whole-process cost of the ``stability`` command, old and new code alternated in fresh processes.

    python bench/startup.py commands [--tree NAME=PATH ...] [--n 7]
    python bench/startup.py whole [--tree NAME=PATH ...] [--n 3] [--steps 2000] [--concurrency 50] [--latency 0.1]

Each ``--tree`` is a checkout of the package (default: this one, as ``new``); every measurement is a fresh
``python -m stability ...`` run in that tree with ``PYTHONPATH`` set to it (``-m`` and ``-c`` put the working
folder first on the path), so two trees measured in one invocation share the
machine's load. The trees are alternated within each repetition.

``commands``: wall seconds from spawn to exit of ``--help``, ``runs`` and ``show RUN`` on a small store (one
scripted run), and the wall seconds from spawn to the **first request** of ``iterate --model openai/bench``
against the package's wire server (:class:`stability.testing.wire_server.WireServer`, in this process, which
notes when its reply function is first called); plus the CPU seconds (user + sys) of each child.

``whole``: an experiment of ``steps`` calls (``steps / 2`` fresh-instance runs of two declining steps, as in
``bench/overhead.py``) run by ``python -m stability run SPEC`` from spawn to exit, against a bare script in a
fresh process (``import openai``, read the same request bodies from a JSON file, send them with an
``asyncio.Semaphore(concurrency)``, exit). The wire server runs in its own process with a fixed latency.

Each tree's package is byte-compiled first (``python -m compileall``), as installing it does; ``--source-only``
leaves it as it is (with ``PYTHONDONTWRITEBYTECODE`` set, every start then compiles what it imports).

Every row carries ``/proc/loadavg`` before and after (the machine is shared); the summary the versions of Python,
openai, httpx and their transports. Medians over ``n``; output is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import loadavg, versions, wire_server, write_spec  # noqa: E402  (bench/ is not a package)

HERE = Path(__file__).resolve().parents[1]

BARE = """
import asyncio, json, os, sys
import openai

async def main(bodies, concurrency):
    client = openai.AsyncOpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=os.environ["OPENAI_BASE_URL"],
                                max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def ask(body):
        async with slots:
            response = await client.chat.completions.create(**body)
            return response.choices[0].message.content or ""

    await asyncio.gather(*(ask(body) for body in bodies))
    await client.close()

with open(sys.argv[1], encoding="utf-8") as f:
    bodies = json.load(f)
asyncio.run(main(bodies, int(sys.argv[2])))
"""


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spawn(tree: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``python -m stability ARGS`` (or ``python ARGS`` when ARGS[0] is ``-c``/a file) with ``tree`` first on
    the path; (wall seconds, CPU seconds of the child). A failure is raised with its stderr."""
    command = [sys.executable, *args] if args[0] in ("-c",) or args[0].endswith(".py") else \
        [sys.executable, "-m", "stability", *args]
    cpu, start = child_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, **(env or {}), "PYTHONPATH": str(tree)}, cwd=tree)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} ({tree}): exit {done.returncode}\n{done.stderr[-2000:]}")
    return wall, child_cpu() - cpu


def first_request(tree: Path, folder: Path) -> tuple[float, float]:
    """Seconds from spawning ``iterate`` to the wire server's first request; and the whole command's wall."""
    from stability.testing.wire_server import WireServer

    seen: list[float] = []

    def reply(messages: list[dict[str, Any]]) -> str:
        if not seen:
            seen.append(time.perf_counter())
        return "NO CHANGE"

    db = folder / f"iterate-{time.monotonic_ns()}.duckdb"
    with WireServer(reply=reply) as server:
        env = {"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-bench-not-a-key"}
        start = time.perf_counter()
        command = [sys.executable, "-m", "stability", "iterate", "--model", "openai/bench", "-c",
                   str(folder / "c.md"), "--db", str(db), "--max-steps", "2"]
        done = subprocess.run(command, capture_output=True, text=True,
                              env={**os.environ, **env, "PYTHONPATH": str(tree)}, cwd=tree)
        total = time.perf_counter() - start
    if done.returncode != 0 or not seen:
        raise RuntimeError(f"iterate ({tree}): exit {done.returncode}\n{done.stderr[-2000:]}")
    return seen[0] - start, total


def small_store(tree: Path, folder: Path) -> str:
    """A store of one scripted run; its run id."""
    (folder / "c.md").write_text("- I am honest.\n- I avoid causing harm.\n- I am helpful.\n", encoding="utf-8")
    db = folder / "small.duckdb"
    subprocess.run([sys.executable, "-m", "stability", "iterate", "--model", "scripted/decline", "-c",
                    str(folder / "c.md"), "--db", str(db)], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree)
    done = subprocess.run([sys.executable, "-m", "stability", "runs", "--db", str(db), "--json"], check=True,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree)
    return str(json.loads(done.stdout)[0]["id"])


def compile_trees(trees: dict[str, Path]) -> None:
    """Write each tree's bytecode first, as installing the package does: with ``PYTHONDONTWRITEBYTECODE`` set (as
    on the development machines) a checkout otherwise compiles every module it imports from source on every start
    (0.28 s of ``iterate``'s, 0.13 s of ``runs``' CPU at load 8), a cost no installed copy pays."""
    for tree in trees.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "stability")], check=True,
                       capture_output=True)


def commands(trees: dict[str, Path], n: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        run_id = small_store(next(iter(trees.values())), folder)
        db = str(folder / "small.duckdb")
        cases = {"help": ["--help"], "runs": ["runs", "--db", db], "show": ["show", run_id, "--db", db],
                 "import_cli": ["-c", "import stability.cli.app"]}
        for rep in range(n):
            for tree_name, tree in trees.items():
                row: dict[str, Any] = {"rep": rep, "tree": tree_name, "loadavg_before": loadavg()}
                for case, args in cases.items():
                    row[f"{case}_s"], row[f"{case}_cpu_s"] = (round(x, 4) for x in spawn(tree, args))
                first, total = first_request(tree, folder)
                row["iterate_first_request_s"], row["iterate_total_s"] = round(first, 4), round(total, 4)
                row["loadavg_after"] = loadavg()
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return {"rows": rows, "median": medians(rows, trees)}


def whole(trees: dict[str, Path], n: int, steps: int, concurrency: int, latency: float) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name, wire_server(latency) as url:
        folder = Path(name)
        env = {"OPENAI_BASE_URL": url + "/v1", "OPENAI_API_KEY": "sk-bench-not-a-key"}
        spec = write_spec(folder, steps, concurrency)
        (folder / "bare.py").write_text(BARE, encoding="utf-8")
        bodies = folder / "bodies.json"
        for rep in range(n):
            for tree_name, tree in trees.items():
                row: dict[str, Any] = {"rep": rep, "tree": tree_name, "loadavg_before": loadavg()}
                db = folder / f"whole-{rep}-{tree_name}.duckdb"
                row["cli_s"], row["cli_cpu_s"] = spawn(tree, ["run", str(spec), "--db", str(db)], env)
                if not bodies.exists():
                    write_bodies(tree, db, bodies)
                row["bare_s"], row["bare_cpu_s"] = spawn(tree, [str(folder / "bare.py"), str(bodies),
                                                                str(concurrency)], env)
                row["cli_over_bare"] = round(row["cli_s"] / row["bare_s"], 3)
                row["loadavg_after"] = loadavg()
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return {"steps": steps, "concurrency": concurrency, "latency_s": latency,
            "floor_s": steps * latency / concurrency, "rows": rows, "median": medians(rows, trees)}


def write_bodies(tree: Path, db: Path, out: Path) -> None:
    """The request bodies the framework stored, as a JSON list (read by ``tree``'s own store)."""
    script = ("import json, sys\nfrom stability.store import Store\n"
              "with Store.open(sys.argv[1], read_only=True) as s:\n"
              "    bodies = [c.request for r in s.runs() for c in s.calls(r.id)]\n"
              "open(sys.argv[2], 'w').write(json.dumps(bodies))\n")
    spawn(tree, ["-c", script, str(db), str(out)])


def medians(rows: list[dict[str, Any]], trees: dict[str, Path]) -> dict[str, dict[str, float]]:
    keys = [k for k in rows[0] if k.endswith(("_s", "_over_bare"))]
    return {t: {k: round(statistics.median(r[k] for r in rows if r["tree"] == t), 4) for k in keys} for t in trees}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("commands", "whole"))
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a checkout (repeatable)")
    parser.add_argument("--n", type=int, default=0, help="repetitions (commands: 7, whole: 3)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--source-only", action="store_true",
                        help="leave the trees without bytecode (each start then compiles the package's modules)")
    args = parser.parse_args()
    trees = {k: Path(v).resolve() for k, _, v in (t.partition("=") for t in args.tree)} or {"new": HERE}
    if not args.source_only:
        compile_trees(trees)
    head = {"what": args.what, "trees": {k: str(v) for k, v in trees.items()}, "versions": versions(),
            "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "bytecode": "source only" if args.source_only else "compiled (compileall) before measuring"}
    if args.what == "commands":
        body = commands(trees, args.n or 7)
    else:
        body = whole(trees, args.n or 3, args.steps, args.concurrency, args.latency)
    print(json.dumps({**head, **body}, indent=2))


if __name__ == "__main__":
    main()
