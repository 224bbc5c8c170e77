"""The ``batches`` and ``batch_requests`` tables: provider batches of ``--batch`` runs, written so a kill loses nothing.

Order of writes (each one committed at once, not queued): the *intent* (a local key and every request, with the
call key each becomes) before the batch is submitted; the provider's id right after it was created; each
request's outcome once the batch ended, after its answer was stored as an ordinary call. A request pending in a
batch that is not yet imported is never submitted again (:meth:`BatchTable.pending`).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Literal, Protocol

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from stability.store.rows import dict_rows


class BatchStore(Protocol):
    """What the batch rows need of :class:`stability.store.store.Store`, which holds a :class:`BatchTable` (so
    this module does not import it back): its connection and its transactions."""

    @property
    def con(self) -> duckdb.DuckDBPyConnection: ...

    def transaction(self) -> AbstractContextManager[Any]: ...


BatchRowState = Literal["intent", "live", "ended", "failed", "cancelled", "imported", "abandoned"]
RequestState = Literal["pending", "done", "retry", "failed"]
#: batches whose results are not imported yet: their pending requests are owned by them
OPEN_STATES = ("intent", "live", "ended", "failed", "cancelled")


class BatchRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built when a --batch run first uses it

    local_key: str
    provider: str
    model: str
    provider_id: str | None = None
    state: BatchRowState = "intent"
    raw_status: str | None = None
    counts: dict[str, int] | None = None
    wave: int
    n_requests: int
    created_at: datetime
    submitted_at: datetime | None = None
    finished_at: datetime | None = None


class BatchRequestRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built when a --batch run first uses it

    local_key: str
    custom_id: str
    run_id: str
    cache_key: str
    sample_index: int
    step: int
    purpose: str
    model: str
    body: dict[str, Any]
    answer_format: Literal["structured", "text"] | None = None
    committed_usd: float | None = Field(default=None, description="estimated cost at batch prices, committed")
    state: RequestState = "pending"
    call_id: str | None = None
    error: str | None = None




def _batch(row: dict[str, Any]) -> BatchRecord:
    if isinstance(row.get("counts"), str):
        row["counts"] = json.loads(row["counts"])
    return BatchRecord(**row)


def _request(row: dict[str, Any]) -> BatchRequestRecord:
    if isinstance(row.get("body"), str):
        row["body"] = json.loads(row["body"])
    return BatchRequestRecord(**row)


class BatchTable:
    """The batch rows of one store (``store.batches``)."""

    def __init__(self, store: BatchStore) -> None:
        self.store = store

    def write_intent(self, batch: BatchRecord, requests: list[BatchRequestRecord]) -> None:
        """The batch and its requests, committed before anything is submitted."""
        con = self.store.con
        with self.store.transaction():
            row = batch.model_dump()
            row["counts"] = json.dumps(row["counts"]) if row["counts"] is not None else None
            con.execute(f"INSERT INTO batches ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                        list(row.values()))
            for request in requests:
                values = request.model_dump()
                values["body"] = json.dumps(values["body"], sort_keys=True, ensure_ascii=False)
                con.execute(f"INSERT INTO batch_requests ({', '.join(values)}) "
                            f"VALUES ({', '.join('?' for _ in values)})", list(values.values()))

    def submitted(self, local_key: str, provider_id: str, at: datetime) -> None:
        self.store.con.execute("UPDATE batches SET provider_id = ?, state = 'live', submitted_at = ? "
                               "WHERE local_key = ?", [provider_id, at, local_key])

    def set_state(self, local_key: str, state: BatchRowState, raw_status: str | None = None,
                  counts: dict[str, int] | None = None, finished_at: datetime | None = None) -> None:
        self.store.con.execute(
            "UPDATE batches SET state = ?, raw_status = coalesce(?, raw_status), counts = coalesce(?, counts), "
            "finished_at = coalesce(?, finished_at) WHERE local_key = ?",
            [state, raw_status, json.dumps(counts) if counts is not None else None, finished_at, local_key])

    def settle(self, local_key: str, outcomes: dict[str, tuple[RequestState, str | None, str | None]]) -> None:
        """Each request's (state, call id, error), in one transaction."""
        con = self.store.con
        with self.store.transaction():
            for custom_id, (state, call_id, error) in outcomes.items():
                con.execute("UPDATE batch_requests SET state = ?, call_id = ?, error = ? "
                                       "WHERE local_key = ? AND custom_id = ?",
                                       [state, call_id, error, local_key, custom_id])

    def stored_calls(self, ids: list[str]) -> set[str]:
        """Which of these call ids are stored (committed, or queued and committed now)."""
        if not ids:
            return set()
        return {str(r[0]) for r in self.store.con.execute(
            "SELECT id FROM calls WHERE id IN (SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()}

    def get(self, local_key: str) -> BatchRecord:
        return _batch(dict_rows(self.store.con, "SELECT * FROM batches WHERE local_key = ?", [local_key])[0])

    def all(self) -> list[BatchRecord]:
        return [_batch(r) for r in dict_rows(self.store.con, "SELECT * FROM batches ORDER BY created_at, local_key")]

    def open(self) -> list[BatchRecord]:
        """Batches whose results are not imported yet (intents, live ones, finished ones not read)."""
        marks = ", ".join("?" for _ in OPEN_STATES)
        return [_batch(r) for r in dict_rows(self.store.con, f"SELECT * FROM batches WHERE state IN ({marks}) "
                                                     "ORDER BY created_at, local_key", list(OPEN_STATES))]

    def requests(self, local_key: str) -> list[BatchRequestRecord]:
        return [_request(r) for r in dict_rows(self.store.con, "SELECT * FROM batch_requests WHERE local_key = ? "
                                                       "ORDER BY custom_id", [local_key])]

    def pending(self, custom_id: str) -> str | None:
        """The open batch (its local key) in which this request is pending, if any: it must not be sent again."""
        marks = ", ".join("?" for _ in OPEN_STATES)
        row = self.store.con.execute(
            f"SELECT r.local_key FROM batch_requests r JOIN batches b USING (local_key) WHERE r.custom_id = ? "
            f"AND r.state = 'pending' AND b.state IN ({marks}) ORDER BY b.created_at LIMIT 1",
            [custom_id, *OPEN_STATES]).fetchone()
        return str(row[0]) if row else None

    def pending_count(self, run_ids: list[str]) -> int:
        """Requests of these runs pending in open batches: resuming them without the batcher would pay twice."""
        if not run_ids:
            return 0
        marks = ", ".join("?" for _ in OPEN_STATES)
        row = self.store.con.execute(
            f"SELECT count(*) FROM batch_requests r JOIN batches b USING (local_key) WHERE r.state = 'pending' "
            f"AND b.state IN ({marks}) AND r.run_id IN (SELECT unnest(?::VARCHAR[]))", [*OPEN_STATES, run_ids]
        ).fetchone()
        return int(row[0]) if row else 0

    def claimed(self, provider: str) -> set[str]:
        """Provider ids already recorded for this provider."""
        return {str(r[0]) for r in self.store.con.execute(
            "SELECT provider_id FROM batches WHERE provider = ? AND provider_id IS NOT NULL", [provider]).fetchall()}

    def committed_usd(self, experiment_id: str) -> float:
        """Committed spending of the experiment: requests pending in open batches, at their batch estimate."""
        marks = ", ".join("?" for _ in OPEN_STATES)
        row = self.store.con.execute(
            f"SELECT coalesce(sum(r.committed_usd), 0) FROM batch_requests r JOIN batches b USING (local_key) "
            f"JOIN experiment_runs e ON e.run_id = r.run_id WHERE e.experiment_id = ? AND r.state = 'pending' "
            f"AND b.state IN ({marks}) AND b.state != 'intent'", [experiment_id, *OPEN_STATES]).fetchone()
        return float(row[0]) if row else 0.0
