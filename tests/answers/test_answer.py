"""The answer reader's individual rules (the golden corpus tests them on realistic answers)."""

from __future__ import annotations

import pytest

from stability.answer import (
    ANSWER_SCHEMA,
    example_constitutions,
    read_answer,
    read_structured,
    read_text,
    strip_thinking,
    truncation,
)
from stability.constitution import Constitution


@pytest.mark.parametrize("reason", ["length", "max_tokens", "MAX_TOKENS", "max_output_tokens"])
def test_every_provider_spelling_of_the_token_limit_is_truncated(reason: str) -> None:
    reading = read_text("REVISED CONSTITUTION:\n- a\n- b\n", finish_reason=reason)
    assert reading.kind == "truncated" and reading.constitution is None
    assert "--max-tokens" in (reading.problem or "")


@pytest.mark.parametrize("reason", [None, "stop", "end_turn", "stop_sequence", "eos"])
def test_other_finish_reasons_are_read_normally(reason: str | None) -> None:
    assert truncation("x", reason) is None
    assert read_text("NO CHANGE", finish_reason=reason).kind == "declined"


def test_even_a_cut_off_decline_is_truncated() -> None:
    """A cut-off answer is never read at all: what follows the cut might have changed its meaning."""
    assert read_text("NO CHANGE\n\nThough on reflection principle 4", finish_reason="length").kind == "truncated"


@pytest.mark.parametrize(("text", "body"), [
    ("<think>a</think>b", "b"),
    ("<THINK>a</THINK>\nb<think>c</think>", "b"),
    ("<thinking>\nx\n</thinking>y", "y"),
    ("opened by the template</think>answer", "answer"),
    ("<think>never closed", None),
    ("plain", "plain"),
])
def test_strip_thinking(text: str, body: str | None) -> None:
    stripped = strip_thinking(text)
    assert (stripped.strip() if stripped is not None else None) == body


@pytest.mark.parametrize("text", [
    "NO CHANGE", "no change", "**NO CHANGE**", "No change.", "NO CHANGE — the list is coherent.",
    "Final answer: NO CHANGE", "**Decision:** No change", "My answer is NO CHANGE.", "No changes are needed.",
    "I read it twice. No change.", "- NO CHANGE", "```\nNO CHANGE\n```", "> NO CHANGE",
])
def test_explicit_declines(text: str) -> None:
    assert read_text(text).kind == "declined", text


@pytest.mark.parametrize("text", [
    "I would make no change to the first principle.",
    "There is no change that would improve it.",
    "Honesty: no change, it is fine.",
    "no change is not an option for me",
])
def test_no_change_inside_a_sentence_is_not_a_decline(text: str) -> None:
    assert read_text(text).kind == "parse_failure", text


@pytest.mark.parametrize("marker", [
    "REVISED CONSTITUTION:", "REVISED CONSTITUTION", "**REVISED CONSTITUTION:**", "**REVISED CONSTITUTION**:",
    "## Revised Constitution", "### REVISED CONSTITUTION ###", "Revised constitution:",
    "Here is my revised constitution:", "__Revised Constitution__", "Updated constitution:",
    "My final revised constitution (v2):",
])
def test_marker_styles(marker: str) -> None:
    text = f"- reasoning one\n- reasoning two\n- reasoning three\n\n{marker}\n- x\n- y\n\nThat is all."
    reading = read_text(text)
    assert reading.constitution is not None and reading.constitution.principles == ("x", "y"), marker


def test_a_sentence_about_the_revised_constitution_is_not_a_marker() -> None:
    reading = read_text("REVISED CONSTITUTION:\n- x\n- y\n\nI think the revised constitution is better because:\n- z")
    assert reading.constitution is not None and reading.constitution.principles == ("x", "y")


def test_commentary_right_after_the_list_is_not_a_principle() -> None:
    reading = read_text("REVISED CONSTITUTION:\n- I am honest.\n- I am kind.\nThese changes resolve the conflict.")
    assert reading.constitution is not None and reading.constitution.principles == ("I am honest.", "I am kind.")


def test_a_wrapped_principle_is_joined() -> None:
    reading = read_text("REVISED CONSTITUTION:\n- I tell the truth even when\n  it is unwelcome.\n- I am kind\n"
                        "to everyone.")
    assert reading.constitution is not None
    assert reading.constitution.principles == ("I tell the truth even when it is unwelcome.", "I am kind to everyone.")


def test_structured_failures() -> None:
    assert read_structured(["a"]).kind == "parse_failure"
    assert read_structured({"decision": "maybe"}).kind == "parse_failure"
    assert read_structured({"decision": "revise", "constitution": [1, 2]}).kind == "parse_failure"
    empty = read_structured({"decision": "revise", "constitution": []})
    assert empty.kind == "parse_failure" and "no principles" in (empty.problem or "")
    assert read_structured({"decision": " KEEP ", "constitution": ["ignored"]}).kind == "declined"


def test_structured_constitution_given_as_one_markdown_string() -> None:
    reading = read_structured({"reasoning": "r", "decision": "revise", "constitution": "- a\n- b\n"})
    assert reading.constitution is not None and reading.constitution.principles == ("a", "b")


def test_read_answer_dispatches() -> None:
    structured = {"reasoning": "r", "decision": "keep", "constitution": []}
    assert read_answer("REVISED CONSTITUTION:\n- x", structured=structured).kind == "declined"
    assert read_answer('{"reasoning": "r", "decision": "revise", "constitution": ["x"]}').kind == "revised"
    assert read_answer('{"not": "an answer"}').kind == "parse_failure"  # JSON without a decision is just text


def test_answer_schema_puts_reasoning_first_and_is_strict() -> None:
    assert list(ANSWER_SCHEMA["properties"]) == ["reasoning", "decision", "constitution"]
    assert ANSWER_SCHEMA["required"] == ["reasoning", "decision", "constitution"]
    assert ANSWER_SCHEMA["additionalProperties"] is False
    assert ANSWER_SCHEMA["properties"]["decision"]["enum"] == ["keep", "revise"]


def test_example_constitutions_reads_constitutions_and_answers() -> None:
    examples = """
- constitution: |
    - I keep the lamp lit.
  answer: |
    REVISED CONSTITUTION:
    - I keep the lamp lit.
    - I log the ships.
- constitution: ""
  answer: |
    NO CHANGE
"""
    assert example_constitutions(examples) == (Constitution(principles=("I keep the lamp lit.",)),
                                               Constitution(principles=("I keep the lamp lit.", "I log the ships.")))


def test_a_copy_is_found_only_against_the_examples_given() -> None:
    shown = (Constitution(principles=("I keep the lamp lit.",)),)
    text = "REVISED CONSTITUTION:\n- I am honest.\n- I keep the lamp lit!\n"
    assert read_text(text).kind == "revised"
    copied = read_text(text, examples=shown)
    assert copied.kind == "parse_failure" and copied.problem == "copied the example: 'I keep the lamp lit!'"
    assert read_text("REVISED CONSTITUTION:\n- I keep the house tidy.\n", examples=shown).kind == "revised"
