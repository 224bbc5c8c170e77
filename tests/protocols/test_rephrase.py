"""``rephrase``: restates the constitution each step as a fresh instance, walked like fresh-instance."""

from __future__ import annotations

from pathlib import Path

from stability.engine import IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.protocols import protocol_class
from stability.store import Store
from stability.vocabulary import Message
from tests.conftest import write

WORDS = {"a": "alpha", "alpha": "a", "b": "beta", "beta": "b"}


def restate(messages: list[Message]) -> str:
    current = [line[2:] for line in messages[-1].content.splitlines() if line.startswith("- ")]
    return "REVISED CONSTITUTION:\n" + "".join(f"- {WORDS.get(p, p)}\n" for p in current)


def test_rephrase_walks_and_asks_to_keep_the_meaning(tmp_path: Path, db: Path) -> None:
    model = ScriptedModel(fn=restate, name="scripted/rephraser")
    scripted.register("rephraser", lambda: model)
    start = write(tmp_path / "start.md", "- a\n- b\n")
    result = iterate(IterateConfig(protocol="rephrase", model="scripted/rephraser", constitution=str(start),
                                   options={"max_steps": 5}), db)
    with Store.open(db) as store:
        run = store.run(result.run.id)
        revisions = store.revisions(run.id)
        calls = store.calls(run.id)
    # a -> alpha -> a: the walk's own cycle stop, every answer a stored call
    assert [r.decision for r in revisions] == ["origin", "changed", "changed"]
    assert run.stop_reason == "cycle" and [c.purpose for c in calls] == ["rephrase", "rephrase"]
    assert "without changing its meaning" in model.calls[0][-1].content and len(model.calls[0]) == 2
    cls = protocol_class("rephrase")
    assert cls.chain and cls.drift_null and not protocol_class("fresh-instance").drift_null
