"""``litellm/PROVIDER/NAME``: every provider litellm knows, for those without an official SDK here.

litellm reads its own key variables (``MISTRAL_API_KEY`` and so on). ``LITELLM_LOCAL_MODEL_COST_MAP`` is set
so that importing it does not try to download a price map.
"""

from __future__ import annotations

import os
from typing import Any

from stability.errors import MissingDependency, StabilityError
from stability.models.base import Model, chat_completions_body, chat_completions_output, check_network_allowed
from stability.models.retry import body_transient, status_transient
from stability.models.sampling import is_openai_reasoning_model
from stability.models.structured import generate_in_format
from stability.vocabulary import GenerateConfig, Message, Output, TransientError


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError:
        raise MissingDependency("litellm/: litellm is missing; pip install 'stability[litellm]'") from None
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMModel(Model):
    network = True
    structured_output = True
    exposes_logprobs = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.model_id = name.split("/", 1)[1]
        if "/" not in self.model_id:
            raise StabilityError(f"{name}: expected litellm/PROVIDER/NAME, e.g. litellm/mistral/mistral-small")
        self.api_base = os.environ.get("LITELLM_API_BASE") or None
        self.exposes_logprobs = not is_openai_reasoning_model(self.model_id)  # reasoning models give none

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "api_base": self.api_base}

    def transient(self, err: Exception) -> TransientError | None:
        """litellm maps every provider's failures onto subclasses of the openai SDK's exceptions, each with a
        ``status_code`` (its ``Timeout`` is 408, its ``APIConnectionError`` 500); ``Retry-After`` comes in
        ``litellm_response_headers``."""
        import openai

        if isinstance(err, openai.APIConnectionError):  # litellm.Timeout and litellm.APIConnectionError
            return TransientError(f"{type(err).__name__}: {err}", status=getattr(err, "status_code", None))
        status = getattr(err, "status_code", None)
        if isinstance(err, openai.APIError) and isinstance(status, int):
            response = getattr(err, "response", None)
            headers = getattr(err, "litellm_response_headers", None) or getattr(response, "headers", None)
            return status_transient(err, status, headers)
        return body_transient(err)

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        check_network_allowed(self.name)
        litellm = _litellm()
        extra = {"api_base": self.api_base} if self.api_base else {}

        async def send(config: GenerateConfig) -> Output:
            body = chat_completions_body(self.model_id, messages, config)
            if config.thinking_budget is not None:  # litellm/anthropic/...: litellm passes it on
                body["thinking"] = {"type": "enabled", "budget_tokens": config.thinking_budget}
            response = await self.sending(litellm.acompletion(**body, **extra, num_retries=0))
            return chat_completions_output(response, body)

        return await generate_in_format(self, config, send)


def create(full_name: str) -> Model:
    return LiteLLMModel(full_name)
