"""The graphs of the runs' edits that the cycle search walks: one per strongly connected part (issue 30, scale).

A cycle lies inside one strongly connected component (SCC) of two or more nodes, so ``nx.simple_cycles`` needs
only those. Building the whole graph in networkx, and networkx finding its SCCs in Python, took most of
``graph_cycles``' time (0.5 of 0.6 s CPU at 100k revisions, 6-7 s at 1M). Here the edges are numbered with numpy,
the SCCs found by scipy (C), and networkx gets one small graph per SCC: its nodes and the edges inside it.

The search must yield the same cycles in the same order as over the whole graph, and networkx's order depends on
the graph. Over the whole graph, ``simple_cycles`` rebuilds it from its adjacency, finds its SCCs (Tarjan, depth
first from each node in the rebuilt order), then takes the last SCC found: searches it from the first node its set
yields, removes that node, pushes the SCCs of the rest, and goes on with the last pushed. So the cycles of one SCC
come out together, one SCC after another from the last found, and each SCC's cycles depend on:

- its set's insertion order (which node it yields first, how its rest splits): that follows from where the
  depth-first walk enters it (Tarjan's root) and its edges' order. The walk of the whole graph is replayed here
  on integer lists, over the nodes that reach an SCC (a walk into any other node never comes back to one), for
  each SCC's root and the order the SCCs come out (as their roots finish). Each small graph lists the root first
  and has the SCC's edges in first-seen order, so networkx's walk of it builds the same set.
- whether networkx walks a part's subgraph in set order or in graph order (``FilterAtlas``: set order when the
  part is less than half the graph's current nodes). Over the whole graph that holds for every part when
  ``largest + 1 < nodes - nodes in SCCs`` (the nodes outside SCCs are never removed, and a part of size s is
  walked when at least s - 1 of the SCCs' nodes remain); each small graph has size + 2 or more extra nodes,
  unconnected pairs of negative numbers (acyclic, never in a cycle), so it holds there too. When it does not hold
  over the whole graph (one SCC is most of the graph), the whole graph is searched, as before.

tests/analysis/test_cycle_graph.py checks the cycles against ``nx.simple_cycles`` over the whole graph. That order
is networkx's, read from its 3.6 source: with any other networkx version the whole graph is searched, as before
(``VERIFIED_NETWORKX``), so an upgrade can make the search slower but never changes which cycles it reports.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components


class _Visit(Protocol):
    @property
    def node(self) -> str: ...


class _Run(Protocol):
    @property
    def usable(self) -> Sequence[_Visit]: ...


def edit_edges(runs: Sequence[_Run]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each distinct edge (from, to) of consecutive different nodes of a run, in first-seen order, with the nodes
    numbered in the order they are first seen in those edges; and the names of the numbers."""
    code: dict[str, int] = {}
    seq: list[int] = []
    starts: list[int] = []
    for run in runs:
        starts.append(len(seq))
        seq += [code.setdefault(v.node, len(code)) for v in run.usable]
    codes = np.asarray(seq, dtype=np.int64)
    if len(codes) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), []
    pair = codes[:-1] != codes[1:]  # codes[i] -> codes[i + 1], within one run
    ends = np.asarray(starts[1:], dtype=np.int64) - 1
    pair[ends[(ends >= 0) & (ends < len(pair))]] = False
    a, b = codes[:-1][pair], codes[1:][pair]
    if not len(a):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), []
    flat = np.column_stack([a, b]).ravel()  # a0 b0 a1 b1 ...: numbered in first-seen order
    seen, first = np.unique(flat, return_index=True)
    in_order = seen[np.argsort(first, kind="stable")]
    rank = np.empty(len(code), dtype=np.int64)
    rank[in_order] = np.arange(len(in_order))
    u, v = rank[a], rank[b]
    n = len(in_order)
    _, first_edge = np.unique(u * n + v, return_index=True)
    first_edge.sort()
    by_code = list(code)
    return u[first_edge], v[first_edge], [by_code[i] for i in in_order.tolist()]


VERIFIED_NETWORKX = ("3.6.",)  # the versions whose simple_cycles order the per-SCC graphs were checked against


def whole_graph(u: np.ndarray, v: np.ndarray) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_edges_from(zip(u.tolist(), v.tolist(), strict=True))
    return graph


def cycle_graphs(u: np.ndarray, v: np.ndarray, n: int) -> Iterator[nx.DiGraph]:
    """Graphs on which ``nx.simple_cycles``, one after the other, yields exactly what it yields over
    ``whole_graph(u, v)`` (nodes 0..n-1, each with an edge, edges distinct and without loops, in first-seen
    order): one graph per strongly connected component of two or more nodes, the last networkx finds first."""
    if not len(u):
        return
    count, labels = connected_components(csr_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n)),
                                         directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=count)
    kept = sizes[labels] >= 2
    largest, total = int(sizes.max()), int(kept.sum())
    if total == 0:
        return
    if n - total <= largest + 1 or not nx.__version__.startswith(VERIFIED_NETWORKX):  # see the module's docstring
        yield whole_graph(u, v)
        return
    roots = _roots_in_tarjan_order(u, v, n, labels, kept)
    members = np.flatnonzero(kept)
    members = members[np.argsort(labels[members], kind="stable")]
    bounds = np.searchsorted(labels[members], labels[roots]).tolist()
    inside = np.flatnonzero(kept[u] & (labels[u] == labels[v]))
    inside = inside[np.argsort(labels[u[inside]], kind="stable")]  # each SCC's edges together, first-seen order
    edge_bounds = np.searchsorted(labels[u[inside]], labels[roots]).tolist()
    edge_counts = np.bincount(labels[u[inside]], minlength=count)
    for root, start, edge_start in reversed(list(zip(roots, bounds, edge_bounds, strict=True))):
        label = int(labels[root])
        edges = inside[edge_start:edge_start + int(edge_counts[label])]
        graph = nx.DiGraph()
        graph.add_node(root)  # first: networkx's walk of this graph starts where its walk of the whole one did
        graph.add_nodes_from(members[start:start + int(sizes[label])].tolist())
        graph.add_edges_from(zip(u[edges].tolist(), v[edges].tolist(), strict=True))
        graph.add_edges_from((-2 * i - 1, -2 * i - 2) for i in range((int(sizes[label]) + 3) // 2))  # size + 2 or more
        yield graph


def _roots_in_tarjan_order(u: np.ndarray, v: np.ndarray, n: int, labels: np.ndarray, kept: np.ndarray
                           ) -> list[int]:
    """The first-visited node of each SCC of two or more nodes, in the order networkx's Tarjan yields the SCCs
    over the graph ``simple_cycles`` rebuilds from ``whole_graph(u, v)``: depth first from each node in the
    rebuilt order, following each node's edges in first-seen order; an SCC comes out when its root finishes."""
    by_tail = np.argsort(u, kind="stable")  # each node's edges together, in first-seen order
    tails, heads = u[by_tail], v[by_tail]
    # The rebuilt graph's node order: for each node with edges (ascending), the node, then its heads.
    new_tail = np.r_[True, tails[1:] != tails[:-1]]
    group = np.cumsum(new_tail) - 1
    group_start = np.flatnonzero(new_tail)
    events = np.empty(len(tails) + len(group_start), dtype=np.int64)
    events[np.arange(len(tails)) + group + 1] = heads
    events[group_start + np.arange(len(group_start))] = tails[group_start]
    seen, first = np.unique(events, return_index=True)
    order = seen[np.argsort(first, kind="stable")]
    # Only the nodes that reach an SCC matter: a walk into any other node never comes back to one.
    kept_nodes = np.flatnonzero(kept)
    backwards = csr_matrix((np.ones(len(v) + len(kept_nodes), dtype=np.int8),
                            (np.r_[v, np.full(len(kept_nodes), n)], np.r_[u, kept_nodes])), shape=(n + 1, n + 1))
    reaches = np.zeros(n + 1, dtype=bool)
    reaches[breadth_first_order(backwards, n, directed=True, return_predecessors=False)] = True
    sources = order[reaches[order]].tolist()
    useful = reaches[heads]
    tails, heads = tails[useful], heads[useful]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(tails, minlength=n), out=ptr[1:])
    adjacency, offsets = heads.tolist(), ptr.tolist()
    label, keep = labels.tolist(), kept.tolist()
    visited = bytearray(n)
    entered: dict[int, int] = {}  # SCC label -> its root
    out: list[int] = []
    for source in sources:
        if visited[source]:
            continue
        visited[source] = 1
        if keep[source] and label[source] not in entered:
            entered[label[source]] = source
        stack, at = [source], [offsets[source]]
        while stack:
            node, i = stack[-1], at[-1]
            end = offsets[node + 1]
            while i < end and visited[adjacency[i]]:
                i += 1
            if i < end:
                nxt = adjacency[i]
                at[-1] = i + 1
                visited[nxt] = 1
                if keep[nxt] and label[nxt] not in entered:
                    entered[label[nxt]] = nxt
                stack.append(nxt)
                at.append(offsets[nxt])
            else:
                stack.pop()
                at.pop()
                if keep[node] and entered[label[node]] == node:
                    out.append(node)
    return out
