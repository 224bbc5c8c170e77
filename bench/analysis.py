"""Benchmark: analysis time and peak memory for synthetic databases of 10k and 100k revisions.

    python bench/analysis.py build 10000 runs/bench-10k.duckdb     # synthesise a database (not timed here)
    python bench/analysis.py time runs/bench-10k.duckdb EMBEDDER   # one analysis in a fresh process

``time`` prints one JSON line: wall seconds, peak RSS, texts and how many were embedded. Run it twice on the same
database: the first run is uncached (it embeds and stores every text), the second is cached. ``all`` runs the
whole plan and prints a Markdown table. Results are written up in docs/benchmarks.md.

The synthetic runs: 50 steps each, six principles drawn from a 400-sentence vocabulary; each step declines
with probability 0.4, otherwise rewords, adds, removes or swaps one principle (a quarter each).
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SUBJECTS = ["the truth", "people's choices", "their privacy", "clear answers", "safety", "kindness", "fairness",
            "evidence", "uncertainty", "the law", "children", "my mistakes", "dissent", "their time", "experts",
            "minorities", "the future", "animals", "the planet", "consent"]
VERBS = ["I respect", "I protect", "I value", "I defend", "I question", "I explain", "I prioritise", "I weigh",
         "I listen to", "I care about", "I acknowledge", "I consider", "I honour", "I stand up for", "I look after",
         "I am open about", "I never ignore", "I carefully weigh", "I always consider", "I openly discuss"]


def vocabulary() -> list[str]:
    return [f"{v} {s}." for v in VERBS for s in SUBJECTS]


def build(revisions: int, db: str) -> None:
    from stability.constitution import Constitution
    from stability.store import Store
    from stability.store.records import EdgeRecord, RevisionRecord, RunRecord
    from stability.store.store import now

    words = vocabulary()
    rng = random.Random(0)
    steps = 50
    with Store.open(db) as store:
        for r in range(revisions // (steps + 1)):
            run_id = f"r-bench{r:07d}"
            current = rng.sample(words, 6)
            start = Constitution(principles=tuple(current))
            store.insert_run(RunRecord(id=run_id, protocol="fresh-instance", model="scripted/bench", config={},
                                       seed=r, start_hash=start.hash, template_hash="-", package_version="bench",
                                       created_at=now(), status="done", stop_reason="max_steps"))
            store.put_constitution(start)
            previous = RevisionRecord(id=f"{run_id}:0", run_id=run_id, step=0, constitution_hash=start.hash,
                                      decision="origin", created_at=now())
            store.insert_revision(previous)
            for step in range(1, steps + 1):
                before = list(current)
                if rng.random() >= 0.4:
                    action = rng.randrange(4)
                    i = rng.randrange(len(current))
                    if action == 0:
                        current[i] = current[i].replace(".", f", {rng.choice(['mostly', 'truly', 'where I can'])}.")
                    elif action == 1 or len(current) < 3:
                        current.insert(i, rng.choice(words))
                    elif action == 2:
                        current.pop(i)
                    else:
                        j = rng.randrange(len(current))
                        current[i], current[j] = current[j], current[i]
                    current = list(dict.fromkeys(current))
                node = Constitution(principles=tuple(current))
                decision = "declined" if current == before else "changed"
                store.put_constitution(node)
                revision = RevisionRecord(id=f"{run_id}:{step}", run_id=run_id, step=step,
                                          constitution_hash=node.hash, parent_id=previous.id, decision=decision,
                                          created_at=now())
                store.insert_revision(revision, EdgeRecord(
                    id=revision.id, run_id=run_id, source_id=previous.id, target_id=revision.id,
                    source_hash=previous.constitution_hash, target_hash=node.hash,
                    kind="decline" if decision == "declined" else "edit", protocol="fresh-instance", call_ids=[]))
                previous = revision


def time_one(db: str, embedder: str) -> dict[str, object]:
    from stability.analysis.measure import analyze

    started = time.perf_counter()
    result = analyze([], db, all_runs=True, embedder=embedder)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"db": db, "embedder": embedder, "wall_s": round(wall, 2), "peak_rss_mib": round(peak),
            "runs": len(result.runs), "revisions": sum(len(r.steps) for r in result.runs),
            "texts": result.embeddings.texts, "computed": result.embeddings.computed}


def measure(db: str, embedder: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, "time", db, embedder], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def plan(folder: str, sizes: list[int], embedders: list[str], repeats: int) -> None:
    print("| revisions | embedder | cache | wall s (median) | peak RSS MiB | texts | embedded |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        for embedder in embedders:
            db = str(Path(folder) / f"bench-{size}-{embedder.replace('/', '_')}.duckdb")
            Path(db).unlink(missing_ok=True)
            started = time.perf_counter()
            build(size, db)
            print(f"<!-- built {size} revisions in {time.perf_counter() - started:.1f} s -->", flush=True)
            uncached = measure(db, embedder)
            cached = [measure(db, embedder) for _ in range(repeats)]
            for label, rows in (("uncached", [uncached]), ("cached", cached)):
                wall = statistics.median(float(r["wall_s"]) for r in rows)  # type: ignore[arg-type]
                row = rows[0]
                print(f"| {row['revisions']} | {embedder} | {label} | {wall:.2f} | {row['peak_rss_mib']} | "
                      f"{row['texts']} | {row['computed']} |", flush=True)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "build":
        build(int(sys.argv[2]), sys.argv[3])
    elif command == "time":
        print(json.dumps(time_one(sys.argv[2], sys.argv[3])))
    elif command == "all":
        plan(sys.argv[2], [int(x) for x in sys.argv[3].split(",")], sys.argv[4].split(","), int(sys.argv[5]))
