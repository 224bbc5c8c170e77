"""graph_cycles searches only the strongly connected parts of the edit graph (stability.analysis.cycle_graph) and
must give exactly what networkx gives over the whole graph: the same cycles, in the same order, from the same
node, and the same ones kept under the cap."""

from __future__ import annotations

import random
from types import SimpleNamespace as N
from typing import Any

import networkx as nx
import numpy as np
import pytest

from stability.analysis import attractors
from stability.analysis.attractors import graph_cycles
from stability.analysis.cycle_graph import cycle_graphs, edit_edges


def runs_of(*walks: list[str]) -> list[Any]:
    return [N(usable=[N(node=n) for n in walk]) for walk in walks]


def whole_graph_cycles(runs: list[Any], cap: int) -> list[list[str]]:
    """The search as it was: networkx over the whole graph, nodes numbered in first-seen order."""
    edges = []
    for run in runs:
        nodes = [v.node for v in run.usable]
        edges += [(a, b) for a, b in zip(nodes, nodes[1:], strict=False) if a != b]
    number: dict[str, int] = {}
    for a, b in edges:
        number.setdefault(a, len(number))
        number.setdefault(b, len(number))
    names = list(number)
    graph = nx.DiGraph()
    graph.add_edges_from(dict.fromkeys((number[a], number[b]) for a, b in edges))
    out: list[list[str]] = []
    for found in nx.simple_cycles(graph, length_bound=6):
        start = found.index(min(found))
        out.append([names[i] for i in found[start:] + found[:start]])
        if len(out) >= cap:
            break
    return out


def random_runs(seed: int) -> list[Any]:
    """Walks over a random sparse digraph with a few planted loops of several sizes: tails lead into and out of
    the strongly connected parts, some parts are reached from others, nodes repeat and runs are short or empty."""
    rng = random.Random(seed)
    size = rng.randint(3, 60)
    names = [f"sha256:{rng.getrandbits(32):08x}" for _ in range(size)]
    out_edges: dict[str, list[str]] = {n: [] for n in names}
    for _ in range(rng.randint(size // 2, 2 * size)):
        a, b = rng.sample(names, 2)
        if rng.random() < 0.7:  # mostly forward: acyclic tails around the loops
            a, b = sorted((a, b), key=names.index)
        out_edges[a].append(b)
    for _ in range(rng.randint(0, 4)):
        loop = rng.sample(names, rng.randint(2, min(7, size)))
        for a, b in zip(loop, loop[1:] + loop[:1], strict=True):
            out_edges[a].append(b)
    runs = []
    for _ in range(rng.randint(1, 25)):
        node = rng.choice(names)
        walk = [node]
        for _ in range(rng.randint(0, 14)):
            if rng.random() < 0.1:
                walk.append(node)  # a step that kept the node: no edge
            elif out_edges[node]:
                node = rng.choice(out_edges[node])
                walk.append(node)
        runs.append(walk)
    return runs_of(*runs)


@pytest.mark.parametrize("cap", [3, 10_000])
def test_the_same_cycles_as_networkx_over_the_whole_graph(cap: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attractors, "MAX_GRAPH_CYCLES", cap)
    found_any = used_parts = 0
    for seed in range(300):
        runs = random_runs(seed)
        expected = whole_graph_cycles(runs, cap)
        assert graph_cycles(runs) == expected, seed
        found_any += bool(expected)
        u, v, names = edit_edges(runs)
        used_parts += any(min(graph) < 0 for graph in cycle_graphs(u, v, len(names)))  # padded: per SCC
    assert found_any > 150 and used_parts > 60  # both paths taken, most graphs with cycles


def test_planted_cycles_are_found() -> None:
    two = runs_of(["start", "A", "B", "A", "end"])
    assert graph_cycles(two) == [["A", "B"]]
    three = runs_of(["x", "P", "Q"], ["Q", "R", "P", "y"], ["z", "y"])
    assert graph_cycles(three) == [["P", "Q", "R"]]
    both = two + three
    assert sorted(graph_cycles(both)) == [["A", "B"], ["P", "Q", "R"]]
    assert graph_cycles(both) == whole_graph_cycles(both, 100)


def test_no_cycle_in_a_dag_or_a_run_that_stays() -> None:
    dag = runs_of(["a", "b", "c"], ["a", "c", "d"], ["b", "d"], ["e", "e", "e"], [], ["f"])
    assert graph_cycles(dag) == []
    u, v, names = edit_edges(dag)
    assert names == ["a", "b", "c", "d"] and list(cycle_graphs(u, v, len(names))) == []
    assert graph_cycles([]) == []


def test_edges_distinct_in_first_seen_order_and_not_across_runs() -> None:
    u, v, names = edit_edges(runs_of(["a", "b", "a", "b"], ["b", "c"], ["c"], ["a", "c"]))
    assert names == ["a", "b", "c"]
    assert list(zip(u.tolist(), v.tolist(), strict=True)) == [(0, 1), (1, 0), (1, 2), (0, 2)]


def test_one_part_that_is_most_of_the_graph_is_searched_whole() -> None:
    runs = runs_of(["a", "b", "c", "a"], ["t", "a"])
    u, v, names = edit_edges(runs)
    [graph] = cycle_graphs(u, v, len(names))
    assert sorted(graph.nodes) == [0, 1, 2, 3] and graph_cycles(runs) == [["a", "b", "c"]]


def test_many_parts_padded_each_from_its_first_visited_node() -> None:
    runs = runs_of(["in", "A1", "A2", "A1", "out1"], ["in", "B1", "B2", "B1", "out2"], ["o", "p", "q", "r", "s"])
    u, v, names = edit_edges(runs)
    graphs = list(cycle_graphs(u, v, len(names)))
    firsts = [names[next(iter(g.nodes))] for g in graphs]
    assert firsts == ["B1", "A1"]  # networkx finds A's part first and searches the last found first
    assert all(np.sum(np.array(list(g.nodes)) < 0) >= 4 for g in graphs)
    assert graph_cycles(runs) == whole_graph_cycles(runs, 100) == [["B1", "B2"], ["A1", "A2"]]


def test_another_networkx_version_searches_the_whole_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-part order was read from networkx 3.6: with any other version the whole graph is searched."""
    runs = runs_of(["in", "A1", "A2", "A1", "out1"], ["in", "B1", "B2", "B1", "out2"], ["o", "p", "q", "r", "s"])
    u, v, names = edit_edges(runs)
    monkeypatch.setattr(nx, "__version__", "3.7")
    [graph] = cycle_graphs(u, v, len(names))
    assert sorted(graph.nodes) == list(range(len(names)))
    assert graph_cycles(runs) == whole_graph_cycles(runs, 100)
