from __future__ import annotations

from stability.analysis.consistency import bootstrap, consistency
from stability.analysis.convergence import Params
from stability.analysis.run_measures import run_convergence
from tests.analysis.handmade import chain, corpus, unit

PRINCIPLES = {
    "start": ("always truthful", "comfort first", "say what they want", "be kind"),
    "removed": ("always truthful", "comfort first", "be kind"),
    "reworded": ("always truthful, gently", "comfort first", "say what helps them", "be kind"),
    "both": ("always truthful, gently", "comfort matters", "say what helps them", "be kind"),
    "calm": ("be calm", "be clear"),
    "calm2": ("be calm", "be clear", "be brief"),
}
VECTORS = {
    "always truthful": unit(1, 0, 0, 0, 0, 0, 0), "always truthful, gently": unit(1, 0.2, 0, 0, 0, 0, 0),
    "comfort first": unit(0, 0, 1, 0, 0, 0, 0), "comfort matters": unit(0, 0, 1, 0.2, 0, 0, 0),
    "say what they want": unit(0, 0, 0, 0, 1, 0, 0), "say what helps them": unit(0, 0, 0, 0, 1, 0.2, 0),
    "be kind": unit(0, 0, 0, 0, 0, 0, 1), "be calm": unit(0, 1, 0, 0, 0, 0, 0), "be clear": unit(0, 0, 0, 1, 0, 0, 0),
    "be brief": unit(0, 0, 0, 0, 0, 1, 0),
}
CLASHES = {"condition": "contradictory",
           "clashes": [{"a": 1, "b": 3, "kind": "direct-negation"}, {"a": 1, "b": 2, "kind": "priority"}]}
NODE = {n: unit(*[float(i == j) for j in range(6)]) for i, n in enumerate(PRINCIPLES)}


def analyse(runs):  # type: ignore[no-untyped-def]
    c = corpus(runs, PRINCIPLES, {"start": CLASHES, "calm": {"condition": "consistent"}})
    params = Params(bootstrap=500)
    conv = {r.run_id: run_convergence(r, c, NODE, VECTORS, params) for r in runs}
    return consistency(c, conv, VECTORS, params)


def test_a_clash_resolved_by_removal_and_one_left_in_place() -> None:
    run = chain("r1", ["start", "removed", "removed", "removed"], ["origin", "changed", "declined", "declined"],
                stop="declined")
    result = analyse([run])
    by_pair = {(o.a, o.b): o for o in result.clashes}
    removed, kept = by_pair[(1, 3)], by_pair[(1, 2)]
    assert (removed.status, removed.resolved, removed.resolved_step, removed.edits) == ("removed", True, 1, 1)
    assert removed.final_b_text is None and removed.final_a_text == "always truthful"
    assert (kept.status, kept.resolved, kept.resolved_step, kept.edits) == ("in_place", False, None, None)
    assert result.resolved_fraction.mean == 0.5


def test_rewording_both_sides_resolves_one_side_does_not() -> None:
    run = chain("r1", ["start", "reworded", "both"], stop="max_steps")
    by_pair = {(o.a, o.b): o for o in analyse([run]).clashes}
    # step 1 rewords sides 1 and 3; step 2 also rewords side 2
    assert by_pair[(1, 3)].status == "reworded" and by_pair[(1, 3)].resolved_step == 1
    assert by_pair[(1, 3)].edits == 1
    assert by_pair[(1, 2)].status == "reworded" and by_pair[(1, 2)].resolved_step == 2
    assert by_pair[(1, 2)].edits == 2
    half = chain("r2", ["start", "reworded"], stop="max_steps")
    assert {(o.a, o.b): o.status for o in analyse([half]).clashes}[(1, 2)] == "partly_reworded"


def test_a_clash_that_comes_back_is_not_resolved() -> None:
    run = chain("r1", ["start", "removed", "start"], stop="cycle")
    assert not any(o.resolved for o in analyse([run]).clashes)


def test_conditions_compare_time_to_fixed_point() -> None:
    runs = [chain("c1", ["start", "removed", "removed", "removed"], ["origin", "changed", "declined", "declined"],
                  stop="declined"),
            chain("c2", ["start", "reworded", "both", "both", "both"],
                  ["origin", "changed", "changed", "declined", "declined"], stop="declined"),
            chain("k1", ["calm", "calm", "calm"], ["origin", "declined", "declined"], stop="declined"),
            chain("k2", ["calm", "calm2", "calm2", "calm2"], ["origin", "changed", "declined", "declined"],
                  stop="declined")]
    result = analyse(runs)
    by = {c.condition: c for c in result.conditions}
    assert by["contradictory"].steps_to_fixed_point.mean == 1.5
    assert by["consistent"].steps_to_fixed_point.mean == 0.5
    assert result.steps_difference.mean == 1.0
    low, high = result.steps_difference.low, result.steps_difference.high
    assert low is not None and high is not None and low <= 1.0 <= high
    assert by["consistent"].reached_fixed_point.mean == 1.0


def test_bad_clash_metadata_is_skipped_not_fatal() -> None:
    run = chain("r1", ["start", "removed"])
    c = corpus([run], PRINCIPLES, {"start": {"clashes": [{"a": 1, "b": 9}, {"x": 1}]}})
    conv = {"r1": run_convergence(run, c, NODE, VECTORS, Params())}
    result = consistency(c, conv, VECTORS, Params())
    assert result.clashes == [] and len(result.skipped) == 2


def test_bootstrap_interval() -> None:
    single = bootstrap([[1.0, 2.0]], 100, 0)
    assert single.mean == 1.5 and single.low is None
    many = bootstrap([[0.0], [1.0]] * 20, 1000, 0)
    assert many.mean == 0.5 and many.low is not None and many.high is not None
    assert 0.3 < many.low < 0.5 < many.high < 0.7
    assert bootstrap([], 10, 0).n == 0
