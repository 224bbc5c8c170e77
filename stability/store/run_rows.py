"""A run's rows as plain data, and back: what an Inspect log (:mod:`stability.inspect_log`) carries in each
sample's metadata so that ``import-store`` can rebuild the run.

:func:`run_rows` reads, for one run, every row the Parquet export would hold for it (its run, revisions, edges,
calls with their whole requests, ratings, probes, ... and the nodes it reached with their principles), each row a
mapping of column to a JSON value (JSON columns as their text, timestamps as ISO text); :func:`experiment_rows`
the rows of the experiments. :func:`load_rows` is the way back: it refuses rows whose tables or columns are not
exactly those of the schema the rows' migrations give (:func:`stability.store.export_checks.schema_at`), loads
them into a new store file with the schema's types, and checks their content addresses
(:func:`stability.store.export_checks.verify_content`). Each refusal is one line naming the source file.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from stability.errors import StabilityError
from stability.store.chains import chain_stored_calls
from stability.store.export import quote_ident, scope_filter, sql_literal, table_columns, whole_calls_sql
from stability.store.export_checks import column_mismatch, schema_at, verify_content

Rows = dict[str, list[dict[str, Any]]]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _select(con: duckdb.DuckDBPyConnection, source: str, where: str, columns: list[dict[str, Any]]) -> list[dict]:
    names = [c["name"] for c in columns]
    picked = ", ".join(f"{quote_ident(c['name'])}::VARCHAR AS {quote_ident(c['name'])}" if c["type"] == "JSON"
                       else quote_ident(c["name"]) for c in columns)
    rows = con.execute(f"SELECT {picked} FROM {source} WHERE {where} ORDER BY ALL").fetchall()
    return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in rows]


def migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT name FROM migrations ORDER BY name").fetchall()]


def run_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> Rows:
    """Every row of the run ``run_id`` (and of the nodes it reached), by table; empty tables left out."""
    con.execute("CREATE OR REPLACE TEMP TABLE _export_experiments AS SELECT ''::VARCHAR AS id WHERE false")
    con.execute("CREATE OR REPLACE TEMP TABLE _export_runs AS SELECT ?::VARCHAR AS id", [run_id])
    con.execute("""CREATE OR REPLACE TEMP TABLE _export_nodes AS
                   SELECT constitution_hash AS hash FROM revisions WHERE run_id IN (SELECT id FROM _export_runs)
                   UNION SELECT start_hash FROM runs WHERE id IN (SELECT id FROM _export_runs)
                   UNION SELECT target_hash FROM probes
                         WHERE target_hash IS NOT NULL AND run_id IN (SELECT id FROM _export_runs)""")
    out: Rows = {}
    for table, _, columns in table_columns(con):
        where = scope_filter(table, {c["name"] for c in columns})
        if table == "messages" or where is None or "_export_experiments" in where:
            continue
        source = f"main.{quote_ident(table)}"
        if table == "calls":
            source, where = whole_calls_sql(con, where), "true"
        rows = _select(con, source, where, [c for c in columns if c["name"] != "chain"])
        if rows:
            out[table] = rows
    return out


def experiment_rows(con: duckdb.DuckDBPyConnection, experiment_ids: list[str]) -> Rows:
    """The rows of the experiments ``experiment_ids`` (their specs and cells), by table."""
    con.execute("CREATE OR REPLACE TEMP TABLE _export_experiments AS SELECT unnest(?::VARCHAR[]) AS id",
                [experiment_ids])
    out: Rows = {}
    for table, _, columns in table_columns(con):
        where = scope_filter(table, {c["name"] for c in columns})
        if where is None or "_export_experiments" not in where:
            continue
        rows = _select(con, f"main.{quote_ident(table)}", where, columns)
        if rows:
            out[table] = rows
    return out


def check_rows(rows: Rows, schema: dict[str, dict[str, str]], source: str) -> None:
    """Refuse a table the schema lacks, or a row whose columns are not exactly the table's."""
    for table, records in rows.items():
        if table not in schema:
            raise StabilityError(f"{source}: table {table!r} is not a table of the store")
        columns = schema[table]
        for record in records:
            if not isinstance(record, dict):
                raise StabilityError(f"{source}: a row of table {table} is not a mapping")
            missing, extra = column_mismatch(columns, record)
            if missing is not None:
                raise StabilityError(f"{source}: a row of table {table} lacks column {missing}")
            if extra is not None:
                raise StabilityError(f"{source}: column {extra!r} is not a column of table {table}")


def load_rows(folder: Path, parts: list[tuple[str, list[str], Rows]], into: Path) -> None:
    """Write ``parts`` (read from ``folder``; each: the file it came from, the migrations its rows follow, its rows
    by table) into the new store file ``into``, checked (see the module's docstring); the same row in several parts
    is one row."""
    from stability.store.store import Store

    merged: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
    for source, steps, rows in parts:
        try:
            schema = schema_at(tuple(steps))
        except ValueError as err:
            raise StabilityError(f"{source}: {err}") from None
        check_rows(rows, schema, source)
        for table, records in rows.items():
            seen = merged.setdefault(table, {})
            for record in records:
                seen.setdefault(json.dumps(record, sort_keys=True), (source, record))
    with Store.open(into) as store, tempfile.TemporaryDirectory(prefix="stability-rows-") as tmp:
        con = store.con
        own = {table: {c["name"]: c["type"] for c in columns} for table, _, columns in table_columns(con)}
        with store.transaction():
            for table, unique in merged.items():
                if table not in own:
                    source = next(iter(unique.values()))[0]
                    raise StabilityError(f"{source}: table {table!r} is not known to this version; upgrade")
                file = Path(tmp) / f"{table}.jsonl"
                with file.open("w", encoding="utf-8") as handle:
                    for _, record in unique.values():
                        handle.write(json.dumps(record) + "\n")
                kinds = {name: ("VARCHAR" if kind == "JSON" else kind) for name, kind in own[table].items()
                         if name in next(iter(unique.values()))[1]}
                spec = "{" + ", ".join(f"{sql_literal(n)}: {sql_literal(k)}" for n, k in kinds.items()) + "}"
                try:
                    con.execute(f"INSERT INTO main.{quote_ident(table)} BY NAME SELECT * FROM read_json("
                                f"{sql_literal(str(file))}, format = 'newline_delimited', columns = {spec})")
                except duckdb.Error as err:
                    sources = sorted({s for s, _ in unique.values()})
                    raise StabilityError(f"{sources[0]}: rows of table {table} cannot be read "
                                         f"({str(err).splitlines()[0]})") from None
            try:
                verify_content(con, folder)
            except StabilityError as err:  # it names the Parquet file a row would be in: name the folder
                raise StabilityError(f"{folder}: {str(err).split(': ', 1)[1]}") from None
            chain_stored_calls(con)
