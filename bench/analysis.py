"""Benchmark: analysis time and peak memory for synthetic databases of 10k and 100k revisions.

    python bench/analysis.py build 10000 runs/bench-10k.duckdb     # synthesise a database (bulk, seconds)
    python bench/analysis.py time runs/bench-10k.duckdb EMBEDDER   # one analysis in this process
    python bench/analysis.py measure runs/bench-10k.duckdb EMBEDDER [FRESH_COPY_OF]  # fresh subprocess, + load
    python bench/analysis.py all FOLDER SIZES EMBEDDERS UNCACHED_REPEATS CACHED_REPEATS
    python bench/analysis.py scale OUT.json EMBEDDER DB [DB ...]  # growth: each DB cached, fresh process each
    python bench/analysis.py load DB EMBEDDER [REPEATS]     # loading and embedding only (cached), CPU and RSS

``build`` prints one JSON line describing the database (runs, revisions, distinct constitutions and principle
texts, merges, cycles). ``time`` prints one JSON line: wall seconds of ``analyze(--all)``, peak RSS of the
process, texts and how many were embedded. ``measure`` runs ``time`` in a fresh subprocess and adds
``/proc/loadavg`` read just before and just after. The first analysis of a fresh database is uncached (it embeds
and caches every distinct text, in an embedding cache of that database's own); the following ones are cached.
``all`` builds each size once, keeps a pristine copy so every uncached repeat starts from an empty cache, and
prints a Markdown table of medians.

The synthetic runs (see ``synthesise``): starting constitutions of 5-15 principles drawn from a 400-sentence
vocabulary, shared by about ten runs each (as in an experiment over models and seeds); per step the model
declines (30%), fails to parse (2%), returns to the node two steps back (5%: an exact cycle, cycle_to set), jumps
to one of eight shared "attractor" constitutions (2%: merges across starts), or makes one edit: reword a
principle (one of 12 qualifiers or another verb), add one, remove one, swap two, or replace one. Runs stop after
two consecutive declines, on a cycle (half the time) or at 40 steps. Every write goes through
``Store.bulk_load`` in one transaction on a database migrated by ``Store.open``.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SUBJECTS = ["the truth", "people's choices", "their privacy", "clear answers", "safety", "kindness", "fairness",
            "evidence", "uncertainty", "the law", "children", "my mistakes", "dissent", "their time", "experts",
            "minorities", "the future", "animals", "the planet", "consent"]
VERBS = ["I respect", "I protect", "I value", "I defend", "I question", "I explain", "I prioritise", "I weigh",
         "I listen to", "I care about", "I acknowledge", "I consider", "I honour", "I stand up for", "I look after",
         "I am open about", "I never ignore", "I carefully weigh", "I always consider", "I openly discuss"]
QUALIFIERS = ["mostly", "truly", "where I can", "above all", "even when it is hard", "without exception",
              "as far as I am able", "in every answer", "when it matters", "first of all", "with care",
              "unless it harms someone"]
MODELS = ["local/gemma-3-270m", "openai/gpt-4o-mini", "anthropic/claude-3-5-haiku", "scripted/bench"]
MAX_STEPS = 40
DECLINES_TO_STOP = 2


def vocabulary() -> list[str]:
    return [f"{v} {s}." for v in VERBS for s in SUBJECTS]


def reword(principle: str, rng: random.Random) -> str:
    body = principle.rstrip(".")
    if rng.random() < 0.5:
        for verb in sorted(VERBS, key=len, reverse=True):
            if body.startswith(verb + " "):
                return f"{rng.choice(VERBS)}{body[len(verb):]}."
    return f"{body.split(',')[0]}, {rng.choice(QUALIFIERS)}."


def edit(current: list[str], words: list[str], rng: random.Random) -> list[str]:
    """One edit of a constitution; the result has 5-15 distinct principles."""
    out = list(current)
    i = rng.randrange(len(out))
    roll = rng.random()
    if roll < 0.35:
        out[i] = reword(out[i], rng)
    elif roll < 0.55 and len(out) < 15:
        out.insert(i, rng.choice(words))
    elif roll < 0.75 and len(out) > 5:
        out.pop(i)
    elif roll < 0.9:
        j = rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    else:
        out[i] = rng.choice(words)
    return list(dict.fromkeys(out))


def synthesise(revisions: int, seed: int = 0) -> tuple[dict[str, Any], dict[str, int]]:
    """DataFrames for runs, constitutions, principles, revisions and edges with about ``revisions`` revisions."""
    import pandas as pd

    from stability.constitution import Constitution
    from stability.records import EdgeRecord, RevisionRecord, RunRecord

    rng = random.Random(seed)
    words = vocabulary()
    clock = datetime(2026, 1, 1)
    nodes: dict[str, tuple[str, ...]] = {}

    def node(principles: list[str]) -> str:
        constitution = Constitution(principles=tuple(principles))
        nodes.setdefault(constitution.hash, constitution.principles)
        return constitution.hash

    expected_runs = max(1, revisions // 16)
    starts = [rng.sample(words, rng.randint(5, 15)) for _ in range(max(2, expected_runs // 10))]
    attractors = [rng.sample(words, rng.randint(5, 15)) for _ in range(8)]
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    while len(rows) < revisions:
        run_id = f"r-bench{len(runs):07d}"
        model = rng.choice(MODELS)
        current = list(rng.choice(starts))
        history = [node(current)]
        visits = [(0, history[0], "origin", None)]
        declines, stop = 0, "max_steps"
        for step in range(1, MAX_STEPS + 1):
            roll = rng.random()
            cycle_to = None
            if roll < 0.30:
                decision, declines = "declined", declines + 1
            elif roll < 0.32:
                decision = "parse_failure"
            else:
                decision, declines = "changed", 0
                if roll < 0.37 and len(history) >= 3 and history[-3] != history[-1]:
                    back = max(s for s, h, d, _ in visits if h == history[-3] and d != "parse_failure")
                    current, cycle_to = list(nodes[history[-3]]), f"{run_id}:{back}"
                elif roll < 0.39:
                    current = list(rng.choice(attractors))
                else:
                    current = edit(current, words, rng)
                history.append(node(current))
            visits.append((step, node(current), decision, cycle_to))
            if declines >= DECLINES_TO_STOP:
                stop = "declined"
                break
            if cycle_to is not None and rng.random() < 0.5:
                stop = "cycle"
                break
        created = clock + timedelta(seconds=len(runs))
        runs.append(RunRecord(id=run_id, protocol="fresh-instance", model=model, model_params={},
                              config={"options": {"declines_to_stop": DECLINES_TO_STOP}, "max_steps": MAX_STEPS},
                              seed=len(runs), start_hash=visits[0][1], template_hash="-", package_version="bench",
                              status="done", stop_reason=stop, created_at=created, finished_at=created).model_dump())
        for (step, digest, decision, cycle_to), previous in zip(visits, [None, *visits[:-1]], strict=True):
            revision = RevisionRecord(id=f"{run_id}:{step}", run_id=run_id, step=step, constitution_hash=digest,
                                      parent_id=f"{run_id}:{previous[0]}" if previous else None, decision=decision,
                                      cycle_to=cycle_to, created_at=created)
            rows.append(revision.model_dump())
            if previous is not None:
                kind = {"changed": "edit", "declined": "decline"}.get(decision, decision)
                edges.append(EdgeRecord(id=revision.id, run_id=run_id, source_id=f"{run_id}:{previous[0]}",
                                        target_id=revision.id, source_hash=previous[1], target_hash=digest,
                                        kind=kind, protocol="fresh-instance", call_ids=[]).model_dump())
    constitutions = [{"hash": h, "text": "".join(f"- {p}\n" for p in ps), "n_principles": len(ps),
                      "created_at": clock} for h, ps in nodes.items()]
    principles = [{"constitution_hash": h, "position": i, "text": p} for h, ps in nodes.items()
                  for i, p in enumerate(ps)]
    reached: dict[str, set[str]] = {}
    for run in runs:
        reached.setdefault(run["start_hash"], set())
    starts_of = {r["id"]: r["start_hash"] for r in runs}
    for row in rows:
        reached.setdefault(row["constitution_hash"], set()).add(starts_of[row["run_id"]])
    summary = {"runs": len(runs), "revisions": len(rows), "constitutions": len(nodes),
               "principle_texts": len({p["text"] for p in principles}), "starts": len(starts),
               "changed": sum(r["decision"] == "changed" for r in rows),
               "declined": sum(r["decision"] == "declined" for r in rows),
               "cycle_returns": sum(r["cycle_to"] is not None for r in rows),
               "merge_nodes": sum(len(s) > 1 for s in reached.values()),
               "mean_principles": round(statistics.mean(len(ps) for ps in nodes.values()), 1)}
    summary["distinct_texts"] = summary["constitutions"] + summary["principle_texts"]
    frames = {"runs": pd.DataFrame(runs), "constitutions": pd.DataFrame(constitutions),
              "principles": pd.DataFrame(principles), "revisions": pd.DataFrame(rows), "edges": pd.DataFrame(edges)}
    return frames, summary


def build(revisions: int, db: str) -> dict[str, Any]:
    from stability.store import Store

    started = time.perf_counter()
    frames, summary = synthesise(revisions)
    with Store.open(db) as store:
        store.bulk_load(frames)
    return {"db": db, **summary, "build_s": round(time.perf_counter() - started, 1)}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def time_one(db: str, embedder: str, by: list[str] | None = None) -> dict[str, Any]:
    from stability.analysis.measure import analyze

    started, cpu = time.perf_counter(), time.process_time()
    result = analyze([], db, all_runs=True, embedder=embedder, by=by)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"db": db, "embedder": embedder, "by": by or [], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "peak_rss_mib": round(peak),
            "runs": len(result.runs), "revisions": sum(len(r.steps) for r in result.runs),
            "texts": result.embeddings.texts, "computed": result.embeddings.computed}


def load_only(db: str, embedder: str, repeats: int = 1) -> None:
    """Loading (``load_corpus``: store opened, read, closed) and embedding (``embed_corpus``, the cache
    ``DB.embeddings.duckdb``) alone, ``repeats`` times in this process: CPU and wall seconds of each, RSS after
    each (MiB); one JSON line per repeat. The protocols package is imported first (not counted)."""
    import stability.protocols  # noqa: F401 - load_corpus's first call imports it
    from stability.analysis.corpus import load_corpus
    from stability.analysis.embeddings import EmbeddingStats, get_embedder
    from stability.analysis.experiments import resolve_selection
    from stability.analysis.measure import embed_corpus, gc_paused
    from stability.store.store import Store

    os.environ.setdefault("STABILITY_EMBEDDING_CACHE", db + ".embeddings.duckdb")

    def rss() -> int:
        return int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                        if line.startswith("VmRSS")).split()[1]) // 1024

    for _ in range(repeats):
        with gc_paused():
            marks = [(time.process_time(), time.perf_counter())]
            with Store.open(db, read_only=True) as store:
                corpus = load_corpus(store, resolve_selection(store, [], True)[0])
            marks.append((time.process_time(), time.perf_counter()))
            loaded = rss()
            stats = EmbeddingStats()
            vectors = embed_corpus(corpus, get_embedder(embedder), stats)
            marks.append((time.process_time(), time.perf_counter()))
        print(json.dumps({"db": db, "load_cpu_s": round(marks[1][0] - marks[0][0], 2),
                          "load_wall_s": round(marks[1][1] - marks[0][1], 2), "rss_loaded_mib": loaded,
                          "embed_cpu_s": round(marks[2][0] - marks[1][0], 2),
                          "embed_wall_s": round(marks[2][1] - marks[1][1], 2), "rss_embedded_mib": rss(),
                          "nodes": len(vectors.nodes), "computed": stats.computed, "load": loadavg()}), flush=True)
        del corpus, vectors


def measure(db: str, embedder: str, fresh_from: str | None = None) -> dict[str, Any]:
    """One analysis in a fresh process (peak RSS is that process's own), with an embedding cache of the database's
    own (``DB.embeddings.duckdb``); ``fresh_from``: first copy that pristine (never analysed) database over ``db``
    and empty that cache, so the analysis is uncached."""
    cache = Path(db + ".embeddings.duckdb")
    if fresh_from is not None:
        shutil.copyfile(fresh_from, db)
        cache.unlink(missing_ok=True)
    before = loadavg()
    out = subprocess.run([sys.executable, __file__, "time", db, embedder], capture_output=True, text=True,
                         check=True, env={**os.environ, "STABILITY_EMBEDDING_CACHE": str(cache)})
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_before": before, "load_after": loadavg()}


def plan(folder: str, sizes: list[int], embedders: list[str], uncached_repeats: int, cached_repeats: int) -> None:
    rows = []
    for size in sizes:
        pristine = str(Path(folder) / f"bench-{size}-pristine.duckdb")
        Path(pristine).unlink(missing_ok=True)
        print(json.dumps(build(size, pristine)), flush=True)
        for embedder in embedders:
            db = str(Path(folder) / f"bench-{size}-{embedder.replace('/', '_')}.duckdb")
            for label, repeats in (("uncached", uncached_repeats), ("cached", cached_repeats)):
                runs = []
                for _ in range(repeats):
                    runs.append(measure(db, embedder, fresh_from=pristine if label == "uncached" else None))
                    print(json.dumps({**runs[-1], "cache": label}), flush=True)
                if runs:
                    rows.append((runs, embedder, label))
    print("| revisions | runs | embedder | cache | n | wall s (median) | peak RSS MiB (median) | texts | embedded "
          "| load 1-min (before..after) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for runs, embedder, label in rows:
        wall = statistics.median(float(r["wall_s"]) for r in runs)
        rss = statistics.median(float(r["peak_rss_mib"]) for r in runs)
        loads = ", ".join(f"{r['load_before'].split()[0]}..{r['load_after'].split()[0]}" for r in runs)
        r = runs[0]
        print(f"| {r['revisions']:,} | {r['runs']:,} | {embedder} | {label} | {len(runs)} | {wall:.2f} | {rss:.0f} "
              f"| {r['texts']:,} | {r['computed']:,} | {loads} |", flush=True)


def versions() -> dict[str, str]:
    import platform

    import duckdb
    import numpy

    return {"python": platform.python_version(), "duckdb": duckdb.__version__, "numpy": numpy.__version__,
            "cpus": str(os.cpu_count())}


def scale(out: str, embedder: str, dbs: list[str]) -> None:
    """How time and peak memory grow with the revisions: each database (already analysed once, so its embedding
    cache ``DB.embeddings.duckdb`` is full) analysed cached in a fresh process; one JSON file of rows."""
    rows = []
    for db in dbs:
        rows.append({**measure(db, embedder), "cache": "cached"})
        print(json.dumps(rows[-1]), flush=True)
    Path(out).write_text(json.dumps({"versions": versions(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "build":
        print(json.dumps(build(int(sys.argv[2]), sys.argv[3])))
    elif command == "time":
        print(json.dumps(time_one(sys.argv[2], sys.argv[3], sys.argv[4].split(",") if len(sys.argv) > 4 else None)))
    elif command == "measure":
        print(json.dumps(measure(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)))
    elif command == "scale":
        scale(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif command == "load":
        load_only(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    elif command == "all":
        plan(sys.argv[2], [int(x) for x in sys.argv[3].split(",")], sys.argv[4].split(","), int(sys.argv[5]),
             int(sys.argv[6]))
