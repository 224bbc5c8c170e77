"""The write queue's journal: a round of writes is persisted by one appended line, before DuckDB sees it.

A DuckDB statement costs about a millisecond of CPU before it carries a single row, and about 20 µs per row
after that. Committing every round of the write queue (a few dozen calls) to DuckDB therefore costs most of a
millisecond per call; committing a thousand rows at once costs a tenth of that. So a round is made durable by
appending it to this journal (one JSON line, ``write`` then ``fdatasync``), which is what releases its waiters
(*persisted before used*), and the rounds are applied to DuckDB in large batches (:mod:`stability.store.queue`).

- The file is ``DB.journal.TOKEN``, one per open store, and its writer holds an exclusive ``flock`` on it for
  as long as the store is open. A file nobody holds belongs to a store that was killed: the next writable
  :meth:`stability.store.Store.open` of the database applies it (:func:`recover`) and removes it. A store open
  in another process (or in this one) keeps its lock, so its journal is never taken from under it.
- After a batch is applied, the file is truncated. The batch's DuckDB transaction also records the last round it
  applied (table ``journal``, migration ``m011_journal``), so a kill between that commit and the truncation
  replays nothing twice.
- A last line cut off by a kill was never acknowledged (the waiters are released after ``fdatasync``), so it is
  ignored; a damaged line anywhere else is an error naming the file.

Values are JSON; a ``datetime`` (the records' timestamps) is written as ``{"$datetime": ISO}`` and read back as
one, and a numpy scalar as its Python value, so a replayed row is the row that was queued.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from stability.errors import StabilityError

_TAG = "$datetime"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_TAG: value.isoformat()}
    item = getattr(value, "item", None)  # a numpy scalar (a rating's score): its Python value, as DuckDB binds it
    if callable(item):
        return item()
    raise TypeError(f"the journal cannot store a {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _TAG in obj:
        return datetime.fromisoformat(obj[_TAG])
    return obj


def encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, default=_encode, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    value = json.loads(line, object_hook=_decode)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def paths(db: str) -> list[str]:
    return sorted(glob.glob(glob.escape(db) + ".journal.*"))


class Journal:
    """The journal of one open store: append rounds, truncate once they are applied, remove on close."""

    def __init__(self, db: str) -> None:
        self.token = secrets.token_hex(6)
        self.path = f"{db}.journal.{self.token}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.size = 0  # bytes appended since the last truncation

    def append(self, record: dict[str, Any]) -> None:
        data = encode(record)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)
        self.size += len(data)

    def truncate(self) -> None:
        if self.size:
            os.ftruncate(self._fd, 0)
            self.size = 0

    def close(self, remove: bool) -> None:
        """Close the file; ``remove``: everything in it was applied (a clean close), so delete it."""
        if remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self._fd)


def _orphans(db: str) -> Iterator[tuple[str, int]]:
    """Journal files of the database that no open store holds: (path, a descriptor holding its lock)."""
    for path in paths(db):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a live store's journal
            continue
        yield path, fd


def read(path: str, fd: int) -> list[dict[str, Any]]:
    """The rounds of a journal file, in order; a cut-off last line (never acknowledged) is left out."""
    with os.fdopen(os.dup(fd), "rb") as handle:
        lines = handle.read().split(b"\n")
    rounds = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rounds.append(decode(line))
        except ValueError as err:
            if number == len(lines):  # the last line, with no newline after it: cut off by a kill
                break
            raise StabilityError(f"{path}: line {number} of the write journal is damaged ({err}); "
                                 "the store cannot apply it") from None
    return rounds


def orphans(db: str) -> list[tuple[str, int]]:
    return list(_orphans(db))


def release(path: str, fd: int, remove: bool) -> None:
    if remove:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    os.close(fd)


def token_of(path: str) -> str:
    return path.rsplit(".journal.", 1)[1]
