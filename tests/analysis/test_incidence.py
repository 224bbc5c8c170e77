"""Competing risks: Aalen–Johansen cumulative incidence against planted truth, through the API and measure()."""

from __future__ import annotations

import numpy as np
import pytest

from stability.analysis.convergence import Params
from stability.analysis.incidence import (
    CENSORED,
    CYCLE,
    FIXED,
    JACKKNIFE,
    cause_at,
    contrast_of,
    incidence_at,
    incidence_of,
)
from stability.analysis.measure import EmbeddingUse, Vectors, measure
from stability.analysis.stats import kaplan_meier
from stability.testing.planted_incidence import planted_runs, start_hazards, true_incidence
from tests.analysis.handmade import chain, corpus, unit


def _one_minus_km(times: np.ndarray, causes: np.ndarray, step: int) -> float:
    """1 − Kaplan–Meier of the fixed-point time with cycles censored (what the old curve read)."""
    surviving = 1.0
    for t, s, _ in kaplan_meier(times, causes == FIXED):
        if t <= step:
            surviving = s
    return 1.0 - surviving


def test_aalen_johansen_recovers_planted_incidence_where_km_with_cycles_censored_does_not() -> None:
    rng = np.random.default_rng(7)
    times, causes, starts = planted_runs(rng, 6, 400, fixed=0.08, cycle=0.04, cap=20)
    truth = true_incidence(0.08, 0.04, 10)  # 2/3 · (1 − 0.88^10) = 0.481
    assert truth == pytest.approx(0.481, abs=1e-3)
    assert incidence_at(times, causes, FIXED, 10) == pytest.approx(truth, abs=0.03)
    assert incidence_at(times, causes, CYCLE, 10) == pytest.approx(true_incidence(0.08, 0.04, 10, cause=CYCLE),
                                                                  abs=0.03)
    km = _one_minus_km(times, causes, 10)  # estimates 1 − 0.92^10 = 0.566: P(fixed point) were there no cycles
    assert km == pytest.approx(0.566, abs=0.03) and km - truth > 0.06
    result = incidence_of(times, causes, starts)
    assert result.horizon == 20 and result.events["censored"] == int((causes == CENSORED).sum())
    assert result.fixed_point.method == JACKKNIFE and result.fixed_point.low is not None
    assert result.fixed_point.low <= true_incidence(0.08, 0.04, 20) <= (result.fixed_point.high or 0)


def test_censoring_before_the_step_is_handled() -> None:
    # half the runs have a step cap of 6: a share of runs ended by step 10 would be biased; Aalen–Johansen is not
    rng = np.random.default_rng(11)
    short = planted_runs(rng, 1, 4000, 0.08, 0.04, cap=6)
    long = planted_runs(rng, 1, 4000, 0.08, 0.04, cap=20)
    times, causes = np.concatenate([short[0], long[0]]), np.concatenate([short[1], long[1]])
    assert incidence_at(times, causes, FIXED, 10) == pytest.approx(true_incidence(0.08, 0.04, 10), abs=0.02)
    naive = float(((causes == FIXED) & (times <= 10)).mean())
    assert naive < true_incidence(0.08, 0.04, 10) - 0.04


def test_the_interval_holds_its_level_at_three_starts_with_heterogeneity() -> None:
    rng = np.random.default_rng(5)
    truth = true_incidence(0.08, 0.04, 10, spread=1.2)
    covered = []
    for _ in range(150):
        times, causes, starts = planted_runs(rng, 3, 5, 0.08, 0.04, 20, spread=1.2)
        point = cause_at(times, causes, starts, FIXED, 10)
        covered.append((point.low or 0) <= truth <= (point.high or 1))
    assert 0.9 <= float(np.mean(covered)) <= 1.0  # bench/incidence_coverage.py measures it at every design


def test_paired_contrast_finds_a_planted_difference() -> None:
    rng = np.random.default_rng(2)
    hazards = start_hazards(rng, 5, 0.3, 0.02, 0.0)
    a = planted_runs(rng, 5, 10, 0.3, 0.02, 20, hazards=hazards)
    b = planted_runs(rng, 5, 10, 0.02, 0.02, 20, hazards=(np.full(5, 0.02), np.full(5, 0.02)))
    found = contrast_of(a, b)
    assert found.paired and found.clusters == 5 and found.step == 20
    assert (found.fixed_point.estimate or 0) > 0.3 and (found.p_fixed_point or 1) < 0.01
    other = (b[0], b[1], [f"x{s}" for s in b[2]])
    assert not contrast_of(a, other).paired  # different starts: unpaired


def test_group_incidence_through_measure() -> None:
    vectors = {n: unit(*v) for n, v in {"A": (1, 0, 0), "B": (0, 1, 0), "C": (0, 0, 1), "D": (1, 1, 0)}.items()}
    runs = [chain("fixed", ["A", "B", "B", "B"], ["origin", "changed", "declined", "declined"], stop="declined"),
            chain("cycle", ["A", "B", "A"], stop="cycle"),
            chain("failed", ["A", "B", "B"], ["origin", "changed", "parse_failure"], stop="parse_failures"),
            chain("capped", ["A", "B", "C", "D"], stop="max_steps")]
    result = measure(corpus(runs), Vectors(nodes=vectors, principles=vectors), Params(bootstrap=50),
                     EmbeddingUse(model="handmade", texts=0, computed=0))
    [group] = result.groups
    incidence = group.incidence
    assert incidence is not None
    assert incidence.events == {"fixed_point": 1, "cycle": 1, "no_verdict": 1, "censored": 1}
    # step 1: 4 at risk, one fixed point; step 2: 3 at risk, one cycle and one failure; step 3: censored
    assert [(p.step, p.fixed_point, p.cycle, p.no_verdict, p.at_risk) for p in incidence.curve] == [
        (1, 0.25, 0.0, 0.0, 4), (2, 0.25, 0.25, 0.25, 3)]
    assert incidence.horizon == 3 and incidence.fixed_point.estimate == 0.25 and incidence.median_fixed_point is None
    assert incidence.no_verdict.estimate == 0.25 and incidence.cycle.estimate == 0.25
    assert incidence.clusters == 1 and (incidence.warning or "").startswith("one start")
    # the old curve censors the cycle and the failure: 1 − KM reads 0.25 too here, but keeps them out of n
    assert group.steps_to_fixed_point.censored == 2


def test_the_vectorised_jackknife_equals_leaving_each_start_out() -> None:
    from stability.analysis.incidence import _groups, _leave_out

    rng = np.random.default_rng(0)
    times, causes, starts = planted_runs(rng, 7, 9, 0.08, 0.04, 12, spread=1.2)
    times[:5], causes[:5] = np.minimum(times[:5], 3), CENSORED  # some censoring before the step
    clusters = _groups(starts)
    for step in (0, 2, 5, 10, 30):
        for cause in (FIXED, CYCLE):
            keep = np.ones(len(times), dtype=bool)
            slow = []
            for members in clusters:
                keep[members] = False
                slow.append(incidence_at(times[keep], causes[keep], cause, step))
                keep[members] = True
            assert np.allclose(_leave_out(times, causes, clusters, cause, step), slow)


def test_cause_specific_hazard_ratio_recovers_a_planted_ratio() -> None:
    rng = np.random.default_rng(8)
    hazards_a = (np.full(6, 0.15), np.full(6, 0.05))
    hazards_b = (np.full(6, 0.05), np.full(6, 0.05))
    a = planted_runs(rng, 6, 60, 0.15, 0.05, 20, hazards=hazards_a)
    b = planted_runs(rng, 6, 60, 0.05, 0.05, 20, hazards=hazards_b)
    found = contrast_of(a, b)
    fixed, cycle = found.hazard_ratio_fixed_point, found.hazard_ratio_cycle
    assert fixed is not None and cycle is not None and found.paired
    assert fixed.estimate == pytest.approx(3.0, rel=0.15) and (fixed.low or 0) > 1.5 and (fixed.p_value or 1) < 0.01
    assert cycle.estimate == pytest.approx(1.0, rel=0.25) and (cycle.low or 2) < 1 < (cycle.high or 0)
    # F_cycle differs although the cycle hazards are equal: fixed points in a leave fewer runs to cycle
    assert (found.cycle.estimate or 0) < 0
