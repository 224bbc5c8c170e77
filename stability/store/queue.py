"""The store's write queue and its committer thread: group commit without stalling the event loop.

A DuckDB statement costs about a millisecond of CPU before it carries a row, and the store is used from the
event loop that also carries every call in flight. So the frequent writes (calls, constitutions, revisions and
edges, ratings, runs and their status changes) are queued and persisted together by a single committer thread,
in *rounds*: whatever reaches the queue during one round goes into the next (group commit: 50 calls finishing
together cost a few rounds, not 50).

- **Persisted**: a file store's round is appended to its write journal (:mod:`stability.store.journal`: one
  JSON line, ``fdatasync``) and that releases its waiters. The journalled rounds are applied to DuckDB in one
  transaction once they hold :data:`APPLY_ROWS` rows or the oldest is :data:`APPLY_SECONDS` old (and at every
  read, lookup and close): one ``INSERT`` per table (each column bound as one list and unnested, so a statement
  costs about the same for 1 row as for 1,000) and one ``UPDATE ... FROM`` per table for the status changes,
  merged per row. A scratch (``:memory:``) store has no journal: each round is a DuckDB commit.
- ``await committed()`` returns once everything queued before it is persisted. The call path awaits it before
  handing an answer to a protocol: *persisted before used*. Each queued row has a sequence number and a waiter
  is released only when the persisted sequence has passed its own, so a waiter never mistakes someone else's
  round for its own. A round that fails (a bug: a key written twice) leaves the queue *broken*: every later
  round and every waiter raises, and nothing is used unstored. A duplicate key of ``runs`` or ``calls`` is
  refused before its round is journalled.
- ``await lookup(...)`` answers a call-cache lookup on the committer thread, after its round (and everything
  journalled) is in DuckDB.
- Synchronous users (every read, every immediate write, closing) call :meth:`WriteQueue.flush` first, so the
  store always reads its own writes.

A write still queued when the process is killed is one that resuming re-derives: a revision or a status is
recomputed from the calls it came from, which were persisted before they were used. What was journalled but not
applied is applied by the next open of the store (:func:`recover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb

from stability.errors import StabilityError
from stability.store import journal
from stability.store.journal import Journal
from stability.store.json_values import to_json

log = logging.getLogger("stability.store")

#: queued tables, parents before children (the only tables a journal may insert into)
TABLES = journal.TABLES
#: tables whose rows a replay may offer again: the first one written is kept
IGNORED = frozenset({"constitutions", "principles", "constitution_sources", "revisions", "edges", "messages",
                     "ratings", "probes"})
#: the journalled rounds are applied to DuckDB once they hold this many rows, or the oldest is this old
APPLY_ROWS = 2000
APPLY_SECONDS = 1.0
#: DuckDB's type of each column's list parameter, by its declared type (JSON is bound as text)
_LIST_TYPES = {"JSON": "VARCHAR"}

Lookup = tuple[str, int, str, str]  # (cache key, sample index, run id, cache scope: run | experiment | global)
# (a string: a typing object holding DuckDB's connection type at module level makes nanobind report it leaked)
Finder = Callable[["duckdb.DuckDBPyConnection", list[Lookup]], list[Any]]


class QueueBroken(RuntimeError):
    """A commit failed earlier: the store writes nothing more, and nobody may use an answer it did not store."""


@dataclass
class Batch:
    """Writes not yet in DuckDB: inserts by table and key (the first one wins) and status changes merged per row
    (the last value of a column wins). Data only: what a statement does is decided by the code that writes it."""

    inserts: dict[str, dict[Any, dict[str, Any]]] = field(default_factory=dict)
    #: (table, key columns) -> key -> column -> value
    row_updates: dict[tuple[str, tuple[str, ...]], dict[Any, dict[str, Any]]] = field(default_factory=dict)
    rows: int = 0

    def __bool__(self) -> bool:
        return bool(self.inserts or self.row_updates)

    def merge(self, later: Batch) -> None:
        for table, rows in later.inserts.items():
            mine = self.inserts.setdefault(table, {})
            for key, row in rows.items():
                mine.setdefault(key, row)
        for target, changes in later.row_updates.items():
            mine_changes = self.row_updates.setdefault(target, {})
            for key, values in changes.items():
                mine_changes.setdefault(key, {}).update(values)
        self.rows += later.rows

    def to_json(self) -> dict[str, Any]:
        """The body of a journal line (:class:`stability.store.journal.Round`)."""
        return {"inserts": {t: list(rows.values()) for t, rows in self.inserts.items()},
                "row_updates": [{"table": t, "key": dict(zip(k, kv, strict=True)), "values": v}
                                for (t, k), ch in self.row_updates.items() for kv, v in ch.items()]}

    @classmethod
    def from_round(cls, data: journal.Round) -> Batch:
        """A checked journal round (inserts keyed by position: a replay inserts them all, ignoring existing
        keys)."""
        seq = data.seq  # keys unique across rounds, so merging rounds keeps every row
        batch = cls(inserts={t: {(seq, i): row for i, row in enumerate(rows)} for t, rows in data.inserts.items()})
        for update in data.row_updates:
            changes = batch.row_updates.setdefault((update.table, tuple(update.key)), {})
            changes.setdefault(tuple(update.key.values()), {}).update(update.values)
        batch.rows = sum(len(r) for r in batch.inserts.values()) + len(data.row_updates)
        return batch


class WriteQueue:
    def __init__(self, con: duckdb.DuckDBPyConnection, find: Finder) -> None:
        self._main = con
        self._find = find
        self._lock = threading.Lock()  # guards the queue, held only for an append or a swap
        self._commit_lock = threading.Lock()  # one commit at a time, on the committer's connection
        self._queue = Batch()  # queued, not yet persisted
        self._pending = Batch()  # persisted in the journal, not yet in DuckDB (guarded by the commit lock)
        self._pending_upto = 0  # sequence number of the last round in the journal
        self._pending_since = 0.0  # monotonic time of the oldest round not yet in DuckDB
        #: keys written by this queue in tables whose keys must be new (a duplicate is refused before it is used)
        self._seen: dict[str, set[Any]] = {}
        self._types: dict[str, dict[str, str]] = {}  # table -> column -> declared type (read once)
        self._writer = con.cursor()  # the committer's own connection to the same database
        self._thread: ThreadPoolExecutor | None = None
        self._journal_db: str | None = None  # set: rounds are journalled beside this database file
        self._journal: Journal | None = None  # opened with the first round (a store that writes nothing writes no file)
        self._queued = 0  # sequence number of the last queued row or update
        self._committed = 0  # sequence number of the last persisted one (in the journal or in DuckDB)
        self._broken: BaseException | None = None  # the failure of a commit, once one failed
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._lookups: list[tuple[Lookup, asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._applier: asyncio.Task[None] | None = None
        self.commits = 0  # rounds persisted (the benchmark reports commits per call)
        self.applies = 0  # DuckDB transactions that wrote queued rows
        #: called on the committer's connection after each commit, under the commit lock (snapshots for readers)
        self.after_commit: Callable[[Any], None] | None = None

    def start_journal(self, db: str) -> None:
        """Persist rounds in a journal beside ``db`` from now on, and apply them to DuckDB in batches (a writable
        file store, after its migrations and :func:`recover`); without one, every round is a DuckDB commit."""
        self._journal_db = db

    def _opened_journal(self, db: str) -> Journal:
        """The journal, opened with the first round: its bookmark is committed before the file exists, so a
        journal file without one is never this store's, and a store that writes nothing changes nothing."""
        if self._journal is None:
            token = journal.new_token()
            self._writer.execute("INSERT INTO journal (token, through) VALUES (?, 0)", [token])
            self._journal = Journal(db, token)
        return self._journal

    @property
    def failed(self) -> bool:
        """Whether a commit failed (what was queued since then is in the journal only)."""
        return self._broken is not None

    # -- queueing ---------------------------------------------------------------------------------------------

    def insert(self, table: str, row: dict[str, Any], key: Any) -> None:
        if table not in TABLES:  # a commit writes only the tables it knows: anything else would be lost silently
            raise ValueError(f"the write queue does not commit table {table!r}: add it to queue.TABLES")
        with self._lock:
            self._queued += 1
            self._queue.rows += 1
            self._queue.inserts.setdefault(table, {}).setdefault(key, row)

    def update_row(self, table: str, key: dict[str, Any], values: dict[str, Any]) -> None:
        """Set ``values`` on the row whose ``key`` columns match (after this batch's inserts). Updates of one row
        queued before a commit merge into one, the later value of a column winning."""
        with self._lock:
            self._queued += 1
            self._queue.rows += 1
            rows = self._queue.row_updates.setdefault((table, tuple(key)), {})
            rows.setdefault(tuple(key.values()), {}).update(values)

    # -- committing -------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Commit everything queued (and everything journalled) to DuckDB, now, in this thread (waiting for a
        commit in progress to end first)."""
        with self._commit_lock:
            self._commit_locked(apply=True)

    def _commit_locked(self, apply: bool) -> None:
        with self._lock:  # take the queue; the loop goes on queueing into a fresh one meanwhile
            if not self._queue and not (apply and self._pending):
                return
            if self._broken is not None:
                raise QueueBroken(f"an earlier commit failed ({self._broken}); nothing more is written") \
                    from self._broken
            batch, upto = self._queue, self._queued
            self._queue = Batch()
        try:
            self._refuse_duplicates(batch)
            if self._journal_db is not None and batch:
                self._opened_journal(self._journal_db).append(upto, batch.to_json())
        except BaseException as err:
            self._broken = err
            raise
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.merge(batch)
        if self._journal_db is not None:
            self._pending_upto = upto
            self._committed = max(self._committed, upto)  # persisted: its waiters may go on
            self.commits += 1
        if (apply or self._journal_db is None or self._pending.rows >= APPLY_ROWS
                or time.monotonic() - self._pending_since >= APPLY_SECONDS):
            self._apply_locked()
            self._committed = max(self._committed, upto)
            if self._journal_db is None:
                self.commits += 1

    def _refuse_duplicates(self, batch: Batch) -> None:
        """A key of a table that takes no duplicates is refused here, before it is journalled: DuckDB would refuse
        it only when the batch is applied, after its waiter went on."""
        for table, rows in batch.inserts.items():
            if table in IGNORED:
                continue
            seen = self._seen.setdefault(table, set())
            for key in rows:
                if key in seen:
                    raise duckdb.ConstraintException(
                        f"Constraint Error: duplicate key {key!r} in table {table} (written earlier by this store)")
            seen.update(rows)

    def _apply_locked(self) -> None:
        """Write the pending batch to DuckDB in one transaction (and note in it the last journalled round it
        holds), then empty the journal."""
        batch = self._pending
        if not batch:
            return
        con = self._writer
        try:
            con.execute("BEGIN TRANSACTION")
            self.write_batch(con, batch)
            if self._journal is not None:
                con.execute("UPDATE journal SET through = ? WHERE token = ?", [self._pending_upto, self._journal.token])
            con.execute("COMMIT")
        except BaseException as err:
            self._broken = err
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        self._pending = Batch()
        self.applies += 1
        if self._journal is not None:
            self._journal.truncate()
        if self.after_commit is not None:
            self.after_commit(con)

    def _column_types(self, con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
        if table not in self._types:
            self._types[table] = dict(con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ?",
                [table]).fetchall())
        return self._types[table]

    def schema(self, con: duckdb.DuckDBPyConnection) -> journal.Schema:
        """Every column of the tables a journal may write: what :func:`journal.check_round` checks against."""
        out: journal.Schema = {}
        for table, column, kind, nullable in con.execute(
                "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
                "WHERE schema_name = 'main' AND database_name = current_database() "
                "AND table_name IN (SELECT unnest(?::VARCHAR[])) ORDER BY table_name, column_index",
                [[*journal.TABLES, *journal.UPDATABLE]]).fetchall():
            out.setdefault(table, {})[column] = journal.Column(kind, bool(nullable))
        return out

    def _lists(self, con: duckdb.DuckDBPyConnection, table: str, columns: list[str],
               rows: list[tuple[Any, ...]]) -> tuple[str, list[list[Any]]]:
        """``unnest(?::TYPE[]) AS column, ...`` and its parameters: each column's values as one list."""
        types = self._column_types(con, table)
        select = ", ".join(f"unnest(?::{_LIST_TYPES.get(types[c], types[c])}[]) AS {c}" for c in columns)
        params = [[to_json(v) if isinstance(v, dict | list) else v for v in values]
                  for values in zip(*rows, strict=True)]
        return select, params

    def write_batch(self, con: duckdb.DuckDBPyConnection, batch: Batch, ignore_all: bool = False) -> None:
        """The batch's inserts (parents first), then its row updates, on ``con``, in the caller's transaction.
        ``ignore_all``: a row whose key exists is skipped in every table (a replayed journal, part of which the
        database may hold already)."""
        for table in TABLES:
            rows = list(batch.inserts.get(table, {}).values())
            if rows:
                self.insert_rows(con, table, rows, ignore=ignore_all or table in IGNORED)
        for (table, key), changes in batch.row_updates.items():
            self._update_rows(con, table, key, changes)

    def insert_rows(self, con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]],
                    ignore: bool = False) -> None:
        """Insert ``rows`` (dicts with the same keys) now, on ``con``, in one statement; ``ignore``: a row whose
        key exists is skipped. The queue commits with it; the store uses it for its immediate bulk writes."""
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row in rows:  # rows replayed from journals written by other versions may name other columns
            by_columns.setdefault(tuple(row), []).append(tuple(row.values()))
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        for columns, values in by_columns.items():
            select, params = self._lists(con, table, list(columns), values)
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
            self._commit_locked(apply=False)

    def _apply_due(self) -> None:
        """Apply the journalled rounds once the oldest has waited :data:`APPLY_SECONDS` (a quiet run's rows reach
        DuckDB, and its readers' snapshots, within about that)."""
        with self._commit_lock:
            if self._pending and self._broken is None \
                    and time.monotonic() - self._pending_since >= APPLY_SECONDS:
                self._apply_locked()

    def _find_locked(self, lookups: list[Lookup]) -> list[Any]:
        with self._commit_lock:
            if self._pending and self._broken is None and self._pending_holds(lookups):
                self._apply_locked()  # the lookup's query must see every persisted call that may answer it
            return self._find(self._writer, lookups)

    def _pending_holds(self, lookups: list[Lookup]) -> bool:
        """Whether a call waiting in the journal has one of the keys looked up. If none has, DuckDB already holds
        every call that can answer them, and everything queued before those calls (the rounds are applied in
        order, all at once), so the query needs no apply first."""
        keys = {key for key, _, _, _ in lookups}
        return any(row.get("cache_key") in keys for row in self._pending.inserts.get("calls", {}).values())

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
        if self._pending and (self._applier is None or self._applier.done()):
            self._applier = loop.create_task(self._apply_later())

    async def _apply_later(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending and self._broken is None and self._thread is not None:
            wait = self._pending_since + APPLY_SECONDS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await loop.run_in_executor(self._thread, self._apply_due)

    def close(self) -> None:
        """Apply everything and remove the journal; after a failed commit the journal stays, for the next open
        to apply what it holds."""
        clean = False
        try:
            if self._broken is None:
                self.flush()
                if self._journal is not None:  # a copy of its file found later is stale
                    self._writer.execute("UPDATE journal SET closed_at = now()::TIMESTAMP WHERE token = ?",
                                         [self._journal.token])
                clean = True
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=True)
            if self._journal is not None:
                self._journal.close(remove=clean)
            self._writer.close()


def recover(queue: WriteQueue, con: duckdb.DuckDBPyConnection, db: str) -> int:
    """Apply the journals that stores killed before their close left beside ``db`` (each in one transaction, the
    rounds its last batch did not hold), and remove them. Every journal is read and checked first: one that is
    not this store's, or is damaged, is refused (:class:`StabilityError`, one line) and nothing is applied. A
    stale one (its bookmark closed) is discarded with a warning. Returns the rounds applied."""
    found = journal.scan(db)
    try:
        bookmarks = {token: (int(through), bool(closed)) for token, through, closed in con.execute(
            "SELECT token, through, closed_at IS NOT NULL FROM journal").fetchall()}
        schema = queue.schema(con) if found.orphans else {}
        plans: list[tuple[journal.Orphan, list[journal.Round] | None]] = []
        for orphan in found.orphans:
            mark = bookmarks.get(orphan.token)
            if mark is None:
                raise StabilityError(
                    f"{orphan.path}: a write journal this store never started (no bookmark for {orphan.token}: "
                    "copied from another store, or left by an older stability); nothing was applied (move it away "
                    "to open the store)")
            through, closed = mark
            if closed:
                plans.append((orphan, None))
                continue
            rounds = journal.read(orphan.path, orphan.fd, schema)
            if rounds and rounds[0].prev > through:
                raise StabilityError(
                    f"{orphan.path}: its first line follows round {rounds[0].prev}, but the store holds its rounds "
                    f"only through {through}: lines are missing from its head; nothing was applied")
            plans.append((orphan, [r for r in rounds if r.seq > through]))
        applied = 0
        while plans:
            orphan, todo = plans.pop(0)
            if todo is None:
                log.warning("%s: a stale write journal (its store closed it, or a later open went on without it); "
                            "discarded, nothing of it applied", orphan.path)
            else:
                _apply_rounds(queue, con, orphan, todo, bookmarks[orphan.token][0])
                applied += len(todo)
            found.orphans.remove(orphan)
            journal.release(orphan.path, orphan.fd, remove=True)
        # journals that are gone (removed by hand, or never found under the name they had): a copy found later
        # is stale, and must never move this store back
        present = {o.token for o in found.orphans} | found.held
        gone = [t for t, (_, closed) in bookmarks.items() if not closed and t not in present]
        if gone:
            con.execute("UPDATE journal SET closed_at = now()::TIMESTAMP WHERE token IN (SELECT unnest(?::VARCHAR[]))",
                        [gone])
    finally:
        found.release()
    return applied


def _apply_rounds(queue: WriteQueue, con: duckdb.DuckDBPyConnection, orphan: journal.Orphan,
                  rounds: list[journal.Round], through: int) -> None:
    batch = Batch()
    for data in rounds:
        batch.merge(Batch.from_round(data))
    con.execute("BEGIN TRANSACTION")
    try:
        queue.write_batch(con, batch, ignore_all=True)
        con.execute("UPDATE journal SET through = ?, closed_at = now()::TIMESTAMP WHERE token = ?",
                    [max([r.seq for r in rounds], default=through), orphan.token])
        con.execute("COMMIT")
    except duckdb.Error as err:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise StabilityError(f"{orphan.path}: its rows cannot be written ({str(err).splitlines()[0]}); nothing "
                             "of it was applied") from None
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
