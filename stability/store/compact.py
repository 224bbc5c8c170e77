"""Compaction: a writer's store file rewritten without the free blocks DuckDB leaves inside it.

DuckDB reuses the blocks that commits and checkpoints release inside a file but never gives them back: a store
written over many group commits ends up with a third or more of its file free (docs/benchmarks/storage.md). When
a writer closes its store and at least :data:`FREE_SHARE` of the file (and :data:`MIN_FREE_BYTES`) is free, the
store is copied (``COPY FROM DATABASE``: the same tables, rows, comments and indexes) into a file beside it, the
copy is synced to disk, and renamed over the store. The only copy is never at risk: until the rename the store
is untouched, and a crash leaves at most a stray ``.compact`` file, replaced by the next compaction.

No other process may hold the store meanwhile. The copy is taken while this writer still holds DuckDB's lock,
after everything is committed and checkpointed; once the connection is closed, the file is locked again by this
process (the same ``fcntl`` lock DuckDB takes, so another process's open fails as it would against a writer)
and swapped only if nothing touched it in between (same inode, size and time, no WAL). Otherwise the copy is
dropped and the store stays as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from stability.store.sql_text import quote_ident, sql_literal

log = logging.getLogger("stability.store")

#: compact on close when at least this share of the file's blocks is free ...
FREE_SHARE = 0.2
#: ... and at least this many bytes are
MIN_FREE_BYTES = 1 << 20


@dataclass(frozen=True)
class Blocks:
    """A database's blocks as DuckDB counts them (``PRAGMA database_size``)."""

    size: int
    total: int
    free: int

    @property
    def free_bytes(self) -> int:
        return self.size * self.free

    def due(self) -> bool:
        return self.total > 0 and self.free / self.total >= FREE_SHARE and self.free_bytes >= MIN_FREE_BYTES


def blocks(con: duckdb.DuckDBPyConnection) -> Blocks:
    row = con.execute("SELECT block_size, total_blocks, free_blocks FROM pragma_database_size() "
                      "WHERE database_name = current_database()").fetchone()
    return Blocks(int(row[0]), int(row[1]), int(row[2])) if row else Blocks(0, 0, 0)


def copy_path(db: str) -> Path:
    return Path(f"{db}.compact")



def write_copy(con: duckdb.DuckDBPyConnection, db: str) -> Path:
    """Checkpoint ``con``'s database and copy it, compacted, to :func:`copy_path` beside it, synced to disk."""
    target = copy_path(db)
    target.unlink(missing_ok=True)
    con.execute("CHECKPOINT")
    row = con.execute("SELECT current_database()").fetchone()
    name = str(row[0]) if row else "main"
    size = blocks(con).size
    con.execute(f"ATTACH {sql_literal(str(target))} AS stability_compact"
                + (f" (BLOCK_SIZE {size})" if size else ""))
    try:
        con.execute(f"COPY FROM DATABASE {quote_ident(name)} TO stability_compact")
    finally:
        con.execute("DETACH stability_compact")
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


def _mark(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def swap(db: str, copy: Path, closed: tuple[int, int, int]) -> bool:
    """Rename ``copy`` over ``db`` (closed by its writer, whose file was ``closed``: inode, size and time when the
    copy was taken), under this process's lock on ``db``; False (and the copy removed) when another process holds
    or changed it."""
    try:
        fd = os.open(db, os.O_RDWR)
    except OSError:
        copy.unlink(missing_ok=True)
        return False
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log.info("%s: not compacted: another process opened it", db)
            copy.unlink(missing_ok=True)
            return False
        if _mark(db) != closed or os.fstat(fd).st_ino != closed[0] or Path(f"{db}.wal").exists():
            log.info("%s: not compacted: another process wrote it after this writer closed it", db)
            copy.unlink(missing_ok=True)
            return False
        os.replace(copy, db)
        folder = os.open(os.path.dirname(os.path.abspath(db)), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        return True
    finally:
        os.close(fd)  # releases the lock (on the old file, now unlinked)


class Compaction:
    """One writer's compaction at close: :meth:`prepare` on the open connection, :meth:`finish` after it closed."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.copy: Path | None = None
        self.before = 0
        self.started = 0.0
        self._mark = (0, 0, 0)

    def prepare(self, con: duckdb.DuckDBPyConnection, force: bool = False) -> None:
        """Write the compacted copy when the file's free blocks are due (or ``force``); a failure only logs.
        The blocks are counted after a checkpoint: what the last transactions released (a migration's dropped
        columns and indexes) is free only once checkpointed."""
        with contextlib.suppress(duckdb.Error):
            con.execute("CHECKPOINT")
        state = blocks(con)
        if not (force or state.due()):
            return
        self.started = time.monotonic()
        self.before = os.path.getsize(self.db)
        try:
            self.copy = write_copy(con, self.db)
            self._mark = _mark(self.db)  # the store as checkpointed: closing the connection must not change it
        except (duckdb.Error, OSError) as err:
            log.warning("%s: not compacted (%s)", self.db, str(err).splitlines()[0])
            with contextlib.suppress(OSError):
                copy_path(self.db).unlink(missing_ok=True)
            self.copy = None

    def finish(self) -> bool:
        """After the connection closed: swap the copy in. True when the store was compacted."""
        if self.copy is None:
            return False
        try:
            done = swap(self.db, self.copy, self._mark)
        except OSError as err:
            log.warning("%s: not compacted (%s)", self.db, err)
            with contextlib.suppress(OSError):
                self.copy.unlink(missing_ok=True)
            return False
        if done:
            log.info("%s: compacted from %d to %d bytes in %.1f s", self.db, self.before, os.path.getsize(self.db),
                     time.monotonic() - self.started)
        return done
