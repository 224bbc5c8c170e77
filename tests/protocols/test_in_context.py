from __future__ import annotations

from pathlib import Path

from stability.store import Store
from tests.conftest import decisions, revised, run_protocol


def test_one_growing_conversation_until_declines(tmp_path: Path, db: Path) -> None:
    run_id, model = run_protocol(tmp_path, db, "in-context-iteration",
                                 [revised("a", "b", "c"), "NO CHANGE", "NO CHANGE"])
    assert decisions(db, run_id) == ["origin", "changed", "declined", "declined"]
    # Each call carries the whole conversation so far: system, user, then (assistant, user) per earlier step.
    assert [len(m) for m in model.calls] == [2, 4, 6]
    assert model.calls[1][2].role == "assistant" and "- c" in model.calls[1][2].content
    assert "- c" in model.calls[1][3].content and "Reflect on it" in model.calls[1][3].content
    with Store.open(db) as store:
        assert store.run(run_id).stop_reason == "declined"


def test_revisit_is_a_cycle(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "in-context-iteration", [revised("c"), revised("a", "b")])
    with Store.open(db) as store:
        revisions = store.revisions(run_id)
        assert store.run(run_id).stop_reason == "cycle"
    assert revisions[-1].cycle_to == f"{run_id}:0"


def test_context_token_budget_stops(tmp_path: Path, db: Path) -> None:
    long = " ".join(["word"] * 200)
    run_id, model = run_protocol(tmp_path, db, "in-context-iteration",
                                 fn=lambda m: revised("a", "b", f"c{len(m)} {long}"), max_context_tokens=300)
    with Store.open(db) as store:
        assert store.run(run_id).stop_reason == "context_budget"
    assert len(model.calls) == 1
