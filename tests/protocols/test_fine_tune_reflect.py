"""fine-tune-reflect: the pure parts offline, and a real two-generation loop on gemma-3-270m (slow; CI runs it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stability.analysis.generations import generation_summaries
from stability.answer import read_answer
from stability.constitution import Constitution
from stability.engine import IterateConfig, iterate, load_run_spec, resume
from stability.engine.templates import TemplateSet
from stability.errors import InputError, StabilityError
from stability.library import find_constitution
from stability.models import scripted
from stability.models.scripted import ScriptedModel, TrainableScriptedModel
from stability.protocols.fine_tune_reflect import (
    FineTuneReflect,
    FineTuneReflectOptions,
    consensus,
    set_distance,
    share_kept,
)
from stability.store import Store
from stability.testing.fine_tune import heldout_reviser
from stability.vocabulary import Message
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[2]


def c(*principles: str) -> Constitution:
    return Constitution.from_principles(list(principles))


def test_consensus_decides_by_majority_then_takes_the_medoid_change() -> None:
    current = c("I am honest.", "I am kind.")
    changed = "REVISED CONSTITUTION:\n- I am honest.\n- I am kind.\n- I am brief.\n"
    answers = [read_answer(t) for t in ("NO CHANGE", changed, "no list here", changed)]
    outcome = consensus(current, answers)
    assert outcome.constitution.principles == ("I am honest.", "I am kind.", "I am brief.")
    assert (outcome.parsed, outcome.changed) == (3, 2) and outcome.rule.startswith("change 2 vs keep 1")
    tie = consensus(current, [read_answer(t) for t in ("NO CHANGE", changed)])
    assert tie.constitution == current and tie.rule == "change 1 vs keep 1: keep"  # a change needs a majority
    same_back = "REVISED CONSTITUTION:\n- I am honest.\n- I am kind.\n"
    assert consensus(current, [read_answer(same_back), read_answer(changed)]).constitution == current
    nothing = consensus(current, [read_answer("???")])
    assert (nothing.constitution, nothing.parsed, nothing.changed) == (current, 0, 0)


def test_fourteen_different_changes_outvote_two_identical_declines() -> None:
    """The planted case: the old rule (most common exact text) kept the constitution on 2 declines."""
    current = c("a", "b")
    central = ["a", "b", "c"]
    changes = [central] + [["a", "b", "c", f"x{i}"] for i in range(13)]  # all different texts
    texts = ["REVISED CONSTITUTION:\n" + "".join(f"- {p}\n" for p in ps) for ps in changes]
    answers = [read_answer(t) for t in ["NO CHANGE", *texts[7:], "NO CHANGE", *texts[:7]]]
    outcome = consensus(current, answers)
    assert (outcome.parsed, outcome.changed) == (16, 14)
    assert outcome.constitution.principles == ("a", "b", "c")  # the change closest to every other change
    assert outcome.rule.startswith("change 14 vs keep 2: medoid trace 10 of 14 changes")


PARAPHRASES = [["We bake sourdough every morning.", "Our ovens run hot."],  # unrelated to the others
               ["I always tell the truth.", "I am kind to everyone."],
               ["I always tell the whole truth.", "I am kind to everyone I meet."]]  # a paraphrase of the second


def test_the_embedding_medoid_sees_paraphrases_that_principle_sets_miss(db: Path, tmp_path: Path) -> None:
    """Three different changes: by exact principle sets all are equally far apart (the earliest wins); by meaning
    the two paraphrases are close, so the medoid is one of them. The protocol embeds through the run (engine)."""
    texts = ["REVISED CONSTITUTION:\n" + "".join(f"- {p}\n" for p in ps) for ps in PARAPHRASES]
    answers = [read_answer(t) for t in texts]
    assert consensus(c("x"), answers).constitution.principles == tuple(PARAPHRASES[0])
    traces = iter(texts * 2)
    subject = TrainableScriptedModel(fn=lambda _: next(traces), name="scripted/tunable")
    scripted.register("tunable", lambda: subject)
    constitution = write(tmp_path / "short.md", "- x\n")
    options = {"generations": 1, "traces": 3, "medoid": "hashing", "adapters_dir": str(tmp_path / "ad")}
    result = iterate(IterateConfig(protocol="fine-tune-reflect", model="scripted/tunable",
                                   constitution=str(constitution), options=options), db)
    final = result.revisions[-1]
    assert final.decision == "changed" and "hashing distance" in (final.detail or "")
    with Store.open(db) as store:
        assert store.constitution(final.constitution_hash).principles in (tuple(PARAPHRASES[1]), tuple(PARAPHRASES[2]))


def test_share_kept_and_set_distance_use_exact_normalised_principles() -> None:
    before = c("I am honest.", "I am kind.")
    assert share_kept(before, c("I am  honest.", "I am brief.")) == 0.5  # whitespace is normalised
    assert set_distance(before, before) == 0.0
    assert set_distance(before, c("I am brief.")) == 1.0
    assert set_distance(before, c("I am honest.", "I am brief.")) == pytest.approx(2 / 3)


def test_ready_specs_load_and_bad_specs_name_the_file(tmp_path: Path) -> None:
    for name in ("tiny-cpu.yaml", "gpu.yaml"):
        spec = load_run_spec(ROOT / "protocols/fine-tune-reflect/specs" / name, "fine-tune-reflect")
        assert spec["protocol"] == "fine-tune-reflect" and spec["model"].startswith("hf/")
        FineTuneReflectOptions(**spec["options"])
    bad = write(tmp_path / "bad.yaml", "model: hf/gemma-3-270m\nconstitution: x.md\noptions: {traces: 0}\n")
    with pytest.raises(InputError, match=r"bad\.yaml:3: options\.traces: Input should be greater"):
        load_run_spec(bad, "fine-tune-reflect")


def test_a_model_that_cannot_be_tuned_is_refused_before_anything_is_written(db: Path) -> None:
    config = IterateConfig(protocol="fine-tune-reflect", model="scripted/decline",
                           constitution=str(ROOT / "constitutions/consistent/minimal.md"))
    with pytest.raises(StabilityError, match="needs an hf/ model"):
        iterate(config, db)
    assert not db.exists()


def qa_answer(messages: list[Message]) -> str:
    return "A teacher's answer: " + messages[-1].content.splitlines()[-1]


def test_teacher_qa_asks_the_teacher_and_trains_and_reflects_with_the_subject(db: Path, tmp_path: Path) -> None:
    """The teacher writes generation 0's answers; every later call and every training step is the subject's.

    (Before the engine owned model roles, the teacher was put back on the call path after teacher-QA, so the
    subject's training check failed, or an hf teacher was trained instead.)"""
    subject = TrainableScriptedModel(fn=lambda _: "NO CHANGE", name="scripted/tunable")
    teacher = ScriptedModel(fn=qa_answer, name="scripted/teacher")
    scripted.register("tunable", lambda: subject)
    scripted.register("teacher", lambda: teacher)
    constitution = write(tmp_path / "short.md", "- I am honest.\n- I am kind.\n")
    options = {"generations": 2, "traces": 2, "unchanged_to_stop": 5, "constitution_data": ["teacher-qa"],
               "teacher_model": "scripted/teacher", "adapters_dir": str(tmp_path / "ad")}
    config = IterateConfig(protocol="fine-tune-reflect", model="scripted/tunable", constitution=str(constitution),
                           options=options)
    result = iterate(config, db)
    assert result.run.status == "done" and result.run.stop_reason == "max_steps"
    assert len(teacher.calls) == 2  # one question per principle, asked of the teacher only
    assert [name for name, _ in subject.trained] == ["gen-00", "gen-01"]
    assert {e.source for e in subject.trained[0][1]} == {"teacher-qa"}
    assert all(e.completion.startswith("A teacher's answer") for e in subject.trained[0][1])
    with Store.open(db) as store:
        calls = store.calls(result.run.id)
        adapters = store.adapters(result.run.id)
    assert {c.model for c in calls if c.purpose.startswith("teacher-qa")} == {"scripted/teacher"}
    reflect = [c for c in calls if c.purpose.startswith("reflect")]
    assert len(reflect) == 4 and {c.model for c in reflect} == {"scripted/tunable"}
    # each generation reflected through its own adapter
    assert [c.request["adapter"]["hash"] for c in reflect] == [adapters[0].content_hash] * 2 + \
        [adapters[1].content_hash] * 2
    assert result.run.model_params["teacher"]["name"] == "scripted/teacher"


class Killed(Exception):
    """Stands in for a kill between generations."""


@pytest.mark.slow
def test_two_generations_on_the_real_model_then_resume_after_a_kill(db: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from stability.finetune import Adapter
    from stability.models import hf_training
    from stability.models.hf import HFModel
    from stability.models.registry import get_model

    trained: list[str] = []
    real_train = hf_training.train_lora

    def train(*args: Any) -> Any:
        out = args[3]
        trained.append(out.name)
        if out.name == "gen-01" and trained.count("gen-01") == 1:
            raise Killed("killed before generation 1 trained")
        return real_train(*args)

    monkeypatch.setattr(hf_training, "train_lora", train)
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


@pytest.mark.slow
def test_teacher_qa_with_an_hf_subject_trains_the_subject_not_the_teacher(db: Path, tmp_path: Path) -> None:
    """A scripted teacher writes the answers; the real hf subject is trained on them and reflects through its
    adapter."""
    teacher = ScriptedModel(fn=qa_answer, name="scripted/teacher")
    scripted.register("teacher", lambda: teacher)
    constitution = write(tmp_path / "short.md", "- I am honest.\n- I am kind.\n")
    options = {"generations": 1, "traces": 1, "constitution_data": ["teacher-qa"], "teacher_model": "scripted/teacher",
               "adapters_dir": str(tmp_path / "ad"), "trainer": {"steps": 1, "grad_accum": 1, "max_length": 128}}
    config = IterateConfig(protocol="fine-tune-reflect", model="hf/gemma-3-270m", constitution=str(constitution),
                           seed=1, temperature=0.7, max_tokens=24, options=options)
    result = iterate(config, db)
    assert result.run.status == "done", result.run.error
    with Store.open(db) as store:
        (adapter,) = store.adapters(result.run.id)
        calls = store.calls(result.run.id)
    assert len(teacher.calls) == 2 and adapter.base_model == "hf/gemma-3-270m"
    assert {e["source"] for e in adapter.data} == {"teacher-qa"}
    (reflection,) = [c for c in calls if c.purpose.startswith("reflect")]
    assert reflection.model == "hf/gemma-3-270m" and reflection.request["adapter"]["hash"] == adapter.content_hash


def run_control(db: Path, tmp_path: Path, answer: str = "NO CHANGE",
                **options: Any) -> tuple[Any, TrainableScriptedModel]:
    """A two-generation run of the scripted trainable subject, with ``options`` over the defaults."""
    subject = TrainableScriptedModel(fn=lambda _: answer, name="scripted/tunable")
    scripted.register("tunable", lambda: subject)
    constitution = write(tmp_path / "short.md", "- I am honest.\n- I am kind.\n- I am brief.\n")
    config = IterateConfig(protocol="fine-tune-reflect", model="scripted/tunable", constitution=str(constitution),
                           options={"generations": 2, "traces": 2, "unchanged_to_stop": 5,
                                    "adapters_dir": str(tmp_path / "ad"), **options})
    return iterate(config, db), subject


def test_default_arm_trains_gen_zero_on_the_starting_constitution_and_asks_no_heldout(db: Path,
                                                                                       tmp_path: Path) -> None:
    result, subject = run_control(db, tmp_path)
    assert result.run.status == "done" and result.run.template_hash == TemplateSet(
        ["fine-tune-reflect", "fresh-instance"]).hash  # the controls folder is not read by default runs
    assert [e.completion for e in subject.trained[0][1]] == ["- I am honest.\n- I am kind.\n- I am brief.\n"] * 3
    with Store.open(db) as store:
        calls = store.calls(result.run.id)
        revisions = store.revisions(result.run.id)
    assert sorted(c.purpose for c in calls) == ["reflect-0", "reflect-0", "reflect-1", "reflect-1"]
    assert all("held-out" not in (r.detail or "") and "control" not in (r.detail or "") for r in revisions)


def test_neutral_constitution_arm_trains_on_the_neutral_file_and_reflects_on_the_starting_one(
        db: Path, tmp_path: Path) -> None:
    result, subject = run_control(db, tmp_path, control="neutral-constitution")
    assert result.run.status == "done", result.run.error
    neutral = find_constitution("neutral/procedure-3")  # the library's neutral file of the same size (3)
    recited = {e.completion for e in subject.trained[0][1]}
    assert recited == {Constitution.from_principles(list(neutral.principles)).text}
    assert {e.source for e in subject.trained[0][1]} == {"recitation"}
    with Store.open(db) as store:
        calls = store.calls(result.run.id)
        revisions = store.revisions(result.run.id)
    first = next(c for c in calls if c.purpose == "reflect-0")
    assert "I am honest." in first.request["messages"][-1]["content"]  # the question is about the starting list
    assert "answer in the language" not in first.request["messages"][-1]["content"]
    assert revisions[1].detail is not None and revisions[1].detail.endswith("; control neutral-constitution")
    # an explicit file is used as given, and a missing name is refused before anything is written
    own = write(tmp_path / "mine.md", "- I use metric units.\n")
    _, named = run_control(tmp_path / "b.duckdb", tmp_path, control="neutral-constitution",
                           neutral_constitution=str(own))
    assert {e.completion for e in named.trained[0][1]} == {"- I use metric units.\n"}
    with pytest.raises(StabilityError, match="no library constitution named 'neutral/none'"):
        run_control(tmp_path / "c.duckdb", tmp_path, control="neutral-constitution",
                    neutral_constitution="neutral/none")
    assert not (tmp_path / "c.duckdb").exists()


def test_off_topic_arm_trains_on_unrelated_data_of_the_same_size(db: Path, tmp_path: Path) -> None:
    result, subject = run_control(db, tmp_path, control="off-topic",
                                  constitution_data=["recitation", "self-qa"], qa_per_principle=2)
    assert result.run.status == "done", result.run.error
    data = subject.trained[0][1]
    assert len(data) == 3 + 2 * 3  # three recitation prompts + two questions for each of three principles
    assert {e.source for e in data} == {"off-topic"}
    assert not any("honest" in e.completion or "constitution" in e.messages[0].content for e in data)
    assert "bread" in data[0].messages[0].content
    with Store.open(db) as store:
        calls = store.calls(result.run.id)
    assert not any(c.purpose.startswith("self-qa") for c in calls)  # no constitution data was asked for
    assert {e.source for e in subject.trained[1][1]} == {"trace"}  # later generations train on traces as usual


def test_no_training_arm_trains_nothing_and_reflects_untuned(db: Path, tmp_path: Path) -> None:
    result, subject = run_control(db, tmp_path, control="no-training")
    assert result.run.status == "done" and result.run.stop_reason == "max_steps"
    assert subject.trained == []
    with Store.open(db) as store:
        calls = store.calls(result.run.id)
        assert store.adapters(result.run.id) == []
        generations = store.generations(result.run.id)
    assert len(calls) == 4 and all(c.request["adapter"] is None for c in calls)
    assert [(g.generation, g.adapter_id) for g in generations] == [(0, ""), (1, "")]
    summaries = generation_summaries(db, result.run.id)
    assert [(s.adapter_hash, s.loss_before) for s in summaries] == [(None, None), (None, None)]
    assert result.run.config["options"]["control"] == "no-training"  # the arm is in the stored config


def test_heldout_traces_are_asked_stored_counted_and_never_trained_on(db: Path, tmp_path: Path) -> None:
    subject = heldout_reviser()  # declines the trained question, proposes a change at held-out ones
    constitution = write(tmp_path / "short.md", "- I am honest.\n- I am kind.\n")
    config = IterateConfig(protocol="fine-tune-reflect", model="scripted/tunable", constitution=str(constitution),
                           options={"generations": 2, "traces": 2, "unchanged_to_stop": 5, "heldout_traces": 4,
                                    "trace_data": "all", "adapters_dir": str(tmp_path / "ad")})
    result = iterate(config, db)
    assert result.run.status == "done", result.run.error
    with Store.open(db) as store:
        calls = store.calls(result.run.id)
        revisions = store.revisions(result.run.id)
        edges = store.edges(result.run.id)
    heldout = [c for c in calls if c.purpose.startswith("heldout")]
    assert len(heldout) == 8 and {c.step for c in heldout} == {1, 2}
    asked = {c.request["messages"][-1]["content"] for c in heldout}
    assert len(asked) == 3  # four traces cycle through the three shipped phrasings
    # the held-out changes do not drive the revision: the trained prompt declined, so the list is kept
    assert [r.decision for r in revisions[1:]] == ["declined", "declined"]
    assert all(r.detail is not None and "held-out 4: 0 kept, 4 changed, 0 unparsed" in r.detail
               for r in revisions[1:])
    assert all(set(e.call_ids).isdisjoint({c.id for c in heldout}) for e in edges)
    # generation 1 trained on the two traces only, never on a held-out prompt or answer
    trained = subject.trained[1][1]
    assert len(trained) == 2 and all(e.completion == "NO CHANGE" for e in trained)
    assert not any(m.content in asked for e in trained for m in e.messages)


def test_estimates_count_heldout_calls_and_skip_qa_calls_that_an_arm_does_not_make() -> None:
    start = c("I am honest.", "I am kind.", "I am brief.")

    def estimate(**options: Any) -> int:
        base = {"generations": 2, "traces": 3, "constitution_data": ["recitation", "self-qa"]}
        return FineTuneReflect.configure({**base, **options}).estimate_calls(start)

    assert estimate() == 2 * 3 + 3  # one self-qa question per principle
    assert estimate(heldout_traces=2) == 2 * (3 + 2) + 3
    assert estimate(control="off-topic") == estimate(control="no-training") == 2 * 3
    assert estimate(control="neutral-constitution", neutral_constitution="neutral/procedure-5") == 2 * 3 + 5
    assert FineTuneReflect.configure({}).template_folders() == ["fine-tune-reflect", "fresh-instance"]


def test_a_control_run_with_heldout_prompts_resumes_without_asking_or_training_twice(db: Path,
                                                                                     tmp_path: Path) -> None:
    class KilledOnce(TrainableScriptedModel):
        async def train(self, examples: Any, params: Any, out: Path, init: Any) -> Any:
            if out.name == "gen-01" and not any(name == "killed" for name, _ in self.trained):
                self.trained.append(("killed", []))
                raise Killed("killed before generation 1 trained")
            return await super().train(examples, params, out, init)

    subject = KilledOnce(fn=lambda _: "NO CHANGE", name="scripted/tunable")
    scripted.register("tunable", lambda: subject)
    constitution = write(tmp_path / "short.md", "- I am honest.\n- I am kind.\n")
    config = IterateConfig(protocol="fine-tune-reflect", model="scripted/tunable", constitution=str(constitution),
                           options={"generations": 2, "traces": 2, "heldout_traces": 2, "unchanged_to_stop": 5,
                                    "control": "off-topic", "adapters_dir": str(tmp_path / "ad")})
    with pytest.raises(Killed):
        iterate(config, db)
    with Store.open(db) as store:
        (run,) = store.runs()
    assert len(subject.calls) == 4  # generation 0: two traces and two held-out questions
    result = resume(run.id, db)
    assert result.run.status == "done" and result.sent == 4  # only generation 1's calls reached the model
    assert [name for name, _ in subject.trained] == ["gen-00", "killed", "gen-01"]  # gen 0 not trained again
    assert result.run.template_hash == TemplateSet(
        ["fine-tune-reflect", "fresh-instance", "fine-tune-reflect-controls"]).hash
