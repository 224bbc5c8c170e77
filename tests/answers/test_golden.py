"""The golden corpus (golden.yaml): every answer gets the reading it must get, on the text and structured paths."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from stability.answer import Reading, example_constitutions, read_answer, read_structured
from stability.constitution import Constitution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS: dict[str, Any] = yaml.safe_load((HERE / "golden.yaml").read_text(encoding="utf-8"))
ANSWERS: list[dict[str, Any]] = CORPUS["answers"]
EXAMPLES = example_constitutions((ROOT / "protocols" / "fresh-instance" / "examples.yaml").read_text("utf-8"))

STYLES = {"claude-opus", "claude-sonnet", "claude-haiku", "gpt-4o", "gpt-4.1", "gpt-5", "gemini", "llama-instruct",
          "qwen-instruct", "deepseek-r1", "local-base", "smollm2", "gemma-chat"}
COVERS = {"reasoning-keep", "reasoning-revise", "restatement", "partial-edit", "refusal", "truncation",
          "prose-only", "nested", "sections", "think", "copy", "invisible",
          # issue 31: the misreadings found on the chat path
          "commentary-list", "colon-prose", "unbulleted-first", "json-control-char"}


def current(entry: dict[str, Any]) -> Constitution:
    return Constitution.from_principles(CORPUS["currents"][entry.get("current", "hvc")])


def settings(entry: dict[str, Any]) -> dict[str, Any]:
    return {"finish_reason": entry.get("finish_reason", "stop"),
            "max_principles": entry.get("max_principles", 100),
            "examples": EXAMPLES if entry["style"] == "local-base" else ()}


def decision(reading: Reading, now: Constitution) -> str:
    """What a protocol records for this reading (a restated constitution is a decline)."""
    if reading.kind == "revised":
        assert reading.constitution is not None
        return "declined" if reading.constitution.hash == now.hash else "changed"
    return reading.kind


def check(reading: Reading, entry: dict[str, Any]) -> None:
    expect = entry["expect"]
    assert reading.kind == expect["kind"], reading
    assert decision(reading, current(entry)) == expect["decision"]
    if "principles" in expect:
        assert reading.constitution is not None
        assert list(reading.constitution.principles) == expect["principles"]
    if expect["decision"] == "declined" and reading.kind == "revised":
        assert reading.constitution == current(entry)
    if "problem" in expect:
        assert expect["problem"] in (reading.problem or "")
    if reading.kind in ("parse_failure", "truncated"):
        assert reading.problem and reading.constitution is None


def test_the_corpus_covers_every_style_and_case() -> None:
    assert len(ANSWERS) >= 60
    ids = Counter(entry["id"] for entry in ANSWERS)
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    assert {entry["style"] for entry in ANSWERS} == STYLES
    assert {case for entry in ANSWERS for case in entry["covers"]} == COVERS
    assert sum("structured" in entry for entry in ANSWERS) >= 12
    kinds = Counter(entry["expect"]["decision"] for entry in ANSWERS)
    assert set(kinds) == {"changed", "declined", "parse_failure", "truncated"}
    assert EXAMPLES, "the fresh-instance examples show constitutions"


@pytest.mark.parametrize("entry", ANSWERS, ids=[entry["id"] for entry in ANSWERS])
def test_text_path(entry: dict[str, Any]) -> None:
    check(read_answer(entry["text"], **settings(entry)), entry)


@pytest.mark.parametrize("entry", [e for e in ANSWERS if "structured" in e],
                         ids=[e["id"] for e in ANSWERS if "structured" in e])
def test_structured_path(entry: dict[str, Any]) -> None:
    check(read_structured(entry["structured"], **settings(entry)), entry)
    check(read_answer("", structured=entry["structured"], **settings(entry)), entry)


def structured_form(entry: dict[str, Any]) -> dict[str, Any]:
    """The structured answer that means what the text answer means."""
    expect = entry["expect"]
    if expect["kind"] == "declined":
        return {"reasoning": "as in the text", "decision": "keep", "constitution": []}
    listed = expect.get("principles") or list(current(entry).principles)
    return {"reasoning": "as in the text", "decision": "revise", "constitution": listed}


@pytest.mark.parametrize("entry", [e for e in ANSWERS if e["expect"]["kind"] in ("revised", "declined", "truncated")
                                   and "structured" not in e],
                         ids=[e["id"] for e in ANSWERS if e["expect"]["kind"] in ("revised", "declined", "truncated")
                              and "structured" not in e])
def test_the_structured_path_agrees_with_the_text_path(entry: dict[str, Any]) -> None:
    """Every answer that means keep, revise or was cut off reads the same when it comes as a structured object."""
    if entry["expect"]["kind"] == "truncated":
        reading = read_structured('{"reasoning": "the argument went on and', **settings(entry))
        assert reading.kind == "truncated"
        return
    check(read_structured(structured_form(entry), **settings(entry)), entry)


def test_clean_plain_answers_keep_their_node_hashes() -> None:
    """Styling is read away, but a clean plain answer is the same node as before: stored graphs keep their keys."""
    plain = "REVISED CONSTITUTION:\n- I am honest.\n- I avoid causing harm.\n- I am helpful.\n"
    reading = read_answer(plain)
    assert reading.constitution is not None
    # the address of these three principles as every earlier version computed it
    assert reading.constitution.hash == "sha256:" + __import__("hashlib").sha256(
        b"- I am honest.\n- I avoid causing harm.\n- I am helpful.\n").hexdigest()
    assert reading.constitution.hash == current({"current": "minimal"}).hash
