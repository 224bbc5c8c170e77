"""``analyze --judge``: stored judgements decide the measures of meaning; judge-vs-rule and judge-vs-judge κ."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stability.analysis import analyze
from stability.analysis.judged import cohen_kappa
from stability.cli.app import app
from stability.errors import StabilityError
from stability.judge.judging import judge
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.testing.judges import rule_judge
from tests.analysis import experiment


def _register(name: str, fn: object) -> None:
    model = ScriptedModel(fn=fn, name=f"scripted/{name}")  # type: ignore[arg-type]
    scripted.register(name, lambda: model)


def _stubborn(messages: object) -> str:
    """Every clash unresolved, every rewording a change of meaning, every constitution contradictory."""
    prompt = messages[-1].content  # type: ignore[index]
    if "REPLACEMENT:" in prompt:
        return "VERDICT: different\nRATIONALE: no."
    if "<answer>" in prompt:
        return "VERDICT: meta\nRATIONALE: no."
    if "clashed" in prompt:
        return "VERDICT: unresolved\nHOW: none\nRATIONALE: no."
    return "VERDICT: contradiction\nPRINCIPLES: 1, 2\nRATIONALE: no."


@pytest.fixture
def judged(tmp_path: Path, db: Path) -> list[str]:
    ids = experiment.build(db, tmp_path)
    _register("a-judge", rule_judge)
    _register("stubborn", _stubborn)
    judge(ids, "scripted/a-judge", db=db, embedder="hashing")
    judge(ids, "scripted/stubborn", db=db, embedder="hashing")
    return ids


def test_cohen_kappa_known_values() -> None:
    assert cohen_kappa(["y", "y", "n", "n"], ["y", "y", "n", "n"]) == (1.0, 1.0)
    # the textbook 2x2: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> po 0.7, pe 0.5, kappa 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == (0.7, pytest.approx(0.4))
    assert cohen_kappa(["y", "y"], ["y", "y"]) == (1.0, None)  # chance agreement is 1: undefined
    assert cohen_kappa([], []) == (None, None)


def test_the_judge_decides_clash_resolution_and_says_so(judged: list[str], db: Path) -> None:
    rule = analyze(judged, db, embedder="hashing")
    agreeing = analyze(judged, db, embedder="hashing", judge="scripted/a-judge")
    stubborn = analyze(judged, db, embedder="hashing", judge="scripted/stubborn")
    assert rule.judge is None and all(o.source == "rule" for o in rule.consistency.clashes)
    by_judge = [o for o in agreeing.consistency.clashes if o.source == "judge:scripted/a-judge"]
    # every clash of a run that left its start: brevity-vs-thoroughness (1) and honesty-vs-comfort (2)
    assert len(by_judge) == 3
    assert [(o.resolved, o.rule_resolved, o.how) for o in by_judge if o.resolved] == \
        [(True, True, "removed")] * 2
    [kappa] = [a for a in agreeing.judge.agreement if a.a == "rule"] if agreeing.judge else []
    assert (kappa.n, kappa.observed, kappa.kappa) == (3, 1.0, 1.0)
    # the stubborn judge resolves nothing: the group's clash resolution follows it, not the rule
    [rule_group], [stubborn_group] = rule.groups, stubborn.groups
    assert (rule_group.clash_resolution.mean or 0) > 0 and stubborn_group.clash_resolution.mean == 0.0
    assert stubborn.consistency.resolved_fraction.mean == 0.0
    assert stubborn.judge is not None
    [vs_rule] = [a for a in stubborn.judge.agreement if a.a == "rule"]
    assert (vs_rule.n, vs_rule.observed) == (3, pytest.approx(1 / 3))
    # judge against judge, per question, over subjects both judged
    clash = next(a for a in stubborn.judge.agreement if a.b == "scripted/a-judge" and a.question == "clash")
    assert (clash.n, clash.observed) == (3, pytest.approx(1 / 3))
    sources = {s.measure: s for s in stubborn.judge.sources}
    assert sources["clash resolution"].judged == 3 and sources["clash resolution"].total == \
        len(stubborn.consistency.clashes)
    assert sources["fixed points, cycles, drift, attractors, convergence ratio, kept/moved/added/removed"].source \
        == "rule"


def test_the_judge_splits_reworded_and_counts_contradictions_and_refusals(judged: list[str], db: Path) -> None:
    stubborn = analyze(judged, db, embedder="hashing", judge="scripted/stubborn")
    assert stubborn.judge is not None
    steps = [s for r in stubborn.runs for s in r.steps if s.changes]
    reworded = sum(s.changes["reworded"] for s in steps if s.changes)
    assert reworded > 0
    changed = sum(s.changes["reworded_changed"] for s in steps if s.changes)
    assert changed == reworded == stubborn.judge.reworded["reworded_different"]  # every rewording: "different"
    assert all(s.changes["reworded_same"] == s.changes["reworded_unjudged"] == 0 for s in steps if s.changes)
    assert stubborn.judge.contradiction_at_final.mean == 1.0 and stubborn.judge.contradiction_at_final.n == 2
    assert set(stubborn.judge.refusals) == {"meta"}
    agreeing = analyze(judged, db, embedder="hashing", judge="scripted/a-judge")
    assert agreeing.judge is not None and agreeing.judge.contradiction_at_final.mean == 0.0
    assert set(agreeing.judge.refusals) == {"answer"}
    # per group: the canon model's two runs end on one node the judge calls contradictory; the resolver's
    # consistent runs never left their starts
    grouped = analyze(judged, db, embedder="hashing", judge="scripted/stubborn", by=["model"])
    assert grouped.judge is not None
    groups = {g.key["model"]: g for g in grouped.judge.groups}
    assert [g.label for g in grouped.judge.groups] == [g.label for g in grouped.groups]
    assert (groups["scripted/canon"].contradiction_at_final.mean, groups["scripted/canon"].contradiction_at_final.n) \
        == (1.0, 2)
    assert groups["scripted/resolver"].contradiction_at_final.n == 0
    assert sum(g.reworded.get("reworded_different", 0) for g in grouped.judge.groups) == \
        grouped.judge.reworded["reworded_different"]


def test_a_judge_with_nothing_stored_is_one_line_and_the_cli_and_report_show_the_sources(
        judged: list[str], db: Path, tmp_path: Path) -> None:
    with pytest.raises(StabilityError, match="no judgements of it are stored"):
        analyze(judged, db, embedder="hashing", judge="scripted/never-asked")
    shown = CliRunner().invoke(app, ["analyze", *judged, "--db", str(db), "--embedder", "hashing", "--judge",
                                     "scripted/stubborn"])
    assert shown.exit_code == 0, shown.output
    assert "which measure came from where" in shown.output and "judge:scripted/stubborn" in shown.output
    assert "Cohen's κ" in shown.output
    report = tmp_path / "report.html"
    done = CliRunner().invoke(app, ["report", *judged, "--db", str(db), "--embedder", "hashing", "--judge",
                                    "scripted/a-judge", "--output", str(report)])
    assert done.exit_code == 0, done.output
    html = report.read_text(encoding="utf-8")
    assert "Judge <code>scripted/a-judge</code>" in html and "judge where judged, else rule" in html
