"""The store's write queue and its committer thread: group commit without stalling the event loop.

A DuckDB statement costs milliseconds of CPU however small it is, and the store is used from the event loop
that also carries every call in flight. So the frequent writes (calls, constitutions, revisions and edges,
ratings, runs and their status changes) are queued, and committed together by a single committer thread with
its own DuckDB connection: one transaction, one ``INSERT`` per table (each column bound as one list and
unnested, so a statement costs about the same for 1 row as for 1,000), and one ``UPDATE ... FROM`` per table
for the status changes, merged per row. DuckDB releases the GIL while it works, so the loop goes on parsing
answers meanwhile; whatever reaches the queue during one commit goes into the next. That is group commit: 50
calls finishing together cost a few commits, not 50.

- ``await committed()`` returns once everything queued before it is committed. The call path awaits it before
  handing an answer to a protocol: *persisted before used*. Each queued row has a sequence number and a waiter
  is released only when the committed sequence has passed its own, so a waiter never mistakes someone else's
  commit for its own. A commit that fails (a bug: a broken constraint) leaves the queue *broken*: every later
  commit and every waiter raises, and nothing is used unstored.
- ``await lookup(...)`` answers a call-cache lookup on the committer thread, after the commit of its round.
- Synchronous users (every read, every immediate write, closing) call :meth:`WriteQueue.flush` first, so the
  store always reads its own writes.

A write still queued when the process is killed is one that resuming re-derives: a revision or a status is
recomputed from the calls it came from, which were committed before they were used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb

#: queued tables, parents before children
TABLES = ("runs", "constitutions", "principles", "constitution_sources", "revisions", "edges", "messages", "calls",
          "ratings", "probes")
#: tables whose rows a replay may offer again: the first one written is kept
IGNORED = frozenset({"constitutions", "principles", "constitution_sources", "revisions", "edges", "messages",
                     "ratings", "probes"})
#: DuckDB's type of each column's list parameter, by its declared type (JSON is bound as text)
_LIST_TYPES = {"JSON": "VARCHAR"}

Lookup = tuple[str, int, str, str]  # (cache key, sample index, run id, cache scope: run | experiment | global)
# (a string: a typing object holding DuckDB's connection type at module level makes nanobind report it leaked)
Finder = Callable[["duckdb.DuckDBPyConnection", list[Lookup]], list[Any]]


class QueueBroken(RuntimeError):
    """A commit failed earlier: the store writes nothing more, and nobody may use an answer it did not store."""


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


class WriteQueue:
    def __init__(self, con: duckdb.DuckDBPyConnection, find: Finder) -> None:
        self._main = con
        self._find = find
        self._lock = threading.Lock()  # guards the queue, held only for an append or a swap
        self._commit_lock = threading.Lock()  # one commit at a time, on the committer's connection
        self._inserts: dict[str, dict[Any, dict[str, Any]]] = {}  # table -> key -> row, first one wins
        #: (table, key columns) -> key -> column -> value: status changes, merged per row (the last value wins)
        self._row_updates: dict[tuple[str, tuple[str, ...]], dict[Any, dict[str, Any]]] = {}
        self._updates: list[tuple[str, list[Any]]] = []  # other statements, run after the row updates, in order
        self._types: dict[str, dict[str, str]] = {}  # table -> column -> declared type (read once)
        self._writer = con.cursor()  # the committer's own connection to the same database
        self._thread: ThreadPoolExecutor | None = None
        self._queued = 0  # sequence number of the last queued row or update
        self._committed = 0  # sequence number of the last committed one
        self._broken: BaseException | None = None  # the failure of a commit, once one failed
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._lookups: list[tuple[Lookup, asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0  # transactions written (the benchmark reports commits per call)
        #: called on the committer's connection after each commit, under the commit lock (snapshots for readers)
        self.after_commit: Callable[[Any], None] | None = None

    # -- queueing ---------------------------------------------------------------------------------------------

    def insert(self, table: str, row: dict[str, Any], key: Any) -> None:
        if table not in TABLES:  # a commit writes only the tables it knows: anything else would be lost silently
            raise ValueError(f"the write queue does not commit table {table!r}: add it to queue.TABLES")
        with self._lock:
            self._queued += 1
            self._inserts.setdefault(table, {}).setdefault(key, row)

    def update_row(self, table: str, key: dict[str, Any], values: dict[str, Any]) -> None:
        """Set ``values`` on the row whose ``key`` columns match (after this batch's inserts). Updates of one row
        queued before a commit merge into one, the later value of a column winning."""
        with self._lock:
            self._queued += 1
            rows = self._row_updates.setdefault((table, tuple(key)), {})
            rows.setdefault(tuple(key.values()), {}).update(values)

    def update(self, sql: str, params: list[Any]) -> None:
        """Any other statement, run after the batch's inserts and row updates, in the order queued."""
        with self._lock:
            self._queued += 1
            self._updates.append((sql, params))

    # -- committing -------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Commit everything queued, now, in this thread (waiting for a commit in progress to end first)."""
        with self._commit_lock:
            self._commit_locked()

    def _commit_locked(self) -> None:
        with self._lock:  # take the queue; the loop goes on queueing into a fresh one meanwhile
            if not self._inserts and not self._updates and not self._row_updates:
                return
            if self._broken is not None:
                raise QueueBroken(f"an earlier commit failed ({self._broken}); nothing more is written") \
                    from self._broken
            inserts, row_updates, updates, upto = self._inserts, self._row_updates, self._updates, self._queued
            self._inserts, self._row_updates, self._updates = {}, {}, []
        con = self._writer
        try:
            con.execute("BEGIN TRANSACTION")
            for table in TABLES:
                rows = list(inserts.get(table, {}).values())
                if rows:
                    self._insert_rows(con, table, rows)
            for (table, key), changes in row_updates.items():
                self._update_rows(con, table, key, changes)
            for sql, params in updates:
                con.execute(sql, params)
            con.execute("COMMIT")
        except BaseException as err:
            self._broken = err
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        self._committed = upto
        self.commits += 1
        if self.after_commit is not None:
            self.after_commit(con)

    def _column_types(self, con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
        if table not in self._types:
            self._types[table] = dict(con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ?",
                [table]).fetchall())
        return self._types[table]

    def _lists(self, con: duckdb.DuckDBPyConnection, table: str, columns: list[str],
               rows: list[tuple[Any, ...]]) -> tuple[str, list[list[Any]]]:
        """``unnest(?::TYPE[]) AS column, ...`` and its parameters: each column's values as one list."""
        types = self._column_types(con, table)
        select = ", ".join(f"unnest(?::{_LIST_TYPES.get(types[c], types[c])}[]) AS {c}" for c in columns)
        params = [[to_json(v) if isinstance(v, dict | list) else v for v in values]
                  for values in zip(*rows, strict=True)]
        return select, params

    def _insert_rows(self, con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
        self.insert_rows(con, table, rows, ignore=table in IGNORED)

    def insert_rows(self, con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]],
                    ignore: bool = False) -> None:
        """Insert ``rows`` (dicts with the same keys) now, on ``con``, in one statement; ``ignore``: a row whose
        key exists is skipped. The queue commits with it; the store uses it for its immediate bulk writes."""
        if not rows:
            return
        columns = list(rows[0])
        select, params = self._lists(con, table, columns, [tuple(row[c] for c in columns) for row in rows])
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        con.execute(f"{verb} INTO {table} ({', '.join(columns)}) SELECT {select}", params)

    def _update_rows(self, con: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...],
                     changes: dict[Any, dict[str, Any]]) -> None:
        """One ``UPDATE ... FROM`` per set of changed columns."""
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for key_values, values in changes.items():
            by_columns.setdefault(tuple(values), []).append((*key_values, *values.values()))
        for columns, rows in by_columns.items():
            names = [*key, *columns]
            select, params = self._lists(con, table, names, rows)
            sets = ", ".join(f"{c} = v.{c}" for c in columns)
            match = " AND ".join(f"{table}.{c} = v.{c}" for c in key)
            con.execute(f"UPDATE {table} SET {sets} FROM (SELECT {select}) v WHERE {match}", params)

    def _commit(self) -> None:
        with self._commit_lock:
            self._commit_locked()

    def _find_locked(self, lookups: list[Lookup]) -> list[Any]:
        with self._commit_lock:
            return self._find(self._writer, lookups)

    # -- the event loop's side --------------------------------------------------------------------------------

    def committed(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if self._committed >= self._queued and self._broken is None:
            waiter.set_result(None)  # nothing of ours is waiting to be written
            return waiter
        self._waiting.append((self._queued, waiter))
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
            # futures of an earlier event loop (ended before they were answered) are dropped, not answered
            waiting = [(n, f) for n, f in self._waiting if f.get_loop() is loop]
            lookups = [(q, f) for q, f in self._lookups if f.get_loop() is loop]
            self._waiting, self._lookups = [], []
            failure: BaseException | None = None
            try:
                await loop.run_in_executor(self._thread, self._commit)
            except Exception as err:
                failure = err
            for upto, waiter in waiting:  # released only once its own rows are committed
                if waiter.done():
                    continue
                if upto <= self._committed:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(failure or QueueBroken(f"not committed: {self._broken}"))
            if not lookups:
                continue
            try:
                found = await loop.run_in_executor(self._thread, self._find_locked, [q for q, _ in lookups])
            except Exception as err:
                for _, future in lookups:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), call in zip(lookups, found, strict=True):
                if not future.done():
                    future.set_result(call)

    def close(self) -> None:
        try:
            if self._broken is None:
                self.flush()
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=True)
            self._writer.close()
