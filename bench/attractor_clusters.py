"""Benchmark: attractor clustering alone (``final_clusters.cluster`` on the runs' finals), CPU, wall and memory.

    python bench/attractor_clusters.py finals DB OUT.npy [EMBEDDER]    # the finals of DB's chain runs (cached)
    python bench/attractor_clusters.py time FINALS.npy [graph]         # one clustering in this process
    python bench/attractor_clusters.py scale OUT.json FINALS.npy[:graph] [...]  # fresh process each, + load

``finals`` writes the final-constitution vectors of the chain runs with a verdict (the rows ``attractors_of``
clusters), in run order, as float32, from a database whose embedding cache is filled (``analysis.py``'s
databases after one analysis; the model is loaded only for texts the cache lacks). ``time`` prints one JSON line:
CPU and wall seconds of ``cluster(finals, 0.1)`` (the analysis's default cut), the number of
clusters, the process's resident memory before the clustering (the vectors loaded) and its peak after
(``VmHWM``), then (not timed) the pairs of clusters within the cut on average (an exact cut leaves none); with
``graph``, the neighbour-graph path however few the distinct finals (``EXACT_LIMIT`` 0: its growth
from 10k on, where the exact path would be taken). ``scale`` runs ``time`` in a fresh subprocess per file and
adds ``/proc/loadavg`` read just before and just after. The same command runs an older tree with
``PYTHONPATH=OLD_TREE``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def finals(db: str, out: str, embedder: str = "all-MiniLM-L6-v2") -> dict[str, Any]:
    from stability.analysis import measure
    from stability.analysis.corpus import load_corpus
    from stability.analysis.embeddings import EmbeddingStats, get_embedder
    from stability.analysis.experiments import resolve_selection
    from stability.store.store import Store

    with Store.open(db, read_only=True) as store:
        ids, _ = resolve_selection(store, [], True)
        corpus = load_corpus(store, ids)
    vectors = measure.embed_corpus(corpus, get_embedder(embedder), EmbeddingStats(), {}, [])
    runs = [r for r in corpus.runs if r.chain and r.no_verdict is None]
    rows = np.stack([vectors.nodes[r.final] for r in runs]).astype(np.float32)
    np.save(out, rows)
    return {"db": db, "runs": len(runs), "distinct_finals": len({r.final for r in runs}), "out": out}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def time_one(path: str, graph: bool = False, threshold: float = 0.1) -> dict[str, Any]:
    from stability.analysis import final_clusters
    from stability.analysis.final_clusters import cluster, distinct_rows

    if graph:
        final_clusters.EXACT_LIMIT = 0

    rows = np.load(path)
    before = _status_kib("VmRSS")
    cpu, wall = time.process_time(), time.perf_counter()
    labels = cluster(rows, threshold)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = _status_kib("VmHWM")
    return pairs_within_cut(rows, labels, threshold) | {
            "finals": path, "graph_forced": graph, "runs": len(rows), "distinct": len(distinct_rows(rows)[0]),
            "clusters": int(labels.max()),
            "cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "rss_before_mib": round(before / 1024),
            "peak_rss_mib": round(peak / 1024)}


def pairs_within_cut(rows: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """How many pairs of clusters are within the cut on average (measured after the timing): none in an exact
    average-linkage cut (it would have merged them), so a count of what the graph path left; and the largest."""
    _, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((inverse.max() + 1, rows.shape[1]))
    np.add.at(sums, inverse, rows)
    sizes = np.bincount(inverse)
    means = (sums / sizes[:, None]).astype(np.float32)
    close = 0
    for start in range(0, len(means), 2048):  # a band of rows at a time, each pair once
        d = 1.0 - means[start:start + 2048] @ means.T
        close += int(np.count_nonzero(np.triu(d <= threshold, start + 1)))
    return {"pairs_within_cut": close, "largest_clusters": np.sort(sizes)[::-1][:5].tolist()}


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[0]


def scale(out: str, paths: list[str]) -> None:
    """Each file in a fresh process; a path followed by ``:graph`` forces the graph path."""
    results = []
    for path in paths:
        load_before = loadavg()
        name, _, graph = path.partition(":")
        done = subprocess.run([sys.executable, __file__, "time", name, *([graph] if graph else [])],
                              capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.splitlines()[-1]) | {"load_before": load_before, "load_after": loadavg()}
        print(json.dumps(result), flush=True)
        results.append(result)
    Path(out).write_text(json.dumps({"python": sys.version.split()[0], "numpy": np.__version__,
                                     "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "finals":
        print(json.dumps(finals(*sys.argv[2:5])))
    elif command == "time":
        print(json.dumps(time_one(sys.argv[2], sys.argv[3:4] == ["graph"])))
    elif command == "scale":
        scale(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(f"unknown command {command!r} (finals, time, scale)")
