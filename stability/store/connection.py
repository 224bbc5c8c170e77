"""Opening a store's file: a new file's block size (set by the connection that creates it), a reader's patience
with a closing writer, and the check that a file opened to read is a stability database."""

from __future__ import annotations

import time
from typing import Any

import duckdb

from stability.errors import StabilityError
from stability.store.snapshot import snapshot_path

#: how long a reader waits for a writer that holds the lock but has no snapshot (it may be closing right now)
READER_PATIENCE_S = 2.0


#: DuckDB's block size for a new store file (DuckDB's default: 256 kB). Every table, column and index takes
#: whole blocks, so a small store is mostly empty blocks at 256 kB; measured in docs/benchmarks/storage.md.
BLOCK_SIZE = 16 << 10


def connect(target: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Connect; a reader finding the store locked while no snapshot exists tries again for a moment, since a writer
    removes its snapshot as it closes, just before DuckDB lets go of the file."""
    # a new file gets BLOCK_SIZE from the connection that creates it, under that connection's lock: a file made
    # first and opened after would stand empty and unlocked in between, where a reader (`stability runs` polling a
    # run that is starting) takes it for a store without tables and the writer finds it held
    config: dict[str, Any] = {} if read_only else {"default_block_size": str(BLOCK_SIZE)}
    deadline = time.monotonic() + (READER_PATIENCE_S if read_only else 0.0)
    while True:
        try:
            return duckdb.connect(target, read_only=read_only, config=config)
        except duckdb.IOException as err:
            if "lock" not in str(err).lower() or time.monotonic() >= deadline or snapshot_path(target).exists():
                raise
            time.sleep(0.1)


def check_runs_table(con: duckdb.DuckDBPyConnection, target: str) -> None:
    """A read-only open checks that the file is a stability database: it has a ``runs`` table. Naming the table
    costs a catalog lookup (about 1 ms); scanning ``duckdb_tables()`` for it cost 12-20 ms."""
    try:
        con.execute("SELECT 1 FROM runs LIMIT 0")
    except duckdb.CatalogException:
        raise StabilityError(f"{target}: not a stability database (it has no runs table)") from None
