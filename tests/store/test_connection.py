"""Opening a store's file: a new store gets the small block size, under the lock of the connection that makes it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from stability.store import Store
from stability.store.connection import BLOCK_SIZE


def _block_size(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()
        assert row is not None
        return int(row[0])
    finally:
        con.close()


def test_a_new_store_has_the_small_blocks_and_an_old_file_keeps_its_own(tmp_path: Path) -> None:
    new = tmp_path / "new.duckdb"
    Store.open(new).close()
    assert _block_size(new) == BLOCK_SIZE
    old = tmp_path / "old.duckdb"
    duckdb.connect(str(old)).close()  # DuckDB's default block size, fixed when the file was made
    Store.open(old).close()
    assert _block_size(old) == 256 << 10

