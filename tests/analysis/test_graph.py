from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

import stability
from stability.analysis.graph import export_graph, revision_graph
from stability.errors import StabilityError
from stability.store import Store


def test_graph_nodes_edges_and_merges(experiment_db: Path) -> None:
    graph = revision_graph([], experiment_db, all_runs=True)
    with Store.open(experiment_db, read_only=True) as store:
        ids = store.run_ids()
        n_edges = sum(len(store.edges(r)) for r in ids)
        nodes = {r.constitution_hash for run in ids for r in store.revisions(run)}
    assert set(graph.nodes) == nodes and graph.number_of_edges() == n_edges
    merged = [n for n, a in graph.nodes(data=True) if len(a["final_of"]) == 2]
    assert len(merged) == 1 and graph.in_degree(merged[0]) >= 2  # two runs' edits arrive at one node
    kinds = {a["kind"] for _, _, a in graph.edges(data=True)}
    assert kinds == {"edit", "decline"}
    _, _, attrs = next(iter(graph.edges(data=True)))
    assert attrs["call_ids"] and attrs["protocol"] == "fresh-instance" and attrs["run_id"] in ids


def test_graph_exports_round_trip(experiment_db: Path, tmp_path: Path) -> None:
    graph = revision_graph([], experiment_db, all_runs=True)
    (tmp_path / "g.graphml").write_text(export_graph(graph, "graphml"), encoding="utf-8")
    back = nx.read_graphml(tmp_path / "g.graphml", force_multigraph=True)
    assert back.number_of_nodes() == graph.number_of_nodes()
    assert back.number_of_edges() == graph.number_of_edges()
    data = json.loads(export_graph(graph, "json"))
    assert len(data["nodes"]) == graph.number_of_nodes() and len(data["edges"]) == graph.number_of_edges()
    with pytest.raises(StabilityError, match="graphml"):
        export_graph(graph, "dot")


def test_open_gives_dataframes_and_graph(experiment_copy: Path) -> None:
    assert stability.open is stability.load  # the older name still works
    data = stability.load(experiment_copy)
    runs = data.runs()
    assert len(runs) == 9 and {"id", "model", "stop_reason"} <= set(runs.columns)
    first = runs["id"][0]
    assert set(data.revisions([first])["run_id"]) == {first}
    assert len(data.revisions()) > len(runs) and len(data.calls()) > 0
    assert set(data.principles([first])["constitution_hash"]) <= set(data.revisions([first])["constitution_hash"])
    assert data.graph().number_of_nodes() == data.constitutions()["hash"].nunique()
    result = data.analyze(embedder="hashing")
    embeddings = data.embeddings("hashing-256")
    assert len(embeddings) == result.embeddings.texts and embeddings["vector"][0].shape == (256,)
    with pytest.raises(StabilityError, match="no such database"):
        stability.load(experiment_copy.parent / "missing.duckdb")
