"""``openai/NAME`` through the official SDK. Honours ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.

A chat completion is sent with the SDK client's low-level ``post`` (:meth:`SDKModel.post_json`): the request
body we store goes out as it is, and the response JSON comes back as the server sent it.

Pointing ``OPENAI_BASE_URL`` at vLLM, Ollama, llama_cpp.server or a proxy reaches those servers; they often
need no key, so a placeholder is sent when a base URL is set without one. A server that refuses ``json_schema``
is asked with ``json_object`` and the schema (llama.cpp enforces it as a grammar) before falling back to text
(:mod:`stability.models.structured`). Its Batch API (``--batch``):
:class:`OpenAIBatchAPI` (a JSONL file up, a batch on it, the output and error files back).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stability.errors import MissingDependency
from stability.models.base import (
    Model,
    SDKModel,
    as_json_object,
    chat_completions_body,
    chat_completions_json_output,
    check_network_allowed,
    http_timeout,
)
from stability.models.batch_api import (
    METADATA_KEY,
    BatchAPI,
    BatchRequest,
    BatchResult,
    BatchState,
    BatchStatus,
    answered,
    retryable,
)
from stability.models.retry import stainless_transient
from stability.models.sampling import is_openai_reasoning_model
from stability.models.structured import as_sent, generate_in_format
from stability.vocabulary import GenerateConfig, Message, Output, TransientError

#: the request options ``chat.completions.create`` sends with: bearer auth (the API key), not the admin key
_BEARER: dict[str, Any] = {"security": {"bearer_auth": True}}


class OpenAIModel(SDKModel):
    env_prefix = "OPENAI"
    structured_output = True
    exposes_logprobs = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        #: o-series and gpt-5: max_completion_tokens, reasoning_effort, no temperature, no log-probabilities
        self.reasoning = is_openai_reasoning_model(self.model_id)
        self.exposes_logprobs = not self.reasoning

    def make_client(self, api_key: str) -> Any:
        try:
            import openai
        except ImportError:
            raise MissingDependency("openai/: the openai SDK is missing; pip install 'stability[openai]'") from None
        return openai.AsyncOpenAI(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=http_timeout())

    def batch_api(self) -> BatchAPI:
        return OpenAIBatchAPI(self)

    def transient(self, err: Exception) -> TransientError | None:
        """By status (429, 5xx), connection and timeout errors, and truncated bodies."""
        import openai

        return stainless_transient(err, openai)

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        check_network_allowed(self.name)

        async def send(config: GenerateConfig) -> Output:
            body = chat_completions_body(self.model_id, messages, config)
            return chat_completions_json_output(await self.post_json("/chat/completions", body, **_BEARER), body)

        async def send_json_object(config: GenerateConfig) -> Output:
            body = as_json_object(chat_completions_body(self.model_id, messages, config))
            return chat_completions_json_output(await self.post_json("/chat/completions", body, **_BEARER), body)

        return await generate_in_format(self, config, send, send_json_object)


class OpenAIBatchAPI(BatchAPI):
    provider = "openai"
    model: OpenAIModel

    def __init__(self, model: OpenAIModel) -> None:
        self.model = model

    def body(self, messages: list[Message], config: GenerateConfig) -> dict[str, Any]:
        return chat_completions_body(self.model.model_id, messages, as_sent(config))

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
            return BatchResult(custom_id=cid, error=f"HTTP {status}: {message}", retry=retryable(status))
        output = chat_completions_json_output(response["body"], requests[cid].body)
        return BatchResult(custom_id=cid, output=answered(output, requests[cid]))

    async def cancel(self, provider_id: str) -> None:
        await self.model.client().batches.cancel(provider_id)


def create(full_name: str) -> Model:
    return OpenAIModel(full_name)
