"""Contrasts on planted truth: paired within start, undefined medians said aloud, the multiplicity of many groups."""

from __future__ import annotations

import numpy as np

from stability.analysis.contrasts import Contrast, ContrastEstimate, adjust_contrasts, median_contrast, share_contrast
from stability.analysis.convergence import Params
from stability.analysis.corpus import RunChain
from stability.analysis.measure import EmbeddingUse, Vectors, measure
from stability.analysis.stats import km_median
from tests.analysis.handmade import at_angle, chain, corpus


def _members(starts: int, replicates: int, offset: int = 0) -> dict[str, list[int]]:
    """Run indices by start: start s holds ``replicates`` consecutive runs, after ``offset``."""
    return {f"S{s}": list(range(offset + s * replicates, offset + (s + 1) * replicates)) for s in range(starts)}


def test_a_paired_contrast_finds_a_planted_difference_across_unlike_starts() -> None:
    # five starts whose base rates differ widely; group a reaches a fixed point 0.4 more often at every start
    a_rates, b_rates = [1.0, 1.0, 0.5, 0.5, 0.8], [0.6, 0.6, 0.1, 0.1, 0.4]
    fixed = np.concatenate([[1.0] * round(10 * r) + [0.0] * (10 - round(10 * r)) for r in a_rates + b_rates])
    a, b = _members(5, 10), _members(5, 10, offset=50)
    found = share_contrast(fixed, np.ones(100), a, b)
    assert found.method == "paired-t" and found.starts == 5 and found.mean == 0.4
    assert found.low is not None and found.high is not None and 0 < found.low < 0.4 < found.high
    assert found.p_value is not None and found.p_value < 0.01
    # the same runs at different starts (b moved to starts of its own) are contrasted unpaired, less sharply
    b_apart = {f"T{s}": v for s, v in enumerate(b.values())}
    apart = share_contrast(fixed, np.ones(100), a, b_apart)
    assert apart.method == "welch-t" and apart.p_value is not None and apart.p_value > found.p_value


def test_ten_identical_groups_rarely_show_a_family_wise_significant_contrast() -> None:
    # 10 groups with the same law (5 shared starts whose own rates vary, 3 replicates each), 120 analyses
    rng = np.random.default_rng(0)
    k, m, groups, reps = 5, 3, 10, 120
    raw_any = adjusted_any = 0
    for _ in range(reps):
        base = rng.beta(1.0, 1.0, size=k)
        fixed = rng.binomial(1, np.repeat(np.tile(base, groups), m)).astype(float)
        members = [_members(k, m, offset=g * k * m) for g in range(groups)]
        contrasts = [Contrast(a={"g": i}, b={"g": j}, fixed_point_rate=share_contrast(fixed, np.ones(len(fixed)),
                                                                                      members[i], members[j]),
                              steps_to_fixed_point=_empty(), convergence_ratio=_empty(), clash_resolution=_empty())
                     for i in range(groups) for j in range(i + 1, groups)]
        adjust_contrasts(contrasts, "holm")
        raw_any += any((c.fixed_point_rate.p_value or 1) < 0.05 for c in contrasts)
        adjusted_any += any((c.fixed_point_rate.p_adjusted or 1) < 0.05 for c in contrasts)
    assert len(contrasts) == 45
    assert adjusted_any / reps <= 0.08  # family-wise: near (here below) 5%, not the 70% of unadjusted intervals
    assert raw_any / reps > adjusted_any / reps


def _empty() -> ContrastEstimate:
    return ContrastEstimate(mean=None, low=None, high=None, n=0)


def test_an_undefined_median_in_resamples_is_never_dropped() -> None:
    # group a: 5 of its 10 starts reach a fixed point at step 2, the other 5 never do (censored at 10): median 2,
    # but undefined in every resample that draws more of the censored starts; group b: all reach at step 1
    times = np.array([2, 2] * 5 + [10, 10] * 5 + [1] * 20)
    events = np.array([True] * 10 + [False] * 10 + [True] * 20)
    a = {f"S{i}": [2 * i, 2 * i + 1] for i in range(10)}
    b = {f"T{i}": [20 + 2 * i, 21 + 2 * i] for i in range(10)}

    def median(idx: np.ndarray) -> float | None:
        return km_median(times[idx], events[idx])

    found = median_contrast(median, a, b, 500, 0)
    assert found.mean == 1.0 and found.high is None  # not "1 [1, 1]"
    assert found.note is not None and "undefined in" in found.note and found.p_value is None
    never = median_contrast(median, {"S9": [18, 19]}, b, 500, 0)
    assert never.mean is None and never.note is not None and "not reached" in never.note


def test_a_median_contrast_over_few_starts_has_no_interval() -> None:
    """Below MEDIAN_STARTS the percentile interval of a median difference rejects far more than 5% of true nulls
    (bench/calibration.py): the difference is printed, with no interval and a note pointing at the incidence."""
    times = np.array([2, 3, 2, 3, 2, 3] + [1, 2, 1, 2, 1, 2])
    events = np.ones(12, dtype=bool)
    a = {"S0": [0, 1], "S1": [2, 3], "S2": [4, 5]}
    b = {"T0": [6, 7], "T1": [8, 9], "T2": [10, 11]}
    found = median_contrast(lambda idx: km_median(times[idx], events[idx]), a, b, 500, 0)
    assert found.mean == 1.0 and found.low is None and found.high is None and found.p_value is None
    assert found.note is not None and "fewer than 10 starts" in found.note and "incidence" in found.note


def _run(run_id: str, model: str, start: str, final: str, seed: int) -> RunChain:
    nodes = [start] if final == start else [start, final]
    run = chain(run_id, nodes + [nodes[-1]] * 2, ["origin"] + ["changed"] * (len(nodes) - 1) + ["declined"] * 2,
                stop="declined", model=model)
    run.config = {"model": model, "protocol": "fresh-instance", "seed": seed, "constitution": f"/x/{start}.md",
                  "options": {}}
    return run


def test_eleven_groups_say_how_many_contrasts_exist_and_json_carries_the_fields() -> None:
    vectors = {"S0": at_angle(0.0), "S1": at_angle(0.5), "S2": at_angle(1.0), "F": at_angle(0.3)}
    runs = []
    for g in range(11):
        for s in ("S0", "S1", "S2"):
            runs.append(_run(f"g{g}{s}", f"m{g:02d}", s, "F" if g == 0 else s, 0))
    failed = chain("nv", ["S0", "S1"], ["origin", "parse_failure"], model="m01")
    failed.config = {"model": "m01", "protocol": "fresh-instance", "seed": 1, "constitution": "/x/S0.md",
                     "options": {}}
    runs.append(failed)
    result = measure(corpus(runs), Vectors(nodes=vectors, principles=vectors),
                     Params(bootstrap=100, permutations=100), EmbeddingUse(model="handmade", texts=0, computed=0),
                     by=["model"], adjust="bh")
    assert result.contrasts_total == 55 and len(result.contrasts) == 45 and result.adjust == "bh"
    first, second = result.groups[:2]
    assert (first.starts, first.models, first.fixed_point_rate.clusters, first.fixed_point_rate.method) == (
        3, 1, 3, "wilson-t")
    # m01: 3 judged runs all at a fixed point, and one started run with no verdict
    assert second.fixed_point_rate.mean == 1.0 and second.fixed_point_rate_started is not None
    assert second.fixed_point_rate_started.mean == 0.75 and second.fixed_point_rate_started.n == 4
    c = result.contrasts[0]
    assert c.paired and c.shared_starts == 3 and c.convergence_ratio.method == "paired-jackknife-t"
    assert c.convergence_ratio.mean == -1.0  # m00 takes every start to F, m01 stays put
    data = result.model_dump(mode="json")
    assert {"paired", "shared_starts"} <= set(data["contrasts"][0])
    assert {"p_value", "p_adjusted", "method", "starts"} <= set(data["contrasts"][0]["fixed_point_rate"])
    assert {"clusters", "method", "warning"} <= set(data["groups"][0]["fixed_point_rate"])


def test_competing_risks_p_values_join_the_adjusted_family() -> None:
    # two contrasts: a planted incidence difference beside a rate contrast; Holm runs over all their p-values
    from stability.analysis.incidence import contrast_of
    from stability.analysis.multiplicity import holm
    from stability.testing.planted_incidence import planted_runs, start_hazards

    rng = np.random.default_rng(2)
    hazards = start_hazards(rng, 5, 0.3, 0.02, 0.0)
    a = planted_runs(rng, 5, 10, 0.3, 0.02, 20, hazards=hazards)
    b = planted_runs(rng, 5, 10, 0.02, 0.02, 20, hazards=(np.full(5, 0.02), np.full(5, 0.02)))
    rate = ContrastEstimate(mean=0.1, low=-0.1, high=0.3, n=20, p_value=0.04)
    contrasts = [Contrast(a={"g": 0}, b={"g": 1}, fixed_point_rate=rate, steps_to_fixed_point=_empty(),
                          convergence_ratio=_empty(), clash_resolution=_empty(), incidence=contrast_of(a, b)),
                 Contrast(a={"g": 0}, b={"g": 2}, fixed_point_rate=rate.model_copy(), steps_to_fixed_point=_empty(),
                          convergence_ratio=_empty(), clash_resolution=_empty(), incidence=None)]
    adjust_contrasts(contrasts, "holm")
    i = contrasts[0].incidence
    assert i is not None and i.hazard_ratio_fixed_point is not None and i.hazard_ratio_cycle is not None
    raw = [0.04, i.p_fixed_point, i.p_cycle, i.hazard_ratio_fixed_point.p_value, i.hazard_ratio_cycle.p_value, 0.04]
    tested = [p for p in raw if p is not None]
    assert len(tested) >= 4  # the incidence contrast adds tests to the family
    expected = holm(raw)
    got = [contrasts[0].fixed_point_rate.p_adjusted, i.p_fixed_point_adjusted, i.p_cycle_adjusted,
           i.hazard_ratio_fixed_point.p_adjusted, i.hazard_ratio_cycle.p_adjusted,
           contrasts[1].fixed_point_rate.p_adjusted]
    assert got == [None if e is None else round(e, 6) for e in expected]
    # the rate contrast alone in a family of two would read 0.08; among the incidence tests it reads more
    assert (contrasts[0].fixed_point_rate.p_adjusted or 0) > 0.08
