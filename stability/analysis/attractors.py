"""Across runs: attractors (clusters of final constitutions), the convergence ratio, and merges in the graph.

- Attractors: average-linkage hierarchical clustering of the runs' final constitutions on cosine distance,
  cut at ``cluster_threshold`` (:mod:`stability.analysis.final_clusters`: over the distinct finals, exact up to
  8,192 of them, in blocks above, never an n x n matrix over runs). Each cluster names its runs, their
  distinct starts and models, and its medoid.
- Convergence ratio: the spread of the finals over the spread of the starts, where a spread is the mean
  pairwise cosine distance over runs (one point per run). Below 1 the runs ended closer together than they
  began. Undefined (null) when every run began from the same constitution.
- Merges: content-addressed nodes reached by runs from different starting constitutions. The graph merges
  there: two histories meet in one node.
- Projection: the finals and starts in two dimensions (PCA by SVD), for the report.

Only chain runs with a verdict take part (see :mod:`stability.analysis.convergence`): a run without a verdict
has no final, and the sibling trials of a non-chain protocol neither merge nor cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.blas_threads import blas_threads
from stability.analysis.corpus import RunChain
from stability.analysis.cycle_graph import cycle_graphs, edit_edges
from stability.analysis.final_clusters import cluster

MAX_GRAPH_CYCLES = 100
CENTRE_ROWS = 1 << 14  # rows centred at once by project (16k x 1024 float32: 64 MB at most)


class Attractor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: int
    medoid: str  # node hash of the most central final
    runs: list[str]
    finals: list[str]
    starts: list[str]
    models: list[str]
    spread: float  # mean pairwise distance of its members' finals


class Merge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str
    runs: list[str]
    starts: list[str]
    first_steps: dict[str, int]  # run -> the step at which it first reached the node
    is_final: bool  # the node is the final constitution of every run that reaches it


class ProjectedPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    role: str  # start | final
    node: str
    x: float
    y: float
    cluster: int | None


class CrossRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runs: int
    distinct_starts: int
    distinct_finals: int
    start_spread: float
    final_spread: float
    convergence_ratio: float | None
    convergence_ratio_note: str | None = None  # why there is no ratio (one start, starts that do not differ)
    attractors: list[Attractor]
    merges: list[Merge]
    graph_cycles: list[list[str]]  # exact cycles of the whole graph, edits of any run (up to 100, length <= 6)
    projection: list[ProjectedPoint]


def spread(vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance of the rows (unit vectors, or zero rows).

    Without the n x n matrix: the sum over pairs i != j of ``1 - v_i . v_j`` is ``n(n-1) - (|Σ v|² - Σ |v_i|²)``,
    in float64, so it is linear in the rows (8,326 finals: milliseconds, not a 277 MB matrix)."""
    n = len(vectors)
    if n < 2:
        return 0.0
    rows = np.asarray(vectors, dtype=np.float64)
    total = rows.sum(axis=0)
    off_diagonal = float(total @ total) - float(np.einsum("ij,ij->", rows, rows))
    return max(0.0, (n * (n - 1) - off_diagonal) / (n * (n - 1)))


def project(vectors: np.ndarray) -> np.ndarray:
    """Rows projected on their first two principal components (zeros where there is no variance).

    The components are the leading eigenvectors of the d x d scatter matrix (float64), not an SVD of the n x d
    rows (16k rows: a tenth of the time); each points so that its largest loading is positive (a component's
    sign is arbitrary, this makes it reproducible).

    The rows are centred in their own precision block by block, straight into the float64 copy (at 1M
    revisions a whole centred float32 copy beside it was 255 MB at the analysis's highest point)."""
    out = np.zeros((len(vectors), 2))
    if len(vectors) < 2:
        return out
    mean = vectors.mean(axis=0)
    wide = np.empty(vectors.shape, dtype=np.float64)
    for i in range(0, len(vectors), CENTRE_ROWS):
        wide[i:i + CENTRE_ROWS] = vectors[i:i + CENTRE_ROWS] - mean  # the same values as one subtraction
    with blas_threads(1):  # 384 x 384: OpenBLAS's threads cost 40x here, and one gives the same on every machine
        _, axes = np.linalg.eigh(wide.T @ wide)
    components = axes[:, ::-1][:, :2].T
    biggest = components[np.arange(len(components)), np.abs(components).argmax(axis=1)]
    components = components * np.where(biggest < 0, -1.0, 1.0)[:, None]
    out[:, :len(components)] = wide @ components.T
    return out


def merges(runs: Sequence[RunChain]) -> list[Merge]:
    reached: dict[str, dict[str, int]] = {}
    for run in runs:
        for visit in run.usable:
            reached.setdefault(visit.node, {}).setdefault(run.run_id, visit.step)
    starts = {run.run_id: run.start for run in runs}
    finals = {run.run_id: run.final for run in runs}
    out = []
    for node, first in reached.items():
        distinct = sorted({starts[r] for r in first})
        if len(distinct) > 1:
            out.append(Merge(node=node, runs=sorted(first), starts=distinct, first_steps=first,
                             is_final=all(finals[r] == node for r in first)))
    return out


def graph_cycles(runs: Sequence[RunChain]) -> list[list[str]]:
    # Nodes are numbered in first-seen order and the search runs over the numbers: networkx keeps the components
    # it walks in sets, whose order for strings changes with each process's hash seed (PYTHONHASHSEED), and with
    # it which cycles come first, where each starts, and which are kept under the cap. Integers keep one order.
    # networkx gets only the strongly connected parts, built so that it yields what it would over the whole graph
    # (stability.analysis.cycle_graph).
    u, v, names = edit_edges(runs)
    out: list[list[str]] = []
    for graph in cycle_graphs(u, v, len(names)):
        for found in nx.simple_cycles(graph, length_bound=6):
            start = found.index(min(found))  # each cycle from its earliest-seen node
            out.append([names[i] for i in found[start:] + found[:start]])
            if len(out) >= MAX_GRAPH_CYCLES:
                return out
    return out


def attractors_of(runs: Sequence[RunChain], finals: np.ndarray, cluster_threshold: float
                  ) -> tuple[np.ndarray, list[Attractor]]:
    """Cluster labels of the runs' finals (rows of ``finals``) and the attractors they form."""
    if not runs:
        return np.zeros(0, dtype=int), []
    labels = cluster(finals, cluster_threshold)
    attractors = []
    by_label: dict[int, list[int]] = {}
    for i, x in enumerate(labels.tolist()):
        by_label.setdefault(x, []).append(i)
    for label in sorted(by_label):
        members = by_label[label]
        block = finals[members]
        central = members[int(np.argmax(block @ block.sum(axis=0)))]  # the largest summed similarity
        attractors.append(Attractor(
            cluster=label, medoid=runs[central].final, runs=[runs[i].run_id for i in members],
            finals=sorted({runs[i].final for i in members}), starts=sorted({runs[i].start for i in members}),
            models=sorted({runs[i].model for i in members}), spread=round(spread(block), 6)))
    return labels, attractors


def cross_run(runs: Sequence[RunChain], node_vectors: Mapping[str, np.ndarray], cluster_threshold: float) -> CrossRun:
    """Attractors, spreads and merges of ``runs`` (the chain runs that have a verdict)."""
    if not runs:
        return CrossRun(runs=0, distinct_starts=0, distinct_finals=0, start_spread=0.0, final_spread=0.0,
                        convergence_ratio=None, convergence_ratio_note="no chain run with a verdict",
                        attractors=[], merges=[], graph_cycles=[], projection=[])
    both = np.stack([node_vectors[r.start] for r in runs] + [node_vectors[r.final] for r in runs])
    starts, finals = both[:len(runs)], both[len(runs):]  # views: the projection takes both without a copy
    labels, attractors = attractors_of(runs, finals, cluster_threshold)
    start_spread, final_spread = spread(starts), spread(finals)
    distinct_starts = len({r.start for r in runs})
    ratio = final_spread / start_spread if distinct_starts > 1 and start_spread > 0 else None
    note = None if ratio is not None else "one start: no spread of starts to compare" if distinct_starts < 2 \
        else "the starts do not differ in the embedding (spread 0)"
    points = project(both)
    projection = [ProjectedPoint(run_id=r.run_id, role="start", node=r.start, x=float(points[i, 0]),
                                 y=float(points[i, 1]), cluster=None) for i, r in enumerate(runs)]
    projection += [ProjectedPoint(run_id=r.run_id, role="final", node=r.final, x=float(points[len(runs) + i, 0]),
                                  y=float(points[len(runs) + i, 1]), cluster=int(labels[i]))
                   for i, r in enumerate(runs)]
    return CrossRun(runs=len(runs), distinct_starts=distinct_starts, distinct_finals=len({r.final for r in runs}),
                    start_spread=round(start_spread, 6), final_spread=round(final_spread, 6),
                    convergence_ratio=round(ratio, 6) if ratio is not None else None, convergence_ratio_note=note,
                    attractors=attractors,
                    merges=merges(runs), graph_cycles=graph_cycles(runs), projection=projection)
