from __future__ import annotations

from pathlib import Path

import pytest

from stability.errors import StabilityError
from stability.models.base import Message
from stability.protocols.multi_agent import vote
from stability.store import Store
from tests.conftest import decisions, revised, run_protocol


def speaker(messages: list[Message]) -> str:
    return messages[0].content.split(",")[0].removeprefix("You are ")


def test_discussion_then_vote_then_everyone_declines(tmp_path: Path, db: Path) -> None:
    def answer(messages: list[Message]) -> str:
        who, ask = speaker(messages), messages[-1].content
        if "Vote for the proposal" in ask:
            return "2" if who != "carol" else "1"
        if "- c" in ask.split("Discussion so far")[0]:
            return "I am content now.\nNO CHANGE"
        return f"{who} thinks c matters." + (revised("a", "b", "c") if who != "carol" else "\nNO CHANGE")

    run_id, model = run_protocol(tmp_path, db, "multi-agent-discussion", fn=answer, rounds=2)
    assert decisions(db, run_id) == ["origin", "changed", "declined"]
    with Store.open(db) as store:
        calls = store.calls(run_id)
        edges = store.edges(run_id)
        assert store.run(run_id).stop_reason == "declined"
    # Cycle 1: 3 agents x 2 rounds of discussion, then 3 votes; cycle 2: 6 turns, all declining.
    purposes = [c.purpose for c in calls]
    assert purposes[:9] == ["discuss:alice:r1", "discuss:bob:r1", "discuss:carol:r1", "discuss:alice:r2",
                            "discuss:bob:r2", "discuss:carol:r2", "vote:alice", "vote:bob", "vote:carol"]
    assert len(calls) == 15 and len(edges[0].call_ids) == 9
    # The transcript is reconstructable: each turn saw every earlier turn of its cycle.
    assert "alice: alice thinks c matters." in model.calls[1][-1].content


def test_designated_editor_writes_the_revision(tmp_path: Path, db: Path) -> None:
    def answer(messages: list[Message]) -> str:
        if "As the editor" in messages[-1].content:
            return revised("a", "b", "edited")
        if "- edited" in messages[-1].content:
            return "NO CHANGE"
        return "Something should change.\n" + revised("a", speaker(messages))

    run_id, model = run_protocol(tmp_path, db, "multi-agent-discussion", fn=answer, rounds=1,
                                 agents=[{"name": "ann"}, {"name": "ben"}], editor="ben")
    assert decisions(db, run_id) == ["origin", "changed", "declined"]
    with Store.open(db) as store:
        revision = store.revisions(run_id)[1]
        assert store.constitution(revision.constitution_hash).principles == ("a", "b", "edited")
        assert [c.purpose for c in store.calls(run_id)][:3] == ["discuss:ann:r1", "discuss:ben:r1", "edit"]


def test_agents_may_be_different_models(tmp_path: Path, db: Path) -> None:
    from stability.models import scripted
    from stability.models.scripted import ScriptedModel

    other = ScriptedModel(fn=lambda m: "NO CHANGE", name="scripted/other")
    scripted.register("other", lambda: other)
    run_id, subject = run_protocol(tmp_path, db, "multi-agent-discussion", fn=lambda m: "NO CHANGE", rounds=1,
                                   agents=[{"name": "ann"}, {"name": "bob", "model": "scripted/other"}])
    assert len(subject.calls) == 1 and len(other.calls) == 1
    with Store.open(db) as store:
        assert [c.model for c in store.calls(run_id)] == ["scripted/test", "scripted/other"]


def test_bad_editor_is_rejected_before_anything_is_written(tmp_path: Path, db: Path) -> None:
    with pytest.raises(StabilityError, match="editor 'zed' is not one of the agents"):
        run_protocol(tmp_path, db, "multi-agent-discussion", ["NO CHANGE"], editor="zed")
    assert not db.exists()


def test_vote_parsing() -> None:
    assert vote("I vote for proposal 2.", 3) == 1
    assert vote("7 reasons... but 1", 3) == 0
    assert vote("none", 3) is None
