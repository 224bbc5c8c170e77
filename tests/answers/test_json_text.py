"""Reading a JSON object a model wrote: leniently where safe (raw control characters in strings, a fence), never a
prefix of a longer answer, never a pattern over broken JSON (issue 31)."""

from __future__ import annotations

from stability.json_text import json_object, looks_like_json_object
from stability.models.structured import parse_json_object
from stability.ratings import parse_ratings


def test_raw_newlines_and_tabs_inside_strings_are_read() -> None:
    assert json_object('{"reasoning": "a\nb\tc", "decision": "keep"}') == {"reasoning": "a\nb\tc", "decision": "keep"}
    assert parse_json_object('{"vote": 2, "reasoning": "two\nlines"}') == {"vote": 2, "reasoning": "two\nlines"}


def test_fenced_json_is_read_inside_its_fence() -> None:
    assert json_object('```json\n{"decision": "keep"}\n```') == {"decision": "keep"}
    assert json_object('```\n{"decision": "keep"}\n```') == {"decision": "keep"}


def test_what_is_not_one_json_object_is_none() -> None:
    assert json_object('{"decision": "keep"} and some prose after it') is None
    assert json_object('{"decision": "keep" "constitution": []}') is None
    assert json_object("[1, 2]") is None and json_object("NO CHANGE") is None and json_object("") is None


def test_broken_json_still_looks_like_json() -> None:
    assert looks_like_json_object('{"decision": "keep" "constitution"')
    assert looks_like_json_object('```json\n{"a": 1')
    assert not looks_like_json_object("{Honesty} matters.\n- I am honest.")
    assert not looks_like_json_object("REVISED CONSTITUTION:\n- a")


def test_ratings_with_a_raw_newline_are_read_as_json() -> None:
    parsed = parse_ratings('{"ratings": {"A": 5, "B": 1}, "favourite": "A", "why": "one\ntwo"}', ["A", "B"])
    assert parsed.structured and parsed.ratings == {"A": 5, "B": 1} and parsed.favourite == "A"
