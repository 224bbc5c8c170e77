"""``anthropic/NAME`` through the official SDK. Honours ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from stability.errors import MissingDependency
from stability.models.base import (
    GenerateConfig,
    Message,
    Model,
    Output,
    SDKModel,
    TransientError,
    Usage,
    check_network_allowed,
    http_timeout,
)
from stability.models.retry import stainless_transient
from stability.models.structured import generate_in_format

if TYPE_CHECKING:
    from stability.models.batch_api import BatchAPI


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
        from stability.models.batch_api import AnthropicBatchAPI

        return AnthropicBatchAPI(self)

    def transient(self, err: Exception) -> TransientError | None:
        """By status (429, 5xx, 529 overloaded), connection and timeout errors, and truncated bodies."""
        import anthropic

        return stainless_transient(err, anthropic)

    def request_body(self, messages: list[Message], config: GenerateConfig) -> tuple[dict[str, Any], dict[str, Any]]:
        """SDK arguments, and sampling fields the current SDK no longer types (sent as ``extra_body``).

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
        client = self.client()

        async def send(config: GenerateConfig) -> Output:
            body, extra = self.request_body(messages, config)
            response = await self.sending(client.messages.create(**body, extra_body=extra or None))
            return messages_output(response, {**body, **extra})

        return await generate_in_format(self, config, send)


def messages_output(response: Any, request: dict[str, Any]) -> Output:
    """An Anthropic message as an :class:`Output`: text blocks are the answer (a tool call's input, as JSON,
    when there is one); thinking blocks go to ``thinking``, never into the answer."""
    blocks = list(response.content)
    text = "".join(block.text for block in blocks if getattr(block, "type", "") == "text")
    tool_input = [block.input for block in blocks if getattr(block, "type", "") == "tool_use"]
    if tool_input:
        text = json.dumps(tool_input[0])
    thinking = "\n\n".join(block.thinking for block in blocks if getattr(block, "type", "") == "thinking")
    return Output(
        text=text,
        usage=Usage(input_tokens=response.usage.input_tokens, output_tokens=response.usage.output_tokens),
        finish_reason=response.stop_reason,
        request=request,
        response=response.model_dump(mode="json"),
        thinking=thinking or None,
    )


def create(full_name: str) -> Model:
    return AnthropicModel(full_name)
