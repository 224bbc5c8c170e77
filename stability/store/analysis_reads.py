"""Reads the analysis needs for many runs at once: one query instead of one per run.

Functions of a :class:`~stability.store.store.Store` (it stays the only SQL owner; store.py is kept short). Each
returns what the per-run accessor returns for every run, in the order of ``run_ids``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, TypeAdapter

from stability.records import RatingRecord, RunStatus
from stability.store.store import Store


def ratings_of(store: Store, run_ids: list[str]) -> list[RatingRecord]:
    """The ratings of the runs (as :meth:`Store.ratings` of each run, concatenated in ``run_ids`` order)."""
    cursor = store.con.execute(
        """SELECT * FROM ratings WHERE run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY run_id, trial, position""",
        [run_ids])
    names = [d[0] for d in cursor.description]
    by_run: dict[str, list[RatingRecord]] = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        if isinstance(row.get("rating_probs"), str):
            row["rating_probs"] = json.loads(row["rating_probs"])
        by_run.setdefault(row["run_id"], []).append(RatingRecord(**row))
    return [rating for run_id in dict.fromkeys(run_ids) for rating in by_run.get(run_id, [])]


class AnalysedRun(BaseModel):
    """The columns of a run the analysis reads, validated as :class:`~stability.records.RunRecord` validates them
    (the other columns are not read: at 1M revisions, 83k whole run records cost 2 s of CPU)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    protocol: str
    model: str
    config: dict[str, Any]
    status: RunStatus
    stop_reason: str | None = None


_ANALYSED_RUNS = TypeAdapter(list[AnalysedRun])


def analysed_runs(store: Store, run_ids: list[str]) -> dict[str, AnalysedRun]:
    """The runs of ``run_ids`` that exist, by id, validated in one call."""
    cursor = store.con.execute(
        """SELECT id, protocol, model, config, status, stop_reason FROM runs
           WHERE id IN (SELECT unnest(?::VARCHAR[]))""", [run_ids])
    rows = [{"id": run_id, "protocol": protocol, "model": model,
             "config": json.loads(config) if isinstance(config, str) else config, "status": status,
             "stop_reason": stop_reason}
            for run_id, protocol, model, config, status, stop_reason in cursor.fetchall()]
    return {run.id: run for run in _ANALYSED_RUNS.validate_python(rows)}


@dataclass(frozen=True, eq=False)
class RevisionColumns:
    """The revisions of some runs as columns, one row per revision, ordered by run (its position in the
    ``run_ids`` given) then step: what :meth:`Store.revision_rows` returns, without a Python object per row.

    Node and decision are integer codes into ``nodes`` and ``decisions`` (one string each); node codes are
    numbered in order of first visit, so ``nodes`` is the visited nodes in the order the runs first reach them."""

    run: np.ndarray  # int64: position in the unique run ids (``run_ids`` with repeats dropped)
    step: np.ndarray  # int64
    node: np.ndarray  # int64 code into ``nodes``
    decision: np.ndarray  # int64 code into ``decisions``
    nodes: list[str]
    decisions: list[str]
    revision_ids: list[str]
    cycle_to: dict[int, str]  # row -> the revision it returns to, for the rows that have one


@dataclass(frozen=True, eq=False)
class PrincipleColumns:
    """The principles of some constitutions as integer codes: the i-th constitution's principles, in order, are
    ``texts[c] for c in codes[offsets[i]:offsets[i + 1]]``."""

    texts: list[str]  # the distinct texts, one string each
    codes: np.ndarray  # int32 code into ``texts`` of every principle, by constitution then position (5.2M at 1M)
    offsets: np.ndarray  # int64, one more than there are constitutions

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def lists(self, hashes: list[str]) -> dict[str, tuple[str, ...]]:
        """Each constitution's principles by its hash (``hashes`` in the order read); the tuples share the
        strings."""
        ordered = np.asarray(self.texts, dtype=object)[self.codes].tolist() if self.texts else []
        ends = self.offsets[1:].tolist()
        out: dict[str, tuple[str, ...]] = {}
        start = 0
        for digest, end in zip(hashes, ends, strict=True):
            out[digest] = tuple(ordered[start:end])
            start = end
        return out


def corpus_columns(store: Store, run_ids: list[str]) -> tuple[RevisionColumns, PrincipleColumns]:
    """The revisions of the runs as columns (see :class:`RevisionColumns`) and the principles of every node they
    visit (see :class:`PrincipleColumns`, one constitution per node, in the order of ``nodes``).

    Strings are made once per distinct node, decision and principle text, and codes are joined in SQL: at 1M
    revisions a Python tuple per row cost ~1 GiB at its peak, and the principles (5.2M rows) are never rows."""
    unique = list(dict.fromkeys(run_ids))
    con = store.con
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _analysed_revisions AS
           SELECT w.i AS run, r.step, r.id, r.constitution_hash AS node, r.decision, r.cycle_to FROM revisions r
           JOIN (SELECT unnest(?::VARCHAR[]) AS run_id, unnest(range(len(?::VARCHAR[]))) AS i) w USING (run_id)""",
        [unique, unique])
    try:
        for column in ("node", "decision"):
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _analysed_{column}s AS
                            SELECT {column}, (row_number() OVER ()) - 1 AS code
                            FROM (SELECT DISTINCT {column} FROM _analysed_revisions)""")
        nodes = con.execute("SELECT node FROM _analysed_nodes ORDER BY code").fetchnumpy()["node"]
        decisions = con.execute("SELECT decision FROM _analysed_decisions ORDER BY code").fetchnumpy()["decision"]
        columns = con.execute(
            """SELECT a.run, a.step, n.code AS node, d.code AS decision, a.id, a.cycle_to FROM _analysed_revisions a
               JOIN _analysed_nodes n USING (node) JOIN _analysed_decisions d USING (decision)
               ORDER BY a.run, a.step""").fetchnumpy()
        con.execute("DROP TABLE _analysed_revisions")
        codes = np.asarray(columns["node"], dtype=np.int64)
        # renumber the nodes in order of first visit (the DISTINCT above has no order)
        seen, first = np.unique(codes, return_index=True)
        order = seen[np.argsort(first, kind="stable")]
        renumber = np.empty(len(nodes), dtype=np.int64)
        renumber[order] = np.arange(len(order))
        principles = _coded_principles(store, "_analysed_nodes", renumber)
    finally:
        for table in ("revisions", "nodes", "decisions"):
            con.execute(f"DROP TABLE IF EXISTS _analysed_{table}")
    cycle_to = columns["cycle_to"]
    returns = np.flatnonzero(~np.ma.getmaskarray(cycle_to))
    revisions = RevisionColumns(
        run=np.asarray(columns["run"], dtype=np.int64), step=np.asarray(columns["step"], dtype=np.int64),
        node=renumber[codes], decision=np.asarray(columns["decision"], dtype=np.int64),
        nodes=np.asarray(nodes, dtype=object)[order].tolist(), decisions=np.asarray(decisions, dtype=object).tolist(),
        revision_ids=np.asarray(columns["id"], dtype=object).tolist(),
        cycle_to=dict(zip(returns.tolist(), np.ma.getdata(cycle_to)[returns].tolist(), strict=True)))
    return revisions, principles


def _coded_principles(store: Store, nodes_table: str, number: np.ndarray) -> PrincipleColumns:
    """The principles of the constitutions of ``nodes_table`` (columns ``node``, a hash, and ``code``; the
    constitution of code c is the ``number[c]``-th, ``number`` a permutation): distinct texts numbered in SQL,
    and the rows (number, position, text code) ordered here by integer keys (on the 100k benchmark database the
    SQL sort by 64-character hash and position cost 0.9 s of CPU)."""
    con = store.con
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _analysed_texts AS
            SELECT text, (row_number() OVER ()) - 1 AS code FROM (
                SELECT DISTINCT p.text FROM principles p SEMI JOIN {nodes_table} n ON p.constitution_hash = n.node)""")
    try:
        texts = con.execute("SELECT text FROM _analysed_texts ORDER BY code").fetchnumpy()["text"]
        columns = con.execute(
            f"""SELECT n.code AS i, p.position, t.code FROM principles p
                JOIN {nodes_table} n ON p.constitution_hash = n.node
                JOIN _analysed_texts t USING (text)""").fetchnumpy()
    finally:
        con.execute("DROP TABLE IF EXISTS _analysed_texts")
    count = len(number)
    index = number[np.asarray(columns["i"], dtype=np.int64)]
    order = np.lexsort((np.asarray(columns["position"], dtype=np.int64), index))
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(index, minlength=count), out=offsets[1:])
    return PrincipleColumns(texts=np.asarray(texts, dtype=object).tolist(),
                            codes=np.asarray(columns["code"], dtype=np.int32)[order], offsets=offsets)


def principle_columns(store: Store, hashes: list[str]) -> PrincipleColumns:
    """The principles of the constitutions ``hashes``, in order (as :meth:`Store.principle_rows` grouped), as
    codes (see :class:`PrincipleColumns`); a hash with no principles (or none stored) has none. Each distinct
    text is read (and made a Python string) once: the 1M benchmark database has 5.2M principle rows and 5,200
    distinct texts."""
    store.con.execute("""CREATE OR REPLACE TEMP TABLE _wanted_nodes AS
                         SELECT unnest(?::VARCHAR[]) AS node, unnest(range(len(?::VARCHAR[]))) AS code""",
                      [hashes, hashes])
    try:
        return _coded_principles(store, "_wanted_nodes", np.arange(len(hashes)))
    finally:
        store.con.execute("DROP TABLE IF EXISTS _wanted_nodes")


def principle_lists(store: Store, hashes: list[str]) -> dict[str, tuple[str, ...]]:
    """Each constitution's principles in order (as :meth:`Store.principle_rows` grouped), every hash given
    included (no principles: an empty tuple); the tuples share one string per distinct text."""
    return principle_columns(store, hashes).lists(hashes)
