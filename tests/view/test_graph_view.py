"""The viewer's graph on a planted store far larger than its view: the answer stays within a size chosen here
however many constitutions the runs visit, and the "+N" pages that stand for what the view leaves out lead to
every node, each with the same figures the whole graph gives it."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stability.store import Store
from stability.view import data

ROOT = Path(__file__).resolve().parents[2]

#: the most bytes a graph answer may take per node drawn (its text's first principle, figures, edges)
BYTES_PER_NODE = 900


def plant(folder: Path, revisions: int) -> Iterator[tuple[Store, list[str]]]:
    """``bench/analysis.py``'s synthetic runs (shared starts, merges, cycles, fixed points), opened read-only."""
    sys.path.insert(0, str(ROOT))
    from bench.analysis import build

    build(revisions, str(folder / "planted.duckdb"))
    with Store.open(folder / "planted.duckdb", read_only=True) as store:
        yield store, store.run_ids()


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[str]]]:
    yield from plant(tmp_path_factory.mktemp("planted"), 700)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[str]]]:
    """Small enough to walk every "+N" page in a few seconds, ten times the view below."""
    yield from plant(tmp_path_factory.mktemp("small"), 200)


def every_node(store: Store, run_ids: list[str]) -> set[str]:
    return {r[0] for r in store.con.execute(
        "SELECT DISTINCT constitution_hash FROM revisions WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
        [run_ids]).fetchall()}


def test_the_graph_answer_is_bounded_whatever_the_store_holds(planted: tuple[Store, list[str]]) -> None:
    store, runs = planted
    total = len(every_node(store, runs))
    assert total > 250  # far more than the views below
    for asked, drawn in ((20, 20), (data.GRAPH_NODES, data.GRAPH_NODES), (10**9, total)):
        graph = data.graph(store, runs, asked)
        assert graph["total_nodes"] == total and len(graph["nodes"]) == min(drawn, data.MAX_GRAPH_NODES)
        assert graph["truncated"] == (len(graph["nodes"]) < total)
        assert len(graph["edges"]) <= 4 * len(graph["nodes"])
        size = len(json.dumps(graph, default=str))
        assert size <= BYTES_PER_NODE * len(graph["nodes"]), size
    # starts, fixed points, merges and cycle targets come first
    small = data.graph(store, runs, 20)
    assert all(n["starts"] or n["fixed"] or n["cycles"] or n["merge"] for n in small["nodes"])
    assert small["hidden_starts"] == small["counts"]["starts"] - sum(1 for n in small["nodes"] if n["starts"])


def test_the_plus_n_pages_lead_to_every_node_with_its_whole_graph_figures(
        small: tuple[Store, list[str]]) -> None:
    store, runs = small
    view = data.graph(store, runs, 1)
    assert view["total_nodes"] >= 50 and view["hidden_starts"] >= 1
    whole = {n["node"]: n for n in data.graph(store, runs, data.MAX_GRAPH_NODES)["nodes"]}
    columns = ("runs", "visits", "starts", "depth", "finals", "fixed", "cycles", "merge", "n_principles")
    seen = {n["node"]: n for n in view["nodes"]}
    waiting: list[str | None] = [None, *(n["node"] for n in view["nodes"] if n["more"])]
    pages = 0
    while waiting:
        node = waiting.pop()
        offset, found = 0, []
        while True:
            page = data.graph_next(store, runs, 1, node, offset, 1 if node is None else 50)
            pages += 1
            found += page["nodes"]
            offset += len(page["nodes"])
            if offset >= page["total"]:
                break
        expected = seen[node]["more"] if node is not None else view["hidden_starts"]
        assert page["total"] == len(found) == len({n["node"] for n in found}) == expected
        for n in found:
            assert n["node"] not in {k["node"] for k in view["nodes"]}  # the view's own are never repeated
            assert {c: n[c] for c in columns} == {c: whole[n["node"]][c] for c in columns}
            if n["node"] not in seen:
                seen[n["node"]] = n
                if n["more"]:
                    waiting.append(n["node"])
    assert set(seen) == every_node(store, runs)
    assert pages > len(seen) / 2


def test_a_page_of_successors_comes_with_the_edges_that_join_it(planted: tuple[Store, list[str]]) -> None:
    store, runs = planted
    view = data.graph(store, runs, 20)
    node = max(view["nodes"], key=lambda n: n["more"])["node"]
    page = data.graph_next(store, runs, 20, node, 0, 500)
    assert {e["target"] for e in page["edges"] if e["source"] == node} == {n["node"] for n in page["nodes"]}
    shown = {n["node"] for n in view["nodes"]} | {n["node"] for n in page["nodes"]}
    assert all(e["source"] in shown and e["target"] in shown for e in page["edges"])
    past = data.graph_next(store, runs, 20, node, 10**6, 5)
    assert (past["nodes"], past["total"]) == ([], page["total"])


def test_the_next_page_endpoint_needs_a_node_or_the_starts(tmp_path: Path,
                                                           planted: tuple[Store, list[str]]) -> None:
    pytest.importorskip("starlette", reason="starlette is not installed (pip install -e '.[view]')")
    from stability.view import Viewer

    store, runs = planted
    db = tmp_path / "copy.duckdb"
    db.write_bytes(Path(store.path).read_bytes())

    def get(viewer: Viewer, path: str) -> Any:
        with urllib.request.urlopen(viewer.url + path, timeout=60) as response:
            return json.loads(response.read())

    with Viewer(db) as viewer:
        with pytest.raises(urllib.error.HTTPError) as err:
            get(viewer, f"/api/graph/next?runs={runs[0]}")
        assert err.value.code == 400 and "starts=1" in json.loads(err.value.read())["error"]
        selection = f"runs={','.join(runs[:40])}&max_nodes=1"
        view = get(viewer, f"/api/graph?{selection}")
        starts = get(viewer, f"/api/graph/next?{selection}&starts=1&limit=2")
        assert starts["total"] == view["hidden_starts"] >= 2 and len(starts["nodes"]) == 2
        assert all(n["starts"] for n in starts["nodes"])
