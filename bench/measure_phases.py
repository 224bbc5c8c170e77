"""CPU and wall seconds of each phase of one cached analysis, without a profiler (issue 30, the per-run measures).

    python bench/measure_phases.py DB [--no-clustering]

The steps of ``stability.analysis.measure.measure`` in order, each timed on its own: loading, constitution
vectors, transition counts, the per-run measures, attractor clustering, graph cycles, the rest of the cross-run
measures, group summaries. One line per phase: name, CPU seconds, wall seconds, peak RSS so far and RSS now (MiB).
``--no-clustering``: every final in one cluster (the clustering, measured elsewhere, takes most of the 1M time).
Runs on an older checkout too (before ``run_measures``: one ``run_convergence`` per run).
"""

from __future__ import annotations

import gc
import resource
import sys
import time
from typing import Any

import numpy as np

from stability.analysis import attractors
from stability.analysis import measure as measure_module
from stability.analysis.consistency import consistency
from stability.analysis.convergence import VERDICTS, Params
from stability.analysis.corpus import Corpus, load_corpus
from stability.analysis.embeddings import EmbeddingStats, get_embedder
from stability.analysis.experiments import resolve_selection
from stability.analysis.groups import summarise
from stability.analysis.transition_counts import transition_counts, transitions
from stability.store.store import Store

try:
    from stability.analysis.run_measures import run_convergences
except ImportError:  # an older checkout
    from stability.analysis.convergence import run_convergence  # type: ignore[attr-defined]

    def run_convergences(chains: Any, *args: Any) -> Any:  # type: ignore[misc]
        return [run_convergence(c, *args) for c in chains]

_last = [time.process_time(), time.perf_counter()]


def tick(name: str) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    with open("/proc/self/statm") as statm:  # resident pages now (Linux)
        now = int(statm.read().split()[1]) * resource.getpagesize() >> 20
    print(f"{name:<20} cpu {cpu - _last[0]:7.2f} s  wall {wall - _last[1]:7.2f} s  peak {peak} MiB  now {now} MiB",
          flush=True)
    _last[0], _last[1] = cpu, wall


def main(db: str, no_clustering: bool) -> None:
    gc.disable()  # as measure() does
    if no_clustering:
        attractors.cluster = lambda finals, threshold: np.zeros(len(finals), dtype=int)  # type: ignore[assignment]
    model = get_embedder("all-MiniLM-L6-v2")
    tick("start")
    with Store.open(db, read_only=True) as store:
        ids, experiments = resolve_selection(store, [], True)
        corpus = load_corpus(store, ids)
    tick("load_corpus")
    vectors = measure_module.embed_corpus(corpus, model, EmbeddingStats(), {}, [])
    corpus.coded = None  # as measure.load does
    tick("embed_corpus")
    params = Params()
    counts = transition_counts(transitions(corpus), corpus.principles, vectors.principles, params.reworded_threshold)
    tick("transition_counts")
    runs = run_convergences(corpus.runs, corpus, vectors.nodes, vectors.principles, params, counts)
    del counts  # as measure() does: the steps hold the counts
    tick("run_convergence")
    by_id = {r.run_id: r for r in runs}
    subjects = Corpus(runs=[c for c in corpus.runs if not c.control], principles=corpus.principles,
                      metadata=corpus.metadata)
    judged = [c for c in subjects.runs if by_id[c.run_id].verdict in VERDICTS]
    clashes = consistency(subjects, by_id, vectors.principles, params, None)
    finals = np.stack([vectors.nodes[c.final] for c in judged])
    attractors.attractors_of(judged, finals, params.cluster_threshold)
    tick("attractors_of")
    cycles = attractors.graph_cycles(judged)
    tick("graph_cycles")
    found = attractors.graph_cycles
    attractors.graph_cycles = lambda runs: cycles
    across = attractors.cross_run(judged, vectors.nodes, params.cluster_threshold)  # clusters again
    attractors.graph_cycles = found
    tick("cross_run_rest")
    summarise(subjects, [by_id[c.run_id] for c in subjects.runs], clashes.clashes, vectors.nodes, params, [],
              experiments, [], {tuple(c.run_id for c in judged): across.attractors}, "holm")
    tick("summarise")


if __name__ == "__main__":
    main(sys.argv[1], "--no-clustering" in sys.argv[2:])
