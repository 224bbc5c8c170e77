"""Results that travel: a store (or one experiment of it) as one Parquet file per table, read back by
``import-store``, and another store's calls attached read-only to answer a run (``--cache-from``).

An export folder holds ``TABLE.parquet`` for each exported table, ``stability-export.json`` (the manifest:
migrations, tables, row counts, each file's sha256) and a dataset card ``README.md``. Reading one back verifies
it first (:mod:`stability.store.export_checks`): paths, bytes, columns, counts and content addresses. Nothing in it
is read from the environment: the rows are the store's, which the call path already redacted, and a last check
refuses to leave an export behind that contains the value of any secret variable set now.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from pydantic import ValidationError

from stability.errors import StabilityError
from stability.output_files import folder_whole
from stability.redaction import exposes, secret_values
from stability.store.cache_from import CACHE_FROM
from stability.store.chains import chain_stored_calls, full_request_texts
from stability.store.export_checks import (
    file_digest,
    inside,
    verify_content,
    verify_files,
)
from stability.store.export_manifest import FORMAT_VERSION, MANIFEST_NAME, ExportedTable, ExportManifest
from stability.store.merge import MergeReport, merge_into
from stability.store.sql_text import quote_ident, sql_literal

if TYPE_CHECKING:
    from stability.store.store import Store

MANIFEST = MANIFEST_NAME
#: a manifest is a few kilobytes per table; anything near this is not one
MANIFEST_BYTES = 16 * 1024 * 1024




def table_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None, list[dict[str, Any]]]]:
    rows = con.execute(
        """SELECT t.table_name, t.comment, c.column_name, c.data_type, c.comment
           FROM duckdb_tables() t JOIN duckdb_columns() c USING (table_oid)
           WHERE t.database_name = current_database() AND t.schema_name = 'main'
             AND t.table_name NOT IN ('migrations', 'journal')
           ORDER BY t.table_oid, c.column_index""").fetchall()
    out: dict[str, tuple[str | None, list[dict[str, Any]]]] = {}
    for table, comment, column, kind, column_comment in rows:
        out.setdefault(table, (comment, []))[1].append({"name": column, "type": kind, "comment": column_comment})
    return [(t, c, cols) for t, (c, cols) in out.items()]


def scope_filter(table: str, columns: set[str]) -> str | None:
    """The WHERE clause selecting an experiment's rows of ``table`` (None: the table is not scoped)."""
    if table == "experiments":
        return "id IN (SELECT id FROM _export_experiments)"
    if "experiment_id" in columns:
        return "experiment_id IN (SELECT id FROM _export_experiments)"
    if table == "runs":
        return "id IN (SELECT id FROM _export_runs)"
    if "run_id" in columns:
        return "run_id IN (SELECT id FROM _export_runs)"
    if table == "constitutions":
        return "hash IN (SELECT hash FROM _export_nodes)"
    if table == "messages":  # the chains of the calls copied (an export carries whole requests instead)
        return "hash IN (SELECT hash FROM _export_messages)"
    if "constitution_hash" in columns:
        return "constitution_hash IN (SELECT hash FROM _export_nodes)"
    return None


def export_store(con: duckdb.DuckDBPyConnection, experiments: list[str] | None, out: Path) -> ExportManifest:
    """Write the store on ``con`` (the experiments named, or everything for None) into ``out`` as Parquet files
    and a manifest. ``out`` must not exist; it appears whole or not at all."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StabilityError(f"{out}: already exists; export into a new folder")
    known = {r[0] for r in con.execute("SELECT id FROM experiments").fetchall()}
    for experiment in experiments or []:
        if experiment not in known:
            raise StabilityError(f"no experiment {experiment!r} in the store (see `stability experiments`)")
    con.execute("CREATE OR REPLACE TEMP TABLE _export_experiments AS SELECT unnest(?::VARCHAR[]) AS id",
                [experiments or []])
    con.execute("""CREATE OR REPLACE TEMP TABLE _export_runs AS SELECT DISTINCT run_id AS id FROM experiment_runs
                   WHERE run_id IS NOT NULL AND experiment_id IN (SELECT id FROM _export_experiments)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _export_nodes AS
                   SELECT constitution_hash AS hash FROM revisions WHERE run_id IN (SELECT id FROM _export_runs)
                   UNION SELECT start_hash FROM runs WHERE id IN (SELECT id FROM _export_runs)
                   UNION SELECT target_hash FROM probes
                         WHERE target_hash IS NOT NULL AND run_id IN (SELECT id FROM _export_runs)""")
    tables, skipped = [], []
    with folder_whole(out) as staging:
        for table, comment, columns in table_columns(con):
            if table == "messages":
                continue  # calls are exported with their whole requests (import-store chains them again)
            where = "true" if experiments is None else scope_filter(table, {c["name"] for c in columns})
            if where is None:
                skipped.append(table)
                continue
            file = f"{table}.parquet"
            source = f"main.{quote_ident(table)}"
            if table == "calls":
                source, columns = whole_calls_sql(con, where), [c for c in columns if c["name"] != "chain"]
                where = "true"
            con.execute(f"COPY (SELECT * FROM {source} WHERE {where}) TO {sql_literal(str(staging / file))} "
                        "(FORMAT parquet, COMPRESSION zstd)")
            count = con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(str(staging / file))})").fetchone()
            tables.append(ExportedTable(name=table, file=file, rows=int(count[0]) if count else 0, columns=columns,
                                        comment=comment, sha256=file_digest(staging / file)))
        migrations = [r[0] for r in con.execute("SELECT name FROM migrations ORDER BY name").fetchall()]
        manifest = ExportManifest(format_version=FORMAT_VERSION, experiments=experiments or [],
                                  migrations=migrations, tables=tables,
                                  skipped=skipped)
        (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        _refuse_secrets(con, staging)
    return manifest


def whole_calls_sql(con: duckdb.DuckDBPyConnection, where: str) -> str:
    """A temporary table of the calls selected by ``where`` with their whole requests (messages put back from
    their chains, the JSON text they had before chains) and no chain column; returns its name."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _export_calls AS SELECT * FROM main.calls WHERE {where}")
    if not con.execute("SELECT 1 FROM duckdb_columns() WHERE table_name = '_export_calls' AND column_name = 'chain'"
                       ).fetchone():
        return "temp._export_calls"  # a store read-only from before message chains: its requests are whole
    rows = con.execute("SELECT id, request::VARCHAR, chain FROM _export_calls WHERE chain IS NOT NULL").fetchall()
    if rows:
        ids, requests, tips = (list(column) for column in zip(*rows, strict=True))
        con.execute("""UPDATE _export_calls SET request = v.request
                       FROM (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::VARCHAR[]) AS request) v
                       WHERE _export_calls.id = v.id""", [ids, full_request_texts(con, ids, requests, tips)])
    con.execute("ALTER TABLE _export_calls DROP COLUMN chain")
    return "temp._export_calls"


def copy_runs(con: duckdb.DuckDBPyConnection, runs: list[str], target: Path) -> None:
    """Copy the rows of ``runs`` (their revisions, calls, ... and the nodes they reached; not their experiment)
    from the store on ``con`` into the store file ``target``, which must exist and be migrated: a worker's shard
    then resumes them."""
    con.execute("CREATE OR REPLACE TEMP TABLE _export_experiments AS SELECT ''::VARCHAR AS id WHERE false")
    con.execute("CREATE OR REPLACE TEMP TABLE _export_runs AS SELECT unnest(?::VARCHAR[]) AS id", [runs])
    con.execute("""CREATE OR REPLACE TEMP TABLE _export_nodes AS
                   SELECT constitution_hash AS hash FROM revisions WHERE run_id IN (SELECT id FROM _export_runs)
                   UNION SELECT start_hash FROM runs WHERE id IN (SELECT id FROM _export_runs)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _export_messages AS
                   WITH RECURSIVE walk(hash, parent) AS (
                       SELECT hash, parent FROM messages
                       WHERE hash IN (SELECT chain FROM calls WHERE run_id IN (SELECT id FROM _export_runs))
                       UNION SELECT m.hash, m.parent FROM messages m JOIN walk w ON m.hash = w.parent)
                   SELECT hash FROM walk""")
    con.execute(f"ATTACH {sql_literal(str(target))} AS copy_target")
    try:
        con.execute("BEGIN TRANSACTION")
        for table, _, columns in table_columns(con):
            where = scope_filter(table, {c["name"] for c in columns})
            if where is None or "experiment" in where:
                continue
            con.execute(f"INSERT OR IGNORE INTO copy_target.main.{quote_ident(table)} "
                        f"SELECT * FROM main.{quote_ident(table)} WHERE {where}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DETACH copy_target")


def _refuse_secrets(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """The last line of defence: no value of a secret variable set now may appear in any exported value where it
    would be a secret (a header, a URL, a configuration, an error). Content (an answer, a constitution's text,
    the messages of a request) may hold one: it is what a model or a person wrote (:func:`redaction.exposes`)."""
    secrets = secret_values()
    if not secrets:
        return
    for file in sorted(folder.iterdir()):
        if file.suffix != ".parquet":
            if any(secret in file.read_text(encoding="utf-8", errors="replace") for secret in secrets):
                raise StabilityError(f"{file.name}: would contain the value of a secret variable; nothing exported")
            continue
        cursor = con.execute(f"SELECT * FROM read_parquet({sql_literal(str(file))})")
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(10_000):
            for row in rows:
                if not any(secret in str(row) for secret in secrets):
                    continue  # the common case: no secret anywhere in the row
                if exposes({name: json_column_value(value) for name, value in zip(names, row, strict=True)}, secrets):
                    raise StabilityError(f"{file.name}: would contain the value of a secret variable; nothing "
                                         "exported")


def json_column_value(value: Any) -> Any:
    """A JSON column's text as its value (so its content fields are told apart), anything else as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def read_manifest(folder: Path) -> ExportManifest:
    path = folder / MANIFEST
    if not path.is_file() and not path.is_symlink():
        raise StabilityError(f"{folder}: not a stability export (no {MANIFEST})")
    inside(folder, MANIFEST, "the manifest")
    try:
        if path.stat().st_size > MANIFEST_BYTES:
            raise StabilityError(f"{path}: {path.stat().st_size:,} bytes, more than a manifest has; not an export")
        return ExportManifest.model_validate_json(path.read_bytes())
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise StabilityError(f"{path}: not a valid export manifest ({where + ': ' if where else ''}"
                             f"{first['msg']})") from None
    except OSError as err:
        raise StabilityError(f"{path}: cannot read ({err.strerror})") from None


def load_export(folder: Path, into: Path) -> None:
    """Verify an export folder (:mod:`stability.store.export_checks`) and write its tables into a new store
    file ``into`` (migrated by the Store first); a refusal raises before ``into`` is created."""
    from stability.store.store import Store

    if not folder.is_dir():
        raise StabilityError(f"{folder}: not a stability export (not a folder)")
    manifest = read_manifest(folder)
    with duckdb.connect(":memory:") as check:
        verify_files(check, folder, manifest)
    with Store.open(into) as store:
        con = store.con
        own = {table for table, _, _ in table_columns(con)}
        unknown = sorted({t.name for t in manifest.tables} - own)
        if unknown:
            raise StabilityError(f"{folder}: tables this version does not know ({', '.join(unknown)}); upgrade to "
                                 "import it")
        with store.transaction():
            for table in manifest.tables:
                file = folder / table.file
                try:
                    con.execute(f"INSERT INTO main.{quote_ident(table.name)} BY NAME "
                                f"SELECT * FROM read_parquet({sql_literal(str(file))})")
                except duckdb.Error as err:
                    raise StabilityError(f"{file}: cannot read ({str(err).splitlines()[0]})") from None
            verify_content(con, folder)
            chain_stored_calls(con)  # an export carries whole requests


def import_export(folder: Path, db: Path | str | None) -> MergeReport:
    """``stability import-store DIR``: an export, verified, merged into the store ``db`` (created when missing;
    conflicts refused). The export is loaded into a scratch store first, so a refused one writes nothing."""
    from stability.store.store import Store

    with tempfile.TemporaryDirectory(prefix="stability-import-") as tmp:
        staged = Path(tmp) / "import.duckdb"
        load_export(folder, staged)
        with Store.open(db) as store:
            report = merge_into(store.con, [staged])
    return report.model_copy(update={"sources": [str(folder)]})


def cache_source(source: Path, scratch: Path) -> Path:
    """The store file ``--cache-from`` attaches: ``source`` itself, or an export folder verified and loaded into
    ``scratch`` (before the store that uses it is opened, so a refused export writes nothing)."""
    if source.is_dir():
        if not (source / MANIFEST).exists() and not (source / MANIFEST).is_symlink():
            raise StabilityError(f"{source}: not a stability export (no {MANIFEST}) for --cache-from")
        load_export(source, scratch)
        return scratch
    if not source.is_file():
        raise StabilityError(f"{source}: no such store for --cache-from")
    return source


def attach_cache_from(store: Store, source: Path) -> None:
    """Attach another store file (:func:`cache_source`) read-only, so its calls can answer this store's runs
    (:func:`stability.store.cache_from.answer_from_cache_store`); from then on every lookup asks the store (its
    own key filter knows none of the other store's keys)."""
    store.cache_from_attached = True
    con = store.con
    from stability.store.store import settle

    settle(str(source))  # writes a killed writer journalled are part of the store
    try:
        con.execute(f"ATTACH {sql_literal(str(source))} AS {CACHE_FROM} (READ_ONLY)")
        con.execute(f"SELECT 1 FROM {CACHE_FROM}.calls LIMIT 0")
    except duckdb.Error as err:
        raise StabilityError(f"{source}: cannot read its calls ({str(err).splitlines()[0]})") from None


def card_facts(con: duckdb.DuckDBPyConnection, experiments: list[str] | None) -> dict[str, Any]:
    """What a dataset card states about the exported runs: their specs, models and the versions that ran them
    (reads the ``_export_*`` selection that :func:`export_store` made)."""
    runs = "true" if experiments is None else "id IN (SELECT id FROM _export_runs)"
    chosen = "" if experiments is None else "WHERE id IN (SELECT id FROM _export_experiments) "
    specs = con.execute(f"SELECT id, name, spec FROM experiments {chosen}ORDER BY created_at, id").fetchall()
    return {
        "experiments": [{"id": i, "name": n, "spec": json.loads(s) if isinstance(s, str) else s}
                        for i, n, s in specs],
        "models": con.execute(f"SELECT model, count(*) FROM runs WHERE {runs} GROUP BY model ORDER BY model")
        .fetchall(),
        "versions": con.execute(f"SELECT package_version, coalesce(git_commit, 'unknown'), count(*) FROM runs "
                                f"WHERE {runs} GROUP BY ALL ORDER BY ALL").fetchall(),
        "protocols": [r[0] for r in con.execute(f"SELECT DISTINCT protocol FROM runs WHERE {runs} ORDER BY 1")
                      .fetchall()],
    }
