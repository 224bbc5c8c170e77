"""The revision graph as networkx: nodes are content-addressed constitutions, edges are the transitions.

A ``MultiDiGraph``: one edge per stored edge (a decline is a self-loop), keyed by the edge id (the target
revision id) and carrying ``kind``, ``run_id``, ``protocol``, ``call_ids`` and ``step``. Runs that reach the same
text share the node, so merges across runs appear as nodes with several runs in ``runs``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx

from stability.analysis.experiments import resolve_selection
from stability.constitution import principles_text
from stability.errors import StabilityError
from stability.store.store import Store

FORMATS = ("graphml", "json")


def build_graph(store: Store, run_ids: list[str]) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    rows = store.revision_rows(run_ids)
    nodes = list(dict.fromkeys(row[3] for row in rows))
    principles: dict[str, list[str]] = {n: [] for n in nodes}
    for digest, _, text in store.principle_rows(nodes):
        principles[digest].append(text)
    starts = {row[0]: row[3] for row in rows if row[1] == 0}
    finals: dict[str, str] = {}
    visits: dict[str, set[str]] = {n: set() for n in nodes}
    for run_id, _, _, node, decision, _ in rows:
        visits[node].add(run_id)
        if decision != "error":
            finals[run_id] = node
    for node in nodes:
        graph.add_node(node, text=principles_text(principles[node]), n_principles=len(principles[node]),
                       runs=sorted(visits[node]), start_of=sorted(r for r, n in starts.items() if n == node),
                       final_of=sorted(r for r, n in finals.items() if n == node))
    steps = {row[2]: row[1] for row in rows}
    for edge in store.all_edges(run_ids):
        graph.add_edge(edge.source_hash, edge.target_hash, key=edge.id, kind=edge.kind, run_id=edge.run_id,
                       protocol=edge.protocol, call_ids=list(edge.call_ids), step=steps.get(edge.target_id),
                       source_revision=edge.source_id, target_revision=edge.target_id)
    return graph


def revision_graph(run_ids: list[str], db: Path | str | None = None, all_runs: bool = False) -> nx.MultiDiGraph:
    """The graph of the selected runs: ``run_ids`` holds experiment names or ids and run ids."""
    with Store.open(db, read_only=True) as store:
        return build_graph(store, resolve_selection(store, run_ids, all_runs)[0])


def _scalars(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in attrs.items() if v is not None}


def export_graph(graph: nx.MultiDiGraph, fmt: str) -> str:
    """GraphML (list attributes become JSON strings) or networkx node-link JSON."""
    if fmt == "json":
        return json.dumps(nx.node_link_data(graph, edges="edges"), indent=2, ensure_ascii=False)
    if fmt == "graphml":
        flat = nx.MultiDiGraph()
        flat.add_nodes_from((n, _scalars(a)) for n, a in graph.nodes(data=True))
        flat.add_edges_from((u, v, k, _scalars(a)) for u, v, k, a in graph.edges(keys=True, data=True))
        return "\n".join(nx.generate_graphml(flat)) + "\n"
    raise StabilityError(f"unknown graph format {fmt!r}; choose one of {', '.join(FORMATS)}")
