"""The cache keys of the stored calls, in memory: a lookup of a key never stored costs no query.

Every request of a new run looks its key up first (resume, then the cache scope); in a fresh experiment almost
all of those are misses, and a miss answered by SQL scans the key columns of the whole ``calls`` table, so its
cost grows with the store. :class:`CallKeys` holds the Python hashes of every stored key, read once from the
table when the first lookup comes and then kept up to date by :meth:`Store.insert_call`. A key it does not hold
is a miss at once; a key it holds (a resume, a cache hit, or a hash collision) is looked up in SQL as before.
So the set only ever errs towards a query, never towards a miss that SQL would have answered.

Stores of the same database file in one process share one set (DuckDB lets them write the same file), and it is
dropped when the last of them closes, so another process's writes are read on the next open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import duckdb

_shared: dict[str, tuple[CallKeys, int]] = {}  # database path -> (its keys, stores open on it)
_shared_lock = threading.Lock()


class CallKeys:
    def __init__(self) -> None:
        self._hashes: set[int] | None = None  # None until loaded

    @classmethod
    def acquire(cls, path: str) -> CallKeys:
        """The set of the database at ``path`` (``:memory:``: a set of its own); :meth:`release` it on close."""
        if path == ":memory:":
            return cls()
        with _shared_lock:
            keys, users = _shared.get(path, (cls(), 0))
            _shared[path] = (keys, users + 1)
            return keys

    @staticmethod
    def release(path: str) -> None:
        with _shared_lock:
            if path in _shared:
                keys, users = _shared[path]
                if users <= 1:
                    del _shared[path]
                else:
                    _shared[path] = (keys, users - 1)

    def may_hold(self, key: str, connection: Callable[[], duckdb.DuckDBPyConnection]) -> bool:
        """False only if no call with this key is stored or queued; ``connection`` (everything queued committed)
        is asked for the stored keys the first time."""
        if self._hashes is None:
            rows = connection().execute("SELECT DISTINCT cache_key FROM calls").fetchall()
            self._hashes = {hash(row[0]) for row in rows}
        return hash(key) in self._hashes

    def add(self, key: str) -> None:
        """A call with this key was queued (before the set was loaded, the load will read it from the table)."""
        if self._hashes is not None:
            self._hashes.add(hash(key))
