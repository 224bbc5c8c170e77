"""The request rules the wire server enforces, answered with the payloads the real servers send.

- OpenAI reasoning models (o-series, gpt-5): ``max_tokens``, ``top_p`` and ``logprobs`` are unsupported
  parameters, a temperature other than 1 an unsupported value; ``reasoning_effort`` on any other model is an
  unsupported parameter.
- Anthropic extended thinking: a budget of at least 1024 tokens, below ``max_tokens``; only the default
  temperature; no forced tool use.
- A server without JSON-schema output: ``llama-server`` and ``llama_cpp.server`` answer a ``response_format`` of
  type ``json_schema`` with a 500 naming it; a stricter server with a 400 or 422.
"""

from __future__ import annotations

import re
from typing import Any

from stability.models.sampling import MIN_THINKING_BUDGET, is_openai_reasoning_model

Rejection = tuple[int, dict[str, Any]]

_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


def openai_error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> Rejection:
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


def anthropic_error(message: str) -> Rejection:
    return 400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def _unsupported_parameter(name: str, hint: str = "") -> Rejection:
    return openai_error(400, f"Unsupported parameter: '{name}' is not supported with this model.{hint}",
                        param=name, code="unsupported_parameter")


def openai_rejection(body: dict[str, Any], refuse_structured: int | None, json_object_schema: bool = False
                     ) -> Rejection | None:
    """The error a real server gives this chat-completions body, or None when it would answer.

    With ``refuse_structured``, ``json_schema`` is refused; so is ``json_object``, unless ``json_object_schema``
    (llama.cpp's servers: ``{"type": "json_object", "schema": …}`` is taken and enforced)."""
    if is_openai_reasoning_model(str(body.get("model", ""))):
        if "max_tokens" in body:
            return _unsupported_parameter("max_tokens", " Use 'max_completion_tokens' instead.")
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            return openai_error(400, f"Unsupported value: 'temperature' does not support {temperature:g} with "
                                "this model. Only the default (1) value is supported.", param="temperature",
                                code="unsupported_value")
        for name in ("top_p", "logprobs"):
            if name in body:
                return _unsupported_parameter(name)
    elif "reasoning_effort" in body:
        return _unsupported_parameter("reasoning_effort")
    kind = (body.get("response_format") or {}).get("type")
    if kind == "json_object" and refuse_structured is not None and not json_object_schema:
        return openai_error(400, "Invalid parameter: 'response_format' of type 'json_object' is not supported with "
                            "this model.", param="response_format")
    schema = kind == "json_schema"
    if schema and refuse_structured == 500:  # llama-server / llama_cpp.server
        return 500, {"error": {"code": 500, "type": "server_error", "message":
                               'response_format type must be one of "text" or "json_object", but got: json_schema'}}
    if schema and refuse_structured is not None:
        return openai_error(refuse_structured, "Invalid parameter: 'response_format' of type 'json_schema' is not "
                            "supported with this model.", param="response_format")
    return None


def anthropic_rejection(body: dict[str, Any], refuse_structured: int | None) -> Rejection | None:
    """The error the Messages API gives this body, or None when it would answer."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = int(thinking.get("budget_tokens", 0))
        if budget < MIN_THINKING_BUDGET:
            return anthropic_error("thinking.enabled.budget_tokens: Input should be greater than or equal to "
                                   f"{MIN_THINKING_BUDGET}")
        if int(body.get("max_tokens", 0)) <= budget:
            return anthropic_error("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
                                   f"our documentation at {_DOCS}#max-tokens-and-context-window-size")
        if body.get("temperature", 1) != 1:
            return anthropic_error("`temperature` may only be set to 1 when thinking is enabled. Please consult "
                                   f"our documentation at {_DOCS}#important-considerations-when-using-extended-"
                                   "thinking")
        if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            return anthropic_error("Thinking may not be enabled when tool_choice forces tool use.")
    if body.get("tools") and refuse_structured is not None:  # a proxy or compatible server without tool use
        return refuse_structured, {"type": "error", "error": {"type": "invalid_request_error",
                                                              "message": "tools: tool use is not supported"}}
    return None


def cut(text: str, limit: int | None, halve: bool = False) -> tuple[str, bool]:
    """``text`` up to its ``limit``-th word (words are tokens, to the wire server; ``halve``: half its words),
    and whether that cut anything."""
    words = list(re.finditer(r"\S+", text))
    if halve:
        limit = len(words) // 2
    if limit is None or len(words) <= limit:
        return text, False
    return (text[:words[limit - 1].end()] if limit > 0 else ""), True
