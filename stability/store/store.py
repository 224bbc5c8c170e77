"""``Store``: the only code that speaks SQL. It knows no provider and no protocol, only records.

DuckDB allows one writing process per file. A writer holds the file for as long as it runs; inspection
commands open the file read-only and, if a run holds it, read the run's latest snapshot instead
(:mod:`stability.store.snapshot`), or fail at once with one line naming the holder rather than wait.

The frequent writes are queued and group-committed by a committer thread (:mod:`stability.store.queue`); every
read and every immediate write commits the queue first, so the store always reads its own writes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from stability.constitution import Constitution
from stability.errors import StabilityError
from stability.records import (
    AdapterRecord,
    CallRecord,
    CellRecord,
    EdgeRecord,
    ExperimentRecord,
    GenerationRecord,
    ProbeRecord,
    RatingRecord,
    RevisionRecord,
    RunInputRecord,
    RunRecord,
    now,
)
from stability.store import chains, journal_files, migrations
from stability.store.batches import BatchTable
from stability.store.call_keys import CallKeys
from stability.store.call_lookup import find_calls
from stability.store.compact import Compaction
from stability.store.connection import check_runs_table, connect
from stability.store.json_values import to_json
from stability.store.rows import decode_json, dict_rows
from stability.store.snapshot import Holder, Publisher, claim_marker, open_snapshot, release_marker

if TYPE_CHECKING:  # the write queue (with asyncio and the journal) is imported when a store first writes
    import asyncio

    from stability.store.queue import WriteQueue

DB_ENV = "STABILITY_DB"
log = logging.getLogger("stability.store")


def default_db_path() -> Path:
    return Path(os.environ.get(DB_ENV) or "runs/stability.duckdb")



class Store:
    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, read_only: bool) -> None:
        self._con = con
        self.path = path
        self.read_only = read_only
        #: the write queue: a writable store's from the start, a read-only store's only if something asks for it
        self._queue: WriteQueue | None = None if read_only else _write_queue(con)
        self._known: set[str | tuple[str, str]] = set()  # constitution hashes (and sources) written or queued here
        self._keys_path = path if path == ":memory:" else os.path.realpath(path)
        self.call_keys = CallKeys.acquire(self._keys_path)  # a lookup of a key never stored costs no query
        self.cache_from_attached = False  # --cache-from: another store may hold keys this one never stored
        #: seconds since the snapshot this store reads was taken; None when it reads the store itself
        self.snapshot_age: float | None = None
        self._publisher: Publisher | None = None

    @property
    def queue(self) -> WriteQueue:
        if self._queue is None:
            self._queue = _write_queue(self._con)
        return self._queue

    def _flush(self) -> None:
        """Commit everything queued (nothing to do for a store that never made its queue)."""
        if self._queue is not None:
            self._queue.flush()

    @property
    def batches(self) -> BatchTable:
        """The provider batches of ``--batch`` runs (:mod:`stability.store.batches`)."""
        return BatchTable(self)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The connection, after committing everything queued (so every reader sees this process's writes)."""
        self._flush()
        return self._con

    # -- opening -------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str | None = None, read_only: bool = False, create: bool = True) -> Store:
        """Open (and migrate, when writable) a database file. ``":memory:"`` gives a scratch store.

        Read-only, or with ``create=False``, a missing file is an error rather than a new empty database. Read-only
        while a run writes the file, the run's latest snapshot is opened instead (``snapshot_age`` says how old).
        """
        target = str(path if path is not None else default_db_path())
        if target != ":memory:":
            if (read_only or not create) and not Path(target).exists():
                raise StabilityError(f"{target}: no such database (check --db, or run `stability iterate` first)")
            if Path(target).is_dir():
                raise StabilityError(f"{target}: is a directory, expected a DuckDB database file")
            if not read_only:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
        # every file beside the store (its WAL, journals, snapshot, writer marker) is named after the resolved
        # file: a store reached through a symbolic link is the same store, however it is named
        real = target if target == ":memory:" else os.path.realpath(target)
        if read_only and target != ":memory:":
            settle(real)
        claimed = not read_only and target != ":memory:" and claim_marker(real)
        try:
            con = connect(real, read_only)
        except duckdb.Error as err:
            if claimed:
                release_marker(real)
            first = str(err).splitlines()[0]
            if isinstance(err, duckdb.IOException) and "lock" in first.lower():
                holder = Holder(real, first)
                if read_only and holder.writing:
                    snapshot = open_snapshot(real)
                    if snapshot is not None:
                        store = cls(snapshot[0], target, True)
                        store.snapshot_age = snapshot[1]
                        log.warning("%s: a run is writing it; reading its snapshot as of %.0f s ago", target,
                                    snapshot[1])
                        return store
                    raise StabilityError(f"{target}: {holder.describe()}; it has published no snapshot for "
                                         "readers yet; try again in a minute") from None
                raise StabilityError(f"{target}: the database is in use: {holder.describe()}; try again when "
                                     "it finishes") from None
            raise StabilityError(f"{target}: cannot open as a DuckDB database ({first})") from None
        store = cls(con, target, read_only)
        try:
            if not read_only:
                if target != ":memory:":
                    store._publisher = Publisher(real, con)
                    store.queue.after_commit = store._publisher.after_commit
                migrations.apply(con)
                if target != ":memory:":
                    from stability.store.queue import recover

                    recover(store.queue, con, real)  # what a killed writer journalled but never applied
                    store.queue.start_journal(real)
            else:
                check_runs_table(con, target)
        except BaseException:
            store.close()
            raise
        return store

    def close(self, compact: bool | None = None) -> None:
        """Commit everything and close. A writer's file is then compacted (:mod:`stability.store.compact`) when
        enough of it is free blocks; ``compact``: True always, False never (None: when due)."""
        compaction: Compaction | None = None
        stopped = False
        try:
            if self._queue is not None:
                self._queue.close()
            failed = self._queue is not None and self._queue.failed
            if self._publisher is not None and compact is not False and not failed:  # closing cleanly
                self._publisher.stop()  # no snapshot is being copied while the compacted copy is
                stopped = True
                compaction = Compaction(self._publisher.db)
                compaction.prepare(self._con, force=bool(compact))
        finally:
            if self._publisher is not None and not stopped:
                self._publisher.stop()
            self._con.close()
            if compaction is not None:
                compaction.finish()
            if self._publisher is not None:
                self._publisher.close()
            CallKeys.release(self._keys_path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction on the main connection (queued writes are committed first, in their own)."""
        self._flush()
        self._con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def flush(self) -> None:
        """Commit every queued write now."""
        self._flush()

    def committed(self) -> asyncio.Future[None]:
        """Await it to know that everything queued so far is committed (group commit: see the queue module)."""
        return self.queue.committed()

    def lookup_call(self, cache_key: str, sample_index: int, run_id: str,
                    scope: str = "global") -> asyncio.Future[CallRecord | None]:
        """:meth:`find_call`, answered on the committer thread together with the other lookups waiting (a key
        never stored at once, without a query: :mod:`stability.store.call_keys`)."""
        if not self.cache_from_attached and not self.call_keys.may_hold(cache_key, lambda: self.con):
            import asyncio

            missed: asyncio.Future[CallRecord | None] = asyncio.get_running_loop().create_future()
            missed.set_result(None)
            return missed
        return self.queue.lookup((cache_key, sample_index, run_id, scope))

    def _insert(self, table: str, row: dict[str, Any], ignore: bool = False) -> None:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        values = [to_json(v) if isinstance(v, dict | list) else v for v in row.values()]
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        self._con.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})".replace("INSERT", verb, 1), values)

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        return dict_rows(self.con, sql, params)

    # -- schema ----------------------------------------------------------------------------------------------

    def migrations_applied(self) -> list[str]:
        return [r["name"] for r in self._rows("SELECT name FROM migrations ORDER BY name")]

    def schema(self) -> list[dict[str, Any]]:
        """Tables and columns with their comments, in creation order."""
        return self._rows(
            """SELECT t.table_name, t.comment AS table_comment, c.column_name, c.data_type, c.is_nullable,
                      c.comment AS column_comment
               FROM duckdb_tables() t JOIN duckdb_columns() c USING (table_oid)
               WHERE t.schema_name = 'main' ORDER BY t.table_oid, c.column_index"""
        )

    # -- runs ------------------------------------------------------------------------------------------------

    def insert_run(self, run: RunRecord) -> None:
        """Queued (see the module's docstring)."""
        self.queue.insert("runs", run.model_dump(), run.id)

    def finish_run(self, run_id: str, status: str, stop_reason: str | None, error: str | None = None) -> None:
        """Queued."""
        self.queue.update_row("runs", {"id": run_id}, {"status": status, "stop_reason": stop_reason, "error": error,
                                                      "finished_at": now()})

    def reopen_run(self, run_id: str) -> None:
        """Mark a run running again and drop its error steps, which the replay will retry."""
        with self.transaction():
            self._con.execute(
                "UPDATE runs SET status = 'running', stop_reason = NULL, error = NULL, finished_at = NULL "
                "WHERE id = ?", [run_id])
            self._con.execute("DELETE FROM edges WHERE target_id IN "
                             "(SELECT id FROM revisions WHERE run_id = ? AND decision = 'error')", [run_id])
            self._con.execute("DELETE FROM revisions WHERE run_id = ? AND decision = 'error'", [run_id])

    def put_run_inputs(self, inputs: list[RunInputRecord]) -> None:
        """Record the input files a run read (written at once; the same file recorded again is the same row)."""
        if not inputs:
            return
        with self.transaction():
            self._con.executemany(
                "INSERT OR IGNORE INTO run_inputs (run_id, option, path, sha256) VALUES (?, ?, ?, ?)",
                [[i.run_id, i.option, i.path, i.sha256] for i in inputs])

    def run_inputs(self, run_id: str) -> list[RunInputRecord]:
        """The input files recorded for a run, by option then path (none for a run stored before they were)."""
        return [RunInputRecord(**r) for r in self._rows(
            "SELECT run_id, option, path, sha256 FROM run_inputs WHERE run_id = ? ORDER BY option, path", [run_id])]

    def run(self, run_id: str) -> RunRecord:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", [run_id])
        if not rows:
            matches = self._rows("SELECT * FROM runs WHERE id LIKE ? ORDER BY created_at", [run_id + "%"])
            if len(matches) != 1:
                raise StabilityError(f"{self.path}: no run {run_id!r}" if not matches
                                     else f"{self.path}: {run_id!r} matches {len(matches)} runs; give more of it")
            rows = matches
        return RunRecord(**decode_json(rows[0], ("model_params", "config")))

    def runs(self) -> list[RunRecord]:
        return [RunRecord(**decode_json(r, ("model_params", "config")))
                for r in self._rows("SELECT * FROM runs ORDER BY created_at, id")]

    # -- constitutions ---------------------------------------------------------------------------------------

    def put_constitution(self, constitution: Constitution) -> str:
        """Queue a node if it is new; the same text reached again is the same row. Returns its hash."""
        digest = constitution.hash
        if digest not in self._known:
            self._known.add(digest)
            self.queue.insert("constitutions", {"hash": digest, "text": constitution.text,
                                          "n_principles": len(constitution.principles), "created_at": now()}, digest)
            for position, text in enumerate(constitution.principles):
                self.queue.insert("principles", {"constitution_hash": digest, "position": position, "text": text},
                            (digest, position))
        return digest

    def add_source(self, constitution: Constitution, path: str) -> None:
        """Queued; the same file read again is the same row."""
        if (constitution.hash, path) in self._known:
            return
        self._known.add((constitution.hash, path))
        self.queue.insert("constitution_sources", {"constitution_hash": constitution.hash, "path": path,
                                             "title": constitution.title, "metadata": constitution.metadata},
                    (constitution.hash, path))

    def constitution(self, digest: str) -> Constitution:
        if not self.con.execute("SELECT 1 FROM constitutions WHERE hash = ?", [digest]).fetchone():
            raise StabilityError(f"{self.path}: no constitution {digest}")
        rows = self._rows("SELECT text FROM principles WHERE constitution_hash = ? ORDER BY position", [digest])
        return Constitution(principles=tuple(r["text"] for r in rows))

    # -- revisions and edges ---------------------------------------------------------------------------------

    def insert_revision(self, revision: RevisionRecord, edge: EdgeRecord | None = None) -> None:
        """Queue a revision and the edge into it (committed together); a replayed step is left as it is."""
        self.queue.insert("revisions", revision.model_dump(), revision.id)
        if edge is not None:
            self.queue.insert("edges", edge.model_dump(), edge.id)

    def revisions(self, run_id: str) -> list[RevisionRecord]:
        return [RevisionRecord(**r) for r in self._rows(
            "SELECT * FROM revisions WHERE run_id = ? ORDER BY step", [run_id])]

    def revision_counts(self) -> dict[str, int]:
        return {r["run_id"]: r["n"] for r in self._rows("SELECT run_id, count(*) AS n FROM revisions GROUP BY run_id")}

    def edges(self, run_id: str) -> list[EdgeRecord]:
        return [EdgeRecord(**decode_json(r, ("call_ids",))) for r in self._rows(
            "SELECT e.* FROM edges e JOIN revisions r ON r.id = e.target_id WHERE e.run_id = ? ORDER BY r.step",
            [run_id])]

    # -- calls -----------------------------------------------------------------------------------------------

    def insert_call(self, call: CallRecord) -> None:
        """Queued: await :meth:`committed` before using the call's answer. Its messages go into message chains
        (:mod:`stability.store.chains`), each node queued once per store."""
        request, nodes, tip = chains.split(call.request)
        for node in nodes:
            if node["hash"] not in self._known:
                self._known.add(node["hash"])
                self.queue.insert("messages", node, node["hash"])
        # its fields as they are (a record of plain values: no nested models, no serialisers): model_dump would
        # copy the request and response once more on the event loop's thread (14 µs a call, issue 30)
        self.queue.insert("calls", {**call.__dict__, "request": request, "chain": tip}, call.id)
        self.call_keys.add(call.cache_key)

    def find_call(self, cache_key: str, sample_index: int, run_id: str | None = None,
                  scope: str = "global") -> CallRecord | None:
        """A completed call with this key: the run's own first (resume), else, within the cache ``scope``, another
        run's: any run's (``global``), a run's of the same experiment (``experiment``), none (``run``)."""
        return self.find_calls([(cache_key, sample_index, run_id or "", scope)])[0]

    def find_calls(self, queries: list[tuple[str, int, str, str]]) -> list[CallRecord | None]:
        """:meth:`find_call` for many (cache key, sample index, run id, scope) at once, in one query."""
        return find_calls(self.con, queries)

    def calls(self, run_id: str) -> list[CallRecord]:
        rows = self._rows("SELECT * FROM calls WHERE run_id = ? ORDER BY created_at, id", [run_id])
        return [CallRecord(**decode_json(r, ("response", "retries"))) for r in chains.with_messages(self.con, rows)]

    def call_totals(self) -> dict[str, dict[str, Any]]:
        """Per run: number of calls, paid calls (answered by the provider, not the cache; a call that failed was
        not answered, so not paid), failed calls, tokens and cost."""
        rows = self._rows(
            """SELECT run_id, count(*) AS calls,
                      count(*) FILTER (WHERE cached_from IS NULL AND status = 'ok') AS paid,
                      count(*) FILTER (WHERE status = 'error') AS failed,
                      sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                      sum(cost_usd) AS cost_usd
               FROM calls GROUP BY run_id""")
        return {r.pop("run_id"): r for r in rows}

    # -- analysis (read side) -------------------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT id FROM runs ORDER BY created_at, id").fetchall()]

    def revision_rows(self, run_ids: list[str]) -> list[tuple[str, int, str, str, str, str | None]]:
        """(run_id, step, revision id, constitution_hash, decision, cycle_to) of the runs, in step order."""
        return self.con.execute(
            """SELECT run_id, step, id, constitution_hash, decision, cycle_to FROM revisions
               WHERE run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY run_id, step""", [run_ids]).fetchall()

    def principle_rows(self, hashes: list[str]) -> list[tuple[str, int, str]]:
        """(constitution_hash, position, text) of the constitutions, in order."""
        return self.con.execute(
            """SELECT constitution_hash, position, text FROM principles
               WHERE constitution_hash IN (SELECT unnest(?::VARCHAR[])) ORDER BY constitution_hash, position""",
            [hashes]).fetchall()

    def source_metadata(self) -> dict[str, dict[str, Any]]:
        """Front-matter metadata per constitution hash (the first file read, when several were)."""
        out: dict[str, dict[str, Any]] = {}
        for digest, metadata in self.con.execute(
                "SELECT constitution_hash, metadata FROM constitution_sources ORDER BY path").fetchall():
            out.setdefault(digest, json.loads(metadata) if isinstance(metadata, str) else metadata)
        return out

    def all_edges(self, run_ids: list[str]) -> list[EdgeRecord]:
        return [EdgeRecord(**decode_json(r, ("call_ids",))) for r in self._rows(
            """SELECT e.* FROM edges e JOIN revisions r ON r.id = e.target_id
               WHERE e.run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY e.run_id, r.step""", [run_ids])]

    def frame(self, table: str, run_ids: list[str] | None = None) -> Any:
        """A whole table (or the rows of some runs) as a pandas DataFrame, for notebooks."""
        scoped = {"runs": "id", "revisions": "run_id", "edges": "run_id", "calls": "run_id"}
        reached = ("constitution_hash IN (SELECT constitution_hash FROM revisions "
                   "WHERE run_id IN (SELECT unnest(?::VARCHAR[])))")
        if table in scoped:
            where = f"{scoped[table]} IN (SELECT unnest(?::VARCHAR[]))" if run_ids is not None else "true"
        elif table in ("principles", "constitution_sources"):
            where = reached if run_ids is not None else "true"
        elif table == "constitutions":
            where = reached.replace("constitution_hash IN", "hash IN") if run_ids is not None else "true"
        else:
            raise StabilityError(f"no table {table!r} to read")
        frame = self.con.execute(f"SELECT * FROM {table} WHERE {where}",
                                 [run_ids] if run_ids is not None else []).df()
        if "chain" in frame.columns:  # calls as stored before chains: messages put back, no chain column
            frame["request"] = chains.full_request_texts(self.con, list(frame["id"]), list(frame["request"]),
                                                         list(frame.pop("chain")))
        return frame

    # -- bulk loading (synthetic benchmark databases) ---------------------------------------------------------

    def bulk_load(self, frames: dict[str, Any]) -> dict[str, int]:
        """Append whole pandas DataFrames to graph tables in ONE transaction (all or nothing), matching columns
        by name. Dict and list cells are stored as JSON. For synthetic benchmark databases (bench/analysis.py):
        nothing is checked or deduplicated, so the caller owns uniqueness. Returns rows written per table."""
        unknown = sorted(set(frames) - set(BULK_TABLES))
        if unknown:
            raise StabilityError(f"bulk_load: cannot bulk-load {', '.join(unknown)} "
                                 f"(only {', '.join(BULK_TABLES)})")
        written: dict[str, int] = {}
        try:
            with self.transaction():
                for table in BULK_TABLES:  # parents before children
                    if table not in frames:
                        continue
                    frame = frames[table].copy()
                    for column in frame.columns:
                        if frame[column].dtype == object and any(isinstance(v, dict | list) for v in frame[column]):
                            frame[column] = [to_json(v) if isinstance(v, dict | list) else v for v in frame[column]]
                    self._con.register("incoming_rows", frame)
                    self._con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
                    written[table] = len(frame)
        finally:  # after COMMIT or ROLLBACK: an aborted transaction refuses even this
            self._con.unregister("incoming_rows")
        return written

    # -- ratings -----------------------------------------------------------------------------------------

    def insert_ratings(self, ratings: list[RatingRecord]) -> None:
        """Queue all options of one trial (committed together); a replayed trial is left as it is."""
        for rating in ratings:
            self.queue.insert("ratings", rating.model_dump(), rating.id)

    def ratings(self, run_id: str) -> list[RatingRecord]:
        return [RatingRecord(**decode_json(r, ("rating_probs",))) for r in self._rows(
            "SELECT * FROM ratings WHERE run_id = ? ORDER BY trial, position", [run_id])]


    # -- probes --------------------------------------------------------------------------------------------

    def insert_probe(self, probe: ProbeRecord) -> None:
        """Queue one probe row; a replayed probe is left as it is."""
        self.queue.insert("probes", probe.model_dump(), probe.id)

    def probe_rows(self, run_ids: list[str]) -> list[tuple[str, str, str]]:
        """(run_id, source_hash, decision) of the runs' probes, in sample order."""
        return self.con.execute(
            """SELECT run_id, source_hash, decision FROM probes WHERE run_id IN (SELECT unnest(?::VARCHAR[]))
               ORDER BY run_id, sample""", [run_ids]).fetchall()

    # -- experiments -------------------------------------------------------------------------------------

    def put_experiment(self, experiment: ExperimentRecord, cells: list[CellRecord]) -> None:
        """Create the experiment and any cells it lacks; existing cells keep their runs and statuses."""
        with self.transaction():
            self.queue.insert_rows(self._con, "experiments", [experiment.model_dump()], ignore=True)
            self.queue.insert_rows(self._con, "experiment_runs", [c.model_dump() for c in cells], ignore=True)

    def experiment(self, experiment_id: str) -> ExperimentRecord | None:
        rows = self._rows("SELECT * FROM experiments WHERE id = ?", [experiment_id])
        return ExperimentRecord(**decode_json(rows[0], ("spec",))) if rows else None

    def experiments(self) -> list[ExperimentRecord]:
        return [ExperimentRecord(**decode_json(r, ("spec",))) for r in self._rows(
            "SELECT * FROM experiments ORDER BY created_at")]

    def cells(self, experiment_id: str) -> list[CellRecord]:
        return [CellRecord(**decode_json(r, ("config",))) for r in self._rows(
            "SELECT * FROM experiment_runs WHERE experiment_id = ? ORDER BY position", [experiment_id])]

    def cell(self, experiment_id: str, cell: str) -> CellRecord:
        rows = self._rows("SELECT * FROM experiment_runs WHERE experiment_id = ? AND cell = ?", [experiment_id, cell])
        return CellRecord(**decode_json(rows[0], ("config",)))

    def experiment_spent(self, experiment_id: str) -> float:
        """US dollars spent on paid (not cached) calls of the experiment's runs, in one query."""
        row = self.con.execute(
            "SELECT coalesce(sum(c.cost_usd), 0) FROM calls c JOIN experiment_runs e ON c.run_id = e.run_id "
            "WHERE e.experiment_id = ? AND c.cached_from IS NULL", [experiment_id]).fetchone()
        return float(row[0]) if row else 0.0

    def set_cell(self, experiment_id: str, cell: str, status: str, run_id: str | None = None) -> None:
        """Queued."""
        self.queue.update_row("experiment_runs", {"experiment_id": experiment_id, "cell": cell},
                              {"status": status, **({"run_id": run_id} if run_id is not None else {})})

    def insert_adapter(self, adapter: AdapterRecord) -> None:
        """Record a trained adapter; a generation is trained once, so a second record for it is an error."""
        self._insert("adapters", adapter.model_dump())

    def adapter(self, run_id: str, generation: int) -> AdapterRecord | None:
        rows = self._rows("SELECT * FROM adapters WHERE run_id = ? AND generation = ?", [run_id, generation])
        return AdapterRecord(**decode_json(rows[0], _ADAPTER_JSON)) if rows else None

    def adapters(self, run_id: str) -> list[AdapterRecord]:
        return [AdapterRecord(**decode_json(r, _ADAPTER_JSON)) for r in self._rows(
            "SELECT * FROM adapters WHERE run_id = ? ORDER BY generation", [run_id])]

    def insert_generation(self, generation: GenerationRecord) -> None:
        """Record a generation's summary; a replayed generation is left as it is."""
        self._insert("generations", generation.model_dump(), ignore=True)

    def generations(self, run_id: str) -> list[GenerationRecord]:
        return [GenerationRecord(**r) for r in self._rows(
            "SELECT * FROM generations WHERE run_id = ? ORDER BY generation", [run_id])]


BULK_TABLES = ("runs", "constitutions", "principles", "constitution_sources", "revisions", "edges")
_ADAPTER_JSON = ("base_params", "data", "trainer", "losses")


def settle(target: str) -> None:
    """Apply the writes that a writer killed before its close left journalled beside ``target`` (nothing to do
    when none did), so that a reader, a merge or a ``--cache-from`` sees every call that was persisted."""
    if not journal_files.paths(target):
        return  # no journal beside it (the usual case): the journal's reader is not even imported
    from stability.store import journal

    found = journal.orphans(target)
    for path, fd in found:
        journal.release(path, fd, remove=False)
    if not found:
        return
    try:
        Store.open(target).close()
    except StabilityError as err:
        if str(err).startswith(f"{target}.journal."):
            raise  # it names the journal and what is wrong with it
        raise StabilityError(f"{target}: cannot apply what a killed writer journalled before it is read: {err}") \
            from None


def _write_queue(con: duckdb.DuckDBPyConnection) -> WriteQueue:
    from stability.store.queue import WriteQueue

    return WriteQueue(con, find_calls)
