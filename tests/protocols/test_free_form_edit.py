from __future__ import annotations

from pathlib import Path

from stability.protocols.free_form_edit import rationale
from stability.store import Store
from tests.conftest import decisions, run_protocol

ANSWER = "RATIONALE: Kindness matters too.\n\nREVISED CONSTITUTION:\n- a\n- b\n- be kind\n"


def test_one_edit_with_its_rationale_is_one_edge(tmp_path: Path, db: Path) -> None:
    run_id, model = run_protocol(tmp_path, db, "free-form-edit", [ANSWER])
    assert len(model.calls) == 1
    with Store.open(db) as store:
        revisions = store.revisions(run_id)
        edges = store.edges(run_id)
        assert store.run(run_id).stop_reason == "edited"
    assert [r.decision for r in revisions] == ["origin", "changed"]
    assert revisions[1].detail == "Kindness matters too."
    assert len(edges) == 1 and edges[0].kind == "edit" and edges[0].source_id == revisions[0].id


def test_decline_and_parse_failure(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "free-form-edit", ["NO CHANGE"])
    assert decisions(db, run_id) == ["origin", "declined"]
    run_id, _ = run_protocol(tmp_path, db, "free-form-edit", ["I am not sure."])
    assert decisions(db, run_id) == ["origin", "parse_failure"]


def test_rationale_parsing() -> None:
    assert rationale("RATIONALE: one\ntwo\n\nREVISED CONSTITUTION:\n- x") == "one two"
    assert rationale("no reason given") is None
