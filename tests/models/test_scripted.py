from __future__ import annotations

import asyncio

import pytest

from stability.models.registry import get_model
from stability.models.scripted import ScriptedModel, ScriptExhausted
from stability.vocabulary import GenerateConfig, Message


def generate(model: ScriptedModel, text: str = "one two") -> str:
    return asyncio.run(model.generate([Message(role="user", content=text)], GenerateConfig())).text


def test_outputs_in_turn_and_usage_counted() -> None:
    model = ScriptedModel(outputs=["a b c", "d"])
    assert generate(model) == "a b c"
    assert generate(model) == "d"
    assert (model.usage.input_tokens, model.usage.output_tokens) == (4, 4)
    with pytest.raises(ScriptExhausted):
        generate(model)


def test_function_of_messages() -> None:
    model = ScriptedModel(fn=lambda messages: messages[-1].content.upper())
    assert generate(model, "shout") == "SHOUT"


def test_registry_builtins() -> None:
    assert generate(get_model("scripted/decline")) == "NO CHANGE"  # type: ignore[arg-type]
    assert generate(get_model("scripted/echo"), "- a") == "- a"  # type: ignore[arg-type]


def test_exactly_one_source() -> None:
    with pytest.raises(ValueError):
        ScriptedModel()


def test_structured_scripts_answer_like_a_chat_api_with_structured_output() -> None:
    model = ScriptedModel(fn=lambda messages: '{"decision": "keep"}', structured=True)
    assert model.structured_output
    schema = {"type": "object"}
    asked = asyncio.run(model.generate([Message(role="user", content="q")], GenerateConfig(json_schema=schema)))
    assert asked.structured == {"decision": "keep"} and asked.answer_format == "structured"
    assert asked.request["json_schema"] == schema
    text = asyncio.run(model.generate([Message(role="user", content="q")],
                                      GenerateConfig(json_schema=schema, answer_format="text")))
    assert text.structured is None and text.answer_format == "text" and text.request["json_schema"] is None
    plain = asyncio.run(model.generate([Message(role="user", content="q")], GenerateConfig()))
    assert plain.answer_format is None and plain.structured is None
