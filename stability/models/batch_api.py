"""Provider batch APIs (half the price, answers within 24 hours) behind one interface, through the official SDKs.

- OpenAI (``openai/``): the requests go up as a JSONL file (``purpose=batch``), a batch is created on it with
  ``metadata={"stability_batch": LOCAL_KEY}``, and its output and error files are read when it ends.
- Anthropic (``anthropic/``): a message batch is created with the requests inline, and its results (JSONL) are
  read when it ends. Message batches carry no metadata: a batch whose id was lost is found again by its creation
  time (not before the intent was written) and its request count.

Each request's ``custom_id`` is its call key (:func:`custom_id`). A request body is exactly what the provider's
``generate`` would send, so an answer from a batch is stored like an answer from a direct call. Models with a
batch API return it from :meth:`~stability.models.base.Model.batch_api` (the implementations live with their
providers: :mod:`stability.models.openai`, :mod:`stability.models.anthropic`); the others answer ``None`` and are
asked directly.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from stability.json_text import json_object
from stability.vocabulary import GenerateConfig, Message, Output, TransientError

BatchState = Literal["live", "ended", "failed", "cancelled"]
#: providers with a batch API (``--dry-run`` prices their calls at the batch rate without loading a model)
BATCH_PREFIXES = ("openai", "anthropic")
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


class ClassifiesErrors(Protocol):
    """What a batch API needs of its model: the model's own retry classification (:meth:`Model.transient
    <stability.models.base.Model.transient>`); the provider's batch API narrows it to its model class."""

    def transient(self, err: Exception) -> TransientError | None: ...


class BatchAPI(ABC):
    provider: str
    model: ClassifiesErrors

    def transient(self, err: Exception) -> bool:
        """Whether a failure to reach the batch API is worth trying again (the model's own classification)."""
        return isinstance(err, TransientError) or self.model.transient(err) is not None

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


def answered(output: Output, request: BatchRequest) -> Output:
    """A batch answer marked as a direct call's would be: structured (parsed) or asked as text."""
    if request.answer_format == "structured":
        return output.model_copy(update={"answer_format": "structured", "structured": json_object(output.text)})
    if request.answer_format == "text":
        return output.model_copy(update={"answer_format": "text"})
    return output


def retryable(status: int | None) -> bool:
    """Whether a request that failed with this HTTP status is worth sending again in a later wave."""
    return status is None or status == 429 or status >= 500
