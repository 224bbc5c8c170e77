"""The read-side SQL of ``stability view``: pages and summaries small enough for a browser, whatever the store's size.

Every function reads one page (``offset``, ``limit``) or one aggregate, so a page of the viewer costs a few
queries however many revisions the store holds. Rows come back as plain dicts (JSON-ready but for timestamps,
which the caller serialises). A table another version may lack (``judgements``) is looked up before it is read.
"""

from __future__ import annotations

import json
from typing import Any

from stability.records import CallRecord
from stability.store.chains import with_messages
from stability.store.rows import decode_json, dict_rows
from stability.store.store import Store

#: at most this many rows in any one page
MAX_PAGE = 500


def _page(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def table_columns(store: Store, table: str) -> list[str]:
    """The columns of ``table`` in order; empty when the store has no such table."""
    return [r[0] for r in store.con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
        "ORDER BY column_index", [table]).fetchall()]


# -- experiments ----------------------------------------------------------------------------------------------

def experiment_rows(store: Store, experiment_id: str | None = None) -> list[dict[str, Any]]:
    """Every experiment (or the one given) with its cell count, cells per state and paid cost, oldest first."""
    rows = dict_rows(store.con, """
        WITH cost AS (SELECT e.experiment_id, coalesce(sum(c.cost_usd), 0) AS cost_usd, count(c.id) AS calls
                      FROM experiment_runs e JOIN calls c ON c.run_id = e.run_id AND c.cached_from IS NULL
                      GROUP BY e.experiment_id)
        SELECT x.id, x.name, x.spec_path, x.created_at, count(e.cell) AS cells,
               count(*) FILTER (WHERE e.status = 'done') AS done,
               count(*) FILTER (WHERE e.status = 'running') AS running,
               count(*) FILTER (WHERE e.status = 'failed') AS failed,
               count(*) FILTER (WHERE e.status = 'not_started') AS not_started,
               any_value(cost.cost_usd) AS cost_usd, any_value(cost.calls) AS paid_calls
        FROM experiments x LEFT JOIN experiment_runs e ON e.experiment_id = x.id
             LEFT JOIN cost ON cost.experiment_id = x.id
        WHERE ? IS NULL OR x.id = ?
        GROUP BY x.id, x.name, x.spec_path, x.created_at ORDER BY x.created_at, x.id""", [experiment_id, experiment_id])
    for row in rows:
        row["cost_usd"] = float(row["cost_usd"] or 0.0)
        row["paid_calls"] = int(row["paid_calls"] or 0)
    return rows


def experiment_totals(store: Store, experiment_id: str) -> dict[str, Any]:
    """Calls, paid calls, failed calls, tokens and the paid cost of an experiment's runs, in one query."""
    [row] = dict_rows(store.con, """
        SELECT count(c.id) AS calls, count(c.id) FILTER (WHERE c.cached_from IS NULL AND c.status = 'ok') AS paid,
               count(c.id) FILTER (WHERE c.status = 'error') AS failed,
               coalesce(sum(c.input_tokens), 0) AS input_tokens, coalesce(sum(c.output_tokens), 0) AS output_tokens,
               coalesce(sum(c.cost_usd) FILTER (WHERE c.cached_from IS NULL), 0) AS cost_usd
        FROM experiment_runs e JOIN calls c ON c.run_id = e.run_id WHERE e.experiment_id = ?""", [experiment_id])
    return row


def cell_progress(store: Store, experiment_id: str, offset: int, limit: int,
                  status: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """A page of an experiment's cells (running ones first when ``status`` is None): state, run, steps so far,
    calls so far, the run's stop reason; and how many cells match."""
    where = "e.experiment_id = ?" + (" AND e.status = ?" if status else "")
    params: list[Any] = [experiment_id] + ([status] if status else [])
    [(total,)] = store.con.execute(f"SELECT count(*) FROM experiment_runs e WHERE {where}", params).fetchall()
    rows = dict_rows(store.con, f"""
        SELECT e.cell, e.position, e.status, e.run_id, e.config, r.stop_reason, r.created_at, r.finished_at,
               (SELECT count(*) FROM revisions v WHERE v.run_id = e.run_id) AS revisions,
               (SELECT count(*) FROM calls c WHERE c.run_id = e.run_id) AS calls
        FROM experiment_runs e LEFT JOIN runs r ON r.id = e.run_id WHERE {where}
        ORDER BY (e.status = 'running') DESC, e.position LIMIT ? OFFSET ?""", [*params, _page(limit), max(0, offset)])
    for row in rows:
        decode_json(row, ("config",))
        row["steps"] = max(int(row.pop("revisions")) - 1, 0)
    return rows, int(total)


def cell_configs(store: Store, experiment_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every cell's state and run configuration, in grid order (the experiment page's factors and states)."""
    return [(str(status), json.loads(config) if isinstance(config, str) else (config or {}))
            for status, config in store.con.execute(
                "SELECT status, config FROM experiment_runs WHERE experiment_id = ? ORDER BY position",
                [experiment_id]).fetchall()]


def experiment_run_ids(store: Store, experiment_id: str) -> list[str]:
    return [r[0] for r in store.con.execute(
        "SELECT run_id FROM experiment_runs WHERE experiment_id = ? AND run_id IS NOT NULL ORDER BY position",
        [experiment_id]).fetchall()]


def experiment_of(store: Store, run_id: str) -> str | None:
    """The experiment whose cell a run fills, if any."""
    row = store.con.execute("SELECT experiment_id FROM experiment_runs WHERE run_id = ? LIMIT 1", [run_id]).fetchone()
    return str(row[0]) if row else None


# -- runs, steps, calls ---------------------------------------------------------------------------------------

def run_rows(store: Store, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """A page of runs, newest first, with their steps and calls so far."""
    [(total,)] = store.con.execute("SELECT count(*) FROM runs").fetchall()
    rows = dict_rows(store.con, """
        SELECT r.id, r.protocol, r.model, r.status, r.stop_reason, r.created_at, r.finished_at,
               (SELECT count(*) FROM revisions v WHERE v.run_id = r.id) AS revisions,
               (SELECT count(*) FROM calls c WHERE c.run_id = r.id) AS calls
        FROM runs r ORDER BY r.created_at DESC, r.id LIMIT ? OFFSET ?""", [_page(limit), max(0, offset)])
    for row in rows:
        row["steps"] = max(int(row.pop("revisions")) - 1, 0)
    return rows, int(total)


def run_totals(store: Store, run_id: str) -> dict[str, Any]:
    """Calls, paid calls, failed calls, tokens and cost of one run."""
    [row] = dict_rows(store.con, """
        SELECT count(*) AS calls, count(*) FILTER (WHERE cached_from IS NULL AND status = 'ok') AS paid,
               count(*) FILTER (WHERE status = 'error') AS failed, coalesce(sum(input_tokens), 0) AS input_tokens,
               coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost_usd), 0) AS cost_usd
        FROM calls WHERE run_id = ?""", [run_id])
    return row


def step_rows(store: Store, run_id: str, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """A page of a run's revisions in step order with the edge into each (kind, call ids); and the step count."""
    [(total,)] = store.con.execute("SELECT count(*) FROM revisions WHERE run_id = ?", [run_id]).fetchall()
    rows = dict_rows(store.con, """
        SELECT v.step, v.id, v.constitution_hash, v.decision, v.cycle_to, v.detail, e.kind, e.call_ids
        FROM revisions v LEFT JOIN edges e ON e.target_id = v.id
        WHERE v.run_id = ? ORDER BY v.step LIMIT ? OFFSET ?""", [run_id, _page(limit), max(0, offset)])
    for row in rows:
        decode_json(row, ("call_ids",))
        row["call_ids"] = row["call_ids"] or []
    return rows, int(total)


def hash_before(store: Store, run_id: str, step: int) -> str | None:
    """The constitution a run held just before ``step`` (for the diff of the first step of a page)."""
    row = store.con.execute("SELECT constitution_hash FROM revisions WHERE run_id = ? AND step < ? "
                            "ORDER BY step DESC LIMIT 1", [run_id, step]).fetchone()
    return str(row[0]) if row else None


def call_rows(store: Store, call_ids: list[str]) -> list[dict[str, Any]]:
    """Summaries of these calls (no request or response bodies), in the order given."""
    if not call_ids:
        return []
    rows = {r["id"]: r for r in dict_rows(store.con, """
        SELECT id, step, purpose, model, status, input_tokens, output_tokens, cost_usd, attempts, latency_ms,
               cached_from, finish_reason, error, thinking IS NOT NULL AS has_thinking
        FROM calls WHERE id IN (SELECT unnest(?::VARCHAR[]))""", [call_ids])}
    return [rows[i] for i in call_ids if i in rows]


def step_call_rows(store: Store, run_id: str, step: int) -> list[dict[str, Any]]:
    """Summaries of every call a run made at ``step`` (also those behind no edge: retries, ratings, probes)."""
    ids = [r[0] for r in store.con.execute("SELECT id FROM calls WHERE run_id = ? AND step = ? ORDER BY created_at, id",
                                           [run_id, step]).fetchall()]
    return call_rows(store, ids)


def call(store: Store, call_id: str) -> CallRecord | None:
    rows = with_messages(store.con, dict_rows(store.con, "SELECT * FROM calls WHERE id = ?", [call_id]))
    return CallRecord(**decode_json(rows[0], ("response", "retries"))) if rows else None


def node_at(store: Store, run_id: str, step: int) -> str | None:
    """The constitution a run reached at a step."""
    found = store.con.execute("SELECT constitution_hash FROM revisions WHERE run_id = ? AND step = ?",
                              [run_id, step]).fetchall()
    return str(found[0][0]) if found else None


def judgement_rows(store: Store, nodes: list[str], limit: int = MAX_PAGE) -> list[dict[str, Any]]:
    """Rows of the ``judgements`` table about these nodes (a judgement's first subject is the constitution it
    judged; an equivalence judgement names principles and is found by neither), when the store has that table;
    otherwise none. JSON columns stay as stored text."""
    if not nodes or "subjects" not in table_columns(store, "judgements"):
        return []
    marks = ", ".join("?" for _ in nodes)
    return dict_rows(store.con, "SELECT *, json_extract_string(subjects, '$[0]') AS node FROM judgements "
                            f"WHERE json_extract_string(subjects, '$[0]') IN ({marks}) "
                            "ORDER BY question, created_at, id LIMIT ?", [*nodes, _page(limit)])


# -- search -----------------------------------------------------------------------------------------------------

def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_principles(store: Store, query: str, offset: int, limit: int,
                      shown: int = 3) -> tuple[list[dict[str, Any]], int]:
    """A page of the distinct principle texts containing ``query`` (case-insensitive), most-visited first: how many
    constitutions and runs hold each, and its first ``shown`` appearances (run, step, position). One pass over the
    matching principles: the page, its total and the appearances come from the same query."""
    pattern = _like(query)
    rows = dict_rows(store.con, """
        WITH hits AS (SELECT p.text, p.constitution_hash, p.position, v.run_id, v.step
                      FROM principles p LEFT JOIN revisions v ON v.constitution_hash = p.constitution_hash
                      WHERE p.text ILIKE ? ESCAPE '\\')
        SELECT text, count(DISTINCT constitution_hash) AS constitutions, count(DISTINCT run_id) AS runs,
               count(*) OVER () AS total,
               arg_min({'run_id': run_id, 'step': step, 'position': position, 'constitution_hash': constitution_hash},
                       (run_id, step), ?) FILTER (WHERE run_id IS NOT NULL) AS appears
        FROM hits GROUP BY text ORDER BY runs DESC, constitutions DESC, text LIMIT ? OFFSET ?""",
                 [pattern, max(1, shown), _page(limit), max(0, offset)])
    if rows:
        total = int(rows[0]["total"])
    else:  # a page past the end: count on its own
        [(total,)] = store.con.execute("SELECT count(DISTINCT text) FROM principles WHERE text ILIKE ? ESCAPE '\\'",
                                       [pattern]).fetchall()
    for row in rows:
        del row["total"]
        row["appears"] = sorted(row["appears"] or [], key=lambda a: (a["run_id"], a["step"]))
    return rows, int(total)


# -- nodes ----------------------------------------------------------------------------------------------------

def node_runs(store: Store, digest: str, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the runs that pass through a constitution: the first step each reaches it, and its protocol."""
    [(total,)] = store.con.execute("SELECT count(DISTINCT run_id) FROM revisions WHERE constitution_hash = ?",
                                   [digest]).fetchall()
    rows = dict_rows(store.con, """
        SELECT v.run_id, min(v.step) AS step, any_value(r.protocol) AS protocol, any_value(r.model) AS model
        FROM revisions v JOIN runs r ON r.id = v.run_id WHERE v.constitution_hash = ?
        GROUP BY v.run_id ORDER BY v.run_id LIMIT ? OFFSET ?""", [digest, _page(limit), max(0, offset)])
    return rows, int(total)


def jsonable(value: Any) -> Any:
    """A stored JSON text as its value (a judgements row's JSON columns come back as text)."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
