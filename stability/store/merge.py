"""Merging stores: ``stability merge A.duckdb B.duckdb -o ALL.duckdb``, and the Ray driver's shard merges.

Every table is merged by its *key* (:data:`KEYS`, else the table's primary key, else all its columns):

- Content-addressed rows (constitutions and their principles, calls) are the same row wherever they were stored,
  so the same node or the same call from two stores becomes one row. Runs, experiments, cells, ratings, adapters
  and any table added later keep their ids, and so their provenance.
- Two rows with the same key must agree on every other column, except the *earliest* columns (when a node was
  first seen, where a spec was read from: the smallest value is kept) and rows a *progress* expression ranks
  higher (a finished run supersedes the same run still running in an older shard; a replayed step supersedes the
  step that failed). Two rows of the same rank that disagree are a conflict: the merge is refused, naming the
  file, and nothing is written.

So a merge is idempotent and order-independent, and merging a store into itself changes nothing. A table added
by a later migration joins without code here when its primary key says what a row is; it adds an entry to
:data:`KEYS` only when some of its columns may differ between copies of a row.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict

from stability.errors import StabilityError
from stability.store import migrations
from stability.store.chains import chain_stored_calls
from stability.store.journal import paths as journal_paths
from stability.store.sql_text import quote_ident as _q
from stability.store.sql_text import sql_literal

log = logging.getLogger("stability.store")


class TableKey(BaseModel):
    """How rows of one table are matched and reconciled by a merge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: tuple[str, ...]
    #: columns that may differ between copies of a row: the smallest value is kept (first seen)
    earliest: tuple[str, ...] = ()
    #: SQL over a row's columns ranking versions of it: the highest wins; rows of the same rank must agree
    progress: str | None = None


_RUN_PROGRESS = "CASE status WHEN 'done' THEN 2 WHEN 'failed' THEN 1 ELSE 0 END"
_CELL_PROGRESS = "CASE status WHEN 'done' THEN 3 WHEN 'failed' THEN 2 WHEN 'running' THEN 1 ELSE 0 END"

_BATCH_PROGRESS = ("CASE state WHEN 'intent' THEN 0 WHEN 'live' THEN 1 WHEN 'imported' THEN 3 "
                   "WHEN 'abandoned' THEN 3 ELSE 2 END")

#: tables whose rows need more than their primary key; every other table is merged by its primary key
KEYS: dict[str, TableKey] = {
    "runs": TableKey(key=("id",), progress=_RUN_PROGRESS),
    "constitutions": TableKey(key=("hash",), earliest=("created_at",)),
    "revisions": TableKey(key=("id",), progress="CASE decision WHEN 'error' THEN 0 ELSE 1 END"),
    "edges": TableKey(key=("id",), progress="CASE kind WHEN 'error' THEN 0 ELSE 1 END"),
    "experiments": TableKey(key=("id",), earliest=("created_at", "spec_path")),
    "experiment_runs": TableKey(key=("experiment_id", "cell"), progress=_CELL_PROGRESS),
    # a judgement read from its answer replaces a stored failure of the same question ("no judgement")
    "judgements": TableKey(key=("id",), earliest=("created_at",),
                           progress="CASE WHEN verdict IS NULL THEN 0 ELSE 1 END"),
    # a batch and its requests move forward only: the furthest state wins (two copies in one state must agree)
    "batches": TableKey(key=("local_key",), progress=_BATCH_PROGRESS),
    "batch_requests": TableKey(key=("local_key", "custom_id"),
                               progress="CASE state WHEN 'pending' THEN 0 WHEN 'retry' THEN 1 ELSE 2 END"),
    # message chain nodes are content-addressed: the same hash is the same message after the same prefix
    "messages": TableKey(key=("hash",)),
}
#: never merged: each store records its own migrations (a merge target is migrated when opened) and its own
#: write journal's bookmarks (store/journal.py)
SKIPPED = frozenset({"migrations", "journal"})


class MergeReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[str]
    #: rows written (new or superseding) per table
    written: dict[str, int]


def table_keys(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> dict[str, TableKey]:
    """Every table of the store (``catalog``, default the connection's own) in creation order, with how a merge
    matches its rows."""
    catalog = catalog or _own(con)
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
        "ORDER BY table_oid", [catalog]).fetchall() if r[0] not in SKIPPED]
    primary = {r[0]: tuple(r[1]) for r in con.execute(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE database_name = ? AND constraint_type = 'PRIMARY KEY'", [catalog]).fetchall()}
    out = {}
    for table in tables:
        if table in KEYS:
            out[table] = KEYS[table]
        elif table in primary:
            out[table] = TableKey(key=primary[table])
        else:
            out[table] = TableKey(key=tuple(_columns(con, catalog, table)))
    return out


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> dict[str, str]:
    return _all_columns(con, catalog).get(table, {})


def _all_columns(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, dict[str, str]]:
    """Every table's columns and types, in order (one catalog query)."""
    out: dict[str, dict[str, str]] = {}
    for table, column, kind in con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
            "AND schema_name = 'main' ORDER BY table_name, column_index", [catalog]).fetchall():
        out.setdefault(table, {})[column] = kind
    return out


def _own(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT current_database()").fetchone()
    return str(row[0]) if row else "memory"



def merge_into(con: duckdb.DuckDBPyConnection, sources: Sequence[Path | str]) -> MergeReport:
    """Merge the stores ``sources`` (read-only) into the migrated store on ``con``, in one transaction.

    A conflict raises :class:`StabilityError` naming the file, and the transaction is rolled back."""
    names = [str(s) for s in sources]
    attached: list[str] = []
    try:
        for n, path in enumerate(names):
            alias = f"merge_src_{n}"
            _attach(con, path, alias)
            attached.append(alias)
        keys = table_keys(con)
        own = _all_columns(con, _own(con))
        theirs = [_all_columns(con, alias) for alias in attached]
        con.execute("BEGIN TRANSACTION")
        try:
            written = {table: _merge_table(con, table, key, own[table], [t.get(table, {}) for t in theirs],
                                           attached, names) for table, key in keys.items()}
            chain_stored_calls(con)  # calls from a store written before message chains came whole
            con.execute("COMMIT")
        except duckdb.ConstraintException as err:  # e.g. two ids for one (run, step): the stores disagree
            con.execute("ROLLBACK")
            raise StabilityError(f"{', '.join(names)}: the merged rows would break a constraint "
                                 f"({str(err).splitlines()[0]}); nothing was merged") from None
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        for alias in attached:
            con.execute(f"DETACH {alias}")
    return MergeReport(sources=names, written={t: n for t, n in written.items() if n})


def _attach(con: duckdb.DuckDBPyConnection, path: str, alias: str) -> None:
    if not Path(path).is_file():
        raise StabilityError(f"{path}: no such database file")
    from stability.store.store import settle

    settle(path)  # writes a killed writer journalled are part of the store
    try:
        real = os.path.realpath(path)  # its WAL is named after the resolved file
        con.execute(f"ATTACH {sql_literal(real)} AS {alias} (READ_ONLY)")
    except duckdb.Error as err:
        raise StabilityError(f"{path}: cannot open as a DuckDB database ({str(err).splitlines()[0]})") from None
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [alias]).fetchall()}
    if "runs" not in tables or "migrations" not in tables:
        con.execute(f"DETACH {alias}")
        raise StabilityError(f"{path}: not a stability database (it has no runs table)")
    known = {m.__name__ for m in migrations.MIGRATIONS}
    newer = sorted(r[0] for r in con.execute(f"SELECT name FROM {alias}.migrations").fetchall() if r[0] not in known)
    if newer:
        con.execute(f"DETACH {alias}")
        raise StabilityError(f"{path}: written by a newer stability (migrations {', '.join(newer)}); upgrade to "
                             "merge it")


def _merge_table(con: duckdb.DuckDBPyConnection, table: str, spec: TableKey, columns: dict[str, str],
                 source_columns: list[dict[str, str]], aliases: list[str], names: list[str]) -> int:
    selects = []
    for n, (alias, have) in enumerate(zip(aliases, source_columns, strict=True)):
        if not have:
            continue  # an older store without this table
        if not con.execute(f"SELECT 1 FROM {alias}.main.{_q(table)} LIMIT 1").fetchone():
            continue  # nothing to merge from it
        extra = sorted(set(have) - set(columns))
        if extra:
            raise StabilityError(f"{names[n]}: table {table} has columns this version does not know "
                                 f"({', '.join(extra)})")
        cols = ", ".join(_q(c) if c in have else f"NULL::{kind} AS {_q(c)}" for c, kind in columns.items())
        selects.append(f"SELECT {n + 1} AS _src, {cols} FROM {alias}.main.{_q(table)}")
    if not selects:
        return 0
    key = ", ".join(_q(k) for k in spec.key)
    same_key = " AND ".join(f"t.{_q(k)} IS NOT DISTINCT FROM i.{_q(k)}" for k in spec.key)
    con.execute("DROP TABLE IF EXISTS temp._merge_in")
    con.execute(f"CREATE TEMP TABLE _merge_in AS {' UNION ALL '.join(selects)}")
    con.execute(f"""INSERT INTO _merge_in SELECT 0 AS _src, t.* FROM main.{_q(table)} t
                    WHERE EXISTS (SELECT 1 FROM _merge_in i WHERE {same_key})""")
    content = [c for c in columns if c not in spec.key and c not in spec.earliest]
    fingerprint = "{" + ", ".join(f"'{n}': {_q(c)}::VARCHAR" for n, c in enumerate(content)) + "}" \
        if content else "0"
    rank = spec.progress or "0"
    con.execute("DROP TABLE IF EXISTS temp._merge_ranked")
    con.execute(f"""CREATE TEMP TABLE _merge_ranked AS
                    SELECT *, {fingerprint} AS _content, ({rank}) AS _rank,
                           max({rank}) OVER (PARTITION BY {key}) AS _top
                           {''.join(f', min({_q(c)}) OVER (PARTITION BY {key}) AS {_q("_min_" + c)}'
                                    for c in spec.earliest)}
                    FROM _merge_in""")
    clash = con.execute(f"""SELECT {key} FROM _merge_ranked WHERE _rank = _top GROUP BY {key}
                            HAVING count(DISTINCT _content) > 1 LIMIT 1""").fetchone()
    if clash is not None:
        raise StabilityError(_conflict(con, table, spec, columns, clash, names))
    chosen = ", ".join(_q("_min_" + c) + " AS " + _q(c) if c in spec.earliest else _q(c) for c in columns)
    con.execute("DROP TABLE IF EXISTS temp._merge_out")
    con.execute(f"""CREATE TEMP TABLE _merge_out AS SELECT DISTINCT ON ({key}) {chosen} FROM _merge_ranked
                    WHERE _rank = _top ORDER BY {key}""")
    # rows already in the target exactly as merged stay; the others are replaced or added
    equal = " AND ".join(f"t.{_q(c)} IS NOT DISTINCT FROM _merge_out.{_q(c)}" for c in columns)
    con.execute(f"DELETE FROM _merge_out WHERE EXISTS (SELECT 1 FROM main.{_q(table)} t WHERE {equal})")
    changed = con.execute("SELECT count(*) FROM _merge_out").fetchone()
    count = int(changed[0]) if changed else 0
    if count:
        same_out = " AND ".join(f"t.{_q(k)} IS NOT DISTINCT FROM o.{_q(k)}" for k in spec.key)
        con.execute(f"DELETE FROM main.{_q(table)} t WHERE EXISTS (SELECT 1 FROM _merge_out o WHERE {same_out})")
        names_sql = ", ".join(_q(c) for c in columns)
        con.execute(f"INSERT INTO main.{_q(table)} ({names_sql}) SELECT {names_sql} FROM _merge_out")
    for temp in ("_merge_in", "_merge_ranked", "_merge_out"):
        con.execute(f"DROP TABLE IF EXISTS temp.{temp}")
    return count


def _conflict(con: duckdb.DuckDBPyConnection, table: str, spec: TableKey, columns: dict[str, str],
              key_values: tuple[Any, ...], names: list[str]) -> str:
    where = " AND ".join(f"{_q(k)} IS NOT DISTINCT FROM ?" for k in spec.key)
    rows = con.execute(f"""SELECT _src, {', '.join(_q(c) for c in columns)} FROM _merge_ranked
                           WHERE _rank = _top AND {where} ORDER BY _src""", list(key_values)).fetchall()
    def differ(row: tuple[Any, ...]) -> list[str]:
        return [c for a, b, c in zip(row[1:], rows[0][1:], columns, strict=True) if a != b and c not in spec.earliest]

    first = rows[0]
    other = next(r for r in rows[1:] if differ(r))
    where_from = "the merge target" if first[0] == 0 else names[first[0] - 1]
    file = names[other[0] - 1] if other[0] else "the merge target"
    key_text = ", ".join(f"{k}={v}" for k, v in zip(spec.key, key_values, strict=True))
    return (f"{file}: {table} row {key_text} differs from the one in {where_from} "
            f"({', '.join(differ(other))}); nothing was merged")


def merge_files(sources: Sequence[Path | str], out: Path | str) -> MergeReport:
    """``stability merge``: the stores into ``out`` (an existing ``out`` is kept and added to), written to a copy
    that replaces ``out`` only once the whole merge succeeded."""
    from stability.store.store import Store

    target = Path(os.path.realpath(out))  # a target reached through a link is replaced where it lies
    inputs = list(dict.fromkeys(str(s) for s in sources if Path(s).resolve() != target))
    for path in inputs:
        if not Path(path).is_file():
            raise StabilityError(f"{path}: no such database file")
    tmp = target.with_name(f".{target.name}.merging-{os.getpid()}")
    target.parent.mkdir(parents=True, exist_ok=True)  # as a new store's folder is made
    with _merge_lock(target, str(out)):
        tmp.unlink(missing_ok=True)
        try:
            if target.exists():
                _copy_unlocked(target, tmp)
            with Store.open(tmp) as store:
                report = merge_into(store.con, inputs)
            os.replace(tmp, target)
        finally:
            for leftover in (tmp, Path(f"{tmp}.wal"), Path(f"{tmp}.writer"), Path(f"{tmp}.snapshot"),
                             *map(Path, journal_paths(str(tmp)))):
                leftover.unlink(missing_ok=True)
    return report


@contextmanager
def _merge_lock(target: Path, named: str) -> Iterator[None]:
    """Hold the merge lock of ``target`` (resolved): an exclusive ``flock`` on its folder, so a second merge into
    it waits for the first to replace it, then merges into the result (two merges never both copy the old target
    and the later replacement drop the earlier one's runs). No lock file is left behind."""
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s: another merge into this folder is running; waiting for it to finish", named)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _copy_unlocked(source: Path, copy: Path) -> None:
    """Copy a store that no process is writing (held read-only meanwhile, so none starts to)."""
    from stability.store.store import settle

    settle(str(source))  # writes a killed writer journalled are part of the store
    try:
        con = duckdb.connect(str(source), read_only=True)
    except duckdb.Error as err:
        raise StabilityError(f"{source}: cannot merge into it while it is in use ({str(err).splitlines()[0]})") \
            from None
    try:
        shutil.copyfile(source, copy)
        if Path(f"{source}.wal").exists():  # left by a process that was killed: part of the store
            shutil.copyfile(f"{source}.wal", f"{copy}.wal")
    finally:
        con.close()

