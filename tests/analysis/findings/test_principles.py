"""Question 1 on planted truths: survival by position, a model that never changes, known swap probabilities."""

from __future__ import annotations

import numpy as np

from stability.analysis.corpus import Corpus, RunChain, Visit
from stability.analysis.findings import principles
from stability.analysis.findings.record import Finding, Unanswerable
from stability.testing import planted_findings as planted


def _by(findings: list[Finding], measure: str) -> Finding:
    return next(f for f in findings if f.measure == measure)


def test_drop_last_survival_is_ordered_last_first() -> None:
    corpus = planted.iterate(planted.drop_last, planted.start_lists([3, 4, 5, 6]), replicates=2)
    findings = principles.of_corpus(corpus, planted.vectors(corpus))
    assert isinstance(findings, list)
    by_position = {g.group["position"]: g for g in _by(findings, "survival_by_position").groups or []}
    # the last principle is removed at step 1 in every run; the first never
    assert by_position["last"].estimate == 0.0
    assert by_position["first"].estimate == 1.0
    assert by_position["last"].estimate < by_position["middle"].estimate < by_position["first"].estimate
    curves = _by(findings, "survival_by_position").figure["curves"]  # type: ignore[index]
    assert curves["last"][0][:2] == [1, 0.0]  # every last principle gone after step 1
    ratio = next(f for f in findings if f.measure == "hazard_ratio" and f.contrast_of
                 and f.contrast_of[0].get("position") == "last")
    assert ratio.contrast_of is not None and ratio.contrast_of[1] == {"model": "m", "protocol": "fresh-instance",
                                                                     "position": "first"}
    assert ratio.contrast is not None and ratio.contrast.estimate is None  # the first is never removed
    assert ratio.contrast.note and "no removal" in ratio.contrast.note


def test_never_changing_model_survives_everywhere() -> None:
    corpus = planted.iterate(planted.never, planted.start_lists([2, 3, 4]), replicates=3)
    findings = principles.of_corpus(corpus, planted.vectors(corpus))
    assert isinstance(findings, list)
    for measure in ("survival", "survival_by_position", "survival_by_clash", "survival_by_condition"):
        for group in _by(findings, measure).groups or []:
            assert group.estimate == 1.0
            assert group.high == 1.0 and group.low is not None and group.low < 1.0
    reworded = _by(findings, "reworded_rather_than_removed")
    assert all(g.estimate is None and g.note == "never changed" for g in reworded.groups or [])


def test_clash_sides_are_removed_sooner() -> None:
    """Starts with a planted clash (principles 1 and 2): the model removes principle 2 at step 1."""
    starts = planted.start_lists([4, 4, 4, 4])
    corpus = planted.iterate(lambda ps: tuple(p for p in ps if "principle 1:" not in p), starts, replicates=2)
    corpus.metadata = {planted.node(s): {"condition": "contradictory", "clashes": [{"a": 1, "b": 2}],
                                         "style": "first-person" if n % 2 else "third-person", "main": True}
                       for n, s in enumerate(starts)}
    findings = principles.of_corpus(corpus, planted.vectors(corpus))
    assert isinstance(findings, list)
    by_clash = {g.group["clash"]: g for g in _by(findings, "survival_by_clash").groups or []}
    assert by_clash["clash side"].estimate == 0.5 and by_clash["other"].estimate == 1.0
    assert {g.group["condition"] for g in _by(findings, "survival_by_condition").groups or []} == {"contradictory"}
    styles = {g.group["style"]: g.estimate for g in _by(findings, "survival_by_style").groups or []}
    assert styles == {"first-person": 0.75, "third-person": 0.75}  # one of four principles removed in each
    assert not [f for f in findings if f.measure == "survival_by_main"]  # every start is main: no curve by it


def test_rewording_is_followed_not_removed() -> None:
    start = ("I am honest.", "I am kind.")
    after = ("I am honest with everyone.", "I am kind.")
    vec = {"I am honest.": np.array([1.0, 0.0, 0.0], np.float32),
           "I am honest with everyone.": np.array([0.9, np.sqrt(0.19), 0.0], np.float32),
           "I am kind.": np.array([0.0, 0.0, 1.0], np.float32)}
    runs = [RunChain(run_id=f"r{i}", visits=[Visit(0, planted.node(start), "origin"),
                                             Visit(1, planted.node(after), "changed"),
                                             Visit(2, planted.node(after), "declined")]) for i in range(3)]
    corpus = Corpus(runs=runs, principles={planted.node(start): start, planted.node(after): after})
    findings = principles.of_corpus(corpus, vec)
    assert isinstance(findings, list)
    reworded = {g.group["principle"]: g for g in _by(findings, "reworded_rather_than_removed").groups or []}
    assert reworded["I am honest."].estimate == 1.0
    assert reworded["I am kind."].estimate is None


def test_swap_rates_recovered_within_their_intervals() -> None:
    rng = np.random.default_rng(3)
    truth = {1: 0.1, 2: 0.5, 3: 0.8}
    now, principles_a = planted.rating_runs(truth, seeds=8, trials=10, reflect="none", rng=rng)
    later, principles_b = planted.rating_runs(truth, seeds=8, trials=10, reflect="first", rng=rng, shift=0.15)
    corpus = Corpus(runs=now + later, principles={**principles_a, **principles_b})
    findings = principles.of_corpus(corpus, {})
    assert isinstance(findings, list)
    rates = _by(findings, "swap_rate")
    texts = ("I am honest.", "I am kind.", "I am brief.")
    for group in rates.groups or []:
        p = truth[texts.index(group.group["principle"]) + 1] + (0.15 if group.group["reflect"] == "first" else 0)
        assert group.low is not None and group.high is not None
        assert group.low <= p <= group.high, group
        assert group.method == "wilson-t" and group.clusters == 8 and group.n == 80
    contrast = _by(findings, "swap_rate_difference")
    assert contrast.contrast_of == ({"model": "m", "source": "provided", "reflect": "first"},
                                    {"model": "m", "source": "provided", "reflect": "none"})
    c = contrast.contrast
    assert c is not None and c.low is not None and c.high is not None and c.p_value is not None
    assert c.low <= 0.15 <= c.high and c.low > 0  # paired over 24 (principle, seed) pairs: the shift is seen
    assert c.method == "paired-t" and c.clusters == 24


def test_nothing_to_answer() -> None:
    corpus = Corpus(runs=[RunChain(run_id="r", visits=[Visit(0, "a", "origin")])], principles={"a": ("x",)})
    result = principles.of_corpus(corpus, {})
    assert isinstance(result, Unanswerable) and result.question == "principle-swap"


def test_each_half_says_when_it_cannot_answer() -> None:
    corpus = planted.iterate(planted.never, planted.start_lists([2, 3]), replicates=1)
    swap = principles.swap_answer(corpus)
    assert isinstance(swap, Unanswerable) and swap.question == "principle-swap"
    survival = principles.survival_answer(corpus, planted.vectors(corpus))
    assert isinstance(survival, list) and {f.question for f in survival} == {"principle-survival"}
