"""What an export must show before one row of it is read: an export folder is data another person could have
written, so nothing in it is trusted as it is (``import-store`` and ``--cache-from`` both read through here).

- **Paths.** Each table's file is ``TABLE.parquet`` in the export folder itself: a name with a folder in it
  (``../../elsewhere.parquet``), an absolute path, or a symbolic link that leads outside the folder is refused.
- **Bytes.** An export since format 2 records the sha256 of each file's bytes in its manifest; a file whose bytes
  no longer match (an answer replaced in ``calls.parquet``, a file cut short) is refused.
- **Shape.** Each file has exactly the columns its table had in the store that wrote it (the schema its manifest's
  migrations give), each of its type: a removed column is refused, not read as NULL; an added or retyped one too.
- **Counts.** Each file holds the number of rows its manifest states.
- **Content addresses** (:func:`verify_content`, on the rows loaded into a scratch store): a constitution's hash
  is the sha256 of its text, its principles are that text line by line.

Each refusal is one line naming the file and the problem, raised before anything is written where the user looks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from stability.errors import StabilityError
from stability.store.export_manifest import FORMAT_VERSION, MANIFEST_NAME
from stability.store.sql_text import sql_literal

if TYPE_CHECKING:
    from stability.store.export_manifest import ExportedTable, ExportManifest

#: tables an export never holds (the store's own bookkeeping)
BOOKKEEPING = ("migrations", "journal")
#: the calls table is exported with whole requests, so without its chain column
LEFT_OUT = {"calls": {"chain"}}
#: types a column of the schema may read back as from Parquet (JSON is written as text with a JSON annotation)
SAME_TYPES = {"JSON": {"JSON", "VARCHAR"}}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()



@lru_cache(maxsize=8)
def schema_at(migrations: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Every table's columns and types after the first ``len(migrations)`` migrations (their names checked to be
    those of this version, in order): the shape an export from a store at that point has."""
    from stability.store.migrations import MIGRATIONS

    known = [m.__name__ for m in MIGRATIONS]
    if list(migrations) != known[:len(migrations)]:
        newer = [m for m in migrations if m not in known]
        if newer:
            raise ValueError(f"written by a newer stability (migration {newer[0]}); upgrade to import it")
        raise ValueError("its migrations are not those of any stability version")
    con = duckdb.connect(":memory:")
    try:
        for migration in MIGRATIONS[:len(migrations)]:
            migration(con)
        rows = con.execute("""SELECT table_name, column_name, data_type FROM duckdb_columns()
                              WHERE database_name = current_database() AND schema_name = 'main'
                              ORDER BY table_name, column_index""").fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        if table not in BOOKKEEPING and column not in LEFT_OUT.get(table, set()):
            out.setdefault(table, {})[column] = kind
    return out


def inside(folder: Path, name: str, what: str) -> Path:
    """``folder/name`` when ``name`` is a plain file name and the file (links followed) lies in ``folder``."""
    if (not name or name != Path(name).name or "/" in name or "\\" in name or "\x00" in name
            or name in (".", "..")):
        raise StabilityError(f"{folder / MANIFEST_NAME}: {what} {name!r} is not a file name in the export folder")
    path = folder / name
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise StabilityError(f"{path}: a symbolic link that leads nowhere") from None
        if target.parent != folder.resolve():
            raise StabilityError(f"{path}: a symbolic link leading outside the export folder")
    return path


def verify_files(con: duckdb.DuckDBPyConnection, folder: Path, manifest: ExportManifest) -> None:
    """Refuse the export unless every table's file is where it must be, has the bytes, columns and row count
    its manifest states (see the module's docstring)."""
    if manifest.format_version > FORMAT_VERSION:
        raise StabilityError(f"{folder / MANIFEST_NAME}: export format {manifest.format_version} is newer than "
                             f"this stability reads ({FORMAT_VERSION}); upgrade to import it")
    try:
        schema = schema_at(tuple(manifest.migrations))
    except ValueError as err:
        raise StabilityError(f"{folder / MANIFEST_NAME}: {err}") from None
    seen: set[str] = set()
    for table in manifest.tables:
        if table.name in seen:
            raise StabilityError(f"{folder / MANIFEST_NAME}: table {table.name} is listed twice")
        seen.add(table.name)
        if table.name not in schema:
            raise StabilityError(f"{folder / MANIFEST_NAME}: table {table.name!r} is not a table of the store")
        path = inside(folder, table.file, f"the file of table {table.name},")
        if table.file != f"{table.name}.parquet":
            raise StabilityError(f"{folder / MANIFEST_NAME}: the file of table {table.name} must be "
                                 f"{table.name}.parquet, not {table.file!r}")
        if not path.is_file():
            raise StabilityError(f"{path}: missing from the export")
        _verify_file(con, path, table, schema[table.name], manifest.format_version)


def _verify_file(con: duckdb.DuckDBPyConnection, path: Path, table: ExportedTable, columns: dict[str, str],
                 version: int) -> None:
    if version >= 2:
        if table.sha256 is None:
            raise StabilityError(f"{path.parent / MANIFEST_NAME}: no sha256 for {path.name} (format {version} "
                                 "records one for every file)")
        if file_digest(path) != table.sha256:
            raise StabilityError(f"{path}: its bytes do not match the sha256 in the manifest (changed or cut "
                                 "short since it was exported)")
    try:
        found = {r[0]: r[1] for r in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({sql_literal(str(path))})").fetchall()}
        count = con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(str(path))})").fetchone()
    except duckdb.Error as err:
        raise StabilityError(f"{path}: cannot read ({str(err).splitlines()[0]})") from None
    missing, extra = column_mismatch(columns, found)
    if missing is not None:
        raise StabilityError(f"{path}: column {missing} of table {table.name} is missing")
    if extra is not None:
        raise StabilityError(f"{path}: column {extra} is not a column of table {table.name}")
    for column, kind in columns.items():
        if found[column] != kind and found[column] not in SAME_TYPES.get(kind, set()):
            raise StabilityError(f"{path}: column {column} is {found[column]}, table {table.name} has {kind}")
    rows = int(count[0]) if count else 0
    if rows != table.rows:
        raise StabilityError(f"{path}: {rows} rows, the manifest says {table.rows}")


def verify_content(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Refuse rows whose content address does not match their content (on the export loaded into a scratch
    store on ``con``)."""
    bad = con.execute("""SELECT hash FROM constitutions WHERE hash != 'sha256:' || sha256(text)
                         ORDER BY hash LIMIT 1""").fetchone()
    if bad:
        raise StabilityError(f"{folder / 'constitutions.parquet'}: constitution {bad[0]}: its text does not match "
                             "its hash")
    bad = con.execute("""SELECT c.hash FROM constitutions c
                         WHERE c.n_principles != length(c.text) - length(replace(c.text, chr(10), ''))
                         ORDER BY c.hash LIMIT 1""").fetchone()
    if bad:
        raise StabilityError(f"{folder / 'constitutions.parquet'}: constitution {bad[0]}: n_principles is not "
                             "the number of its principles")
    bad = con.execute("""SELECT c.hash FROM constitutions c JOIN principles p ON p.constitution_hash = c.hash
                         GROUP BY c.hash, c.text, c.n_principles
                         HAVING string_agg('- ' || p.text || chr(10), '' ORDER BY p.position) != c.text
                             OR count(*) != c.n_principles OR min(p.position) != 0
                             OR max(p.position) != count(*) - 1
                         ORDER BY c.hash LIMIT 1""").fetchone()
    if bad:
        raise StabilityError(f"{folder / 'principles.parquet'}: the principles of constitution {bad[0]} are not "
                             "its text")


def column_mismatch(expected: Collection[str], found: Collection[str]) -> tuple[str | None, str | None]:
    """The first ``expected`` column missing from ``found``, and the first ``found`` column not expected (None where
    there is none): how an import checks a table it reads against the store's schema."""
    missing = next((c for c in expected if c not in found), None)
    extra = next((c for c in found if c not in expected), None)
    return missing, extra
