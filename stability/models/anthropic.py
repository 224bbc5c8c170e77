"""``anthropic/NAME`` through the official SDK. Honours ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``.

A message is sent with the SDK client's low-level ``post`` (:meth:`SDKModel.post_json`): the request body we
store (sampling fields the SDK no longer types included) goes out as it is, and the response JSON comes back as
the server sent it. Its Message Batches API (``--batch``): :class:`AnthropicBatchAPI`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stability.errors import MissingDependency
from stability.models.base import Model, SDKModel, check_network_allowed, http_timeout
from stability.models.batch_api import BatchAPI, BatchRequest, BatchResult, BatchState, BatchStatus, answered
from stability.models.retry import stainless_transient
from stability.models.structured import as_sent, generate_in_format
from stability.vocabulary import GenerateConfig, Message, Output, TransientError, Usage


class AnthropicModel(SDKModel):
    env_prefix = "ANTHROPIC"
    structured_output = True

    def make_client(self, api_key: str) -> Any:
        try:
            import anthropic
        except ImportError:
            raise MissingDependency("anthropic/: the anthropic SDK is missing; pip install 'stability[anthropic]'") \
                from None
        return anthropic.AsyncAnthropic(api_key=api_key, base_url=self.base_url, max_retries=0,
                                         timeout=http_timeout())

    def batch_api(self) -> BatchAPI:
        return AnthropicBatchAPI(self)

    def transient(self, err: Exception) -> TransientError | None:
        """By status (429, 5xx, 529 overloaded), connection and timeout errors, and truncated bodies."""
        import anthropic

        return stainless_transient(err, anthropic)

    def request_body(self, messages: list[Message], config: GenerateConfig) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request's fields the SDK types, and the sampling fields it no longer types; the request sent (and
        stored) is the two merged.

        Temperature and top_p go on the wire only when they differ from the API's defaults, since recent
        models reject them; the seed has no Anthropic equivalent and only keys the cache. With extended
        thinking the API refuses forced tool use, so a structured answer is then asked for with the tool
        offered (``tool_choice: auto``), and the model may still answer in text.
        """
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        body: dict[str, Any] = {
            "model": self.model_id,
            "max_tokens": config.max_tokens,
            "messages": [m.model_dump() for m in messages if m.role != "system"],
        }
        if system:
            body["system"] = system
        if config.stop:
            body["stop_sequences"] = list(config.stop)
        if config.thinking_budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": config.thinking_budget}
        if config.json_schema is not None:  # structured output through a forced tool call
            body["tools"] = [{"name": "answer", "description": "Submit the answer.",
                              "input_schema": config.json_schema}]
            body["tool_choice"] = {"type": "auto"} if config.thinking_budget is not None \
                else {"type": "tool", "name": "answer"}
        extra: dict[str, Any] = {}
        if config.temperature != 1.0:
            extra["temperature"] = config.temperature
        if config.top_p is not None:
            extra["top_p"] = config.top_p
        return body, extra

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        check_network_allowed(self.name)

        async def send(config: GenerateConfig) -> Output:
            body, extra = self.request_body(messages, config)
            request = {**body, **extra}
            return messages_output(await self.post_json("/v1/messages", request), request)

        return await generate_in_format(self, config, send)


def messages_output(data: dict[str, Any], request: dict[str, Any]) -> Output:
    """An Anthropic message, as JSON, as an :class:`Output` (``data`` is stored as the response): text blocks
    are the answer (a tool call's input, as JSON, when there is one); thinking blocks go to ``thinking``, never
    into the answer."""
    blocks = [block for block in data.get("content") or [] if isinstance(block, dict)]
    text = "".join(block.get("text") or "" for block in blocks if block.get("type") == "text")
    tool_input = [block.get("input") for block in blocks if block.get("type") == "tool_use"]
    if tool_input:
        text = json.dumps(tool_input[0])
    thinking = "\n\n".join(block.get("thinking") or "" for block in blocks if block.get("type") == "thinking")
    usage = data.get("usage") or {}
    return Output(
        text=text,
        usage=Usage(input_tokens=usage.get("input_tokens") or 0, output_tokens=usage.get("output_tokens") or 0),
        finish_reason=data.get("stop_reason"),
        request=request,
        response=data,
        thinking=thinking or None,
    )


class AnthropicBatchAPI(BatchAPI):
    provider = "anthropic"
    model: AnthropicModel

    def __init__(self, model: AnthropicModel) -> None:
        self.model = model

    def body(self, messages: list[Message], config: GenerateConfig) -> dict[str, Any]:
        body, extra = self.model.request_body(messages, as_sent(config))
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
        found: dict[str, BatchResult] = {}
        async for line in await self.model.client().messages.batches.results(provider_id):
            cid, result = line.custom_id, line.result
            if cid not in requests:
                continue
            if result.type == "succeeded":
                output = messages_output(result.message.model_dump(mode="json"), requests[cid].body)
                found[cid] = BatchResult(custom_id=cid, output=answered(output, requests[cid]))
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


def create(full_name: str) -> Model:
    return AnthropicModel(full_name)
