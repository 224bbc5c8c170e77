"""Reads the analysis needs for many runs at once: one query instead of one per run.

Functions of a :class:`~stability.store.store.Store` (it stays the only SQL owner; store.py is kept short). Each
returns what the per-run accessor returns for every run, in the order of ``run_ids``.
"""

from __future__ import annotations

import json

import numpy as np

from stability.records import RatingRecord
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


def principle_lists(store: Store, hashes: list[str]) -> dict[str, tuple[str, ...]]:
    """Each constitution's principles in order (as :meth:`Store.principle_rows` grouped), every hash given
    included (no principles: an empty tuple).

    Unsorted rows, ordered here by integer keys: on the 100k benchmark database (510k principle rows) the SQL
    sort by (64-character hash, position) cost 0.9 s of CPU, this whole read 0.35 s. Each distinct text is read
    (and made a Python string) once and the tuples share them: the 1M benchmark database has 5.2M principle rows
    and 5,200 distinct texts."""
    store.con.execute(
        """CREATE OR REPLACE TEMP TABLE _wanted_principles AS
           SELECT w.i, p.position, p.text FROM principles p
           JOIN (SELECT unnest(?::VARCHAR[]) AS h, unnest(range(len(?::VARCHAR[]))) AS i) w
           ON p.constitution_hash = w.h""", [hashes, hashes])
    try:
        distinct = store.con.execute("SELECT DISTINCT text FROM _wanted_principles").fetchnumpy()["text"]
        columns = store.con.execute(
            """SELECT r.i, r.position, t.code FROM _wanted_principles r
               JOIN (SELECT unnest(?::VARCHAR[]) AS text, unnest(range(len(?::VARCHAR[]))) AS code) t
               USING (text)""", [distinct.tolist(), distinct.tolist()]).fetchnumpy()
    finally:
        store.con.execute("DROP TABLE IF EXISTS _wanted_principles")
    index, codes = np.asarray(columns["i"], dtype=np.int64), np.asarray(columns["code"], dtype=np.int64)
    order = np.lexsort((np.asarray(columns["position"], dtype=np.int64), index))
    ordered = np.asarray(distinct, dtype=object)[codes[order]].tolist()
    ends = np.cumsum(np.bincount(index, minlength=len(hashes))).tolist()
    out: dict[str, tuple[str, ...]] = {}
    start = 0
    for digest, end in zip(hashes, ends, strict=True):
        out[digest] = tuple(ordered[start:end])
        start = end
    return out
