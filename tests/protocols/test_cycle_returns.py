"""``cycle_returns``: with 2 or more, a run goes on past its first revisit; analysis tells a return from a cycle."""

from __future__ import annotations

from pathlib import Path

from stability.analysis import analyze
from stability.engine import IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store
from stability.vocabulary import Message
from tests.conftest import write


def flip(messages: list[Message]) -> str:
    current = [line[2:] for line in messages[-1].content.splitlines() if line.startswith("- ")]
    return "REVISED CONSTITUTION:\n- " + ("b" if current == ["a"] else "a") + "\n"


def _run(tmp_path: Path, db: Path, **options: object) -> str:
    scripted.register("returns-flip", lambda: ScriptedModel(fn=flip, name="scripted/returns-flip"))
    start = write(tmp_path / "start.md", "- a\n")
    return iterate(IterateConfig(model="scripted/returns-flip", constitution=str(start), options=options), db).run.id


def test_a_run_goes_on_past_its_first_return(tmp_path: Path, db: Path) -> None:
    once = _run(tmp_path, db)
    thrice = _run(tmp_path, db, cycle_returns=3, max_steps=10)
    with Store.open(db) as store:
        first = [(r.decision, r.cycle_to is not None) for r in store.revisions(once)]
        later = [(r.decision, r.cycle_to is not None) for r in store.revisions(thrice)]
        assert store.run(thrice).stop_reason == "cycle"
    assert first == [("origin", False), ("changed", False), ("changed", True)]  # today's behaviour: stop at once
    # a -> b -> a (return 1) -> b (2) -> a (3): stops at the third return
    assert later == [("origin", False), ("changed", False)] + [("changed", True)] * 3
    result = analyze([once, thrice], db, embedder="hashing")
    by_id = {r.run_id: r for r in result.runs}
    assert [c.repeated for c in by_id[once].cycles] == [False] and by_id[once].verdict == "cycle"
    [cycle] = by_id[thrice].cycles
    assert cycle.repeated and cycle.returns == 3 and cycle.period == 2
    [group] = result.groups
    assert group.cycle_rate.mean == 1.0 and group.repeated_cycle_rate.mean == 0.5
