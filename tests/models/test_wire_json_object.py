"""llama.cpp's servers refuse ``json_schema`` but enforce ``json_object`` with a schema: through the real openai SDK
against the wire server emulating them, structured answers still come back structured, and a resumed run does not
send the refused request again (issue 31)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stability.calls import CallPath, RetryPolicy
from stability.engine import IterateConfig, iterate, resume
from stability.models.base import Model
from stability.models.registry import get_model
from stability.records import CallRecord
from stability.store import Store
from stability.testing.wire_server import WireServer
from stability.vocabulary import GenerateConfig, Message
from tests.conftest import write

MESSAGES = [Message(role="user", content="Revise the list.")]
SCHEMA = {"type": "object", "properties": {"reasoning": {"type": "string"},
                                           "decision": {"enum": ["keep", "revise"]},
                                           "constitution": {"type": "array", "items": {"type": "string"}}},
          "required": ["reasoning", "decision", "constitution"]}
KEEP: dict[str, object] = {"reasoning": "Both principles still hold.", "decision": "keep", "constitution": []}


@pytest.fixture
def llama_cpp(wire: WireServer) -> WireServer:
    """The wire server as llama_cpp.server answers: json_schema refused with a 500, json_object + schema taken."""
    wire.refuse_structured = 500
    wire.json_object_schema = True
    wire.reply = lambda messages: "NO CHANGE"
    wire.structured_reply = lambda messages: KEEP
    return wire


def formats(server: WireServer) -> list[str | None]:
    return [(r["body"].get("response_format") or {}).get("type") for r in server.requests]


def ask(db: Path, model: Model, configs: list[GenerateConfig]) -> list[CallRecord]:
    with Store.open(db) as store:
        path = CallPath(store, model, "r-1", policy=RetryPolicy(initial=0, jitter=0, max_attempts=3))
        return [asyncio.run(path(MESSAGES, config, step=step, purpose="revise"))
                for step, config in enumerate(configs, 1)]


@pytest.mark.parametrize("answer_format", ["auto", "structured"])
def test_json_object_with_the_schema_after_a_refused_json_schema(llama_cpp: WireServer, db: Path,
                                                                 answer_format: str) -> None:
    model = get_model("openai/m")
    config = GenerateConfig(json_schema=SCHEMA, answer_format=answer_format)  # type: ignore[arg-type]
    first, second = ask(db, model, [config, config.model_copy(update={"seed": 2})])
    # json_schema refused once; then json_object with the schema, and the second call so straight away
    assert formats(llama_cpp) == ["json_schema", "json_object", "json_object"]
    assert llama_cpp.requests[1]["body"]["response_format"]["schema"] == SCHEMA
    for record in (first, second):
        assert record.answer_format == "structured" and record.structured == KEEP
        assert record.fallback_reason is None and record.attempts == 1
    assert "json_schema" in (model.json_schema_refusal or "") and model.structured_refusal is None


def test_a_resumed_run_does_not_send_the_refused_request_again(llama_cpp: WireServer, tmp_path: Path,
                                                               db: Path) -> None:
    """The first run learns json_object, then fails (a 401 on its second call); resumed in a fresh model pool, its
    calls go as json_object at once."""
    answered: list[int] = []

    def revise_once_then_fail(messages: list[dict[str, object]]) -> dict[str, object]:
        answered.append(1)
        if len(answered) == 1:
            llama_cpp.fail_next(401)  # the next request: not transient, the run fails
            return {"reasoning": "x", "decision": "revise", "constitution": ["a", "b", "c"]}
        return KEEP

    llama_cpp.structured_reply = revise_once_then_fail
    start = write(tmp_path / "c.md", "- a\n- b\n")
    failed = iterate(IterateConfig(model="openai/m", constitution=str(start), options={"declines_to_stop": 2}), db)
    assert failed.run.status == "failed"
    assert formats(llama_cpp) == ["json_schema", "json_object", "json_object"]
    before = len(llama_cpp.requests)
    result = resume(failed.run.id, db)
    assert result.run.status == "done"
    assert set(formats(llama_cpp)[before:]) == {"json_object"}  # no json_schema request after the resume
    with Store.open(db) as store:
        calls = [c for c in store.calls(result.run.id) if c.status == "ok"]
    assert all(c.answer_format == "structured" for c in calls)


def test_a_resumed_run_that_fell_back_to_text_asks_in_text(wire: WireServer, tmp_path: Path, db: Path) -> None:
    """A server that refuses both: the resumed run sends text at once, with the stored refusal as its reason."""
    wire.refuse_structured = 400
    calls: list[int] = []

    def grow_once_then_fail(messages: list[dict[str, object]]) -> str:
        calls.append(1)
        if len(calls) == 1:
            wire.fail_next(401)
            return "REVISED CONSTITUTION:\n- a\n- b\n- c"
        return "NO CHANGE"

    wire.reply = grow_once_then_fail
    start = write(tmp_path / "c.md", "- a\n- b\n")
    failed = iterate(IterateConfig(model="openai/m", constitution=str(start), options={"declines_to_stop": 2}), db)
    assert failed.run.status == "failed"
    before = len(wire.requests)
    result = resume(failed.run.id, db)
    assert result.run.status == "done"
    assert set(formats(wire)[before:]) == {None}  # text only
    with Store.open(db) as store:
        resumed = [c for c in store.calls(result.run.id) if c.status == "ok"][1:]
    assert resumed and all(c.answer_format == "text" and "json_object" in (c.fallback_reason or "")
                           for c in resumed)
