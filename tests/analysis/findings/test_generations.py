"""Question 7 on planted truths: a fine-tune double whose decline probability rises by a known step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stability.analysis.findings import generations
from stability.analysis.findings.record import Finding, Unanswerable
from stability.engine import IterateConfig, iterate
from stability.store import Store
from stability.testing import planted_findings as planted
from stability.testing.fine_tune import heldout_reviser
from tests.conftest import write

RISE = 0.08  # decline probability gained per generation by the treatment


def _find(findings: list[Finding], measure: str, group: dict[str, object]) -> Finding:
    key = {"model": "", **group}  # the planted lineages have no model name
    return next(f for f in findings if f.measure == measure and f.groups and f.groups[0].group == key)


def test_trend_recovers_the_planted_rise() -> None:
    rng = np.random.default_rng(1)  # any seed: the interval covered 93-95% of 300 draws at 3-8 lineages
    rows = planted.lineages(rng, "none", 0.2, RISE) + planted.lineages(rng, "no-training", 0.2, 0.0)
    findings = generations.of_rows(rows)
    assert isinstance(findings, list)
    slope = _find(findings, "decline_rate_trend", {"arm": "none"}).groups[0]  # type: ignore[index]
    assert slope.method == "jackknife-t" and slope.clusters == 8 and slope.n == 48
    assert slope.low is not None and slope.high is not None and slope.low <= RISE <= slope.high
    assert slope.low > 0 and slope.p_value is not None and slope.p_value < 0.01
    flat = _find(findings, "decline_rate_trend", {"arm": "no-training"}).groups[0]  # type: ignore[index]
    assert flat.low is not None and flat.high is not None and flat.low <= 0.0 <= flat.high
    held = _find(findings, "heldout_decline_rate_trend", {"arm": "none"}).groups[0]  # type: ignore[index]
    assert held.low is not None and held.high is not None and held.low <= RISE <= held.high
    difference = next(f for f in findings if f.measure == "decline_rate_trend_difference")
    c = difference.contrast
    assert c is not None and c.low is not None and c.high is not None
    assert c.low <= RISE <= c.high and c.method == "paired jackknife-t" and c.clusters == 8


def test_per_generation_rates_and_control_contrasts() -> None:
    rng = np.random.default_rng(11)
    rows = planted.lineages(rng, "none", 0.2, RISE) + planted.lineages(rng, "off-topic", 0.2, 0.0)
    findings = generations.of_rows(rows)
    assert isinstance(findings, list)
    rates = next(f for f in findings if f.measure == "decline_rate")
    by = {(g.group["arm"], g.group["generation"]): g for g in rates.groups or []}
    assert len(by) == 12 and by[("none", 0)].method == "wilson-t"
    last = by[("none", 5)]
    assert last.low is not None and last.high is not None and last.low <= 0.2 + 5 * RISE <= last.high
    contrasts = [f for f in findings if f.measure == "decline_rate_difference"]
    assert [f.contrast_of[0]["generation"] for f in contrasts] == list(range(6))  # type: ignore[index]
    final = contrasts[-1].contrast
    assert final is not None and final.method == "paired-t" and final.low is not None and final.low > 0
    assert rates.figure is not None and set(rates.figure["series"]) == {"none", "off-topic"}
    distance = next(f for f in findings if f.measure == "origin_distance")
    assert all(g.method == "t" for g in distance.groups or [])


def test_few_lineages_and_nothing_to_answer() -> None:
    rows = planted.lineages(np.random.default_rng(2), "none", 0.3, RISE, lineages=2)
    findings = generations.of_rows(rows)
    assert isinstance(findings, list)
    slope = _find(findings, "decline_rate_trend", {"arm": "none"}).groups[0]  # type: ignore[index]
    assert slope.estimate is not None and slope.low is None and "below 3" in (slope.note or "")
    assert isinstance(generations.of_rows([]), Unanswerable)
    assert isinstance(generations.of_rows([r for r in rows if r.generation == 0]), Unanswerable)


def test_rows_read_back_from_a_scripted_fine_tune_run(tmp_path: Path) -> None:
    """Two arms of a scripted trainable subject: it declines the trained question and revises at held-out ones."""
    heldout_reviser()  # declines the trained question, proposes a change at held-out ones
    constitution = write(tmp_path / "short.md", "- I am honest.\n- I am kind.\n")
    db = tmp_path / "ftr.duckdb"
    ids = []
    for control in ("none", "no-training"):
        config = IterateConfig(protocol="fine-tune-reflect", model="scripted/tunable", constitution=str(constitution),
                               options={"generations": 2, "traces": 3, "unchanged_to_stop": 5, "heldout_traces": 2,
                                        "control": control, "adapters_dir": str(tmp_path / "ad")})
        result = iterate(config, db)
        assert result.run.status == "done", result.run.error
        ids.append(result.run.id)
    with Store.open(db, read_only=True) as store:
        hashes = {h for i in ids for g in store.generations(i) for h in (g.previous_hash, g.constitution_hash)}
    vectors = {h: np.array([1.0, 0.0], np.float32) for h in hashes}
    rows = generations.generation_rows(db, ids, distance=generations.cosine_distance(vectors))
    assert [(r.arm, r.generation) for r in rows] == [("none", 0), ("none", 1), ("no-training", 0),
                                                     ("no-training", 1)]
    assert len({r.pair for r in rows}) == 1  # same start, same seed: the arms pair
    assert all((r.parsed, r.changed, r.heldout_parsed, r.heldout_changed) == (3, 0, 2, 2) for r in rows)
    assert all(r.step_distance == 0.0 and r.origin_distance == 0.0 for r in rows)
    findings = generations.of_rows(rows)
    assert isinstance(findings, list)
    held = next(f for f in findings if f.measure == "heldout_decline_rate")
    assert all(g.estimate == 0.0 for g in held.groups or [])
    declines = next(f for f in findings if f.measure == "decline_rate")
    assert all(g.estimate == 1.0 for g in declines.groups or [])
