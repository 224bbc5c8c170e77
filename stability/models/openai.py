"""``openai/NAME`` through the official SDK. Honours ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.

Pointing ``OPENAI_BASE_URL`` at vLLM, Ollama, llama_cpp.server or a proxy reaches those servers; they often
need no key, so a placeholder is sent when a base URL is set without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stability.errors import MissingDependency
from stability.models.base import (
    GenerateConfig,
    Message,
    Model,
    Output,
    SDKModel,
    TransientError,
    chat_completions_body,
    chat_completions_output,
    check_network_allowed,
    http_timeout,
)
from stability.models.retry import stainless_transient
from stability.models.sampling import is_openai_reasoning_model
from stability.models.structured import generate_in_format

if TYPE_CHECKING:
    from stability.models.batch_api import BatchAPI


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
        from stability.models.batch_api import OpenAIBatchAPI

        return OpenAIBatchAPI(self)

    def transient(self, err: Exception) -> TransientError | None:
        """By status (429, 5xx), connection and timeout errors, and truncated bodies."""
        import openai

        return stainless_transient(err, openai)

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        check_network_allowed(self.name)
        client = self.client()

        async def send(config: GenerateConfig) -> Output:
            body = chat_completions_body(self.model_id, messages, config)
            return chat_completions_output(await self.sending(client.chat.completions.create(**body)), body)

        return await generate_in_format(self, config, send)


def create(full_name: str) -> Model:
    return OpenAIModel(full_name)
