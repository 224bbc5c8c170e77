"""Findings on planted truths: scripted models whose right answers are known (questions 1-6 through `findings`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stability.analysis.between_starts import StartDistances
from stability.analysis.findings.assemble import assemble, findings
from stability.analysis.findings.common import LabelBlocks, VectorBlocks
from stability.analysis.findings.data import load_data
from stability.analysis.findings.record import Estimate, Finding, Findings, GroupEstimate
from stability.analysis.report.finding_figures import MAX_FIGURES, curves, question_figures, section, strength
from stability.engine import IterateConfig, iterate
from stability.errors import StabilityError
from stability.models import scripted
from stability.models.base import Message
from stability.models.scripted import ScriptedModel

LIBRARY = Path(__file__).resolve().parents[2] / "constitutions"
CANON = ["I am honest.", "I avoid causing harm.", "I am helpful to the person I am talking to."]
STARTS = [["I value speed.", "I am careful."], ["I love gardens.", "I water plants daily.", "I prune roses."],
          ["I answer in French.", "I never use numbers."]]
AGENTS = {"agents": [{"name": "ada"}, {"name": "ben"}], "rounds": 1}


def _principles(messages: list[Message]) -> list[str]:
    return [line[2:] for line in messages[-1].content.splitlines() if line.startswith("- ")]


def canon(messages: list[Message]) -> str:
    """Rewrites any constitution to ``CANON`` (and authors ``CANON`` from a blank slate)."""
    return "NO CHANGE" if _principles(messages) == CANON else "REVISED CONSTITUTION:\n" + "\n".join(
        f"- {p}" for p in CANON)


def _register() -> None:
    scripted.register("canon26", lambda: ScriptedModel(fn=canon, name="scripted/canon26"))


def _starts(folder: Path) -> list[str]:
    paths = []
    for i, principles in enumerate(STARTS):
        path = folder / f"start{i}.md"
        path.write_text("".join(f"- {p}\n" for p in principles), encoding="utf-8")
        paths.append(str(path))
    return paths


def _run(db: Path, model: str, starts: Sequence[str | None], protocols: list[tuple[str, dict[str, Any]]],
         replicates: int = 2) -> None:
    for protocol, options in protocols:
        for start in starts:
            for seed in range(replicates):
                config = {"model": model, "protocol": protocol, "constitution": start, "seed": seed,
                          "options": {"max_steps": 4, **options}}
                iterate(IterateConfig.model_validate(config), db)


def _one(result: Findings, question: str, measure: str) -> list[Finding]:
    found = [f for f in result.findings if f.question == question and f.measure == measure]
    assert found, f"no {question}/{measure} in {[(f.question, f.measure) for f in result.findings]}"
    return found


@pytest.fixture(scope="module")
def never_change(tmp_path_factory: pytest.TempPathFactory) -> Findings:
    """scripted/decline on every route, 3 starts x 2 replicates."""
    folder = tmp_path_factory.mktemp("never")
    db = folder / "never.duckdb"
    _run(db, "scripted/decline", list(_starts(folder)),
         [("fresh-instance", {}), ("in-context-iteration", {}), ("multi-agent-discussion", AGENTS)])
    return findings([], db, all_runs=True, embedder="hashing")


def test_a_model_that_never_changes_converges_on_every_route_and_routes_do_not_differ(never_change: Findings
                                                                                        ) -> None:
    rates = _one(never_change, "convergence-by-route", "fixed_point_rate")[0].groups
    assert rates is not None
    assert {g.group["route"] for g in rates} == {"fresh-instances", "in-context", "multi-agent"}
    assert all(g.estimate == 1.0 and g.n == 6 and g.clusters == 3 for g in rates)
    contrasts = _one(never_change, "convergence-by-route", "fixed_point_rate_difference")
    assert len(contrasts) == 3
    for c in contrasts:
        assert c.contrast is not None and c.contrast.estimate == 0.0 and c.contrast.method == "paired-t"
        assert c.contrast.p_adjusted is not None and c.contrast.p_adjusted >= c.contrast.p_value  # type: ignore


def test_a_model_that_never_changes_has_convergence_ratio_one(never_change: Findings) -> None:
    ratio = _one(never_change, "similar-vs-dissimilar-starts", "convergence_ratio")[0].groups
    assert ratio is not None and len(ratio) == 1
    assert ratio[0].estimate == pytest.approx(1.0) and ratio[0].clusters == 3
    share = _one(never_change, "similar-vs-dissimilar-starts", "one_attractor_share")[0].groups
    assert share is not None and share[0].estimate == 0.0  # the starts are far apart, and stay so


def test_questions_the_design_cannot_answer_say_why(never_change: Findings) -> None:
    reasons = {u.question: u.reason for u in never_change.unanswerable}
    assert "self-authored" in reasons["blank-slate"]
    assert "contradictory" in reasons["consistent-vs-contradictory"]


def test_a_model_mapping_every_start_to_one_constitution_puts_every_pair_in_one_attractor(tmp_path: Path) -> None:
    _register()
    db = tmp_path / "canon.duckdb"
    _run(db, "scripted/canon26", list(_starts(tmp_path)), [("fresh-instance", {})])
    result = findings([], db, all_runs=True, embedder="hashing")
    share = _one(result, "similar-vs-dissimilar-starts", "one_attractor_share")[0].groups
    assert share is not None and share[0].estimate == 1.0 and share[0].clusters == 3
    assert share[0].low == 1.0 and share[0].high == 1.0  # every deletion of a start leaves 1
    ratio = _one(result, "similar-vs-dissimilar-starts", "convergence_ratio")[0].groups
    assert ratio is not None and ratio[0].estimate == pytest.approx(0.0, abs=1e-6)


def test_one_start_cannot_answer_between_start_convergence(tmp_path: Path) -> None:
    db = tmp_path / "one.duckdb"
    _run(db, "scripted/decline", _starts(tmp_path)[:1], [("fresh-instance", {})])
    result = findings([], db, all_runs=True, embedder="hashing")
    reasons = {u.question: u.reason for u in result.unanswerable}
    assert reasons["similar-vs-dissimilar-starts"] == "one start: no between-start convergence"
    only = _one(result, "convergence-by-route", "fixed_point_rate")[0]
    assert only.note == "one route: no route contrast" and only.groups and only.groups[0].method == "wilson"


def test_self_authored_starts_that_end_where_provided_ones_do(tmp_path: Path) -> None:
    _register()
    db = tmp_path / "blank.duckdb"
    _run(db, "scripted/canon26", [None], [("fresh-instance", {"from_blank": True, "blank_size": 3})])
    _run(db, "scripted/canon26", _starts(tmp_path), [("fresh-instance", {})], replicates=1)
    result = findings([], db, all_runs=True, embedder="hashing")
    inside = _one(result, "blank-slate", "in_provided_attractor")[0].groups
    assert inside is not None and inside[0].estimate == 1.0 and inside[0].n == 2
    rates = {g.group["start"]: g.estimate for g in _one(result, "blank-slate", "fixed_point_rate")[0].groups or []}
    assert rates == {"self-authored": 1.0, "provided": 1.0}


def test_contradictory_runs_change_more_than_their_twins(tmp_path: Path) -> None:
    """A model that removes the flattering side of honesty-vs-comfort changes the contradictory file once and
    leaves its repaired twin alone: one more change per pair, and the clash it removes is resolved."""
    def remover(messages: list[Message]) -> str:
        current = _principles(messages)
        kept = [p for p in current if "want to hear" not in p]
        return "NO CHANGE" if kept == current else "REVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in kept)

    scripted.register("remover26", lambda: ScriptedModel(fn=remover, name="scripted/remover26"))
    db = tmp_path / "twins.duckdb"
    _run(db, "scripted/remover26", [str(LIBRARY / "contradictory/honesty-vs-comfort.md"),
                                    str(LIBRARY / "consistent/honesty-vs-comfort-repaired.md")],
         [("fresh-instance", {})])
    result = findings([], db, all_runs=True, embedder="hashing")
    changes = _one(result, "consistent-vs-contradictory", "changes_difference")[0].contrast
    assert changes is not None and changes.estimate == 1.0 and changes.n == 2
    resolved = _one(result, "consistent-vs-contradictory", "clash_resolved_share")[0].groups
    assert resolved is not None and 0 < (resolved[0].estimate or 0) < 1  # one of its two clashes is removed


def test_every_p_value_is_adjusted_as_one_family(never_change: Findings, tmp_path: Path) -> None:
    raw = [e.p_value for f in never_change.findings for e in ([f.contrast] if f.contrast else [])
           if e.p_value is not None]
    assert len(raw) == 3
    with pytest.raises(StabilityError, match="--adjust"):
        findings([], tmp_path / "none.duckdb", all_runs=True, embedder="hashing", adjust="bonferroni")


def test_assemble_reuses_measured_data(tmp_path: Path) -> None:
    db = tmp_path / "two.duckdb"
    _run(db, "scripted/decline", _starts(tmp_path)[:2], [("fresh-instance", {})], replicates=1)
    data = load_data([], db, all_runs=True, embedder="hashing")
    holm, bh = assemble(data, "holm"), assemble(data, "bh")
    assert (holm.adjust, bh.adjust) == ("holm", "bh")
    assert [f.measure for f in holm.findings] == [f.measure for f in bh.findings]


def test_the_findings_section_draws_a_figure_per_question_and_says_what_it_cannot_answer(never_change: Findings
                                                                                          ) -> None:
    text = section(never_change)
    per_question = {part.split('"', 1)[0]: part.count("<figure><svg") for part in text.split('<h3 id="finding-')[1:]}
    assert per_question == {"principle-survival": MAX_FIGURES,  # the estimates, then survival curves (capped)
                            "convergence-by-route": 1, "similar-vs-dissimilar-starts": 1,
                            "attractor-strength": 6}  # a scatter per property (2) and route (3)
    assert "share not yet removed" in text and "identity (no pull)" in text
    assert '<h3 id="finding-convergence-by-route">' in text and "route=in-context" in text
    assert "<b>blank-slate</b>" in text and "self-authored" in text


def test_attractor_strength_and_per_generation_findings_get_their_figures() -> None:
    """The figure code is driven by the records, so the questions another module answers get figures too."""
    e = Estimate(estimate=0.5, low=0.2, high=0.8, n=6, clusters=3, method="cluster-t")
    slope = Finding(question="attractor-strength", measure="slope", property="n_principles", slope=e,
                    strength=e, position=Estimate(estimate=3.0), groups=[
                        GroupEstimate(group={"start": s, "start_value": x}, estimate=3 + 0.5 * (x - 3))
                        for s, x in (("a", 2), ("b", 4), ("c", 6))])
    generations = Finding(question="fine-tune-generations", measure="decline_rate", groups=[
        GroupEstimate(group={"control": arm, "generation": g}, estimate=0.1 * g, low=0.0, high=0.2 * g + 0.1)
        for arm in ("none", "no-training") for g in range(4)])
    assert len(question_figures([slope])) == len(question_figures([generations])) == 1  # no interval chart
    text = section(Findings(findings=[slope, generations], unanswerable=[]))
    assert text.count("<figure><svg") == 2
    assert "5. Attractor strength" in text and "7. Fine-tune-reflect" in text
    assert "identity (no pull)" in strength(slope) and "generation" in curves(generations)


def test_block_sums_give_the_ratios_and_shares_of_the_pairwise_matrices() -> None:
    """The linear block sums (no runs x runs matrix) agree with StartDistances over the full matrices."""
    rng = np.random.default_rng(3)
    starts = [f"s{i % 5}" for i in range(23)]
    begin, end = (rng.normal(size=(23, 8)) for _ in range(2))
    begin, end = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (begin, end))
    labels = rng.integers(0, 3, size=23)
    by_start: dict[str, list[int]] = {}
    for i, s in enumerate(starts):
        by_start.setdefault(s, []).append(i)
    full = StartDistances(np.clip(1 - begin @ begin.T, 0, 2), np.clip(1 - end @ end.T, 0, 2), starts)
    blocks = VectorBlocks(begin, end, starts)
    same = StartDistances(np.ones((23, 23)), (labels[:, None] == labels[None, :]).astype(float), starts)
    for exact, linear in ((full, blocks), (same, LabelBlocks(labels, starts))):
        a, b = exact.jackknife(by_start), linear.jackknife(by_start)
        assert a.value is not None and b.value == pytest.approx(a.value, abs=1e-9)
        assert b.deleted == pytest.approx(a.deleted, abs=1e-9)


def test_self_authored_starts_that_keep_their_own_text_end_in_no_provided_attractor(tmp_path: Path) -> None:
    def keeper(messages: list[Message]) -> str:
        if "from nothing" in messages[-1].content:
            return "REVISED CONSTITUTION:\n- I keep my own counsel.\n- I write short notes about birds."
        return "NO CHANGE"

    scripted.register("keeper26", lambda: ScriptedModel(fn=keeper, name="scripted/keeper26"))
    db = tmp_path / "keeper.duckdb"
    _run(db, "scripted/keeper26", [None], [("fresh-instance", {"from_blank": True})])
    _run(db, "scripted/keeper26", _starts(tmp_path), [("fresh-instance", {})], replicates=1)
    result = findings([], db, all_runs=True, embedder="hashing")
    inside = _one(result, "blank-slate", "in_provided_attractor")[0].groups
    assert inside is not None and inside[0].estimate == 0.0 and inside[0].high is not None and inside[0].high < 1
    difference = _one(result, "blank-slate", "fixed_point_rate_difference")[0].contrast
    assert difference is not None and difference.estimate == 0.0 and difference.method == "welch-t"


def test_a_model_that_never_changes_has_strength_zero_and_survival_one_through_findings(never_change: Findings
                                                                                        ) -> None:
    sizes = [f for f in never_change.findings if f.property == "n_principles"]
    assert len(sizes) == 3  # one per route's protocol
    for f in sizes:
        assert f.slope is not None and f.slope.estimate == 1.0 and f.slope.clusters == 3
        assert f.strength is not None and f.strength.estimate == 0.0
        assert f.figure is not None and len(f.figure["points"]) == 6  # 3 starts x 2 replicates
    survival = [g for f in never_change.findings if f.question == "principle-survival" and
                f.measure.startswith("survival") for g in f.groups or []]
    assert survival and all(g.estimate == 1.0 for g in survival)
    reasons = {u.question: u.reason for u in never_change.unanswerable}
    assert reasons["principle-swap"].startswith("no rate-alternatives run")
    assert reasons["fine-tune-generations"] == "no fine-tune-reflect run: no generations"


def test_fewer_than_three_starts_cannot_answer_attractor_strength(tmp_path: Path) -> None:
    db = tmp_path / "two.duckdb"
    _run(db, "scripted/decline", _starts(tmp_path)[:2], [("fresh-instance", {})], replicates=1)
    reasons = {u.question: u.reason for u in findings([], db, all_runs=True, embedder="hashing").unanswerable}
    assert reasons["attractor-strength"].startswith("fewer than 3 starts per model and protocol")
