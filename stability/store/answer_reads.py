"""Reads about how models answered: the answer formats a run's calls learned, and the rows of the answer-reading
report (``stability answers``).

Functions of a :class:`~stability.store.store.Store` (it stays the only SQL owner; store.py is kept short).
"""

from __future__ import annotations

from typing import Any

from stability.store.rows import dict_rows
from stability.store.store import Store


def learned_formats(store: Store, run_id: str, model: str) -> tuple[bool, str | None]:
    """What ``run_id``'s stored calls to ``model`` showed of its server: (a request was sent as ``json_object``,
    the last ``fallback_reason`` of an answer that went as text)."""
    json_object = store.con.execute(
        """SELECT count(*) FROM calls WHERE run_id = ? AND model = ?
           AND json_extract_string(request, '$.response_format.type') = 'json_object'""", [run_id, model]).fetchone()
    fallback = store.con.execute(
        """SELECT fallback_reason FROM calls WHERE run_id = ? AND model = ? AND answer_format = 'text'
           AND fallback_reason IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1""", [run_id, model]).fetchone()
    return bool(json_object and json_object[0]), fallback[0] if fallback else None


def reading_rows(store: Store, run_ids: list[str]) -> list[dict[str, Any]]:
    """One row per revision of the runs that read a model's answer (the origin and probes aside): the run, its
    model and protocol, the step, the decision recorded and its detail, and the last call behind it (its id, model,
    text, finish reason, answer format, fallback reason and the response format sent), in run and step order."""
    return dict_rows(store.con, """
        WITH picked AS (SELECT unnest(?::VARCHAR[]) AS run_id),
        revs AS (
            SELECT r.run_id, r.step, r.decision, r.detail, r.id AS revision_id,
                   e.call_ids, CAST(json_array_length(e.call_ids) AS INTEGER) AS n_calls
            FROM revisions r JOIN picked USING (run_id)
            LEFT JOIN edges e ON e.target_id = r.id
            WHERE r.decision <> 'origin'
        )
        SELECT revs.run_id, runs.model AS run_model, runs.protocol, revs.step, revs.decision, revs.detail,
               c.id AS call_id, c.model AS call_model, c.text, c.finish_reason, c.answer_format, c.fallback_reason,
               json_extract_string(c.request, '$.response_format.type') AS response_format
        FROM revs JOIN runs ON runs.id = revs.run_id
        LEFT JOIN calls c ON c.id = json_extract_string(revs.call_ids, '$[' || (revs.n_calls - 1) || ']')
        ORDER BY revs.run_id, revs.step, revs.revision_id""", [run_ids])


