"""Reasoning models, extended thinking and cut-off answers through the real SDKs against the wire server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import stability
from stability.calls import CallPath, RetryPolicy
from stability.models.registry import get_model
from stability.store import Store
from stability.testing.wire_server import WireServer
from stability.vocabulary import GenerateConfig, Message, Output, is_truncated

MESSAGES = [Message(role="system", content="Be brief."), Message(role="user", content="Revise the list.")]
SCHEMA = {"type": "object", "properties": {"decision": {"type": "string"}}, "required": ["decision"]}
TEN_WORDS = "one two three four five six seven eight nine ten"


@pytest.fixture
def litellm_base(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_API_BASE", wire.url + "/v1")


def generate(name: str, config: GenerateConfig) -> Output:
    return asyncio.run(get_model(name).generate(MESSAGES, config))


def raw_openai(wire: WireServer, **body: Any) -> Any:
    """The error the wire server gives a hand-made body, through the real openai SDK."""
    import openai

    client = openai.OpenAI(base_url=wire.url + "/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(messages=[{"role": "user", "content": "hi"}], **body)
    return caught.value.body


def raw_anthropic(wire: WireServer, **body: Any) -> str:
    import anthropic

    client = anthropic.Anthropic(base_url=wire.url, api_key="sk-ant-test", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(messages=[{"role": "user", "content": "hi"}], **body)
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    return str(caught.value.body["error"]["message"])  # type: ignore[index]


# -- OpenAI reasoning models --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["openai/o3-mini", "openai/gpt-5-mini", "openai/o1", "litellm/openai/o4-mini"])
def test_reasoning_models_get_max_completion_tokens_effort_and_no_temperature(wire: WireServer, litellm_base: None,
                                                                            name: str) -> None:
    wire.reply = lambda messages: "NO CHANGE"
    output = generate(name, GenerateConfig(max_tokens=300, seed=1, reasoning_effort="low"))
    assert output.text == "NO CHANGE"
    sent = wire.requests[0]["body"]
    assert sent["max_completion_tokens"] == 300 and "max_tokens" not in sent
    assert "temperature" not in sent and sent["reasoning_effort"] == "low"
    assert get_model(name).exposes_logprobs is False  # rate-alternatives then asks for none


def test_chat_models_keep_max_tokens_and_temperature(wire: WireServer) -> None:
    for name in ("openai/gpt-4o", "openai/gpt-5-chat-latest", "openai/omni-1"):
        generate(name, GenerateConfig(max_tokens=30, temperature=0.5))
    for request in wire.requests:
        assert request["body"]["max_tokens"] == 30 and request["body"]["temperature"] == 0.5
        assert "max_completion_tokens" not in request["body"] and "reasoning_effort" not in request["body"]


def test_wire_server_refuses_reasoning_parameters_as_openai_does(wire: WireServer) -> None:
    assert raw_openai(wire, model="o3-mini", max_tokens=10) == {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                   "'max_completion_tokens' instead.",
        "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}
    assert raw_openai(wire, model="gpt-5", temperature=0.5) == {
        "message": "Unsupported value: 'temperature' does not support 0.5 with this model. Only the default (1) "
                   "value is supported.",
        "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}
    assert raw_openai(wire, model="o4-mini", top_p=0.9)["param"] == "top_p"
    assert raw_openai(wire, model="gpt-4o", reasoning_effort="high")["code"] == "unsupported_parameter"


def test_an_unchecked_temperature_reaches_the_server_and_fails_without_retries(wire: WireServer, db: Path) -> None:
    """Prepare refuses it first; called directly, the server's refusal is stored, not retried."""
    with Store.open(db) as store:
        path = CallPath(store, get_model("openai/o3-mini"), "r-1", policy=RetryPolicy(initial=0, jitter=0))
        with pytest.raises(Exception, match="temperature"):
            asyncio.run(path(MESSAGES, GenerateConfig(temperature=0.2), step=1, purpose="revise"))
        [stored] = store.calls("r-1")
    assert stored.status == "error" and stored.attempts == 1 and wire.count == 1


# -- Anthropic extended thinking ----------------------------------------------------------------------------------


def test_thinking_is_requested_stored_apart_and_never_the_answer(wire: WireServer, db: Path) -> None:
    wire.reply = lambda messages: "NO CHANGE"
    wire.think = lambda messages: "The first principle already covers the second one."
    config = GenerateConfig(max_tokens=4000, thinking_budget=2048)
    with Store.open(db) as store:
        path = CallPath(store, get_model("anthropic/claude-test"), "r-1", policy=RetryPolicy(initial=0))
        record = asyncio.run(path(MESSAGES, config, step=1, purpose="revise"))
    sent = wire.requests[0]["body"]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048} and "temperature" not in sent
    assert record.text == "NO CHANGE"
    assert record.thinking == "The first principle already covers the second one."
    assert record.output_tokens == 2 + 8  # thinking counts as output
    assert record.response is not None and record.response["content"][0]["type"] == "thinking"
    calls = stability.open(db).calls()
    assert list(calls["thinking"]) == ["The first principle already covers the second one."]
    assert list(calls["text"]) == ["NO CHANGE"]


def test_thinking_with_a_schema_offers_the_tool_instead_of_forcing_it(wire: WireServer) -> None:
    wire.structured_reply = lambda messages: {"decision": "keep"}
    output = generate("anthropic/m", GenerateConfig(max_tokens=2000, thinking_budget=1024, json_schema=SCHEMA))
    sent = wire.requests[0]["body"]
    assert sent["tool_choice"] == {"type": "auto"} and sent["tools"][0]["name"] == "answer"
    assert output.structured == {"decision": "keep"} and output.answer_format == "structured"
    assert output.thinking and output.thinking not in output.text


def test_wire_server_refuses_thinking_as_anthropic_does(wire: WireServer) -> None:
    model = "claude-test"
    assert "greater than or equal to 1024" in raw_anthropic(
        wire, model=model, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 500})
    assert raw_anthropic(wire, model=model, max_tokens=1024, thinking={"type": "enabled", "budget_tokens": 1024}) \
        .startswith("`max_tokens` must be greater than `thinking.budget_tokens`.")
    assert raw_anthropic(wire, model=model, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024},
                         extra_body={"temperature": 0.5}) \
        .startswith("`temperature` may only be set to 1 when thinking is enabled.")
    assert raw_anthropic(wire, model=model, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024},
                         tools=[{"name": "answer", "input_schema": SCHEMA}],
                         tool_choice={"type": "tool", "name": "answer"}) == \
        "Thinking may not be enabled when tool_choice forces tool use."


# -- cut-off answers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "reason"), [("openai/m", "length"), ("anthropic/m", "max_tokens"),
                                              ("litellm/openai/m", "length"), ("openai/o3-mini", "length")])
def test_an_answer_cut_at_max_tokens_is_truncated(wire: WireServer, litellm_base: None, db: Path, name: str,
                                                  reason: str) -> None:
    wire.reply = lambda messages: TEN_WORDS
    with Store.open(db) as store:
        path = CallPath(store, get_model(name), "r-1", policy=RetryPolicy(initial=0))
        cut = asyncio.run(path(MESSAGES, GenerateConfig(max_tokens=4), step=1, purpose="revise"))
        whole = asyncio.run(path(MESSAGES, GenerateConfig(max_tokens=40), step=2, purpose="revise"))
        [stored_cut, stored_whole] = store.calls("r-1")
    assert cut.text == "one two three four" and cut.finish_reason == reason and cut.truncated
    assert whole.text == TEN_WORDS and not whole.truncated
    assert stored_cut.truncated and stored_cut.finish_reason == reason and not stored_whole.truncated


@pytest.mark.parametrize("name", ["openai/m", "anthropic/m"])
def test_a_cut_answer_on_demand(wire: WireServer, name: str) -> None:
    wire.reply = lambda messages: TEN_WORDS
    wire.fail_next("length")
    output = generate(name, GenerateConfig())
    assert output.text == "one two three four five" and output.truncated
    assert wire.injected["length"] == 1


def test_finish_reasons_of_every_provider_are_read_alike() -> None:
    for reason in ("length", "max_tokens", "MAX_TOKENS", "model_context_window_exceeded"):
        assert is_truncated(reason), reason
    for reason in ("stop", "end_turn", "tool_use", "stop_sequence", "content_filter", None):
        assert not is_truncated(reason), reason


def test_cli_runs_with_thinking_and_reasoning_effort_end_to_end(wire: WireServer, tmp_path: Path, db: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The flags reach the stored run configuration, the wire, and the stored calls."""
    from stability.cli.app import main

    start = tmp_path / "c.md"
    start.write_text("- Be honest.\n- Be kind.\n", encoding="utf-8")
    for flags in (["-m", "anthropic/claude-test", "--thinking-budget", "1024", "--max-tokens", "2000"],
                  ["-m", "o3-mini", "--reasoning-effort", "high", "--answer-format", "text"]):
        monkeypatch.setattr(sys, "argv", ["stability", "iterate", *flags, "-c", str(start), "--db", str(db)])
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code in (0, None)
    with Store.open(db) as store:
        configs = {row[0]: row[1] for row in store.con.execute("SELECT model, config FROM runs").fetchall()}
        thinking = store.con.execute("SELECT model, thinking, text FROM calls ORDER BY created_at").fetchall()
    assert json.loads(configs["anthropic/claude-test"])["thinking_budget"] == 1024
    assert json.loads(configs["openai/o3-mini"])["reasoning_effort"] == "high"
    assert json.loads(configs["openai/o3-mini"])["answer_format"] == "text"
    assert {(m, t) for m, t, _ in thinking} == {("anthropic/claude-test", "Let me weigh each principle against the "
                                                 "others before I answer."), ("openai/o3-mini", None)}
    assert {text for _, _, text in thinking} == {"NO CHANGE"}
    bodies = [r["body"] for r in wire.requests]
    assert all(b["thinking"]["budget_tokens"] == 1024 for b in bodies if "thinking" in b)
    assert all(b["reasoning_effort"] == "high" and "max_tokens" not in b for b in bodies if "reasoning_effort" in b)
    assert sum("thinking" in b for b in bodies) + sum("reasoning_effort" in b for b in bodies) == len(bodies)


def test_iterate_suggests_a_larger_max_tokens_when_answers_were_cut(wire: WireServer, tmp_path: Path, db: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from stability.cli.app import main

    wire.reply = lambda messages: "REVISED CONSTITUTION:\n- Be honest with everyone.\n- Be kind to everyone."
    start = tmp_path / "c.md"
    start.write_text("- Be honest.\n- Be kind.\n", encoding="utf-8")
    for max_tokens, cut in (("5", True), ("500", False)):
        monkeypatch.setattr(sys, "argv", ["stability", "iterate", "-m", "openai/m", "-c", str(start), "--db",
                                          str(db), "--max-tokens", max_tokens, "--max-steps", "2"])
        with pytest.raises(SystemExit):
            main()
        err = capsys.readouterr().err
        assert ("cut at the token limit (--max-tokens 5); a cut-off answer is never read as a revision: rerun "
                "with a larger --max-tokens, e.g. --max-tokens 10" in err) == cut
