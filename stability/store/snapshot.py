"""Reading a store while a run writes it: the writer's marker, read-only snapshots, and who holds the lock.

DuckDB lets one process write a file, and nobody read it meanwhile. So the writing process

- leaves a *writer marker* beside the file (``DB.writer``: its process id, command line and start time), so
  that a refused process can say who holds the store and that it is writing;
- publishes a *snapshot* (``DB.snapshot``): at its first commit (so a run is readable from its first stored
  rows), then after a commit at most every ``STABILITY_SNAPSHOT_SECONDS`` seconds (30 by default, and never more
  often than ten times the last copy took), a thread of its own copies
  the database (``ATTACH`` + ``COPY FROM DATABASE`` on its own cursor: one statement, so one consistent state,
  while commits go on) into a temporary file and renames it over the snapshot, so a reader sees the old
  snapshot or the new one, never half of one. Copying costs about 3 s per 100,000 stored calls here.

The inspection commands open the store read-only; when a run holds it they open the snapshot instead and say
how old it is. On a clean close the writer removes both files; after a kill they are stale but harmless (the
store is no longer locked, so readers open it directly, and the next writer replaces them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

INTERVAL_ENV = "STABILITY_SNAPSHOT_SECONDS"
DEFAULT_INTERVAL = 30.0
log = logging.getLogger("stability.store")


def snapshot_path(db: str) -> Path:
    return Path(db + ".snapshot")


def marker_path(db: str) -> Path:
    return Path(db + ".writer")


def interval() -> float:
    """Seconds between snapshots (``STABILITY_SNAPSHOT_SECONDS``; 0 or less turns them off)."""
    try:
        return float(os.environ.get(INTERVAL_ENV) or DEFAULT_INTERVAL)
    except ValueError:
        return DEFAULT_INTERVAL


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_marker(db: str) -> bool:
    """Before a writer connects: leave its marker, unless a live process other than this one left one (that
    writer holds the store, and connecting will say so). So the marker is there from the moment the lock is."""
    marker = marker_path(db)
    with contextlib.suppress(OSError, ValueError):
        holder = json.loads(marker.read_text(encoding="utf-8")).get("pid")
        if isinstance(holder, int) and holder != os.getpid() and _alive(holder):
            return False
    from stability.redaction import redact

    program = Path(sys.argv[0]).name if sys.argv else "python"
    program = "stability" if program == "__main__.py" else program  # python -m stability
    command = redact(" ".join([program, *sys.argv[1:]]))[:160]
    try:
        marker.write_text(json.dumps({"pid": os.getpid(), "command": command,
                                      "started": datetime.now(UTC).isoformat(timespec="seconds")}),
                          encoding="utf-8")
    except OSError:
        return False
    return True


def release_marker(db: str) -> None:
    """Remove this process's marker (a writer that closed, or could not connect)."""
    with contextlib.suppress(OSError, ValueError):
        marker = marker_path(db)
        if json.loads(marker.read_text(encoding="utf-8")).get("pid") == os.getpid():
            marker.unlink()


def live_writer(db: str) -> dict[str, object] | None:
    """The marker of a live process writing ``db`` (its pid, command and start), or None when none is writing."""
    with contextlib.suppress(OSError, ValueError):
        marker = json.loads(marker_path(db).read_text(encoding="utf-8"))
        if isinstance(marker, dict) and isinstance(marker.get("pid"), int) and _alive(marker["pid"]):
            return marker
    return None


class Publisher:
    """The writer's side once connected: a snapshot after commits, when one is due."""

    def __init__(self, db: str, con: duckdb.DuckDBPyConnection) -> None:
        self.db = db
        self._cursor = con.cursor()  # made here, on the opening thread; used by one snapshot thread at a time
        self.every = interval()
        self.last: float | None = None  # the first snapshot is due at the first commit
        self.took = 0.0
        self.failed: str | None = None
        self.published = 0
        self._thread: threading.Thread | None = None
        with contextlib.suppress(OSError):
            snapshot_path(db).unlink(missing_ok=True)  # left by a writer that was killed

    def due(self) -> bool:
        return self.every > 0 and self.failed is None and (
            self.last is None or time.monotonic() - self.last >= max(self.every, 10 * self.took))

    def after_commit(self, _: object = None) -> None:
        """Start a snapshot in the background when one is due and none is being taken."""
        if self.due() and (self._thread is None or not self._thread.is_alive()):
            self._thread = threading.Thread(target=self._publish, name="stability-snapshot", daemon=True)
            self._thread.start()

    def _publish(self) -> None:
        self.publish(self._cursor)

    def publish(self, con: duckdb.DuckDBPyConnection) -> None:
        """Copy the committed database into the snapshot, atomically. A failure turns snapshots off (logged)."""
        started = time.monotonic()
        final = snapshot_path(self.db)
        partial = final.with_name(f"{final.name}.{os.getpid()}.tmp")
        try:
            partial.unlink(missing_ok=True)
            source = con.execute("SELECT current_database()").fetchone()
            name = str(source[0]) if source else "main"
            con.execute(f"ATTACH '{_quote(str(partial))}' AS stability_snapshot")
            try:
                con.execute(f'COPY FROM DATABASE "{name.replace(chr(34), chr(34) * 2)}" TO stability_snapshot')
            finally:
                con.execute("DETACH stability_snapshot")
            os.replace(partial, final)
        except (duckdb.Error, OSError) as err:
            self.failed = str(err).splitlines()[0]
            log.warning("%s: snapshots for readers turned off (%s)", self.db, self.failed)
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            return
        self.took = time.monotonic() - started
        self.last = time.monotonic()
        self.published += 1

    def stop(self) -> None:
        """Wait for a snapshot being taken, then close its cursor (before the connection closes)."""
        if self._thread is not None:
            self._thread.join()
        self._cursor.close()

    def close(self) -> None:
        """Remove the snapshot and the marker (after the connection closed: the store is free again)."""
        with contextlib.suppress(OSError):
            snapshot_path(self.db).unlink(missing_ok=True)
        release_marker(self.db)


def _quote(text: str) -> str:
    return text.replace("'", "''")


class Holder:
    """Who holds a locked store: a process id (when DuckDB names it) and whether it is a writing run."""

    def __init__(self, db: str, error: str) -> None:
        found = re.search(r"PID (\d+)", error)
        self.pid = int(found.group(1)) if found else None
        self.marker: dict[str, object] = {}
        with contextlib.suppress(OSError, ValueError):
            self.marker = json.loads(marker_path(db).read_text(encoding="utf-8"))
        marker_pid = self.marker.get("pid")
        self.writing = isinstance(marker_pid, int) and _alive(marker_pid) and self.pid in (None, marker_pid)
        if self.pid is None and self.writing:
            self.pid = marker_pid  # type: ignore[assignment]

    def describe(self) -> str:
        who = f"process {self.pid}" if self.pid is not None else "another process"
        if self.writing:
            return f"a run is writing to it ({who}: {self.marker.get('command', '?')}, since " \
                   f"{self.marker.get('started', '?')})"
        return f"{who} has it open for reading (an inspection command or a notebook)"


def open_snapshot(db: str, tries: int = 5) -> tuple[duckdb.DuckDBPyConnection, float] | None:
    """The writer's latest snapshot, read-only, and its age in seconds; None when there is none.

    A snapshot being renamed into place, or a transient lock on it, is tried again a few times (50 ms apart)
    before the reader is told there is none."""
    path = snapshot_path(db)
    for attempt in range(tries):
        if not path.exists():
            return None
        try:
            con = duckdb.connect(str(path), read_only=True)
            age = max(0.0, time.time() - path.stat().st_mtime)
        except (duckdb.Error, OSError) as err:
            log.debug("%s: snapshot not readable yet (%s)", path, err)
            time.sleep(0.05 * (attempt + 1))
            continue
        return con, age
    return None
