"""Where the viewer reads: a private read-only copy of the store, so the viewer never holds the store's lock.

DuckDB lets one process write a file and no other open it meanwhile, and a reader's lock would stop a run from
starting. So the viewer never opens the store itself:

- while a run writes (its live marker, :mod:`stability.store.snapshot`), it reads the run's latest published
  snapshot, through a hard link of its own (a copy across file systems), so the writer may replace or remove the
  snapshot at any time; until the first snapshot is published it keeps what it read before, or says it must wait;
- otherwise it copies the file's bytes (and a ``.wal`` left by a killed run), taking no lock, and keeps the copy
  only when no writer appeared and the file did not change during the copy.

A new copy is made only when the file (or the snapshot) changed, checked at each request. Every read goes through
:meth:`StoreSource.reading`, one request at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stability.errors import StabilityError
from stability.store.snapshot import live_writer, snapshot_path
from stability.store.store import Store

COPY_TRIES = 3


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class StoreSource:
    """The viewer's reading copy of ``db``; ``reading()`` yields a read-only :class:`Store` on it."""

    def __init__(self, db: str) -> None:
        self.db = db
        if not Path(db).is_file():
            raise StabilityError(f"{db}: no such database (check --db, or run `stability iterate` first)")
        self.folder = Path(tempfile.mkdtemp(prefix="stability-view-"))
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._store: Store | None = None
        self._path: Path | None = None
        self._key: tuple[Any, ...] | None = None
        self.kind = "none"  # copy | snapshot: what the viewer reads now
        self.taken = 0.0  # time.time() when the state it reads was taken
        self.refreshes = 0

    # -- what to read ------------------------------------------------------------------------------------------

    def _new_path(self) -> Path:
        return self.folder / f"read-{next(self._numbers)}.duckdb"

    def _from_snapshot(self) -> tuple[tuple[Any, ...], Path, float] | None:
        snapshot = snapshot_path(self.db)
        for _ in range(COPY_TRIES):
            stamp = _stamp(snapshot)
            if stamp is None:
                return None
            key = ("snapshot", *stamp)
            if key == self._key:
                return key, self._path or snapshot, self.taken
            target = self._new_path()
            try:
                _link_or_copy(snapshot, target)
            except OSError:  # replaced or removed meanwhile
                time.sleep(0.05)
                continue
            return key, target, stamp[1] / 1e9
        return None

    def _from_file(self) -> tuple[tuple[Any, ...], Path, float] | None:
        db, wal = Path(self.db), Path(self.db + ".wal")
        for _ in range(COPY_TRIES):
            before = (_stamp(db), _stamp(wal))
            if before[0] is None:
                raise StabilityError(f"{self.db}: no such database")
            key = ("copy", *before)
            if key == self._key:
                return key, self._path or db, self.taken
            target = self._new_path()
            shutil.copyfile(db, target)
            if before[1] is not None:
                with contextlib.suppress(OSError):
                    shutil.copyfile(wal, Path(str(target) + ".wal"))
            if live_writer(self.db) is None and (_stamp(db), _stamp(wal)) == before:
                return key, target, time.time()
            self._discard(target)
            if live_writer(self.db) is not None:
                return None
        return None

    def _refresh(self) -> Store:
        found = self._from_snapshot() if live_writer(self.db) is not None else self._from_file()
        if found is None and live_writer(self.db) is not None:
            found = self._from_snapshot()
        if found is None:
            if self._store is not None:
                return self._store  # a run is writing and has published nothing newer: what was read before
            raise StabilityError(f"{self.db}: a run is writing it and has published no snapshot for readers yet; "
                                 "try again in a moment")
        key, path, taken = found
        if key == self._key and self._store is not None:
            return self._store
        try:
            store = Store.open(path, read_only=True)
        except BaseException:
            self._discard(path)
            raise
        self._close()
        self._store, self._path, self._key = store, path, key
        self.kind, self.taken = str(key[0]), taken
        self.refreshes += 1
        return store

    # -- reading -----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[Store]:
        """The store as of now (a fresh copy if it changed), for one request; requests take turns."""
        with self._lock:
            yield self._refresh()

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Path]:
        """A file of its own holding the state read now, for a long job (an analysis) that opens it by path while
        requests go on; removed afterwards."""
        with self._lock:
            self._refresh()
            assert self._path is not None
            target = self._new_path()
            _link_or_copy(self._path, target)
            if Path(str(self._path) + ".wal").exists():
                shutil.copyfile(Path(str(self._path) + ".wal"), Path(str(target) + ".wal"))
        try:
            yield target
        finally:
            self._discard(target)

    def state(self) -> dict[str, Any]:
        """What the viewer reads: ``copy`` (the store, no run writing) or ``snapshot`` (a run's), and its age."""
        writer = live_writer(self.db)
        return {"db": self.db, "reads": self.kind, "age_s": round(max(0.0, time.time() - self.taken), 1),
                "writing": writer is not None, "writer": str(writer.get("command", "")) if writer else None}

    # -- cleaning up -------------------------------------------------------------------------------------------

    def _discard(self, path: Path) -> None:
        for leftover in (path, Path(str(path) + ".wal")):
            with contextlib.suppress(OSError):
                leftover.unlink()

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._path is not None and self._path.parent == self.folder:
            self._discard(self._path)
        self._store = self._path = self._key = None

    def close(self) -> None:
        with self._lock:
            self._close()
            shutil.rmtree(self.folder, ignore_errors=True)
