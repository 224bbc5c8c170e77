"""Verdicts across runs: failed and non-chain runs never become fixed points, cycles, finals or attractors."""

from __future__ import annotations

from stability.analysis.convergence import Params
from stability.analysis.measure import EmbeddingUse, Vectors, measure
from tests.analysis.handmade import chain, corpus, unit

VECTORS = {"S1": unit(1, 0, 0), "S2": unit(0, 1, 0), "S3": unit(0, 0, 1), "M": unit(1, 1, 1), "P": unit(1, -1, 0)}


def _measure(runs):  # type: ignore[no-untyped-def]
    return measure(corpus(runs), Vectors(nodes=VECTORS, principles=VECTORS), Params(bootstrap=200),
                   EmbeddingUse(model="handmade", texts=0, computed=0))


def test_failed_runs_and_sibling_trials_stay_out_of_attractors() -> None:
    converged = [chain("c1", ["S1", "M", "M", "M"], ["origin", "changed", "declined", "declined"], stop="declined"),
                 chain("c2", ["S2", "M", "M", "M"], ["origin", "changed", "declined", "declined"], stop="declined")]
    prose = chain("p", ["S3", "S3", "S3", "S3"], ["origin"] + ["parse_failure"] * 3, stop="parse_failures")
    ratings = chain("r", ["P", "S1", "P", "S1", "P"])  # sibling trials of one start: would look like a 2-cycle
    ratings.chain = False
    result = _measure(converged + [prose, ratings])
    verdicts = {r.run_id: r.verdict for r in result.runs}
    assert verdicts == {"c1": "fixed_point", "c2": "fixed_point", "p": "no_verdict", "r": "not_chain"}
    by_id = {r.run_id: r for r in result.runs}
    assert by_id["p"].fixed_point is None and by_id["r"].cycles == []
    cross = result.cross_run
    assert cross.runs == 2 and [sorted(a.runs) for a in cross.attractors] == [["c1", "c2"]]
    assert {p.run_id for p in cross.projection} == {"c1", "c2"} and cross.graph_cycles == []
    # the convergence ratio is over the two converged runs only: their finals coincide
    assert cross.convergence_ratio == 0.0


def test_conditions_count_runs_without_a_verdict() -> None:
    runs = [chain("c", ["S1", "M", "M", "M"], ["origin", "changed", "declined", "declined"], stop="declined"),
            chain("p", ["S1", "S1", "S1"], ["origin", "parse_failure", "parse_failure"], stop="parse_failures")]
    result = measure(corpus(runs, metadata={"S1": {"condition": "consistent"}}),
                     Vectors(nodes=VECTORS, principles=VECTORS), Params(bootstrap=200),
                     EmbeddingUse(model="handmade", texts=0, computed=0))
    [consistent] = result.consistency.conditions
    assert (consistent.runs, consistent.no_verdict, consistent.reached_fixed_point.mean) == (1, 1, 1.0)


def test_k_and_cycle_order_through_measure() -> None:
    near = {"A": unit(1, 0, 0), "B": unit(1, 0.05, 0), "S1": unit(0, 1, 0), "M": unit(0, 0, 1)}  # d(A, B) ≈ 0.001
    runs = [chain("flip", ["A", "B", "A", "B", "A"], stop="cycle"),
            chain("declined", ["S1", "M", "M", "M"], ["origin", "changed", "declined", "declined"], stop="declined")]
    for k, declined in ((None, "fixed_point"), (5, "unsettled")):
        result = measure(corpus(runs), Vectors(nodes=near, principles=near), Params(bootstrap=50, k=k),
                         EmbeddingUse(model="handmade", texts=0, computed=0))
        verdicts = {r.run_id: r.verdict for r in result.runs}
        assert verdicts == {"flip": "cycle", "declined": declined}
        [group] = result.groups
        assert group.incidence is not None and group.incidence.events["cycle"] == 1
        assert group.incidence.events["fixed_point"] == (declined == "fixed_point")
