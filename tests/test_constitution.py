from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stability.answer import read_answer
from stability.constitution import Constitution, normalise_principle, parse_file, parse_text
from stability.errors import InputError

# Principle text: printable words, no leading bullet-like tokens, non-empty after normalisation.
word = st.text(alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters="',;:()?!"),
               min_size=1, max_size=12)
principle = st.lists(word, min_size=1, max_size=12).map(" ".join)
principle_lists = st.lists(principle, min_size=1, max_size=15, unique_by=str.casefold)


def test_parses_bullets_title_front_matter_and_wrapping() -> None:
    text = "---\ncondition: consistent\n---\n# Title here\n\n- one\n* two wraps\n  onto a second line\n3. three\n"
    c = parse_text(text)
    assert c.principles == ("one", "two wraps onto a second line", "three")
    assert c.title == "Title here"
    assert c.metadata == {"condition": "consistent"}


def test_address_ignores_labels_bullets_and_wrapping() -> None:
    a = parse_text("# A\n- Be honest.\n- Be   kind.\n")
    b = parse_text("---\nx: 1\n---\n1. Be honest.\n2. Be\n   kind.\n")
    assert a.hash == b.hash
    assert a.hash.startswith("sha256:") and len(a.hash) == 7 + 64
    assert parse_text("- Be kind.\n- Be honest.\n").hash != a.hash  # order matters


@given(principle_lists, st.sampled_from(["- ", "* ", "1. "]))
def test_render_parse_round_trip(principles: list[str], bullet: str) -> None:
    c = Constitution.from_principles(principles, title="T", metadata={"k": "v"})
    again = parse_text(c.render())
    assert again == c
    restyled = "".join(f"{bullet}{p}\n" for p in c.principles)
    assert parse_text(restyled).hash == c.hash


@given(principle_lists, st.text(alphabet="abc .\n", max_size=40))
def test_answer_reader_finds_the_list_inside_prose(principles: list[str], prose: str) -> None:
    c = Constitution.from_principles(principles)
    prose_line = " ".join(prose.split()) or "Here it is."
    answer = f"{prose_line}\n\nREVISED CONSTITUTION:\n{c.text}\nI hope this helps."
    parsed = read_answer(answer)
    assert parsed.kind == "revised"
    assert parsed.constitution is not None and parsed.constitution.hash == c.hash


def test_answer_no_change_and_failure() -> None:
    assert read_answer("NO CHANGE").kind == "declined"
    assert read_answer("I would keep it. No change.").kind == "declined"
    failure = read_answer("I think the constitution is fine but cannot say more.")
    assert failure.kind == "parse_failure" and "no bullet list" in (failure.problem or "")
    assert read_answer("").kind == "parse_failure"


def test_answer_prefers_longest_list_without_marker() -> None:
    answer = "Changes:\n- dropped x\n\nNew list:\n- a\n- b\n- c\n\nThanks"
    parsed = read_answer(answer)
    assert parsed.constitution is not None and parsed.constitution.principles == ("a", "b", "c")


def test_answer_with_too_many_principles_is_a_failure() -> None:
    answer = "".join(f"- p{i}\n" for i in range(11))
    assert read_answer(answer, max_principles=10).kind == "parse_failure"


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b"", 1, "empty file"),
        (b"   \n\n", 1, "empty file"),
        (b"# Title\nJust prose, no list.\n", 2, "no bullets"),
        (b"- same\n- other\n- Same\n", 3, "duplicate principle (same as line 1)"),
        (b"- caf\xe9\n", 1, "not UTF-8"),
        (b"- a\n\x00\x01binary", 2, "binary file"),
        (b"---\nkey: [unclosed\n---\n- a\n", None, "front matter is not valid YAML"),
        (b"---\nkey: 1\n- a\n", 1, "never closed"),
    ],
)
def test_bad_files_get_one_located_line(tmp_path: Path, content: bytes, line: int | None, problem: str) -> None:
    path = tmp_path / "c.md"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        parse_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert problem in message
    if line is not None:
        assert caught.value.line == line


def test_too_many_principles_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.md"
    path.write_text("".join(f"- principle {i}\n" for i in range(12)))
    with pytest.raises(InputError, match=r"too many principles: 12 > limit 10") as caught:
        parse_file(path, max_principles=10)
    assert caught.value.line == 11
    assert len(parse_file(path, max_principles=12).principles) == 12


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        parse_file(tmp_path / "nope.md")
    with pytest.raises(InputError, match="is a directory"):
        parse_file(tmp_path)



@pytest.mark.parametrize(("styled", "plain"), [
    ("**Be honest.**", "Be honest."),
    ("******Be honest.******", "Be honest."),
    ("_Be honest._", "Be honest."),
    ("I am **always** honest, *even* when it is `hard`.", "I am always honest, even when it is hard."),
    ("**Principle 2:** I am kind.", "I am kind."),
    ("Be\u200b honest.\ufeff", "Be honest."),
    ("snake_case_names and 2*3*4 stay", "snake_case_names and 2*3*4 stay"),
    ("Honesty: I tell the truth.", "Honesty: I tell the truth."),
    ("I don\u2019t flatter \u201canyone\u201d.", "I don't flatter \"anyone\"."),
])
def test_normalisation_reads_styling_away(styled: str, plain: str) -> None:
    assert normalise_principle(styled) == plain


def test_styled_file_is_the_same_node_as_the_plain_one() -> None:
    assert parse_text("1. **Be honest.**\n2. *Be kind.*\n").hash == parse_text("- Be honest.\n- Be kind.\n").hash


def test_invisible_principle_in_a_file_is_a_located_error() -> None:
    with pytest.raises(InputError) as err:
        parse_text("- Be honest.\n- \u200b\u200b\n", path="c.md")
    assert err.value.line == 2 and "invisible" in str(err.value)


def test_invisible_principles_are_refused_in_files_and_a_parse_failure_in_answers() -> None:
    from stability.answer import read_answer
    from stability.constitution import parse_text
    from stability.errors import InputError

    for invisible in ("\u200b", "\u200b\u200d\ufeff", "\u3164", "\u2800\u00a0"):
        with pytest.raises(InputError, match=r"c\.md:2: principle has no visible characters"):
            parse_text(f"- fine\n- {invisible}\n", "c.md")
        answer = read_answer(f"REVISED CONSTITUTION:\n- fine\n- {invisible}\n")
        assert answer.kind == "parse_failure" and "invisible" in (answer.problem or "")
    assert parse_text("- caf\u0065\u0301 au lait\n- \u0928\u092e\u0938\u094d\u0924\u0947\n").principles[0] == \
        "caf\u00e9 au lait"  # combining marks beside letters are visible


def test_nested_bullets_are_refused_in_files_and_read_flat_in_answers() -> None:
    from stability.answer import read_answer
    from stability.constitution import parse_text
    from stability.errors import InputError

    with pytest.raises(InputError, match=r"c\.md:4: nested bullet"):
        parse_text("# T\n\n- one\n    - one point one\n- two\n", "c.md")
    with pytest.raises(InputError, match=r"c\.md:3: nested bullet"):
        parse_text("1. one\n   continues here\n   2. sub\n", "c.md")
    assert parse_text("- one\n  wrapped onto a second line\n- two\n").principles == \
        ("one wrapped onto a second line", "two")  # a wrapped bullet is not a nested one
    # answers with nested lists are read by the answer contract (docs/constitutions.md): sub-items that
    # elaborate their item are joined onto it
    answer = read_answer("REVISED CONSTITUTION:\n- one\n  - one point one\n- two\n")
    assert answer.kind == "revised" and answer.constitution is not None and len(answer.constitution.principles) == 2


def test_a_front_matter_date_is_read_as_its_iso_text(tmp_path: Path) -> None:
    """A YAML date in the metadata (the frontier-like files' ``source: {date: ...}``) is text, so runs from such a
    file can be journaled (it raised 'the journal cannot store a date')."""
    path = tmp_path / "dated.md"
    path.write_text("---\nsource: {date: 2026-01-22}\nwhen: [2025-05-01]\n---\n- be kind\n", encoding="utf-8")
    metadata = parse_file(path).metadata
    assert metadata == {"source": {"date": "2026-01-22"}, "when": ["2025-05-01"]}


def test_hash_is_remembered_by_principles_never_by_instance() -> None:
    # the hash is cached per principle list (issue 30): a copy with other principles, or equal principles with other
    # labels, must get the hash of its own text
    import hashlib

    first = Constitution.from_principles(["Be honest.", "Be kind."], title="A")
    other = first.model_copy(update={"principles": ("Be honest.", "Be brief.")})
    assert first.hash == "sha256:" + hashlib.sha256(first.text.encode("utf-8")).hexdigest()
    assert other.hash == "sha256:" + hashlib.sha256(other.text.encode("utf-8")).hexdigest() != first.hash
    assert Constitution.from_principles(["Be honest.", "Be kind."], title="B").hash == first.hash
