from __future__ import annotations

from pathlib import Path

from stability.store import Store
from tests.conftest import decisions, revised, run_protocol


def test_authors_from_nothing_with_hints(tmp_path: Path, db: Path) -> None:
    run_id, model = run_protocol(tmp_path, db, "blank-slate", [revised("be fair", "be clear")], start=None,
                                 size=2, topic="a referee")
    assert decisions(db, run_id) == ["origin", "authored"]
    assert "about 2 principles" in model.calls[0][-1].content and "a referee" in model.calls[0][-1].content
    with Store.open(db) as store:
        revisions = store.revisions(run_id)
        assert store.constitution(revisions[0].constitution_hash).principles == ()
        assert store.constitution(revisions[1].constitution_hash).principles == ("be fair", "be clear")
        assert store.edges(run_id)[0].kind == "author"
        assert store.run(run_id).stop_reason == "authored"


def test_unparseable_authoring_is_retried_then_stops(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "blank-slate", ["hmm", "NO CHANGE", "what?"], start=None)
    assert decisions(db, run_id) == ["origin", "parse_failure", "parse_failure", "parse_failure"]


def test_from_blank_then_iterate_is_one_command(tmp_path: Path, db: Path) -> None:
    run_id, model = run_protocol(tmp_path, db, "fresh-instance", [revised("x", "y"), "NO CHANGE", "NO CHANGE"],
                                 start=None, from_blank=True, blank_topic="gardening")
    assert decisions(db, run_id) == ["origin", "authored", "declined", "declined"]
    assert "gardening" in model.calls[0][-1].content
    assert "- x" in model.calls[1][-1].content  # the iteration starts from what the model wrote
    with Store.open(db) as store:
        run = store.run(run_id)
    from stability.engine.templates import Templates

    assert run.template_hash not in (Templates("fresh-instance").hash, Templates("blank-slate").hash)
