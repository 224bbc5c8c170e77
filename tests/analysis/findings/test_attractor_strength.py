"""Question 5 on planted truths: a model that drops to one principle, a model that never changes, a registry."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from stability.analysis.findings import attractor_strength
from stability.analysis.findings.record import Finding, Unanswerable
from stability.analysis.judged import StoredJudgements
from stability.analysis.judged_subjects import subject_key
from stability.records import JudgementRecord
from stability.testing import planted_findings as planted


def _property(findings: list[Finding] | Unanswerable, name: str) -> Finding:
    assert isinstance(findings, list)
    return next(f for f in findings if f.property == name)


def test_drop_last_forgets_the_size() -> None:
    corpus = planted.iterate(planted.drop_last, planted.start_lists([2, 3, 5, 7]), replicates=2)
    found = _property(attractor_strength.of_corpus(corpus), "n_principles")
    assert found.slope is not None and found.strength is not None and found.position is not None
    assert found.slope.estimate == pytest.approx(0.0, abs=1e-9)
    assert found.strength.estimate == pytest.approx(1.0)
    assert found.position.estimate == pytest.approx(1.0)  # every start ends at one principle
    assert found.strength.method == "jackknife-t" and found.strength.clusters == 4 and found.strength.n == 8
    assert found.figure is not None and len(found.figure["points"]) == 8
    assert found.groups and found.groups[0].group == {"model": "m", "protocol": "fresh-instance"}


def test_never_changing_model_has_strength_zero() -> None:
    corpus = planted.iterate(planted.never, planted.start_lists([2, 3, 5, 7]), replicates=2)
    found = _property(attractor_strength.of_corpus(corpus), "n_principles")
    assert found.slope is not None and found.slope.estimate == pytest.approx(1.0)
    assert found.strength is not None and found.strength.estimate == pytest.approx(0.0)
    assert found.position is not None and found.position.estimate is None and found.position.note


def test_noisy_pull_is_recovered_within_its_interval() -> None:
    """Each start's final size is 4 + 0.5 (start − 4) + noise: slope 0.5, strength 0.5, position 4."""
    rng = np.random.default_rng(1)
    sizes = [int(s) for s in rng.integers(1, 12, size=12)]
    starts = planted.start_lists(sizes)

    def pull(principles: tuple[str, ...]) -> tuple[str, ...]:
        target = max(1, round(4 + 0.5 * (len(principles) - 4) + rng.normal(0, 0.4)))
        extra = tuple(f"Added {len(principles)}-{i}: I value more." for i in range(max(0, target - len(principles))))
        return principles[:target] + extra if target != len(principles) else principles

    corpus = planted.iterate(lambda ps: ps, starts, replicates=2)
    # one revision per run: the pulled list, then two declines
    for run in corpus.runs:
        revised = pull(corpus.principles[run.start])
        corpus.principles[planted.node(revised)] = revised
        run.visits = [run.visits[0], run.visits[0]._replace(step=1, node=planted.node(revised), decision="changed")]
    found = _property(attractor_strength.of_corpus(corpus), "n_principles")
    assert found.strength is not None and found.position is not None
    assert found.strength.low is not None and found.strength.high is not None
    assert found.strength.low <= 0.5 <= found.strength.high
    assert found.position.low is not None and found.position.high is not None
    assert found.position.low <= 4.0 <= found.position.high


def test_two_starts_no_interval_and_one_start_unanswerable() -> None:
    two = planted.iterate(planted.drop_last, planted.start_lists([3, 5]), replicates=2)
    found = _property(attractor_strength.of_corpus(two), "n_principles")
    assert found.strength is not None and found.strength.low is None and "no interval" in (found.strength.note or "")
    one = planted.iterate(planted.drop_last, planted.start_lists([3]), replicates=3)
    assert isinstance(attractor_strength.of_corpus(one), Unanswerable)


def test_registered_property_and_references() -> None:
    corpus = planted.iterate(planted.drop_last, planted.start_lists([2, 3, 5, 7]), replicates=1)
    attractor_strength.register_property("characters", lambda text: float(len(text)))
    try:
        vectors = {n: np.array([1.0, 0.0], np.float32) for n in corpus.principles}
        found = attractor_strength.of_corpus(corpus, vectors, {"ref": np.array([0.0, 1.0], np.float32)})
        assert _property(found, "characters").slope is not None
        reference = _property(found, "distance:ref")  # every node at distance 1: the starting values do not vary
        assert reference.slope is not None and reference.slope.estimate is None
    finally:
        attractor_strength.unregister_property("characters")
    with pytest.raises(ValueError):
        attractor_strength.register_property("n_principles", len)  # type: ignore[arg-type]


def test_judge_score_is_a_property_where_both_ends_are_judged() -> None:
    """A stored judge finds a contradiction in every start with an odd number of principles and in no final."""
    corpus = planted.iterate(planted.drop_last, planted.start_lists([2, 3, 4, 5, 6, 7]), replicates=1)
    judged: dict[tuple[str, str], JudgementRecord] = {}
    for run in corpus.runs:
        for node in (run.start, run.final):
            verdict = "contradiction" if node == run.start and len(corpus.principles[node]) % 2 else "consistent"
            judged[("contradiction", subject_key("contradiction", (node,)))] = JudgementRecord(
                id=node, judge_key="k", judge_model="judge/m", template_hash="t", question="contradiction",
                subject_key=subject_key("contradiction", (node,)), subjects=[node], verdict=verdict, call_id="c",
                created_at=datetime.now(UTC))
    found = _property(attractor_strength.of_corpus(corpus, judgements=StoredJudgements(
        judge="judge/m", by_judge={"judge/m": judged})), "judge:contradiction")
    assert found.slope is not None and found.slope.estimate == 0.0  # every final is judged free of contradiction
    assert found.position is not None and found.position.estimate == 0.0
    assert found.strength is not None and found.strength.n == 6
