"""Reads the analysis needs for many runs at once: one query instead of one per run.

Functions of a :class:`~stability.store.store.Store` (it stays the only SQL owner; store.py is kept short). Each
returns what the per-run accessor returns for every run, in the order of ``run_ids``.
"""

from __future__ import annotations

import json

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
