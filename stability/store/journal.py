"""The write queue's journal: a round of writes is persisted by one appended line, before DuckDB sees it.

A DuckDB statement costs about a millisecond of CPU before it carries a single row, and about 20 µs per row
after that. Committing every round of the write queue (a few dozen calls) to DuckDB therefore costs most of a
millisecond per call; committing a thousand rows at once costs a tenth of that. So a round is made durable by
appending it to this journal (one JSON line, ``write`` then ``fdatasync``), which is what releases its waiters
(*persisted before used*), and the rounds are applied to DuckDB in large batches (:mod:`stability.store.queue`).

- The file is ``DB.journal.TOKEN`` (``TOKEN``: 12 hex digits), one per open store, beside the *resolved*
  database file (``os.path.realpath``): a store reached through a symbolic link is the same store, with the same
  journals and the same locks. Its writer holds an exclusive ``flock`` on it for as long as the store is open.
  A file nobody holds belongs to a store that was killed: the next writable open of the database applies it
  (:func:`stability.store.queue.recover`) and removes it.
- The store keeps a *bookmark* per journal (table ``journal``): written when the journal is started, moved to
  the last round applied in the same transaction as the rows, and closed when the store closes or the journal
  is recovered. A journal whose bookmark is closed is stale (it was applied, or superseded by a later open that
  never saw it) and is discarded with a warning; one with no bookmark at all is not this store's and is refused.
- The journal holds **data, never statements**. A line is one :class:`Round`: rows to insert, by table, and row
  updates (table, key, values). The code that applies it decides what may change: inserts only into
  :data:`TABLES`, updates only of the columns in :data:`UPDATABLE`, every column one the schema has, every value
  of the column's type (:func:`check_round`). A journal with anything else is refused whole, naming the file and
  line, and nothing of it is applied.
- Each round names the round before it (``prev``), so a line lost from the middle (or the head) is detected. A
  last line cut off by a kill was never acknowledged (the waiters are released after ``fdatasync``), so it is
  ignored; a kill stops a write at a page boundary (:data:`PAGE`), so a file cut anywhere else was truncated
  after the fact, and the rounds it lost were acknowledged: that is refused, saying what the rest holds.

Values are JSON; a ``datetime`` (the records' timestamps) is written as ``{"$datetime": ISO}`` and read back as
one, and a numpy scalar as its Python value, so a replayed row is the row that was queued.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from stability.errors import StabilityError
from stability.store.journal_files import paths, resolved
from stability.tokens import bounded_tokens

log = logging.getLogger("stability.store")

_TAG = "$datetime"
#: a kill or a full disk stops a write at a page boundary of the file (the kernel copies page by page)
PAGE = 4096
#: no store writes a journal this large (it is emptied every second or 2,000 rows): a larger one is not read
MAX_BYTES = 256 * 1024 * 1024
_TOKEN = re.compile(r"[0-9a-f]{12}")
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

#: the tables a round may insert into, parents before children
TABLES = ("runs", "constitutions", "principles", "constitution_sources", "revisions", "edges", "messages", "calls",
          "ratings", "probes")
#: the row updates a round may carry: table -> (its key columns, the columns an update may set)
UPDATABLE: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "runs": (("id",), frozenset({"status", "stop_reason", "error", "finished_at"})),
    "experiment_runs": (("experiment_id", "cell"), frozenset({"status", "run_id"})),
}
#: token counts: what a provider reports is kept in the call's raw response; the column holds it bounded
TOKEN_COLUMNS = frozenset({"input_tokens", "output_tokens"})


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_TAG: value.isoformat()}
    item = getattr(value, "item", None)  # a numpy scalar (a rating's score): its Python value, as DuckDB binds it
    if callable(item):
        return item()
    raise TypeError(f"the journal cannot store a {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _TAG in obj:
        if not isinstance(obj[_TAG], str):
            raise ValueError(f"{_TAG} holds a {type(obj[_TAG]).__name__}, not a date")
        return datetime.fromisoformat(obj[_TAG])
    return obj


def encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, default=_encode, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    value = json.loads(line, object_hook=_decode)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


# -- what a line holds ---------------------------------------------------------------------------------------

class RowUpdate(BaseModel):
    """Set ``values`` on the row of ``table`` whose key columns equal ``key``."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    table: StrictStr
    key: dict[StrictStr, Any]
    values: dict[StrictStr, Any] = Field(min_length=1)


class Round(BaseModel):
    """One journal line: the rows of one round of the write queue. ``seq``: the queue's sequence number after
    it; ``prev``: the round before it in this journal (0: none since the journal started)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    seq: StrictInt = Field(ge=1, le=INT64[1])
    prev: StrictInt = Field(ge=0, le=INT64[1])
    inserts: dict[StrictStr, list[dict[StrictStr, Any]]] = Field(default_factory=dict)
    row_updates: list[RowUpdate] = Field(default_factory=list)

    def calls(self) -> list[str]:
        return [str(row.get("id")) for row in self.inserts.get("calls", [])]


@dataclass(frozen=True)
class Column:
    type: str
    nullable: bool


#: table -> column -> its declared type and nullability, as the database says
Schema = dict[str, dict[str, Column]]


def _value_error(table: str, column: str, kind: str, value: Any) -> ValueError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return ValueError(f"{table}.{column} is {kind}, not {shown}")


def _check_value(table: str, column: str, spec: Column, value: Any) -> Any:
    """The value as it will be written, or ValueError when it is not of the column's type."""
    if value is None:
        if not spec.nullable:
            raise _value_error(table, column, "never null", value)
        return None
    kind = spec.type
    if table == "calls" and column in TOKEN_COLUMNS:
        if isinstance(value, int) and not isinstance(value, bool):
            return bounded_tokens(value)
        raise _value_error(table, column, "a token count", value)
    if kind in ("VARCHAR", "JSON") and isinstance(value, str):
        return value
    if kind == "JSON":
        return value
    if kind in ("INTEGER", "BIGINT", "SMALLINT", "TINYINT"):
        low, high = INT32 if kind == "INTEGER" else INT64 if kind == "BIGINT" else (-(2**15), 2**15 - 1) \
            if kind == "SMALLINT" else (-128, 127)
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise _value_error(table, column, f"an integer in [{low}, {high}]", value)
    if kind in ("DOUBLE", "FLOAT", "REAL"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            if column == "cost_usd" and not (math.isfinite(value) and value >= 0):
                raise _value_error(table, column, "a cost of 0 or more", value)
            return value
        raise _value_error(table, column, "a number", value)
    if kind == "BOOLEAN" and isinstance(value, bool):
        return value
    if kind == "TIMESTAMP" and isinstance(value, datetime):
        return value
    raise _value_error(table, column, f"of type {kind}", value)


def _check_columns(table: str, columns: dict[str, Column], names: list[str]) -> None:
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise ValueError(f"table {table} has no column {unknown[0]!r}")


def check_round(data: Round, schema: Schema) -> Round:
    """The round with every value checked against ``schema``: inserts only into :data:`TABLES`, updates only of
    :data:`UPDATABLE`'s columns, values of the columns' types (token counts bounded). ValueError otherwise."""
    inserts: dict[str, list[dict[str, Any]]] = {}
    for table, rows in data.inserts.items():
        if table not in TABLES or table not in schema:
            raise ValueError(f"a round may not insert into {table!r}")
        columns = schema[table]
        checked = []
        for row in rows:
            _check_columns(table, columns, list(row))
            missing = [c for c, spec in columns.items() if not spec.nullable and c not in row]
            if missing:
                raise ValueError(f"a row of {table} lacks {missing[0]}")
            checked.append({c: _check_value(table, c, columns[c], v) for c, v in row.items()})
        inserts[table] = checked
    updates = []
    for update in data.row_updates:
        allowed = UPDATABLE.get(update.table)
        if allowed is None or update.table not in schema:
            raise ValueError(f"a round may not update {update.table!r}")
        key_columns, settable = allowed
        if tuple(update.key) != key_columns:
            raise ValueError(f"an update of {update.table} is keyed by {', '.join(key_columns)}, "
                             f"not {', '.join(update.key) or 'nothing'}")
        refused = sorted(set(update.values) - settable)
        if refused:
            raise ValueError(f"a round may not set {update.table}.{refused[0]}")
        columns = schema[update.table]
        _check_columns(update.table, columns, [*update.key, *update.values])
        updates.append(RowUpdate(
            table=update.table, key={c: _check_value(update.table, c, columns[c], v) for c, v in update.key.items()},
            values={c: _check_value(update.table, c, columns[c], v) for c, v in update.values.items()}))
    return Round(seq=data.seq, prev=data.prev, inserts=inserts, row_updates=updates)


# -- the writer's file ---------------------------------------------------------------------------------------

def new_token() -> str:
    return secrets.token_hex(6)


class Journal:
    """The journal of one open store: append rounds, truncate once they are applied, remove on close."""

    def __init__(self, db: str, token: str | None = None) -> None:
        self.token = token or new_token()
        self.path = f"{resolved(db)}.journal.{self.token}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.size = 0  # bytes appended since the last truncation
        self.last = 0  # seq of the last round appended (the next one's ``prev``)

    def append(self, seq: int, body: dict[str, Any]) -> None:
        data = encode({"seq": seq, "prev": self.last, **body})
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)
        self.size += len(data)
        self.last = seq

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


# -- journals left behind ------------------------------------------------------------------------------------

@dataclass
class Orphan:
    """A journal no open store holds: its file, a descriptor holding its lock, and its token."""

    path: str
    fd: int
    token: str


@dataclass
class Found:
    orphans: list[Orphan] = field(default_factory=list)
    #: tokens of journals a live store holds (locked)
    held: set[str] = field(default_factory=set)

    def release(self) -> None:
        for orphan in self.orphans:
            release(orphan.path, orphan.fd, remove=False)
        self.orphans = []


def token_of(path: str) -> str:
    return path.rsplit(".journal.", 1)[1]


def scan(db: str) -> Found:
    """The journals beside ``db``. A name that is no journal's (``DB.journal.old.bak``) is left alone with a
    warning; a journal's name on anything but a plain file (a folder, a symbolic link, a pipe), or a file that
    cannot be opened, is refused in one line."""
    found = Found()
    try:
        for path in paths(db):
            token = token_of(path)
            if not _TOKEN.fullmatch(token):
                log.warning("%s: not a write journal's name (DB.journal.<12 hex digits>); left alone", path)
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # closed and removed meanwhile
            except OSError as err:
                what = ("a folder" if os.path.isdir(path) and not os.path.islink(path) else
                        "a symbolic link" if os.path.islink(path) else err.strerror)
                raise StabilityError(f"{path}: {what}, not a write journal; nothing was applied (move it away "
                                     "to open the store)") from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise StabilityError(f"{path}: not a plain file, not a write journal; nothing was applied (move "
                                     "it away to open the store)")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live store's journal
                found.held.add(token)
                continue
            found.orphans.append(Orphan(path, fd, token))
    except BaseException:
        found.release()
        raise
    return found


def orphans(db: str) -> list[tuple[str, int]]:
    return [(o.path, o.fd) for o in scan(db).orphans]


def _held_calls(rounds: list[Round]) -> str:
    ids = [i for r in rounds for i in r.calls()]
    shown = ", ".join(ids[:3]) + (f" ... {ids[-1]}" if len(ids) > 3 else "")
    return f"{len(rounds)} complete rounds before it hold {len(ids)} calls" + (f" ({shown})" if ids else "")


def read(path: str, fd: int, schema: Schema) -> list[Round]:
    """The checked rounds of a journal file, in order; a last line cut off by a kill (never acknowledged) is left
    out. Anything else wrong is a :class:`StabilityError` naming the file and line: nothing of it is applied."""
    size = os.fstat(fd).st_size
    if size > MAX_BYTES:
        raise StabilityError(f"{path}: {size} bytes, larger than any write journal a store writes; nothing was "
                             "applied")
    with os.fdopen(os.dup(fd), "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    *lines, torn = data.split(b"\n")
    rounds: list[Round] = []
    for number, line in enumerate(lines, 1):
        try:
            parsed = check_round(Round.model_validate(_from_before_prev(decode(line), rounds)), schema)
        except (ValueError, ValidationError, RecursionError) as err:
            problem = (f"{err.error_count()} fields are not a journal round's ({_first_error(err)})"
                       if isinstance(err, ValidationError) else str(err) or type(err).__name__)
            raise StabilityError(f"{path}: line {number} of the write journal is refused ({problem}); nothing of "
                                 "it was applied") from None
        if parsed.seq <= parsed.prev:
            raise StabilityError(f"{path}: line {number} of the write journal does not follow the round it names "
                                 f"(round {parsed.seq} after round {parsed.prev}); nothing of it was applied")
        if rounds and parsed.prev != rounds[-1].seq:
            raise StabilityError(f"{path}: line {number} of the write journal does not follow line {number - 1} "
                                 f"(rounds are missing between them: the {_held_calls(rounds)}); nothing of it "
                                 "was applied")
        rounds.append(parsed)
    if torn and len(data) % PAGE:
        raise StabilityError(f"{path}: cut off at byte {len(data)}, inside line {len(lines) + 1}, where no crash "
                             f"stops a write: acknowledged rounds after it are lost; the {_held_calls(rounds)}; "
                             f"nothing was applied (to apply those alone, cut the file after byte "
                             f"{len(data) - len(torn)})")
    return rounds


def _from_before_prev(data: dict[str, Any], rounds: list[Round]) -> dict[str, Any]:
    """A line written before rounds named the one before them (``updates`` always empty, row updates grouped as
    ``[table, key columns, [[key values, values]]]``) as a round of today's shape, checked like any other; any
    other line as it is (a statement in ``updates`` is refused as an unknown field)."""
    if set(data) != {"seq", "inserts", "row_updates", "updates"} or data["updates"] != []:
        return data
    try:
        updates = [{"table": table, "key": dict(zip(keys, values, strict=True)), "values": changes}
                   for table, keys, rows in data["row_updates"] for values, changes in rows]
    except (TypeError, ValueError):
        return data
    return {"seq": data["seq"], "prev": rounds[-1].seq if rounds else 0, "inserts": data["inserts"],
            "row_updates": updates}


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or 'the line'}: {first['msg']}"


def release(path: str, fd: int, remove: bool) -> None:
    if remove:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    os.close(fd)
