"""Every protocol that reads a constitution records truncated answers and copied examples the same way."""

from __future__ import annotations

from pathlib import Path

from stability.answer import example_constitutions
from stability.engine.templates import Templates
from stability.store import Store
from stability.vocabulary import Output
from tests.conftest import decisions, revised, run_protocol

CUT = Output(text="REVISED CONSTITUTION:\n- a\n- b was about to be", finish_reason="length")


def details(db: Path, run_id: str) -> list[str | None]:
    with Store.open(db) as store:
        return [r.detail for r in store.revisions(run_id)]


def example_principles(protocol: str) -> list[str]:
    shown = example_constitutions(Templates(protocol)["examples.yaml"])
    return list(shown[0].principles)


def test_fresh_instance_records_truncated_and_counts_it_like_a_parse_failure(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "fresh-instance", outputs=[CUT, "no list", CUT], max_parse_failures=3)
    assert decisions(db, run_id) == ["origin", "truncated", "parse_failure", "truncated"]
    assert "finish_reason 'length'" in (details(db, run_id)[1] or "")
    with Store.open(db) as store:
        assert store.run(run_id).stop_reason == "parse_failures"
        assert [c.finish_reason for c in store.calls(run_id)] == ["length", "stop", "length"]
        revisions = store.revisions(run_id)
        assert {r.constitution_hash for r in revisions} == {revisions[0].constitution_hash}  # nothing changed
        assert [e.kind for e in store.edges(run_id)] == ["truncated", "parse_failure", "truncated"]


def test_a_truncated_answer_resets_the_declines(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "fresh-instance", outputs=["NO CHANGE", CUT, "NO CHANGE", "NO CHANGE"])
    assert decisions(db, run_id) == ["origin", "declined", "truncated", "declined", "declined"]


def test_in_context_iteration_records_truncated(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "in-context-iteration", outputs=[CUT, "NO CHANGE", "NO CHANGE"])
    assert decisions(db, run_id) == ["origin", "truncated", "declined", "declined"]


def test_free_form_edit_records_truncated(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "free-form-edit", outputs=[CUT])
    assert decisions(db, run_id) == ["origin", "truncated"]


def test_blank_slate_records_truncated_then_authors(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "blank-slate", outputs=[CUT, revised("x", "y")], start=None)
    assert decisions(db, run_id) == ["origin", "truncated", "authored"]


def test_multi_agent_truncated_proposal_is_not_a_keep(tmp_path: Path, db: Path) -> None:
    """Two agents keep, one is cut off mid-revision: not unanimous, so the vote runs, and the cut-off proposal
    that wins it is recorded as truncated, not as a change."""
    outputs = ["NO CHANGE", CUT, "NO CHANGE", "VOTE: 2", "VOTE: 2", "VOTE: 2"]
    run_id, _ = run_protocol(tmp_path, db, "multi-agent-discussion", outputs=outputs, rounds=1, max_steps=1,
                             agents=[{"name": "a"}, {"name": "b"}, {"name": "c"}])
    assert decisions(db, run_id) == ["origin", "truncated"]


def test_base_model_copying_an_example_is_a_parse_failure(tmp_path: Path, db: Path) -> None:
    copied = revised(*example_principles("fresh-instance"))
    run_id, model = run_protocol(tmp_path, db, "fresh-instance", outputs=[copied, "NO CHANGE", "NO CHANGE"],
                                 base=True)
    assert decisions(db, run_id) == ["origin", "parse_failure", "declined", "declined"]
    assert (details(db, run_id)[1] or "").startswith("copied the example")
    assert any("REVISED CONSTITUTION" in m.content for m in model.calls[0][1:-1])  # the examples were shown


def test_a_chat_model_never_shown_the_examples_is_not_a_copy(tmp_path: Path, db: Path) -> None:
    copied = revised(*example_principles("fresh-instance"))
    run_id, model = run_protocol(tmp_path, db, "fresh-instance", outputs=[copied, "NO CHANGE", "NO CHANGE"])
    assert decisions(db, run_id) == ["origin", "changed", "declined", "declined"]
    assert len(model.calls[0]) == 2  # system and question: no worked examples


def test_blank_slate_copy_of_its_example_is_a_parse_failure(tmp_path: Path, db: Path) -> None:
    copied = revised(*example_principles("blank-slate"))
    run_id, _ = run_protocol(tmp_path, db, "blank-slate", outputs=[copied, revised("x")], start=None, base=True)
    assert decisions(db, run_id) == ["origin", "parse_failure", "authored"]
    assert (details(db, run_id)[1] or "").startswith("copied the example")


def test_free_form_edit_copy_of_its_example_is_a_parse_failure(tmp_path: Path, db: Path) -> None:
    copied = "RATIONALE: better.\n\n" + revised(*example_principles("free-form-edit"))
    run_id, _ = run_protocol(tmp_path, db, "free-form-edit", outputs=[copied], base=True)
    assert decisions(db, run_id) == ["origin", "parse_failure"]


def test_rate_alternatives_cut_off_after_naming_a_favourite_swaps_nothing(tmp_path: Path, db: Path) -> None:
    """Issue 31 (6): the answer named its favourite, then ran into the token limit: truncated, no swap, and no
    rating is stored as the favourite."""
    from stability.vocabulary import Message

    def cut_after_favourite(messages: list[Message]) -> Output:
        labels = [line[0] for line in messages[-1].content.splitlines() if line[1:3] == ". "]
        text = "FAVOURITE: " + labels[0] + "\n" + "".join(f"{label}: 5\n" for label in labels) + "My reasons are"
        return Output(text=text, finish_reason="length")

    alternatives = tmp_path / "alts.yaml"
    alternatives.write_text("- {text: Be truthful., relation: paraphrase}\n- {text: Lie., relation: opposite}\n")
    run_id, _ = run_protocol(tmp_path, db, "rate-alternatives", fn=cut_after_favourite, start="- Be honest.\n",
                             alternatives=str(alternatives), trials=2)
    assert decisions(db, run_id) == ["origin", "truncated", "truncated"]
    with Store.open(db) as store:
        ratings = store.ratings(run_id)
        assert {r.constitution_hash for r in store.revisions(run_id)} == {store.revisions(run_id)[0].constitution_hash}
    assert ratings and not any(r.favourite for r in ratings)
    assert "finish_reason 'length'" in (details(db, run_id)[1] or "")


def test_rate_alternatives_cut_off_replacement_swaps_nothing(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "rate-alternatives", start="- Be honest.\n", source="free", trials=1,
                             outputs=[Output(text="REPLACEMENT: Be honest unless", finish_reason="length")])
    assert decisions(db, run_id) == ["origin", "truncated"]
