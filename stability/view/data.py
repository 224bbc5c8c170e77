"""What each page of ``stability view`` shows, as JSON-ready dicts: one function per endpoint, over an open store.

Every list is one page (``offset``, ``limit``) with its ``total``; the graph is cut to the ``max_nodes`` most
important constitutions (starts, fixed points, cycle targets and merges first, then the most visited) and says so,
and what it leaves out is reached a page at a time from the nodes shown (:func:`graph_next`). Nothing here
writes; secrets are removed from every answer by the app before it is sent.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict

from stability.analysis.experiments import cell_factors, factor_summary, find_experiment
from stability.chain import step_diff
from stability.errors import StabilityError
from stability.records import ExperimentRecord
from stability.store import browse, graph_reads
from stability.store.store import Store

GRAPH_NODES = 150  # the view of a graph: what a browser draws in well under a second, and a reader can take in
MAX_GRAPH_NODES = 1000  # the most a view (or a page of what it leaves out) may ask for
CACHED = 16  # summaries and graphs kept (requests take turns: see StoreSource.reading)
_SUMMARIES: dict[tuple[str, str], Summary] = {}
_GRAPHS: dict[tuple[str, str, int], dict[str, Any]] = {}
FACTOR_VALUES = 12  # values of a factor shown (the count says how many there are)


class NotFound(StabilityError):
    """A page asked for something the store does not hold."""


def _experiment(store: Store, name: str) -> Any:
    record = find_experiment(store, name)
    if record is None:
        raise NotFound(f"no experiment {name!r}")
    return record


def experiments(store: Store) -> dict[str, Any]:
    return {"experiments": browse.experiment_rows(store)}


class Summary(BaseModel):
    """What the experiment page shows of every cell: the factors (every value, which vary), replicates, states."""

    model_config = ConfigDict(extra="forbid")

    factors: dict[str, list[Any]]
    varied: list[str]
    replicates: int
    cells: int
    states: dict[str, int]


def _summary(store: Store, record: ExperimentRecord) -> Summary:
    """The experiment's summary, computed once per state read (each state is a file of its own: its path), from
    the cells' configurations alone."""
    key = (store.path, record.id)
    if key not in _SUMMARIES:
        if len(_SUMMARIES) >= CACHED:
            _SUMMARIES.pop(next(iter(_SUMMARIES)))
        rows = browse.cell_configs(store, record.id)
        factors, varied, replicates = factor_summary(cell_factors(config) for _, config in rows)
        _SUMMARIES[key] = Summary(factors=factors, varied=varied, replicates=replicates, cells=len(rows),
                                  states=dict(Counter(status for status, _ in rows)))
    return _SUMMARIES[key]


def experiment(store: Store, name: str, offset: int, limit: int) -> dict[str, Any]:
    """Factors (every value, which vary), cells per state, cost and tokens, and a page of cells."""
    record = _experiment(store, name)
    summary = _summary(store, record)
    cells, total = browse.cell_progress(store, record.id, offset, limit)
    varied = [v for v in summary.varied if v != "seed"]
    for cell in cells:
        factors = cell_factors(cell.pop("config") or {})
        cell["factors"] = {k: factors.get(k) for k in summary.varied}
    return {"id": record.id, "name": record.name, "spec_path": record.spec_path, "created_at": record.created_at,
            "factors": {k: v[:FACTOR_VALUES] for k, v in summary.factors.items()},
            "factor_counts": {k: len(v) for k, v in summary.factors.items()}, "varied": summary.varied,
            "group_by": varied,
            "replicates": summary.replicates, "cells": summary.cells, "states": summary.states,
            "totals": browse.experiment_totals(store, record.id),
            "cell_page": {"rows": cells, "total": total, "offset": offset, "limit": limit}}


def progress(store: Store, name: str, offset: int, limit: int) -> dict[str, Any]:
    """A running experiment's progress: cells per state, done share, cost so far, running cells first."""
    record = _experiment(store, name)
    [row] = browse.experiment_rows(store, record.id)
    states = {state: row[state] for state in ("done", "running", "failed", "not_started") if row[state]}
    cells, total = browse.cell_progress(store, record.id, offset, limit)
    for cell in cells:
        cell.pop("config", None)
    finished = row["done"] + row["failed"]
    return {"id": record.id, "name": record.name, "cells": row["cells"], "states": states,
            "finished": finished, "share": finished / row["cells"] if row["cells"] else 1.0,
            "totals": browse.experiment_totals(store, record.id),
            "cell_page": {"rows": cells, "total": total, "offset": offset, "limit": limit}}


def runs(store: Store, offset: int, limit: int) -> dict[str, Any]:
    rows, total = browse.run_rows(store, offset, limit)
    return {"rows": rows, "total": total, "offset": offset, "limit": limit}


def run(store: Store, run_id: str, offset: int, limit: int) -> dict[str, Any]:
    """A run's record and totals, and a page of its chain: per step the decision, the diff, and the calls."""
    try:
        record = store.run(run_id)
    except StabilityError as err:
        raise NotFound(str(err)) from None
    steps, total = browse.step_rows(store, record.id, offset, limit)
    before = browse.hash_before(store, record.id, steps[0]["step"]) if steps else None
    hashes = list(dict.fromkeys([*([before] if before else []), *(s["constitution_hash"] for s in steps)]))
    texts: dict[str, list[str]] = {h: [] for h in hashes}
    for digest, _, text in store.principle_rows(hashes):
        texts[digest].append(text)
    calls = {c["id"]: c for c in browse.call_rows(store, [i for s in steps for i in s["call_ids"]])}
    judged: dict[str, list[dict[str, Any]]] = {}
    for row in browse.judgement_rows(store, [s["constitution_hash"] for s in steps]):
        judged.setdefault(row["node"], []).append({k: browse.jsonable(v) for k, v in row.items()})
    previous = texts.get(before or "", [])
    out = []
    for step in steps:
        current = texts[step["constitution_hash"]]
        out.append({**step, "n_principles": len(current), "diff": step_diff(previous, current) if step["step"] else [],
                    "text": current if step["step"] == 0 else None,
                    "calls": [calls[i] for i in step["call_ids"] if i in calls],
                    "judgements": judged.get(step["constitution_hash"], [])})
        previous = current
    return {"run": record.model_dump(), "totals": browse.run_totals(store, record.id),
            "experiment": browse.experiment_of(store, record.id),
            "has_judgements": bool(judged),
            "steps": {"rows": out, "total": total, "offset": offset, "limit": limit}}


def step_calls(store: Store, run_id: str, step: int) -> dict[str, Any]:
    """Every call a run made at a step, with the judgements of the node it reached."""
    node = browse.node_at(store, run_id, step)
    judgements = [{k: browse.jsonable(v) for k, v in row.items()}
                  for row in browse.judgement_rows(store, [node] if node else [])]
    return {"run_id": run_id, "step": step, "calls": browse.step_call_rows(store, run_id, step),
            "judgements": judgements}


def call(store: Store, call_id: str) -> dict[str, Any]:
    """One call as stored: request, response, answer text, thinking, attempts and retries, tokens and cost."""
    record = browse.call(store, call_id)
    if record is None:
        raise NotFound(f"no call {call_id!r}")
    return {"call": record.model_dump(), "truncated": record.truncated}


def search(store: Store, query: str, offset: int, limit: int) -> dict[str, Any]:
    query = query.strip()
    if not query:
        return {"query": "", "rows": [], "total": 0, "offset": offset, "limit": limit}
    rows, total = browse.search_principles(store, query, offset, limit)
    return {"query": query, "rows": rows, "total": total, "offset": offset, "limit": limit}


def graph(store: Store, run_ids: list[str], max_nodes: int = GRAPH_NODES) -> dict[str, Any]:
    """The view of the runs' revision graph for cytoscape.js (:func:`stability.store.graph_reads.view_rows`: the
    ``max_nodes`` most important constitutions, at most :data:`MAX_GRAPH_NODES`, each saying how many successors it
    leaves out), computed once per state read.

    A node is a *merge* when it has more than one predecessor; a *fixed point* when a run ended there having
    declined; a *cycle* node when a run returned to it."""
    max_nodes = max(1, min(int(max_nodes), MAX_GRAPH_NODES))
    key = (store.path, hashlib.sha256(" ".join(run_ids).encode()).hexdigest(), max_nodes)
    if key not in _GRAPHS:
        if len(_GRAPHS) >= CACHED:
            _GRAPHS.pop(next(iter(_GRAPHS)))
        _GRAPHS[key] = _graph(store, run_ids, max_nodes)
    return _GRAPHS[key]


def _with_first(store: Store, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first: dict[str, str] = {}
    for digest, _, text in store.principle_rows([n["node"] for n in nodes]):
        first.setdefault(digest, text)
    for n in nodes:
        n["first"] = first.get(n["node"], "")
    return nodes


def _graph(store: Store, run_ids: list[str], max_nodes: int) -> dict[str, Any]:
    nodes, edges, counts = graph_reads.view_rows(store, run_ids, max_nodes)
    return {"runs": len(run_ids), "total_nodes": counts["nodes"], "total_edges": counts["edges"],
            "truncated": len(nodes) < counts["nodes"], "max_nodes": max_nodes, "nodes": _with_first(store, nodes),
            "edges": edges, "hidden_starts": counts["hidden_starts"],
            "counts": {k: counts[k] for k in ("merges", "fixed_points", "cycles", "starts")}}


def graph_next(store: Store, run_ids: list[str], max_nodes: int, node: str | None, offset: int,
               limit: int) -> dict[str, Any]:
    """A page of what the graph's view leaves out: the successors of ``node`` outside it, or (``node`` None) the
    starting constitutions outside it; each with how many of its own successors the view leaves out, and the edges
    that join the page to ``node``, to the view and to itself."""
    kept = [n["node"] for n in graph(store, run_ids, max_nodes)["nodes"]]
    limit = max(1, min(limit, MAX_GRAPH_NODES))
    nodes, edges, total = graph_reads.next_rows(store, run_ids, kept, node, offset, limit)
    return {"node": node, "total": total, "offset": offset, "limit": limit, "nodes": _with_first(store, nodes),
            "edges": edges}


def graph_runs(store: Store, experiment_name: str | None, runs: list[str]) -> list[str]:
    """The runs a graph shows: an experiment's, or the given ones."""
    if experiment_name:
        return browse.experiment_run_ids(store, _experiment(store, experiment_name).id)
    if not runs:
        raise NotFound("give an experiment or runs")
    return [store.run(r).id for r in runs]


def node(store: Store, digest: str, offset: int, limit: int) -> dict[str, Any]:
    """A constitution's text and a page of the runs through it."""
    try:
        text = store.constitution(digest)
    except StabilityError as err:
        raise NotFound(str(err)) from None
    rows, total = browse.node_runs(store, digest, offset, limit)
    return {"hash": digest, "principles": list(text.principles),
            "runs": {"rows": rows, "total": total, "offset": offset, "limit": limit}}
