"""answer_format through the real SDKs: structured answers, text, and the fall back from a server that refuses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stability.calls import CallPath, RetryPolicy
from stability.engine import IterateConfig, iterate
from stability.models.base import Model
from stability.models.registry import get_model
from stability.records import CallRecord
from stability.store import Store
from stability.testing.wire_server import WireServer
from stability.vocabulary import CallFailed, GenerateConfig, Message
from tests.conftest import write

MESSAGES = [Message(role="system", content="Be brief."), Message(role="user", content="Revise the list.")]
SCHEMA = {"type": "object", "properties": {"reasoning": {"type": "string"},
                                           "decision": {"enum": ["keep", "revise"]},
                                           "constitution": {"type": "array", "items": {"type": "string"}}},
          "required": ["reasoning", "decision", "constitution"]}
ANSWER = {"reasoning": "Both principles still hold.", "decision": "keep", "constitution": []}
NAMES = ["openai/m", "anthropic/m"]


@pytest.fixture
def answers(wire: WireServer) -> WireServer:
    wire.reply = lambda messages: "NO CHANGE"
    wire.structured_reply = lambda messages: ANSWER
    return wire


def ask(db: Path, model: Model, configs: list[GenerateConfig], attempts: int = 6) -> list[CallRecord]:
    with Store.open(db) as store:
        path = CallPath(store, model, "r-1", policy=RetryPolicy(initial=0, jitter=0, max_attempts=attempts))
        return [asyncio.run(path(MESSAGES, config, step=step, purpose="revise"))
                for step, config in enumerate(configs, 1)]


def schema_sent(body: dict[str, object]) -> bool:
    return "response_format" in body or "tools" in body


@pytest.mark.parametrize("name", NAMES)
def test_structured_answers_are_parsed_and_recorded(answers: WireServer, db: Path, name: str) -> None:
    [record] = ask(db, get_model(name), [GenerateConfig(json_schema=SCHEMA, answer_format="structured")])
    body = answers.requests[0]["body"]
    if name.startswith("openai"):
        assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    else:
        assert body["tool_choice"] == {"type": "tool", "name": "answer"} and body["tools"][0]["input_schema"] == SCHEMA
    assert record.answer_format == "structured" and record.fallback_reason is None
    assert record.structured == ANSWER  # what the answer contract reads
    with Store.open(db) as store:
        [stored] = store.calls("r-1")
    assert stored.structured == ANSWER and stored.answer_format == "structured"


@pytest.mark.parametrize("name", NAMES)
def test_text_format_sends_no_schema(answers: WireServer, db: Path, name: str) -> None:
    [record] = ask(db, get_model(name), [GenerateConfig(json_schema=SCHEMA, answer_format="text")])
    assert not schema_sent(answers.requests[0]["body"])
    assert record.text == "NO CHANGE" and record.answer_format == "text" and record.structured is None


@pytest.mark.parametrize(("name", "status"), [("openai/m", 500), ("openai/m", 400), ("openai/m", 422),
                                              ("anthropic/m", 400), ("litellm/openai/m", 500)])
def test_auto_falls_back_to_text_once_per_model_without_retries(answers: WireServer, db: Path,
                                                                monkeypatch: pytest.MonkeyPatch, name: str,
                                                                status: int) -> None:
    monkeypatch.setenv("LITELLM_API_BASE", answers.url + "/v1")
    answers.refuse_structured = status
    model = get_model(name)
    auto = GenerateConfig(json_schema=SCHEMA)
    first, second = ask(db, model, [auto, auto.model_copy(update={"seed": 2})])
    # the refused request (on openai/: json_schema, then json_object, both refused), the same request as text,
    # then the second call as text straight away
    refused = [True, True] if name.startswith("openai") else [True]
    assert [schema_sent(r["body"]) for r in answers.requests] == [*refused, False, False]
    for record in (first, second):
        assert record.status == "ok" and record.text == "NO CHANGE"
        assert record.answer_format == "text" and record.structured is None
        assert record.attempts == 1 and record.retries == []
        assert f"HTTP {status}" in (record.fallback_reason or "")
    if status == 500:  # llama-server names what it refuses
        assert "response_format" in (first.fallback_reason or "")
    assert model.structured_refusal == first.fallback_reason


def test_structured_format_fails_at_once_on_a_refusing_server(answers: WireServer, db: Path) -> None:
    answers.refuse_structured = 500
    with pytest.raises(CallFailed, match="refuses structured output"):
        ask(db, get_model("openai/m"), [GenerateConfig(json_schema=SCHEMA, answer_format="structured")])
    with Store.open(db) as store:
        [stored] = store.calls("r-1")
    assert stored.status == "error" and stored.attempts == 1
    # json_schema refused, then json_object refused: no retries, no text
    assert [r["body"]["response_format"]["type"] for r in answers.requests] == ["json_schema", "json_object"]


def test_a_500_that_is_not_a_refusal_is_still_retried(answers: WireServer, db: Path) -> None:
    answers.fail_next(500, times=2)
    model = get_model("openai/m")
    [record] = ask(db, model, [GenerateConfig(json_schema=SCHEMA)])
    assert record.attempts == 3 and [r["status"] for r in record.retries] == [500, 500]
    assert record.answer_format == "structured" and record.structured == ANSWER
    assert model.structured_refusal is None


def test_a_400_about_something_else_is_not_taken_for_a_refusal(answers: WireServer, db: Path) -> None:
    """A reasoning model sent a temperature fails as text too: the error stands, nothing is remembered."""
    model = get_model("openai/o3-mini")
    with pytest.raises(CallFailed, match="temperature"):
        ask(db, model, [GenerateConfig(json_schema=SCHEMA, temperature=0.3)])
    assert model.structured_refusal is None and answers.count == 2


def test_rate_alternatives_runs_against_a_server_without_json_schema(answers: WireServer, tmp_path: Path,
                                                                    db: Path) -> None:
    """A server that refuses json_schema and json_object: once refused, the run rates in text, with no retries."""
    answers.refuse_structured = 500
    answers.reply = lambda messages: "A: 5\nB: 2\nC: 1\nFAVOURITE: A"
    start = write(tmp_path / "c.md", "- Be honest.\n- Be kind.\n")
    alternatives = write(tmp_path / "alts.yaml", "- {text: Be truthful., relation: paraphrase}\n"
                                                 "- {text: Be honest when it is convenient., relation: weaker}\n")
    result = iterate(IterateConfig(protocol="rate-alternatives", model="openai/m", constitution=str(start),
                                   options={"alternatives": str(alternatives), "trials": 3}), db)
    assert result.run.status == "done"
    assert [schema_sent(r["body"]) for r in answers.requests] == [True, True, False, False, False]
    with Store.open(db) as store:
        calls = store.calls(result.run.id)
        ratings = store.ratings(result.run.id)
    assert [c.answer_format for c in calls] == ["text"] * 3 and all(c.attempts == 1 for c in calls)
    assert all("response_format" in (c.fallback_reason or "") for c in calls)
    assert sum(r.favourite for r in ratings) == 3 and all(r.rating is not None for r in ratings)


@pytest.mark.parametrize("refuse", [500, None])
def test_concurrent_calls_meet_a_refusal_once(answers: WireServer, db: Path, refuse: int | None) -> None:
    """Until the server has answered one structured request, the others wait for it instead of all being refused."""
    answers.refuse_structured = refuse
    model = get_model("openai/m")

    async def many() -> list[CallRecord]:
        with Store.open(db) as store:
            path = CallPath(store, model, "r-1", policy=RetryPolicy(initial=0, jitter=0))
            configs = [GenerateConfig(json_schema=SCHEMA, seed=seed) for seed in range(6)]
            return list(await asyncio.gather(*(path(MESSAGES, c, step=1, purpose="revise") for c in configs)))

    records = asyncio.run(many())
    sent = [schema_sent(r["body"]) for r in answers.requests]
    if refuse:
        assert sent == [True, True] + [False] * 6  # one refusal (json_schema, json_object), then all as text
        assert {r.answer_format for r in records} == {"text"}
    else:
        assert sent == [True] * 6
        assert all(r.structured == ANSWER for r in records)
    assert all(r.attempts == 1 for r in records)
