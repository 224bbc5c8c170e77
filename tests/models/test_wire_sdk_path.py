"""The SDK providers send the stored request as it is and store the response as the server sent it.

openai and anthropic requests go through the SDK client's low-level ``post`` (no request transform, no response
model); these tests hold the bytes on the wire to the stored request, and the stored response to the server's
JSON, for every kind of body the providers build (structured output, reasoning, thinking, untyped sampling
fields, log-probabilities, non-ASCII text).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from stability.calls import CallPath, RetryPolicy
from stability.models.registry import get_model
from stability.store import Store
from stability.testing.wire_server import WireServer
from stability.vocabulary import CallFailed, GenerateConfig, Message

MESSAGES = [Message(role="system", content="Be brief — très."), Message(role="user", content="Revise the list.")]
SCHEMA = {"type": "object", "properties": {"decision": {"type": "string"}}, "required": ["decision"]}

CASES: list[tuple[str, GenerateConfig]] = [
    ("openai/gpt-4o", GenerateConfig(max_tokens=40, seed=3, top_p=0.9, stop=("END",), logprobs=2)),
    ("openai/gpt-4o", GenerateConfig(json_schema=SCHEMA, answer_format="structured")),
    ("openai/o3-mini", GenerateConfig(max_tokens=300, reasoning_effort="low")),
    ("anthropic/claude-x", GenerateConfig(max_tokens=40, temperature=0.5, top_p=0.9, stop=("END",))),
    ("anthropic/claude-x", GenerateConfig(max_tokens=3000, thinking_budget=1024, json_schema=SCHEMA)),
]


def ask(db: object, name: str, config: GenerateConfig) -> Any:
    with Store.open(db) as store:  # type: ignore[arg-type]
        path = CallPath(store, get_model(name), "r-1", policy=RetryPolicy(initial=0, jitter=0, max_attempts=3))
        asyncio.run(path(MESSAGES, config, step=1, purpose="revise"))
        return store.calls("r-1")


@pytest.mark.parametrize(("name", "config"), CASES)
def test_the_bytes_sent_are_the_stored_request(wire: WireServer, db: object, name: str,
                                               config: GenerateConfig) -> None:
    wire.structured_reply = lambda messages: {"decision": "keep"}
    [stored] = ask(db, name, config)
    [sent] = wire.requests
    assert json.loads(sent["raw"]) == stored.request
    # one compact JSON serialisation of the request, nothing added, renamed or dropped by the SDK
    assert sent["raw"] == json.dumps(sent["body"], ensure_ascii=False, separators=(",", ":")).encode()
    assert sent["raw"].decode().count("très") == 1
    # the response is stored as the server sent it (no SDK model's defaults filled in)
    assert stored.response == wire._direct(sent["path"], sent["body"])[1]
    if config.json_schema is not None:
        assert stored.answer_format == "structured" and json.loads(stored.text or "") == {"decision": "keep"}


def test_thinking_and_logprobs_are_read_from_the_json() -> None:
    from stability.models.anthropic import messages_output
    from stability.models.base import chat_completions_json_output

    top = [{"token": "NO", "logprob": -0.1}, {"token": "A", "logprob": -2.5}]
    completion = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "NO CHANGE", "reasoning_content": "hmm"},
        "logprobs": {"content": [{"token": "NO", "logprob": -0.1, "top_logprobs": top}]}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
    output = chat_completions_json_output(completion, {"model": "m"})
    assert (output.text, output.thinking, output.finish_reason) == ("NO CHANGE", "hmm", "stop")
    assert output.usage.input_tokens == 7 and output.usage.output_tokens == 2
    assert output.logprobs is not None and output.logprobs[0].top == {"NO": -0.1, "A": -2.5}
    assert chat_completions_json_output({"choices": []}, {}).text == ""
    message = {"content": [{"type": "thinking", "thinking": "first"}, {"type": "text", "text": "a"},
                           {"type": "tool_use", "input": {"decision": "keep"}}],
               "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}}
    answer = messages_output(message, {})
    assert (answer.text, answer.thinking, answer.finish_reason) == ('{"decision": "keep"}', "first", "tool_use")
    assert answer.response == message


@pytest.mark.parametrize("name", ["openai/m", "anthropic/m"])
@pytest.mark.parametrize("fault", ["cut_json", "truncate", "reset", "429"])
def test_a_broken_response_is_retried_then_stored(wire: WireServer, db: object, name: str, fault: str) -> None:
    wire.fail_next(fault, retry_after=0.01 if fault == "429" else None)
    [stored] = ask(db, name, GenerateConfig())
    assert stored.status == "ok" and stored.text == "NO CHANGE" and stored.attempts == 2
    assert wire.count == 2


@pytest.mark.parametrize("name", ["openai/m", "anthropic/m"])
def test_a_status_the_retry_cannot_fix_fails_at_once(wire: WireServer, db: object, name: str) -> None:
    wire.fail_next(401)
    with pytest.raises(CallFailed):
        ask(db, name, GenerateConfig())
    assert wire.count == 1
