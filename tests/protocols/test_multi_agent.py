from __future__ import annotations

from pathlib import Path

import pytest

from stability.errors import StabilityError
from stability.protocols.multi_agent import agent_names, plurality, read_vote, vote
from stability.store import Store
from stability.vocabulary import Message
from tests.conftest import decisions, revised, run_protocol, write


def speaker(messages: list[Message]) -> str:
    return messages[0].content.split(",")[0].removeprefix("You are ")


def test_discussion_then_vote_then_everyone_declines(tmp_path: Path, db: Path) -> None:
    def answer(messages: list[Message]) -> str:
        who, ask = speaker(messages), messages[-1].content
        if "Vote for the proposal" in ask:
            return "VOTE: 2" if who != "carol" else "VOTE: 1"
        if "- c" in ask.split("Discussion so far")[0]:
            return "I am content now.\nNO CHANGE"
        return f"{who} thinks c matters." + (revised("a", "b", "c") if who != "carol" else "\nNO CHANGE")

    run_id, model = run_protocol(tmp_path, db, "multi-agent-discussion", fn=answer, rounds=2, declines_to_stop=1)
    assert decisions(db, run_id) == ["origin", "changed", "declined"]
    with Store.open(db) as store:
        calls = store.calls(run_id)
        edges = store.edges(run_id)
        assert store.run(run_id).stop_reason == "declined"
    # Cycle 1: 3 agents x 2 rounds of discussion, then 3 votes; cycle 2: 6 turns, all declining.
    purposes = [c.purpose for c in calls]
    assert sorted(purposes[:3]) == ["discuss:alice:r1", "discuss:bob:r1", "discuss:carol:r1"]
    assert sorted(purposes[3:6]) == ["discuss:alice:r2", "discuss:bob:r2", "discuss:carol:r2"]
    assert purposes[6:9] == ["vote:alice", "vote:bob", "vote:carol"]
    assert len(calls) == 15 and len(edges[0].call_ids) == 9
    # The transcript is reconstructable: each turn saw every earlier turn of its cycle.
    first = purposes[0].split(":")[1]
    assert f"{first}: {first} thinks c matters." in model.calls[1][-1].content


def test_designated_editor_writes_the_revision(tmp_path: Path, db: Path) -> None:
    def answer(messages: list[Message]) -> str:
        if "As the editor" in messages[-1].content:
            return revised("a", "b", "edited")
        if "- edited" in messages[-1].content:
            return "NO CHANGE"
        return "Something should change.\n" + revised("a", speaker(messages))

    run_id, model = run_protocol(tmp_path, db, "multi-agent-discussion", fn=answer, rounds=1,
                                 agents=[{"name": "ann"}, {"name": "ben"}], editor="ben", declines_to_stop=1)
    assert decisions(db, run_id) == ["origin", "changed", "declined"]
    with Store.open(db) as store:
        revision = store.revisions(run_id)[1]
        assert store.constitution(revision.constitution_hash).principles == ("a", "b", "edited")
        purposes = [c.purpose for c in store.calls(run_id)]
        assert sorted(purposes[:2]) == ["discuss:ann:r1", "discuss:ben:r1"] and purposes[2] == "edit"


def test_agents_may_be_different_models(tmp_path: Path, db: Path) -> None:
    from stability.models import scripted
    from stability.models.scripted import ScriptedModel

    other = ScriptedModel(fn=lambda m: "NO CHANGE", name="scripted/other")
    scripted.register("other", lambda: other)
    run_id, subject = run_protocol(tmp_path, db, "multi-agent-discussion", fn=lambda m: "NO CHANGE", rounds=1,
                                   agents=[{"name": "ann"}, {"name": "bob", "model": "scripted/other"}],
                                   declines_to_stop=1)
    assert len(subject.calls) == 1 and len(other.calls) == 1
    with Store.open(db) as store:
        assert {(c.purpose, c.model) for c in store.calls(run_id)} == {("discuss:ann:r1", "scripted/test"),
                                                                       ("discuss:bob:r1", "scripted/other")}


def test_bad_editor_is_rejected_before_anything_is_written(tmp_path: Path, db: Path) -> None:
    with pytest.raises(StabilityError, match="editor 'zed' is not one of the agents"):
        run_protocol(tmp_path, db, "multi-agent-discussion", ["NO CHANGE"], editor="zed")
    assert not db.exists()


def test_vote_parsing() -> None:
    """Only an explicit VOTE line, a bare number or the structured field is a vote (issue 31: every other number
    read as a vote was a misreading)."""
    assert vote("Proposal 1 is tempting, but 3 is better.\nVOTE: 2", 3) == 1  # the line, not the prose
    assert vote("**VOTE:** Proposal 3", 3) == 2
    assert vote("VOTE: 1\nOn reflection:\nVOTE: 3", 3) == 2  # the last vote line
    assert vote("2", 3) == 1 and vote("Proposal 2.", 3) == 1  # the whole answer is the number
    assert vote('{"reasoning": "proposal 1 is close, but", "vote": 3}', 3) == 2  # structured: the field, not text
    assert vote('{"reasoning": "x", "vote": 7}', 3) is None
    assert vote('{"reasoning": "a raw\nnewline", "vote": 2}', 3) == 1  # JSON read leniently
    # numbers that are not votes: what the vote counter took for votes before issue 31
    assert vote("I vote for proposal 2.", 3) is None
    assert vote("7 reasons... but 1", 3) is None
    assert vote("I prefer proposal 3 over proposal 1 and choose 3", 3) is None
    assert vote("Nothing here, or 9", 3) is None
    assert vote("VOTE: 9", 3) is None


@pytest.mark.parametrize("answer", [
    "This is round 2 of 3, and I think the first proposal is the clearest.",
    "You are agent1. I think",
    "I will keep it short (no more than 2 sentences): the second one reads well, but",
])
def test_numbers_in_prose_are_no_vote(answer: str) -> None:
    """The raw vote answers SmolLM2 gave behind llama_cpp.server (issue 31), each once counted as a vote."""
    assert read_vote(answer, 3) == (None, "no VOTE line")


def test_a_cut_off_vote_is_no_vote() -> None:
    assert read_vote("You are agent1.\nVOTE: 1", 3, "length") == (None, "cut off")
    assert read_vote('{"reasoning": "x", "vote": 1}', 3, "max_tokens") == (None, "cut off")


def test_no_votes_are_recorded_with_whose_and_why(tmp_path: Path, db: Path) -> None:
    from stability.vocabulary import Output

    def answer(messages: list[Message]) -> str | Output:
        who, ask = speaker(messages), messages[-1].content
        if "Vote for the proposal" in ask:
            votes: dict[str, str | Output] = {
                "ann": "VOTE: 2", "ben": Output(text="You are agent1. VOTE: 1", finish_reason="length"),
                "cat": "This is round 2 of 3."}
            return votes[who]
        if "- x" in ask.split("Discussion so far")[0]:
            return "NO CHANGE"
        return revised("a", "x", who)

    run_id, _ = run_protocol(tmp_path, db, "multi-agent-discussion", fn=answer, rounds=1,
                             agents=[{"name": "ann"}, {"name": "ben"}, {"name": "cat"}], declines_to_stop=1)
    detail = _orders(db, run_id)[0]
    assert "votes 0,1,0; no vote: ben (cut off), cat (no VOTE line); proposal 2" in detail


def test_default_agent_names_have_no_digits() -> None:
    names = agent_names(25)
    assert names[:3] == ["alice", "bob", "carol"] and len(set(names)) == 25
    assert not any(ch.isdigit() for name in names for ch in name)


def test_structured_models_vote_with_the_schema(tmp_path: Path, db: Path) -> None:
    from stability.models import scripted
    from stability.models.scripted import ScriptedModel

    def answer(messages: list[Message]) -> str:
        if "Vote for the proposal" in messages[-1].content:
            return '{"reasoning": "proposal 1 reads better than 2", "vote": 2}'
        if "- z" in messages[-1].content.split("Discussion so far")[0]:
            return "NO CHANGE"
        return revised("a", "z", speaker(messages))

    model = ScriptedModel(fn=answer, name="scripted/test", structured=True)
    scripted.register("test", lambda: model)
    from stability.engine import IterateConfig, iterate

    start = write(tmp_path / "start.md", "- a\n- b\n")
    result = iterate(IterateConfig(protocol="multi-agent-discussion", model="scripted/test", constitution=str(start),
                                   options={"agents": [{"name": "ann"}, {"name": "ben"}], "rounds": 1,
                                            "declines_to_stop": 1}), db)
    with Store.open(db) as store:
        votes = [c for c in store.calls(result.run.id) if c.purpose.startswith("vote:")]
        chosen = store.constitution(store.revisions(result.run.id)[1].constitution_hash).principles
        detail = store.revisions(result.run.id)[1].detail or ""
    assert votes and all(c.request.get("json_schema", {}).get("required") == ["reasoning", "vote"] for c in votes)
    assert "votes 0,2; proposal 2" in detail and chosen == ("a", "z", "ben")


def test_ties_are_drawn_from_the_seed() -> None:
    assert plurality([2, 1, 0], 5) == (0, [])
    draws = {plurality([1, 1, 1], seed)[0] for seed in range(40)}
    assert draws == {0, 1, 2}  # not always the first proposal
    assert all(plurality([1, 0, 1], seed) == plurality([1, 0, 1], seed) for seed in range(10))
    assert all(plurality([1, 0, 1], seed)[1] == [0, 2] for seed in range(10))


def _orders(db: Path, run_id: str) -> list[str]:
    with Store.open(db) as store:
        return [r.detail or "" for r in store.revisions(run_id)[1:]]


def test_speaking_order_is_randomised_per_round_reproducibly_and_stored(tmp_path: Path, db: Path) -> None:
    agents = [{"name": n} for n in ("ann", "ben", "cat", "dan")]
    run_id, model = run_protocol(tmp_path, db, "multi-agent-discussion", fn=lambda m: "NO CHANGE", rounds=3,
                                 agents=agents, declines_to_stop=3, seed=11)
    assert decisions(db, run_id) == ["origin", "declined", "declined", "declined"]  # K unanimous steps in a row
    spoken = [speaker(messages) for messages in model.calls]
    rounds = [tuple(spoken[i:i + 4]) for i in range(0, len(spoken), 4)]
    assert len(rounds) == 9 and all(sorted(r) == ["ann", "ben", "cat", "dan"] for r in rounds)
    assert len(set(rounds)) > 1  # the order changes between rounds
    details = _orders(db, run_id)
    assert details[0] == "order " + "; ".join(f"r{k + 1}=" + ",".join(rounds[k]) for k in range(3))
    again, _ = run_protocol(tmp_path, tmp_path / "again.duckdb", "multi-agent-discussion", fn=lambda m: "NO CHANGE",
                            rounds=3, agents=agents, declines_to_stop=3, seed=11)
    assert _orders(tmp_path / "again.duckdb", again) == details  # reproducible from the seed
    other, _ = run_protocol(tmp_path, tmp_path / "other.duckdb", "multi-agent-discussion", fn=lambda m: "NO CHANGE",
                            rounds=3, agents=agents, declines_to_stop=3, seed=12)
    assert _orders(tmp_path / "other.duckdb", other) != details


def test_a_tied_vote_is_drawn_and_recorded(tmp_path: Path, db: Path) -> None:
    def answer(messages: list[Message]) -> str:
        who, ask = speaker(messages), messages[-1].content
        if "Vote for the proposal" in ask:
            return "I like mine.\nVOTE: " + ("1" if who == "ann" else "2")
        if "- x" in ask.split("Discussion so far")[0]:
            return "NO CHANGE"
        return revised("a", "x", who)

    run_id, _ = run_protocol(tmp_path, db, "multi-agent-discussion", fn=answer, rounds=1,
                             agents=[{"name": "ann"}, {"name": "ben"}], declines_to_stop=1)
    detail = _orders(db, run_id)[0]
    assert "votes 1,1" in detail and "drawn from the tie 1,2" in detail
    with Store.open(db) as store:
        chosen = store.constitution(store.revisions(run_id)[1].constitution_hash).principles
    assert chosen == ("a", "x", "ann" if "proposal 1 " in detail else "ben")
