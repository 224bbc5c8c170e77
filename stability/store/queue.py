"""The store's write queue and its committer thread: group commit without stalling the event loop.

A DuckDB statement costs milliseconds of CPU however small it is, and the store is used from the event loop
that also carries every call in flight. So the frequent writes (calls, constitutions, revisions and edges,
ratings, runs and their status changes) are queued, and committed together — one transaction, one multi-row
``INSERT`` per table — by a single committer thread with its own DuckDB connection. DuckDB releases the GIL
while it works, so the loop goes on parsing answers meanwhile; whatever reaches the queue during one commit goes
into the next. That is group commit: 50 calls finishing together cost a few commits, not 50.

- ``await committed()`` returns once everything queued before it is committed. The call path awaits it before
  handing an answer to a protocol: *persisted before used*.
- ``await lookup(...)`` answers a call-cache lookup in the same trip to the committer thread, after the commit.
- Synchronous users (every read, every immediate write, closing) call :meth:`WriteQueue.flush` first, so the
  store always reads its own writes.

A write still queued when the process is killed is one that resuming re-derives: a revision or a status is
recomputed from the calls it came from, which were committed before they were used.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb

#: queued tables, parents before children
TABLES = ("runs", "constitutions", "principles", "constitution_sources", "revisions", "edges", "calls", "ratings")
#: tables whose rows a replay may offer again: the first one written is kept
IGNORED = frozenset({"constitutions", "principles", "constitution_sources", "revisions", "edges", "ratings"})
ROWS_PER_STATEMENT = 200

Lookup = tuple[str, int, str]  # (cache key, sample index, run id)
Finder = Callable[[duckdb.DuckDBPyConnection, list[Lookup]], list[Any]]


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


class WriteQueue:
    def __init__(self, con: duckdb.DuckDBPyConnection, find: Finder) -> None:
        self._main = con
        self._find = find
        self._lock = threading.Lock()  # guards the queue, held only for an append or a swap
        self._commit_lock = threading.Lock()  # one commit at a time, on the committer's connection
        self._inserts: dict[str, dict[Any, dict[str, Any]]] = {}  # table -> key -> row, first one wins
        self._updates: list[tuple[str, list[Any]]] = []  # run after the inserts, in order
        self._writer: duckdb.DuckDBPyConnection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._waiting: list[asyncio.Future[None]] = []
        self._lookups: list[tuple[Lookup, asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0  # transactions written (the benchmark reports commits per call)

    # -- queueing ---------------------------------------------------------------------------------------------

    def insert(self, table: str, row: dict[str, Any], key: Any) -> None:
        with self._lock:
            self._inserts.setdefault(table, {}).setdefault(key, row)

    def update(self, sql: str, params: list[Any]) -> None:
        with self._lock:
            self._updates.append((sql, params))

    # -- committing -------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Commit everything queued, now, in this thread (waiting for a commit in progress to end first)."""
        with self._commit_lock:
            self._commit_locked()

    def _commit_locked(self) -> None:
        with self._lock:  # take the queue; the loop goes on queueing into a fresh one meanwhile
            if not self._inserts and not self._updates:
                return
            inserts, updates = self._inserts, self._updates
            self._inserts, self._updates = {}, []
        con = self._connection()
        con.execute("BEGIN TRANSACTION")
        try:
            for table in TABLES:
                rows = list(inserts.get(table, {}).values())
                for start in range(0, len(rows), ROWS_PER_STATEMENT):
                    self._insert_rows(con, table, rows[start:start + ROWS_PER_STATEMENT])
            for sql, params in updates:
                con.execute(sql, params)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        self.commits += 1

    @staticmethod
    def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        marks = "(" + ", ".join("?" for _ in columns) + ")"
        values = [to_json(v) if isinstance(v, dict | list) else v for row in rows for v in (row[c] for c in columns)]
        verb = "INSERT OR IGNORE" if table in IGNORED else "INSERT"
        con.execute(f"{verb} INTO {table} ({', '.join(columns)}) VALUES " + ", ".join(marks for _ in rows), values)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._writer is None:
            self._writer = self._main.cursor()  # its own connection to the same database
        return self._writer

    def _commit_and_find(self, lookups: list[Lookup]) -> list[Any]:
        with self._commit_lock:
            self._commit_locked()
            return self._find(self._connection(), lookups) if lookups else []

    # -- the event loop's side --------------------------------------------------------------------------------

    def committed(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append(waiter)
        self._wake(loop)
        return waiter

    def lookup(self, query: Lookup) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        found: asyncio.Future[Any] = loop.create_future()
        self._lookups.append((query, found))
        self._wake(loop)
        return found

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        committer = self._committer
        if committer is None or committer.done() or committer.get_loop() is not loop:
            self._committer = loop.create_task(self._commit_loop())

    async def _commit_loop(self) -> None:
        """Commit (and look up) for whoever is waiting; whoever arrives meanwhile goes into the next round."""
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stability-commit")
        while self._waiting or self._lookups:
            waiting, self._waiting = self._waiting, []
            lookups, self._lookups = self._lookups, []
            try:
                found = await loop.run_in_executor(self._thread, self._commit_and_find, [q for q, _ in lookups])
            except Exception as err:  # every waiter of this round learns that its commit failed
                for future in [*waiting, *(f for _, f in lookups)]:
                    if not future.done():
                        future.set_exception(err)
                continue
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(None)
            for (_, future), call in zip(lookups, found, strict=True):
                if not future.done():
                    future.set_result(call)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=True)
            if self._writer is not None:
                self._writer.close()
