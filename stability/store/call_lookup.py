"""Finding completed calls by cache key: the lookup behind ``Store.find_calls`` and the write queue's
in-batch deduplication, a function of a connection so the queue that runs it holds no reference to the store."""

from __future__ import annotations

import duckdb

from stability.records import CallRecord
from stability.store import chains
from stability.store.cache_from import answer_from_cache_store
from stability.store.rows import decode_json, dict_rows


def find_calls(con: duckdb.DuckDBPyConnection, queries: list[tuple[str, int, str, str]]) -> list[CallRecord | None]:
    """:meth:`Store.find_call` for many (cache key, sample index, run id) on ``con``; a function, not a method,
    so the write queue that runs it holds no reference back to the store."""
    if not queries:
        return []
    # Two steps: match on the narrow key columns only (a scan that never reads the stored requests and responses),
    # then read the whole rows of the matches alone, by primary key.
    matches = con.execute(
        """WITH q AS (SELECT unnest(?::VARCHAR[]) AS k, unnest(?::BIGINT[]) AS i, unnest(?::VARCHAR[]) AS r,
                             unnest(?::VARCHAR[]) AS s, unnest(range(?)) AS n)
           SELECT q.n, c.id FROM q JOIN calls c
             ON c.cache_key = q.k AND c.sample_index = q.i AND c.status = 'ok'
                AND (q.s = 'global' OR c.run_id = q.r
                     OR (q.s = 'experiment' AND c.run_id IN (
                         SELECT peer.run_id FROM experiment_runs mine JOIN experiment_runs peer USING (experiment_id)
                         WHERE mine.run_id = q.r AND peer.run_id IS NOT NULL)))
           QUALIFY row_number() OVER (PARTITION BY q.n ORDER BY (c.run_id = q.r) DESC,
                                      (c.cached_from IS NULL) DESC, c.created_at, c.id) = 1""",
        [[q[0] for q in queries], [q[1] for q in queries], [q[2] for q in queries], [q[3] for q in queries],
         len(queries)]).fetchall()
    found: list[CallRecord | None] = [None] * len(queries)
    if not matches:
        return answer_from_cache_store(con, queries, found)
    ids = sorted({call_id for _, call_id in matches})  # an IN list of constants: primary-key lookups
    rows = {r["id"]: r for r in chains.with_messages(
        con, dict_rows(con, f"SELECT * FROM calls WHERE id IN ({', '.join('?' for _ in ids)})", ids))}
    for number, call_id in matches:
        found[number] = CallRecord(**decode_json(dict(rows[call_id]), ("response", "retries")))
    return answer_from_cache_store(con, queries, found)
