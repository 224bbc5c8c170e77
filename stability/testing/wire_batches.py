"""The wire server's batch APIs: OpenAI's Files + Batches and Anthropic's Message Batches, on 127.0.0.1.

Routes (as the real SDKs call them):

- OpenAI: ``POST /v1/files`` (multipart JSONL upload, purpose ``batch``), ``GET /v1/files/ID`` and
  ``GET /v1/files/ID/content``; ``POST /v1/batches``, ``GET /v1/batches`` (list, newest first, ``after`` and
  ``limit``), ``GET /v1/batches/ID``, ``POST /v1/batches/ID/cancel``. Answers go to an output file, failures (an
  error status, an expired request) to an error file.
- Anthropic: ``POST /v1/messages/batches``, ``GET /v1/messages/batches`` (list), ``GET /v1/messages/batches/ID``,
  ``POST /v1/messages/batches/ID/cancel``, ``GET /v1/messages/batches/ID/results`` (JSONL).

A batch completes ``delay`` seconds after it was created (its answers computed then, by the server's ``reply``, under
the same request rules as a direct call). Faults, decided when a request is submitted and kept with it:
``expire_next(n)`` (the next n requests expire), ``error_next(n, status)`` (the next n requests fail with that
status: partial errors), ``fail_next_batch()`` (the next batch fails as a whole: OpenAI ``failed``, every Anthropic
request errored). Every change is written to ``state`` (a JSON file) before it is answered, so a server started
again on the same file (a restart) loses nothing. ``submitted`` counts how often each ``custom_id`` was submitted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: (path, body) -> (HTTP status, payload): the server's answer to one direct request
Answer = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]
Response = tuple[int, bytes, str]  # status, body, content type

OPENAI_LIVE = ("validating", "in_progress", "finalizing", "cancelling")


def _json(status: int, payload: Any) -> Response:
    return status, json.dumps(payload).encode(), "application/json"


def _iso(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z") if at is not None else None


class WireBatches:
    """The batch state of one wire server (and of every server started again on the same ``state`` file)."""

    def __init__(self, answer: Answer, state: Path | str | None = None, delay: float = 0.0) -> None:
        self.answer = answer
        self.path = Path(state) if state else None
        self.delay = delay
        self.lock = threading.RLock()
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}  # OpenAI and Anthropic batches, by id
        self.submitted: Counter[str] = Counter()
        self.faults: list[dict[str, Any]] = []  # per-request faults for the next requests submitted
        self.fail_batches = 0
        if self.path is not None and self.path.exists():
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            self.files, self.batches = saved["files"], saved["batches"]
            self.submitted = Counter(saved["submitted"])
            self.faults, self.fail_batches = saved["faults"], saved["fail_batches"]

    # -- faults and counters ---------------------------------------------------------------------------------

    def expire_next(self, n: int = 1) -> None:
        with self.lock:
            self.faults.extend({"kind": "expired"} for _ in range(n))
            self._save()

    def error_next(self, n: int = 1, status: int = 500) -> None:
        with self.lock:
            self.faults.extend({"kind": "error", "status": status} for _ in range(n))
            self._save()

    def fail_next_batch(self) -> None:
        with self.lock:
            self.fail_batches += 1
            self._save()

    def twice(self) -> dict[str, int]:
        """custom_ids submitted more than once, with their counts."""
        with self.lock:
            return {k: v for k, v in self.submitted.items() if v > 1}

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"files": self.files, "batches": self.batches, "submitted": dict(self.submitted),
                "faults": self.faults, "fail_batches": self.fail_batches}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.path)

    # -- routing -----------------------------------------------------------------------------------------------

    @staticmethod
    def handles(path: str) -> bool:
        route = urlsplit(path).path
        return route.startswith(("/v1/files", "/v1/batches", "/v1/messages/batches"))

    def post(self, path: str, raw: bytes, headers: dict[str, str]) -> Response:
        route = urlsplit(path).path.rstrip("/")
        with self.lock:
            if route == "/v1/files":
                return self._upload(raw, headers)
            if route == "/v1/batches":
                return self._openai_create(json.loads(raw or b"{}"))
            if route == "/v1/messages/batches":
                return self._anthropic_create(json.loads(raw or b"{}"))
            parts = route.split("/")
            if route.endswith("/cancel") and parts[-2] in self.batches:
                return self._cancel(parts[-2])
        return _json(404, {"error": {"type": "not_found_error", "message": f"no route {path}"}})

    def get(self, path: str) -> Response:
        url = urlsplit(path)
        route, query = url.path.rstrip("/"), {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = route.split("/")
        with self.lock:
            if route in ("/v1/batches", "/v1/messages/batches"):
                return self._list(route == "/v1/batches", query)
            if route.startswith("/v1/files/"):
                file = self.files.get(parts[3])
                if file is None:
                    return _json(404, {"error": {"message": f"no file {parts[3]}"}})
                if route.endswith("/content"):
                    return 200, file["content"].encode(), "application/octet-stream"
                return _json(200, self._file_object(file))
            if route.endswith("/results") and parts[-2] in self.batches:
                return self._anthropic_results(parts[-2])
            if parts[-1] in self.batches:
                batch = self._advance(self.batches[parts[-1]])
                return _json(200, self._view(batch))
        return _json(404, {"error": {"type": "not_found_error", "message": f"no route {path}"}})

    # -- OpenAI ------------------------------------------------------------------------------------------------

    def _upload(self, raw: bytes, headers: dict[str, str]) -> Response:
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        message = BytesParser(policy=HTTP).parsebytes(f"content-type: {content_type}\r\n\r\n".encode() + raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True))
        filename, content = fields.get("file", ("upload.jsonl", b""))
        purpose = (fields.get("purpose", (None, b"batch"))[1] or b"").decode()
        file_id = "file-" + uuid.uuid4().hex[:20]
        file: dict[str, Any] = {"id": file_id, "filename": filename or "upload.jsonl", "purpose": purpose,
                "content": (content or b"").decode("utf-8"), "created_at": int(time.time())}
        self.files[file_id] = file
        self._save()
        return _json(200, self._file_object(file))

    @staticmethod
    def _file_object(file: dict[str, Any]) -> dict[str, Any]:
        return {"id": file["id"], "object": "file", "bytes": len(file["content"].encode()),
                "created_at": file["created_at"], "filename": file["filename"], "purpose": file["purpose"],
                "status": "processed"}

    def _openai_create(self, body: dict[str, Any]) -> Response:
        file = self.files.get(body.get("input_file_id", ""))
        if file is None:
            return _json(400, {"error": {"message": "input_file_id: no such file", "type": "invalid_request_error"}})
        lines = [json.loads(line) for line in file["content"].splitlines() if line.strip()]
        requests = [{"custom_id": line["custom_id"], "path": line["url"], "body": line["body"]} for line in lines]
        batch = self._new("batch_" + uuid.uuid4().hex[:20], "openai", requests)
        batch.update(input_file_id=file["id"], endpoint=body.get("endpoint"), metadata=body.get("metadata") or {})
        self._save()
        return _json(200, self._view(batch))

    def _anthropic_create(self, body: dict[str, Any]) -> Response:
        requests = [{"custom_id": r["custom_id"], "path": "/v1/messages", "body": r["params"]}
                    for r in body.get("requests", [])]
        batch = self._new("msgbatch_" + uuid.uuid4().hex[:20], "anthropic", requests)
        self._save()
        return _json(200, self._view(batch))

    def _new(self, batch_id: str, api: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
        failed = self.fail_batches > 0
        self.fail_batches -= int(failed)
        for request in requests:
            self.submitted[request["custom_id"]] += 1
            request["fault"] = self.faults.pop(0) if self.faults and not failed else None
        created = time.time()
        batch = {"id": batch_id, "api": api, "requests": requests, "created_at": created,
                 "ready_at": created + self.delay, "status": "in_progress", "failed": failed, "results": None,
                 "ended_at": None, "cancelled": False}
        self.batches[batch_id] = batch
        return batch

    def _advance(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Complete the batch if its time has come: compute every answer now, once."""
        if batch["status"] != "in_progress" or time.time() < batch["ready_at"]:
            return batch
        results = []
        for request in batch["requests"]:
            fault = request["fault"]
            if batch["failed"]:
                results.append({"custom_id": request["custom_id"], "kind": "error", "status": 500,
                                "body": {"error": {"type": "api_error", "message": "the batch failed"}}})
            elif fault is not None and fault["kind"] == "expired":
                results.append({"custom_id": request["custom_id"], "kind": "expired"})
            elif fault is not None:
                results.append({"custom_id": request["custom_id"], "kind": "error", "status": fault["status"],
                                "body": {"error": {"type": "api_error", "message": f"injected {fault['status']}"}}})
            else:
                status, payload = self.answer(request["path"], request["body"])
                results.append({"custom_id": request["custom_id"], "kind": "ok" if status == 200 else "error",
                                "status": status, "body": payload})
        batch["results"] = results
        batch["ended_at"] = time.time()
        expired = any(r["kind"] == "expired" for r in results)
        if batch["api"] == "openai":
            batch["status"] = "failed" if batch["failed"] else "expired" if expired else "completed"
        else:
            batch["status"] = "ended"
        if batch["api"] == "openai" and batch["status"] != "failed":
            self._write_openai_files(batch)
        self._save()
        return batch

    def _write_openai_files(self, batch: dict[str, Any]) -> None:
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for n, result in enumerate(batch["results"]):
            line: dict[str, Any] = {"id": f"batch_req_{n}", "custom_id": result["custom_id"], "response": None,
                                    "error": None}
            if result["kind"] == "expired":
                line["error"] = {"code": "batch_expired", "message": "This request could not be executed before "
                                                                     "the completion window expired."}
                errors.append(line)
                continue
            line["response"] = {"status_code": result["status"], "request_id": f"req_{n}", "body": result["body"]}
            (output if result["kind"] == "ok" else errors).append(line)
        for name, lines in (("output_file_id", output), ("error_file_id", errors)):
            if lines:
                file_id = "file-" + uuid.uuid4().hex[:20]
                self.files[file_id] = {"id": file_id, "filename": f"{batch['id']}_{name}.jsonl",
                                       "purpose": "batch_output", "created_at": int(time.time()),
                                       "content": "".join(json.dumps(x) + "\n" for x in lines)}
                batch[name] = file_id

    def _cancel(self, batch_id: str) -> Response:
        batch = self._advance(self.batches[batch_id])
        if batch["status"] == "in_progress":
            batch.update(status="cancelled" if batch["api"] == "openai" else "ended", cancelled=True,
                         ended_at=time.time(),
                         results=[{"custom_id": r["custom_id"], "kind": "canceled"} for r in batch["requests"]])
            self._save()
        return _json(200, self._view(batch))

    def _list(self, openai: bool, query: dict[str, str]) -> Response:
        api = "openai" if openai else "anthropic"
        found = sorted((b for b in self.batches.values() if b["api"] == api), key=lambda b: -b["created_at"])
        after = query.get("after") or query.get("after_id")
        if after:
            ids = [b["id"] for b in found]
            found = found[ids.index(after) + 1:] if after in ids else []
        limit = int(query.get("limit") or 20)
        page = [self._view(self._advance(b)) for b in found[:limit]]
        more = len(found) > limit
        if openai:
            return _json(200, {"object": "list", "data": page, "has_more": more,
                               "first_id": page[0]["id"] if page else None,
                               "last_id": page[-1]["id"] if page else None})
        return _json(200, {"data": page, "has_more": more, "first_id": page[0]["id"] if page else None,
                           "last_id": page[-1]["id"] if page else None})

    def _view(self, batch: dict[str, Any]) -> dict[str, Any]:
        results = batch["results"] or []
        kinds = Counter(r["kind"] for r in results)
        total = len(batch["requests"])
        if batch["api"] == "openai":
            done = batch["status"] not in OPENAI_LIVE
            return {"id": batch["id"], "object": "batch", "endpoint": batch.get("endpoint") or "/v1/chat/completions",
                    "input_file_id": batch["input_file_id"], "completion_window": "24h", "status": batch["status"],
                    "created_at": int(batch["created_at"]), "metadata": batch.get("metadata") or {},
                    "output_file_id": batch.get("output_file_id"), "error_file_id": batch.get("error_file_id"),
                    "completed_at": int(batch["ended_at"]) if batch["status"] == "completed" else None,
                    "failed_at": int(batch["ended_at"]) if batch["status"] == "failed" else None,
                    "errors": {"object": "list", "data": [{"code": "server_error", "message": "the batch failed"}]}
                    if batch["status"] == "failed" else None,
                    "request_counts": {"total": total, "completed": kinds["ok"] if done else 0,
                                       "failed": total - kinds["ok"] if done else 0}}
        ended = batch["status"] == "ended"
        return {"id": batch["id"], "type": "message_batch", "processing_status": batch["status"],
                "created_at": _iso(batch["created_at"]), "ended_at": _iso(batch["ended_at"]),
                "expires_at": _iso(batch["created_at"] + 86400), "archived_at": None,
                "cancel_initiated_at": _iso(batch["ended_at"]) if batch["cancelled"] else None,
                "results_url": f"/v1/messages/batches/{batch['id']}/results" if ended else None,
                "request_counts": {"processing": 0 if ended else total, "succeeded": kinds["ok"],
                                   "errored": kinds["error"], "canceled": kinds["canceled"],
                                   "expired": kinds["expired"]}}

    def _anthropic_results(self, batch_id: str) -> Response:
        batch = self._advance(self.batches[batch_id])
        if batch["status"] != "ended":
            return _json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "the batch has not ended"}})
        lines = []
        for result in batch["results"]:
            kind = result["kind"]
            if kind == "ok":
                body: dict[str, Any] = {"type": "succeeded", "message": result["body"]}
            elif kind == "error":
                error = result["body"].get("error", {})
                body = {"type": "errored", "error": {"type": "error", "error": {
                    "type": error.get("type", "api_error"), "message": error.get("message", "error")}}}
            else:
                body = {"type": kind}
            lines.append(json.dumps({"custom_id": result["custom_id"], "result": body}) + "\n")
        return 200, "".join(lines).encode(), "application/binary"
