"""The viewer's revision graph, read in SQL and cut to a size a browser draws in well under a second.

A graph is over a selection of runs (an experiment's, a group's, or the ones given). Its *view* is the
``max_nodes`` constitutions that matter most (:func:`view_rows`); every other constitution stays reachable from
it: each node says how many of its successors the view leaves out (``more``), how many starting constitutions it
leaves out is counted, and :func:`next_rows` pages through either. Every run starts at a start and walks its
edges, so expanding from the view reaches every node of the selection.

Node columns (per constitution over the selected runs): runs through it, visits, runs starting there (``starts``),
its earliest step (``depth``), runs ending there (``finals``) and ending there having declined (``fixed``: a
fixed point), returns to it (``cycles``), whether it has more than one predecessor (``merge``), its number of
principles.
"""

from __future__ import annotations

from typing import Any

from stability.store.rows import dict_rows
from stability.store.store import Store

#: edges of the view: at most this many per node kept (the most taken first)
EDGES_PER_NODE = 4


def _stats_sql(focus: bool) -> str:
    """Per-node statistics over the selected runs (parameter 1), or, with ``focus`` (parameter 2: node hashes),
    over the runs through those nodes only: exact for them, since every revision at, edge into, return to and end
    at a node belongs to a run through it."""
    through = ("SELECT DISTINCT r.run_id FROM revisions r SEMI JOIN sel ON sel.run_id = r.run_id "
               "WHERE r.constitution_hash IN (SELECT unnest(?::VARCHAR[]))") if focus else "SELECT run_id FROM sel"
    return f"""
        WITH sel AS (SELECT unnest(?::VARCHAR[]) AS run_id),
             through AS ({through}),
             v AS (SELECT r.* FROM revisions r SEMI JOIN through t ON t.run_id = r.run_id),
             e AS (SELECT x.source_hash, x.target_hash FROM edges x SEMI JOIN through t ON t.run_id = x.run_id
                   WHERE x.source_hash <> x.target_hash),
             preds AS (SELECT target_hash AS node, count(DISTINCT source_hash) AS n FROM e GROUP BY target_hash),
             last AS (SELECT run_id, arg_max(constitution_hash, step) AS node FROM v WHERE decision <> 'error'
                      GROUP BY run_id),
             ends AS (SELECT last.node, count(*) AS finals,
                             count(*) FILTER (WHERE r.stop_reason = 'declined') AS fixed
                      FROM last JOIN runs r ON r.id = last.run_id GROUP BY last.node),
             returns AS (SELECT t.constitution_hash AS node, count(*) AS cycles
                         FROM v JOIN revisions t ON t.id = v.cycle_to GROUP BY t.constitution_hash),
             visited AS (SELECT constitution_hash AS node, count(DISTINCT run_id) AS runs, count(*) AS visits,
                                count(*) FILTER (WHERE step = 0) AS starts, min(step) AS depth
                         FROM v GROUP BY constitution_hash),
             stats AS (SELECT n.*, coalesce(ends.finals, 0) AS finals,
                              coalesce(ends.fixed, 0) AS fixed, coalesce(returns.cycles, 0) AS cycles,
                              coalesce(preds.n, 0) > 1 AS merge
                       FROM visited n LEFT JOIN ends ON ends.node = n.node
                            LEFT JOIN returns ON returns.node = n.node LEFT JOIN preds ON preds.node = n.node)"""


#: the order of importance: marked nodes (start, fixed point, cycle target, merge) first, then the most visited
RANK = "(starts > 0 OR fixed > 0 OR cycles > 0 OR merge) DESC, runs DESC, visits DESC, node"


def view_rows(store: Store, run_ids: list[str], max_nodes: int
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """The view of the selected runs' graph: its ``max_nodes`` most important nodes (:data:`RANK`), each with how
    many successors the view leaves out (``more``); the edges between them (transitions between two different
    constitutions: runs that took it, whether one took it returning to an earlier node), at most
    :data:`EDGES_PER_NODE` per node, the most taken first; and counts over the whole graph (``nodes``, ``edges``,
    ``merges``, ``fixed_points``, ``cycles``, ``starts``, and ``hidden_starts``: starts the view leaves out)."""
    nodes = dict_rows(store.con, _stats_sql(False) + f""",
             totals AS (SELECT count(*) AS total_nodes, sum(merge::INTEGER) AS merges,
                               sum((fixed > 0)::INTEGER) AS fixed_points, sum((cycles > 0)::INTEGER) AS cycle_nodes,
                               sum((starts > 0)::INTEGER) AS start_nodes,
                               (SELECT count(*) FROM (SELECT DISTINCT source_hash, target_hash FROM e)) AS total_edges
                        FROM stats),
             top AS (SELECT * FROM stats ORDER BY {RANK} LIMIT ?)
        SELECT top.*, c.n_principles, totals.* FROM top JOIN constitutions c ON c.hash = top.node CROSS JOIN totals
        ORDER BY {RANK}""", [run_ids, max(1, int(max_nodes))])
    counts = {"nodes": 0, "edges": 0, "merges": 0, "fixed_points": 0, "cycles": 0, "starts": 0, "hidden_starts": 0}
    if nodes:
        first = nodes[0]
        counts.update({"nodes": int(first["total_nodes"]), "edges": int(first["total_edges"]),
                       "merges": int(first["merges"]), "fixed_points": int(first["fixed_points"]),
                       "cycles": int(first["cycle_nodes"]), "starts": int(first["start_nodes"])})
    for node in nodes:
        for column in ("total_nodes", "total_edges", "merges", "fixed_points", "cycle_nodes", "start_nodes"):
            del node[column]
    kept = [n["node"] for n in nodes]
    counts["hidden_starts"] = counts["starts"] - sum(1 for n in nodes if n["starts"])
    _add_more(store, run_ids, kept, nodes)
    edges = dict_rows(store.con, """
        WITH sel AS (SELECT unnest(?::VARCHAR[]) AS run_id), kept AS (SELECT unnest(?::VARCHAR[]) AS node),
             pairs AS (SELECT e.source_hash AS source, e.target_hash AS target, count(DISTINCT e.run_id) AS runs,
                              bool_or(v.cycle_to IS NOT NULL) AS cycle
                       FROM edges e SEMI JOIN sel ON sel.run_id = e.run_id JOIN revisions v ON v.id = e.target_id
                       WHERE e.source_hash <> e.target_hash AND e.source_hash IN (SELECT node FROM kept)
                             AND e.target_hash IN (SELECT node FROM kept)
                       GROUP BY e.source_hash, e.target_hash)
        SELECT * FROM pairs ORDER BY runs DESC, source, target LIMIT ?""",
                  [run_ids, kept, EDGES_PER_NODE * max(1, len(kept))])
    return nodes, edges, counts


def _add_more(store: Store, run_ids: list[str], kept: list[str], nodes: list[dict[str, Any]]) -> None:
    """Set each node's ``more``: how many of its successors (over the selected runs) are not in ``kept``."""
    more = dict(store.con.execute("""
        WITH sel AS (SELECT unnest(?::VARCHAR[]) AS run_id), kept AS (SELECT unnest(?::VARCHAR[]) AS node)
        SELECT e.source_hash, count(DISTINCT e.target_hash) FROM edges e SEMI JOIN sel ON sel.run_id = e.run_id
        WHERE e.source_hash IN (SELECT unnest(?::VARCHAR[])) AND e.target_hash NOT IN (SELECT node FROM kept)
              AND e.source_hash <> e.target_hash
        GROUP BY e.source_hash""", [run_ids, kept, [n["node"] for n in nodes]]).fetchall())
    for node in nodes:
        node["more"] = int(more.get(node["node"], 0))


def next_rows(store: Store, run_ids: list[str], kept: list[str], node: str | None, offset: int, limit: int
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """A page of what the view (``kept``) leaves out: the successors of ``node`` not in it (the most taken
    transitions first), or with ``node`` None the starts not in it (the most run first); each with the node columns
    and its own ``more``. Also the edges from ``node`` to the page's nodes and from those to the view's or to each
    other, and how many the page is of."""
    if node is not None:
        found = store.con.execute("""
            WITH sel AS (SELECT unnest(?::VARCHAR[]) AS run_id), kept AS (SELECT unnest(?::VARCHAR[]) AS node),
                 next AS (SELECT e.target_hash AS node, count(DISTINCT e.run_id) AS runs FROM edges e
                          SEMI JOIN sel ON sel.run_id = e.run_id
                          WHERE e.source_hash = ? AND e.target_hash <> e.source_hash
                                AND e.target_hash NOT IN (SELECT node FROM kept) GROUP BY e.target_hash)
            SELECT node, count(*) OVER () FROM next ORDER BY runs DESC, node LIMIT ? OFFSET ?""",
                                  [run_ids, kept, node, limit, offset]).fetchall()
    else:
        found = store.con.execute("""
            WITH sel AS (SELECT unnest(?::VARCHAR[]) AS run_id), kept AS (SELECT unnest(?::VARCHAR[]) AS node),
                 next AS (SELECT constitution_hash AS node, count(DISTINCT r.run_id) AS runs FROM revisions r
                          SEMI JOIN sel ON sel.run_id = r.run_id
                          WHERE r.step = 0 AND r.constitution_hash NOT IN (SELECT node FROM kept)
                          GROUP BY r.constitution_hash)
            SELECT node, count(*) OVER () FROM next ORDER BY runs DESC, node LIMIT ? OFFSET ?""",
                                  [run_ids, kept, limit, offset]).fetchall()
    if not found:
        return [], [], _count_next(store, run_ids, kept, node)
    page = [str(r[0]) for r in found]
    by_hash = {r["node"]: r for r in dict_rows(store.con, _stats_sql(True) + """
        SELECT s.*, c.n_principles FROM stats s JOIN constitutions c ON c.hash = s.node
        WHERE s.node IN (SELECT unnest(?::VARCHAR[]))""", [run_ids, page, page])}
    nodes = [by_hash[h] for h in page if h in by_hash]
    _add_more(store, run_ids, kept, nodes)
    edges = dict_rows(store.con, """
        WITH sel AS (SELECT unnest(?::VARCHAR[]) AS run_id), page AS (SELECT unnest(?::VARCHAR[]) AS node),
             ends AS (SELECT unnest(?::VARCHAR[]) AS node)
        SELECT e.source_hash AS source, e.target_hash AS target, count(DISTINCT e.run_id) AS runs,
               bool_or(v.cycle_to IS NOT NULL) AS cycle
        FROM edges e SEMI JOIN sel ON sel.run_id = e.run_id JOIN revisions v ON v.id = e.target_id
        WHERE e.source_hash <> e.target_hash
              AND ((e.source_hash = ? AND e.target_hash IN (SELECT node FROM page))
                   OR (e.source_hash IN (SELECT node FROM page) AND e.target_hash IN (SELECT node FROM ends)))
        GROUP BY e.source_hash, e.target_hash ORDER BY runs DESC, source, target""",
                  [run_ids, page, [*kept, *page], node or ""])
    return nodes, edges, int(found[0][1])


def _count_next(store: Store, run_ids: list[str], kept: list[str], node: str | None) -> int:
    """How many nodes :func:`next_rows` pages through (for a page past the end)."""
    if node is not None:
        [(count,)] = store.con.execute("""
            SELECT count(DISTINCT e.target_hash) FROM edges e
            WHERE e.run_id IN (SELECT unnest(?::VARCHAR[])) AND e.source_hash = ? AND e.target_hash <> e.source_hash
                  AND e.target_hash NOT IN (SELECT unnest(?::VARCHAR[]))""", [run_ids, node, kept]).fetchall()
    else:
        [(count,)] = store.con.execute("""
            SELECT count(DISTINCT constitution_hash) FROM revisions
            WHERE run_id IN (SELECT unnest(?::VARCHAR[])) AND step = 0
                  AND constitution_hash NOT IN (SELECT unnest(?::VARCHAR[]))""", [run_ids, kept]).fetchall()
    return int(count)
