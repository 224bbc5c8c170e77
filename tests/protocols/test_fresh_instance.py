from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stability.engine import IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store
from stability.vocabulary import Message
from tests.conftest import write


def revised(*principles: str) -> str:
    return "Here is my revision.\n\nREVISED CONSTITUTION:\n" + "".join(f"- {p}\n" for p in principles)


def run_script(tmp_path: Path, db: Path, outputs: list[str] | None = None,
               fn: Callable[[list[Message]], str] | None = None, start: str = "- a\n- b\n", base: bool = False,
               **options: object) -> tuple[str, ScriptedModel]:
    model = ScriptedModel(outputs=outputs, fn=fn, name="scripted/test", base_model=base)
    scripted.register("test", lambda: model)
    constitution = write(tmp_path / "start.md", start)
    result = iterate(IterateConfig(model="scripted/test", constitution=str(constitution), options=options), db)
    return result.run.id, model


def graph(db: Path, run_id: str) -> tuple[list[tuple[int, str, int, str | None]], list[tuple[str, str, str]]]:
    """(step, decision, n_principles, cycle_to) per revision, and (source, target, kind) per edge."""
    with Store.open(db) as store:
        revisions = store.revisions(run_id)
        sizes = {r.constitution_hash: len(store.constitution(r.constitution_hash).principles) for r in revisions}
        nodes = [(r.step, r.decision, sizes[r.constitution_hash], r.cycle_to) for r in revisions]
        edges = [(e.source_id, e.target_id, e.kind) for e in store.edges(run_id)]
    return nodes, edges


def test_chain_to_fixed_point(tmp_path: Path, db: Path) -> None:
    run_id, model = run_script(tmp_path, db, [revised("a", "b", "c"), "NO CHANGE", revised("a", "b", "c")])
    nodes, edges = graph(db, run_id)
    assert nodes == [(0, "origin", 2, None), (1, "changed", 3, None), (2, "declined", 3, None),
                     (3, "declined", 3, None)]
    assert edges == [(f"{run_id}:0", f"{run_id}:1", "edit"), (f"{run_id}:1", f"{run_id}:2", "decline"),
                     (f"{run_id}:2", f"{run_id}:3", "decline")]
    with Store.open(db) as store:
        run = store.run(run_id)
        assert (run.status, run.stop_reason) == ("done", "declined")
        assert run.template_hash.startswith("sha256:") and run.package_version
        calls = store.calls(run_id)
        assert [c.step for c in calls] == [1, 2, 3]
        # Declines are independent samples: each fresh instance gets its own seed.
        assert len({c.request["seed"] for c in calls}) == 3
        n_nodes = store.con.execute("SELECT count(*) FROM constitutions").fetchone()
        assert n_nodes == (2,)
    # Each step was a brand-new conversation: system + one user message, no earlier turns.
    assert all(len(messages) == 2 for messages in model.calls)


def test_cycle_records_the_revision_it_returns_to(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_script(tmp_path, db, [revised("b"), revised("a")], start="- a\n")
    nodes, _ = graph(db, run_id)
    assert nodes == [(0, "origin", 1, None), (1, "changed", 1, None), (2, "changed", 1, f"{run_id}:0")]
    with Store.open(db) as store:
        assert store.run(run_id).stop_reason == "cycle"
        revisions = store.revisions(run_id)
        assert revisions[2].constitution_hash == revisions[0].constitution_hash


def test_parse_failures_are_recorded_not_taken_for_decline(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_script(tmp_path, db, ["I like it.", "Hmm.", "Sure"], max_parse_failures=3)
    nodes, edges = graph(db, run_id)
    assert [n[1] for n in nodes] == ["origin", "parse_failure", "parse_failure", "parse_failure"]
    assert [e[2] for e in edges] == ["parse_failure"] * 3
    with Store.open(db) as store:
        assert store.run(run_id).stop_reason == "parse_failures"
        assert "no bullet list" in (store.revisions(run_id)[1].detail or "")


def test_a_parse_failure_breaks_a_run_of_declines(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_script(tmp_path, db, ["NO CHANGE", "garbled", "NO CHANGE", "NO CHANGE"])
    nodes, _ = graph(db, run_id)
    assert [n[1] for n in nodes] == ["origin", "declined", "parse_failure", "declined", "declined"]


def test_same_list_back_is_a_decline(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_script(tmp_path, db, [revised("a", "b"), "Sure:\n* a\n* b\n"])
    nodes, _ = graph(db, run_id)
    assert [n[1] for n in nodes] == ["origin", "declined", "declined"]


def test_max_steps(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_script(tmp_path, db, fn=lambda m: revised(*[f"p{len(m[-1].content)}", "x"]),
                           max_steps=1)
    with Store.open(db) as store:
        assert store.run(run_id).stop_reason == "max_steps"
        assert len(store.revisions(run_id)) == 2


def test_two_runs_reaching_the_same_text_share_one_node(tmp_path: Path, db: Path) -> None:
    first, _ = run_script(tmp_path, db, [revised("x", "y"), "NO CHANGE", "NO CHANGE"], start="- a\n")
    second, _ = run_script(tmp_path, db, [revised("x", "y"), "NO CHANGE", "NO CHANGE"], start="- b\n")
    with Store.open(db) as store:
        a, b = store.revisions(first), store.revisions(second)
        assert a[1].constitution_hash == b[1].constitution_hash
        n_nodes = store.con.execute("SELECT count(*) FROM constitutions").fetchone()
    assert n_nodes == (3,)  # a, b, and the shared x/y


@pytest.mark.parametrize(("base", "turns"), [(False, 2), (True, 8)])
def test_few_shot_examples_only_for_base_models(tmp_path: Path, db: Path, base: bool, turns: int) -> None:
    _, model = run_script(tmp_path, db, ["NO CHANGE", "NO CHANGE"], base=base)
    assert len(model.calls[0]) == turns
    assert model.calls[0][-1].content.count("- a") == 1
