"""fine-tune-reflect: the pure parts offline, and a real two-generation loop on gemma-3-270m (slow; CI runs it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stability.constitution import Constitution, parse_answer
from stability.errors import InputError, StabilityError
from stability.iteration import IterateConfig, iterate, resume
from stability.protocols.fine_tune_reflect import (
    FineTuneReflectOptions,
    consensus,
    generation_summaries,
    load_spec,
    set_distance,
    share_kept,
)
from stability.store import Store
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[2]


def c(*principles: str) -> Constitution:
    return Constitution.from_principles(list(principles))


def test_consensus_takes_the_most_common_outcome_and_counts_declines_as_current() -> None:
    current = c("I am honest.", "I am kind.")
    changed = "REVISED CONSTITUTION:\n- I am honest.\n- I am kind.\n- I am brief.\n"
    answers = [parse_answer(t) for t in ("NO CHANGE", changed, "no list here", changed)]
    revised, parsed, n_changed = consensus(current, answers)
    assert revised.principles == ("I am honest.", "I am kind.", "I am brief.")
    assert (parsed, n_changed) == (3, 2)
    tie = [parse_answer(t) for t in ("NO CHANGE", changed)]
    assert consensus(current, tie)[0] == current  # ties go to the first seen
    assert consensus(current, [parse_answer("???")]) == (current, 0, 0)


def test_share_kept_and_set_distance_use_exact_normalised_principles() -> None:
    before = c("I am honest.", "I am kind.")
    assert share_kept(before, c("I am  honest.", "I am brief.")) == 0.5  # whitespace is normalised
    assert set_distance(before, before) == 0.0
    assert set_distance(before, c("I am brief.")) == 1.0
    assert set_distance(before, c("I am honest.", "I am brief.")) == pytest.approx(2 / 3)


def test_ready_specs_load_and_bad_specs_name_the_file(tmp_path: Path) -> None:
    for name in ("tiny-cpu.yaml", "gpu.yaml"):
        spec = load_spec(ROOT / "protocols/fine-tune-reflect/specs" / name)
        assert spec["protocol"] == "fine-tune-reflect" and spec["model"].startswith("hf/")
        FineTuneReflectOptions(**spec["options"])
    bad = write(tmp_path / "bad.yaml", "model: hf/gemma-3-270m\nconstitution: x.md\noptions: {traces: 0}\n")
    with pytest.raises(InputError, match=r"bad\.yaml:3: options\.traces: Input should be greater"):
        load_spec(bad)


def test_a_model_that_cannot_be_tuned_is_refused_before_anything_is_written(db: Path) -> None:
    config = IterateConfig(protocol="fine-tune-reflect", model="scripted/decline",
                           constitution=str(ROOT / "constitutions/consistent/minimal.md"))
    with pytest.raises(StabilityError, match="needs an hf/ model"):
        iterate(config, db)
    assert not db.exists()


class Killed(Exception):
    """Stands in for a kill between generations."""


@pytest.mark.slow
def test_two_generations_on_the_real_model_then_resume_after_a_kill(db: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from stability.models.base import get_model
    from stability.models.hf import Adapter, HFModel
    from stability.protocols import fine_tune_reflect

    trained: list[str] = []
    real_train = fine_tune_reflect.train_lora

    def train(*args: Any) -> Any:
        out = args[3]
        trained.append(out.name)
        if out.name == "gen-01" and trained.count("gen-01") == 1:
            raise Killed("killed before generation 1 trained")
        return real_train(*args)

    monkeypatch.setattr(fine_tune_reflect, "train_lora", train)
    constitution = write(tmp_path / "short.md", "- I am honest.\n- I am kind.\n")
    trainer = {"steps": 3, "grad_accum": 1, "learning_rate": 1e-3, "max_length": 256}
    options = {"generations": 2, "traces": 2, "unchanged_to_stop": 5, "recite_revised": True,
               "trainer": trainer, "adapters_dir": str(tmp_path / "ad"),
               "trainer_next": {**trainer, "steps": 2, "learning_rate": 2e-4}}
    config = IterateConfig(protocol="fine-tune-reflect", model="hf/gemma-3-270m", constitution=str(constitution),
                           seed=3, temperature=0.7, max_tokens=48, options=options)

    with pytest.raises(Killed):
        iterate(config, db)
    with Store.open(db) as store:
        (run,) = store.runs()
        assert run.status == "failed" and len(store.adapters(run.id)) == 1
        first_calls = store.calls(run.id)
    assert trained == ["gen-00", "gen-01"] and len(first_calls) == 2  # generation 0 reflected twice

    result = resume(run.id, db)
    assert trained == ["gen-00", "gen-01", "gen-01"]  # generation 0 was not trained again
    assert result.sent == 2  # only generation 1's two reflections reached the model
    assert result.run.status == "done" and result.run.stop_reason == "max_steps"

    with Store.open(db) as store:
        adapters = store.adapters(run.id)
        edges = store.edges(run.id)
        generations = store.generations(run.id)
        calls = store.calls(run.id)
    # Lineage: base -> generation 0 -> generation 1, each adapter written, hashed and loadable.
    assert [a.generation for a in adapters] == [0, 1]
    assert adapters[0].parent_id is None and adapters[1].parent_id == adapters[0].id
    assert all(a.base_model == "hf/gemma-3-270m" and a.base_params["adapter"] is None for a in adapters)
    for adapter in adapters:
        assert Adapter.from_path(adapter.path).hash == adapter.content_hash
        assert len(adapter.losses) == adapter.trainer["steps"]
        loaded = get_model(f"hf/gemma-3-270m@{adapter.path}")
        assert isinstance(loaded, HFModel) and loaded.describe()["adapter"]["hash"] == adapter.content_hash
    # Generation 0 put the constitution in: its loss over its training data fell. (Generation 1 trains on the
    # model's own traces, whose loss is already low; two single-example steps do not reliably lower it.)
    assert adapters[0].loss_after < adapters[0].loss_before, adapters[0]
    assert {e["source"] for e in adapters[0].data} == {"recitation"}
    assert "trace" in {e["source"] for e in adapters[1].data}
    assert adapters[1].trainer["steps"] == 2 and adapters[0].data_hash != adapters[1].data_hash
    # The graph: the same revisions and edges as fresh-instance, and each revision links to its adapter.
    assert [r.step for r in result.revisions] == [0, 1, 2]
    assert len(edges) == 2 and all(len(e.call_ids) == 2 and e.kind in ("edit", "decline") for e in edges)
    assert [(g.adapter_id, g.revision_id) for g in generations] == [(adapters[0].id, f"{run.id}:1"),
                                                                     (adapters[1].id, f"{run.id}:2")]
    reflect = [c for c in calls if c.purpose.startswith("reflect")]
    assert len(reflect) == 4 and len({c.cache_key for c in reflect}) == 4  # seeds differ per trace
    assert {json.dumps(c.request["adapter"], sort_keys=True) for c in reflect} == {
        json.dumps({"path": a.path, "hash": a.content_hash}, sort_keys=True) for a in adapters}
    summaries = generation_summaries(db, run.id, distance=lambda a, b: float(len(a.principles) - len(b.principles)))
    assert [s.generation for s in summaries] == [0, 1] and all(0 <= s.share_kept <= 1 for s in summaries)
    assert all(s.distance is not None for s in summaries) and summaries[0].loss_after < summaries[0].loss_before
