"""``openai/NAME`` through the official SDK. Honours ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.

Pointing ``OPENAI_BASE_URL`` at vLLM, Ollama, llama_cpp.server or a proxy reaches those servers; they often
need no key, so a placeholder is sent when a base URL is set without one.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from stability.errors import MissingDependency, StabilityError
from stability.models.base import (
    GenerateConfig,
    Message,
    Model,
    Output,
    chat_completions_body,
    chat_completions_output,
    check_network_allowed,
    http_timeout,
    sending,
)


class OpenAIModel(Model):
    network = True
    structured_output = True
    exposes_logprobs = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.model_id = name.split("/", 1)[1]
        self.base_url = os.environ.get("OPENAI_BASE_URL") or None
        if not os.environ.get("OPENAI_API_KEY") and not self.base_url:
            raise StabilityError(f"{name}: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
        self._client: Any = None
        self._loop: Any = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "base_url": self.base_url}

    def _sdk(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:  # a client belongs to one event loop
            self._loop = loop
            try:
                import openai
            except ImportError:
                raise MissingDependency("openai/: the openai SDK is missing; pip install openai") from None
            key = os.environ.get("OPENAI_API_KEY") or "not-needed"
            self._client = openai.AsyncOpenAI(api_key=key, base_url=self.base_url, max_retries=0,
                                              timeout=http_timeout())
        return self._client

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        check_network_allowed(self.name)
        client = self._sdk()
        body = chat_completions_body(self.model_id, messages, config)
        return chat_completions_output(await sending(client.chat.completions.create(**body)), body)


def create(full_name: str) -> Model:
    return OpenAIModel(full_name)
