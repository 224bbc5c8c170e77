"""Provider batch APIs (half the price, answers within 24 hours) behind one interface, through the official SDKs.

- OpenAI (``openai/``): the requests go up as a JSONL file (``purpose=batch``), a batch is created on it with
  ``metadata={"stability_batch": LOCAL_KEY}``, and its output and error files are read when it ends.
- Anthropic (``anthropic/``): a message batch is created with the requests inline, and its results (JSONL) are
  read when it ends. Message batches carry no metadata: a batch whose id was lost is found again by its creation
  time (not before the intent was written) and its request count.

Each request's ``custom_id`` is its call key (:func:`custom_id`). A request body is exactly what the provider's
``generate`` would send, so an answer from a batch is stored like an answer from a direct call. Models with a
batch API return it from :meth:`~stability.models.base.Model.batch_api`; the others answer ``None`` and are asked
directly.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stability.models.base import GenerateConfig, Message, Output, chat_completions_body, chat_completions_output
from stability.models.structured import parse_json_object

if TYPE_CHECKING:
    from stability.models.anthropic import AnthropicModel
    from stability.models.openai import OpenAIModel

BatchState = Literal["live", "ended", "failed", "cancelled"]
METADATA_KEY = "stability_batch"


def custom_id(run_id: str, cache_key: str, sample_index: int) -> str:
    """A call's key inside a batch: unique per (run, request, sample), 64 characters of ``[0-9a-f]`` (both APIs
    accept it)."""
    return hashlib.sha256(f"{run_id}\n{cache_key}\n{sample_index}".encode()).hexdigest()


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    custom_id: str
    body: dict[str, Any] = Field(description="the provider's request body, as a direct call would send it")
    answer_format: Literal["structured", "text"] | None = None


class BatchStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: str
    state: BatchState
    raw_status: str = Field(description="the provider's own word: in_progress, completed, expired, ended, ...")
    counts: dict[str, int] = Field(default_factory=dict)


class BatchResult(BaseModel):
    """One request's outcome: an output, or an error that a later wave may retry (expired, 429, 5xx) or not."""

    model_config = ConfigDict(extra="forbid")

    custom_id: str
    output: Output | None = None
    error: str | None = None
    retry: bool = False


class BatchAPI(ABC):
    provider: str

    @abstractmethod
    def body(self, messages: list[Message], config: GenerateConfig) -> dict[str, Any]:
        """The request body a direct call would send (a structured answer as structured output)."""

    @abstractmethod
    async def submit(self, requests: list[BatchRequest], local_key: str) -> str:
        """Create the batch; its provider id."""

    @abstractmethod
    async def find(self, local_key: str, since: datetime, n_requests: int, claimed: set[str]) -> str | None:
        """The provider id of a batch created for ``local_key`` whose id was never stored, or None."""

    @abstractmethod
    async def status(self, provider_id: str) -> BatchStatus: ...

    @abstractmethod
    async def results(self, provider_id: str, requests: dict[str, BatchRequest]) -> list[BatchResult]:
        """Every request's outcome once the batch ended; a request the provider left out is a retryable error."""

    @abstractmethod
    async def cancel(self, provider_id: str) -> None: ...


def request_for(messages: list[Message], config: GenerateConfig, body: dict[str, Any], cid: str) -> BatchRequest:
    fmt: Literal["structured", "text"] | None = None
    if config.json_schema is not None:
        fmt = "text" if config.answer_format == "text" else "structured"
    return BatchRequest(custom_id=cid, body=body, answer_format=fmt)


def _answered(output: Output, request: BatchRequest) -> Output:
    if request.answer_format == "structured":
        return output.model_copy(update={"answer_format": "structured", "structured": parse_json_object(output.text)})
    if request.answer_format == "text":
        return output.model_copy(update={"answer_format": "text"})
    return output


def _retryable(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


class OpenAIBatchAPI(BatchAPI):
    provider = "openai"

    def __init__(self, model: OpenAIModel) -> None:
        self.model = model

    def body(self, messages: list[Message], config: GenerateConfig) -> dict[str, Any]:
        as_sent = config if config.answer_format != "text" else config.model_copy(update={"json_schema": None})
        return chat_completions_body(self.model.model_id, messages, as_sent)

    async def submit(self, requests: list[BatchRequest], local_key: str) -> str:
        client = self.model.client()
        lines = "".join(json.dumps({"custom_id": r.custom_id, "method": "POST", "url": "/v1/chat/completions",
                                    "body": r.body}) + "\n" for r in requests)
        file = await client.files.create(file=(f"{local_key}.jsonl", lines.encode()), purpose="batch")
        batch = await client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                            completion_window="24h", metadata={METADATA_KEY: local_key})
        return str(batch.id)

    async def find(self, local_key: str, since: datetime, n_requests: int, claimed: set[str]) -> str | None:
        async for batch in self.model.client().batches.list(limit=100):
            if (batch.metadata or {}).get(METADATA_KEY) == local_key:
                return str(batch.id)
            if batch.created_at < since.timestamp() - 60:
                return None
        return None

    async def status(self, provider_id: str) -> BatchStatus:
        batch = await self.model.client().batches.retrieve(provider_id)
        state: BatchState = "live" if batch.status in ("validating", "in_progress", "finalizing", "cancelling") \
            else "failed" if batch.status == "failed" else "cancelled" if batch.status == "cancelled" else "ended"
        counts = batch.request_counts.model_dump() if batch.request_counts else {}
        return BatchStatus(provider_id=provider_id, state=state, raw_status=batch.status, counts=counts)

    async def results(self, provider_id: str, requests: dict[str, BatchRequest]) -> list[BatchResult]:
        client = self.model.client()
        batch = await client.batches.retrieve(provider_id)
        found: dict[str, BatchResult] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await client.files.content(file_id)
            for line in content.text.splitlines():
                if line.strip():
                    result = self._result(json.loads(line), requests)
                    if result is not None:
                        found[result.custom_id] = result
        missing = f"not answered by batch {provider_id} ({batch.status})"
        return [found.get(cid) or BatchResult(custom_id=cid, error=missing, retry=True) for cid in requests]

    def _result(self, line: dict[str, Any], requests: dict[str, BatchRequest]) -> BatchResult | None:
        cid = line.get("custom_id")
        if cid not in requests:
            return None
        response, error = line.get("response") or {}, line.get("error")
        if error:
            return BatchResult(custom_id=cid, error=f"{error.get('code')}: {error.get('message')}", retry=True)
        status = response.get("status_code")
        if status != 200:
            message = json.dumps(response.get("body"))[:500]
            return BatchResult(custom_id=cid, error=f"HTTP {status}: {message}", retry=_retryable(status))
        import openai.types.chat

        completion = openai.types.chat.ChatCompletion.model_validate(response["body"])
        output = chat_completions_output(completion, requests[cid].body)
        return BatchResult(custom_id=cid, output=_answered(output, requests[cid]))

    async def cancel(self, provider_id: str) -> None:
        await self.model.client().batches.cancel(provider_id)


class AnthropicBatchAPI(BatchAPI):
    provider = "anthropic"

    def __init__(self, model: AnthropicModel) -> None:
        self.model = model

    def body(self, messages: list[Message], config: GenerateConfig) -> dict[str, Any]:
        as_sent = config if config.answer_format != "text" else config.model_copy(update={"json_schema": None})
        body, extra = self.model.request_body(messages, as_sent)
        return {**body, **extra}

    async def submit(self, requests: list[BatchRequest], local_key: str) -> str:
        batch = await self.model.client().messages.batches.create(
            requests=[{"custom_id": r.custom_id, "params": r.body} for r in requests])
        return str(batch.id)

    async def find(self, local_key: str, since: datetime, n_requests: int, claimed: set[str]) -> str | None:
        found = []
        async for batch in self.model.client().messages.batches.list(limit=100):
            if batch.created_at.timestamp() < since.timestamp() - 60:
                break
            counts = batch.request_counts
            total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
            if batch.id not in claimed and total == n_requests and batch.created_at.timestamp() >= since.timestamp():
                found.append(batch)
        return str(min(found, key=lambda b: b.created_at).id) if found else None

    async def status(self, provider_id: str) -> BatchStatus:
        batch = await self.model.client().messages.batches.retrieve(provider_id)
        state: BatchState = "ended" if batch.processing_status == "ended" else "live"
        return BatchStatus(provider_id=provider_id, state=state, raw_status=batch.processing_status,
                           counts=batch.request_counts.model_dump())

    async def results(self, provider_id: str, requests: dict[str, BatchRequest]) -> list[BatchResult]:
        from stability.models.anthropic import messages_output

        found: dict[str, BatchResult] = {}
        async for line in await self.model.client().messages.batches.results(provider_id):
            cid, result = line.custom_id, line.result
            if cid not in requests:
                continue
            if result.type == "succeeded":
                output = messages_output(result.message, requests[cid].body)
                found[cid] = BatchResult(custom_id=cid, output=_answered(output, requests[cid]))
            elif result.type == "errored":
                error = result.error.error
                kind = getattr(error, "type", "api_error")
                found[cid] = BatchResult(custom_id=cid, error=f"{kind}: {getattr(error, 'message', '')}",
                                         retry=kind in ("api_error", "overloaded_error", "rate_limit_error"))
            else:  # expired, canceled
                found[cid] = BatchResult(custom_id=cid, error=f"{result.type} in batch {provider_id}", retry=True)
        missing = f"not answered by batch {provider_id}"
        return [found.get(cid) or BatchResult(custom_id=cid, error=missing, retry=True) for cid in requests]

    async def cancel(self, provider_id: str) -> None:
        await self.model.client().messages.batches.cancel(provider_id)
