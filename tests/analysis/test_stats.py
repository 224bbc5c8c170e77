"""Statistics on hand-built values where the right answer is known: censoring, clusters, nulls, twins."""

from __future__ import annotations

import numpy as np

from stability.analysis.convergence import Params
from stability.analysis.measure import EmbeddingUse, Vectors, measure
from stability.analysis.stats import cluster_interval, km_median, survival
from stability.analysis.twins import compare_twins
from tests.analysis.handmade import at_angle, chain, corpus


def test_censoring_moves_the_kaplan_meier_median() -> None:
    # four runs reach a fixed point at steps 2, 3, 4, 5; four more stop at max_steps 3 without one.
    reached = [2, 3, 4, 5]
    assert km_median(np.array(reached), np.ones(4, dtype=bool)) == 3.0  # events only: S(3) = 0.5
    times = np.array(reached + [3, 3, 3, 3])
    events = np.array([True] * 4 + [False] * 4)
    # censored at 3, they stay at risk through step 3: S(2) = 7/8, S(3) = 7/8 * 6/7 = 0.75, S(4) = 0.375
    assert km_median(times, events) == 4.0
    # dropping them instead (the old way) would say 3; counting them as never reaching would say "not reached"
    curve = survival(times.tolist(), events.tolist(), [[i] for i in range(8)], 200, 0)
    assert (curve.events, curve.censored, curve.median) == (4, 4, 4.0)
    assert [(p.step, p.surviving, p.at_risk) for p in curve.curve] == [(2, 0.875, 8), (3, 0.75, 7),
                                                                       (4, 0.375, 2), (5, 0.0, 1)]


def test_intervals_resample_starts_not_runs() -> None:
    # start A: 10 replicates all reach a fixed point; start B: 10 that never do.
    values = np.array([1.0] * 10 + [0.0] * 10)
    by_start = [list(range(10)), list(range(10, 20))]
    by_run = [[i] for i in range(20)]
    starts = cluster_interval(lambda idx: float(values[idx].mean()), by_start, 2000, 0)
    runs = cluster_interval(lambda idx: float(values[idx].mean()), by_run, 2000, 0)
    assert starts.mean == runs.mean == 0.5
    # two starts, not twenty independent runs: the interval spans (nearly) everything
    assert starts.low == 0.0 and starts.high == 1.0
    assert runs.low is not None and runs.low > 0.2 and runs.high is not None and runs.high < 0.8


def _fixed(run_id: str, nodes: list[str], start_file: str, seed: int, model: str = "m"):  # type: ignore[no-untyped-def]
    run = chain(run_id, nodes + [nodes[-1]] * 2, ["origin"] + ["changed"] * (len(nodes) - 1) + ["declined"] * 2,
                stop="declined", model=model)
    run.config = {"model": model, "protocol": "fresh-instance", "seed": seed, "constitution": start_file,
                  "options": {}}
    return run


def test_paired_twin_comparison_on_a_planted_example() -> None:
    # Contradictory start C moves to M then to its twin's text T (2 edits); the twin run holds T at once.
    vectors = {"C": at_angle(0.0), "M": at_angle(0.2), "T": at_angle(0.5), "C2": at_angle(1.0),
               "T2": at_angle(1.4)}
    metadata = {"C": {"clashes": [{"a": 1, "b": 2, "kind": "x"}], "twin": "consistent/c-repaired.md"},
                "C2": {"clashes": [{"a": 1, "b": 2, "kind": "x"}], "twin": "consistent/c2-repaired.md"},
                "T": {"condition": "consistent"}, "T2": {"condition": "consistent"}}
    runs = []
    for seed in range(2):
        runs.append(_fixed(f"c{seed}", ["C", "M", "T"], "/lib/constitutions/contradictory/c.md", seed))
        runs.append(_fixed(f"t{seed}", ["T"], "/lib/constitutions/consistent/c-repaired.md", seed))
        runs.append(_fixed(f"e{seed}", ["C2", "T2"], "/lib/constitutions/contradictory/c2.md", seed))
        runs.append(_fixed(f"u{seed}", ["T2"], "/lib/constitutions/consistent/c2-repaired.md", seed))
    # a contradictory run whose twin was run with another model has no partner
    runs.append(_fixed("lonely", ["C", "T"], "/lib/constitutions/contradictory/c.md", 0, model="other"))
    data = corpus(runs, principles={n: ("p1", "p2") for n in vectors}, metadata=metadata)
    result = measure(data, Vectors(nodes=vectors, principles={"p1": at_angle(0.0), "p2": at_angle(1.0)}),
                     Params(bootstrap=300), EmbeddingUse(model="handmade", texts=0, computed=0))
    twins = result.twins
    assert {(p.contradictory_run, p.twin_run) for p in twins.pairs} == {("c0", "t0"), ("c1", "t1"),
                                                                       ("e0", "u0"), ("e1", "u1")}
    assert twins.unpaired == ["lonely"]
    # every run reaches a fixed point: no difference there; C pairs need 2 more steps, C2 pairs 1 more
    assert twins.fixed_point_difference.mean == 0.0
    assert twins.steps_difference.mean == 1.5
    assert twins.steps_difference.low == 1.0 and twins.steps_difference.high == 2.0
    # distance to the twin's text: C pairs d(C, T) -> d(M, T) -> 0 (then held); C2 pairs d(C2, T2) -> 0
    def d(a: str, b: str) -> float:
        return float(1 - vectors[a] @ vectors[b])

    c0 = next(p for p in twins.pairs if p.contradictory_run == "c0")
    assert np.allclose(c0.distance_to_twin, [0.5, d("M", "T"), 0.0, 0.0, 0.0], atol=1e-4)
    assert np.isclose(twins.distance_to_twin[0].distance.mean or 0, (0.5 + d("C2", "T2")) / 2, atol=1e-4)
    assert twins.distance_to_twin[-1].distance.mean == 0.0 and twins.distance_to_twin[-1].distance.n == 2
    # compare_twins is what measure used
    assert compare_twins(data, {r.run_id: r for r in result.runs}, vectors, Params(bootstrap=300)) == twins


def test_drift_is_set_against_the_rephrase_null() -> None:
    # subjects move from each start to F (far); rephrase controls of the same model and starts move a little.
    vectors = {"S1": at_angle(0.0), "S2": at_angle(1.0), "F": at_angle(0.5), "R1": at_angle(0.02),
               "R2": at_angle(0.97), "X": at_angle(1.5)}
    runs = []
    for seed in range(2):
        runs += [_fixed(f"s1{seed}", ["S1", "F"], "/x/S1.md", seed), _fixed(f"s2{seed}", ["S2", "F"], "/x/S2.md", seed)]
        for start, near in (("S1", "R1"), ("S2", "R2")):
            control = _fixed(f"r{start}{seed}", [start, near], f"/x/{start}.md", seed)
            control.protocol, control.control = "rephrase", True
            runs.append(control)
    runs.append(_fixed("other", ["X", "F"], "/x/X.md", 0, model="other"))  # no control for this model
    result = measure(corpus(runs), Vectors(nodes=vectors, principles=vectors), Params(bootstrap=300),
                     EmbeddingUse(model="handmade", texts=0, computed=0), by=["model"])
    # controls are measured but in no group and no attractor
    assert sum(g.runs for g in result.groups) == 5 and result.cross_run.runs == 5
    groups = {g.key["model"]: g for g in result.groups}
    assert groups["other"].paraphrase_null is None
    null = groups["m"].paraphrase_null
    assert null is not None and (null.cells, null.control_runs) == (2, 4)

    def d(a: str, b: str) -> float:
        return float(1 - vectors[a] @ vectors[b])

    drift = (d("S1", "F") + d("S2", "F")) / 2
    rephrase = (d("S1", "R1") + d("S2", "R2")) / 2
    assert np.isclose(null.drift.mean or 0, drift, atol=1e-5)
    assert np.isclose(null.rephrase_drift.mean or 0, rephrase, atol=1e-5)
    assert np.isclose(null.excess.mean or 0, drift - rephrase, atol=1e-5) and (null.excess.low or 0) > 0
    # ε suggested from the controls' changed steps: the larger of the two rewordings
    assert np.isclose(null.suggested_epsilon or 0, max(d("S1", "R1"), d("S2", "R2")), atol=2e-3)


def test_a_km_median_over_few_starts_warns_that_its_interval_is_not_calibrated() -> None:
    from stability.analysis.stats import MEDIAN_STARTS

    times, events = [2, 3, 4, 2, 3, 4, 2, 3, 4], [True] * 9
    clusters = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    few = survival(times, events, clusters, 200, 0, starts=3)
    assert few.median == 3 and few.low is not None and few.warning is not None and "3 starts" in few.warning
    many = survival(times, events, clusters, 200, 0, starts=MEDIAN_STARTS)
    assert many.warning is None and (many.low, many.high) == (few.low, few.high)


def test_km_median_of_every_draw_at_once_equals_each_draw_on_its_own() -> None:
    from stability.analysis.stats import km_median, km_median_draws, resample_clusters

    rng = np.random.default_rng(11)
    for trial in range(30):
        n = int(rng.integers(2, 60))
        times = rng.integers(0, 12, n)
        events = rng.random(n) < rng.uniform(0.1, 0.9)
        cut = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, int(rng.integers(1, 8))), replace=False))
        clusters = [c.tolist() for c in np.split(rng.permutation(n), cut)]
        got = km_median_draws(times, events, clusters, 300, trial, chunk=64)
        expected = [km_median(times[idx], events[idx]) for idx in resample_clusters(clusters, 300, trial)]
        assert got is not None
        assert got.tolist() == [np.inf if m is None else m for m in expected]
    assert km_median_draws(np.array([5, 100_000]), np.array([True, False]), [[0], [1]], 10, 0) is None
