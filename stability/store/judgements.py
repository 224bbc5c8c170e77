"""The SQL of judgements (``stability judge``): a judge model's stored answers to questions of meaning.

A judgement is keyed by its id, the sha256 of (judge key, template hash, question, subject key), so asking the same
question of the same judge about the same subject finds the stored row instead of asking again. Rows are written
immediately (not through the write queue) and only after their call is committed, so a judgement never refers to
a call that is not stored.
"""

from __future__ import annotations

import json
from typing import Any

from stability.records import JudgementRecord
from stability.store.json_values import to_json
from stability.store.store import Store

_JSON = ("judge_params", "subjects", "detail")


def insert_judgement(store: Store, judgement: JudgementRecord) -> None:
    """Write one judgement now; a judgement already stored under its id is left as it is."""
    row = judgement.model_dump()
    values = [to_json(v) if isinstance(v, dict | list) else v for v in row.values()]
    store.con.execute(f"INSERT OR IGNORE INTO judgements ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                      values)


def judgements_by_id(store: Store, ids: list[str]) -> dict[str, JudgementRecord]:
    """The stored judgements among ``ids``."""
    if not ids:
        return {}
    rows = _rows(store, "SELECT * FROM judgements WHERE id IN (SELECT unnest(?::VARCHAR[]))", [ids])
    return {r["id"]: JudgementRecord(**r) for r in rows}


def judgements_of(store: Store, judge_model: str | None = None, questions: list[str] | None = None
                  ) -> list[JudgementRecord]:
    """Stored judgements, of one judge model (by its full id) or all, oldest first (none in a store that predates
    them, opened read-only)."""
    if not _has_table(store):
        return []
    where, params = ["true"], []
    if judge_model is not None:
        where.append("judge_model = ?")
        params.append(judge_model)
    if questions is not None:
        where.append("question IN (SELECT unnest(?::VARCHAR[]))")
        params.append(questions)  # type: ignore[arg-type]
    rows = _rows(store, f"SELECT * FROM judgements WHERE {' AND '.join(where)} ORDER BY created_at, id", params)
    return [JudgementRecord(**r) for r in rows]


def judge_models(store: Store) -> list[str]:
    """Every judge model with stored judgements."""
    if not _has_table(store):
        return []
    return [r[0] for r in store.con.execute("SELECT DISTINCT judge_model FROM judgements ORDER BY 1").fetchall()]


def _has_table(store: Store) -> bool:
    return store.con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'judgements'").fetchone() is not None


def _rows(store: Store, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = store.con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    out = []
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        for column in _JSON:
            if isinstance(row.get(column), str):
                row[column] = json.loads(row[column])
        out.append(row)
    return out
