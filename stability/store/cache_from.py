"""``--cache-from``: calls of another store, attached read-only, answering lookups this store cannot.

The other store is attached under :data:`CACHE_FROM` on the store's connection (so the write queue's committer,
a cursor of the same database, sees it too) by :func:`stability.store.export.attach_cache_from`. A call found
there is recorded in this store as a cache hit whose ``cached_from`` is the other store's call id.
"""

from __future__ import annotations

import json

import duckdb

from stability.records import CallRecord
from stability.store.chains import with_messages

#: the alias another store's calls are attached under
CACHE_FROM = "cache_from_store"


def answer_from_cache_store(con: duckdb.DuckDBPyConnection, queries: list[tuple[str, int, str, str]],
                            found: list[CallRecord | None]) -> list[CallRecord | None]:
    """Fill the lookups the store itself could not answer from the attached ``--cache-from`` store, if any;
    ``run``-scoped lookups take no other run's answer, so none from there either."""
    wanted = [(n, q) for n, q in enumerate(queries) if found[n] is None and q[3] != "run"]
    if not wanted or not con.execute("SELECT 1 FROM duckdb_databases() WHERE database_name = ?",
                                     [CACHE_FROM]).fetchone():
        return found
    cursor = con.execute(
        f"""WITH q AS (SELECT unnest(?::VARCHAR[]) AS k, unnest(?::BIGINT[]) AS i, unnest(?::VARCHAR[]) AS r,
                          unnest(?::BIGINT[]) AS n)
            SELECT q.n, c.* FROM q JOIN {CACHE_FROM}.calls c
              ON c.cache_key = q.k AND c.sample_index = q.i AND c.status = 'ok' AND c.run_id != q.r
            QUALIFY row_number() OVER (PARTITION BY q.n ORDER BY (c.cached_from IS NULL) DESC, c.created_at,
                                       c.id) = 1""",
        [[q[0] for _, q in wanted], [q[1] for _, q in wanted], [q[2] for _, q in wanted], [n for n, _ in wanted]])
    names = [d[0] for d in cursor.description]
    fetched = cursor.fetchall()
    # a store written before message chains has no chain column: its requests are whole
    records = with_messages(con, [dict(zip(names[1:], row[1:], strict=True)) for row in fetched], CACHE_FROM)
    out = list(found)
    for row, record in zip(fetched, records, strict=True):
        for column in ("response", "retries"):
            if isinstance(record.get(column), str):
                record[column] = json.loads(record[column])
        out[int(row[0])] = CallRecord(**record)
    return out
