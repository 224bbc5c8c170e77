from __future__ import annotations

import numpy as np
import pytest

from stability.analysis.convergence import Params
from stability.analysis.run_measures import run_convergence
from tests.analysis.handmade import at_angle, chain, corpus, unit

FAR = {"A": unit(1, 0, 0), "B": unit(0, 1, 0), "C": unit(0, 0, 1), "D": unit(1, 1, 0)}


def measure(run, vectors=FAR, **params):  # type: ignore[no-untyped-def]
    return run_convergence(run, corpus([run]), vectors, None, Params(**params))


def test_chain_to_a_fixed_point_by_declines() -> None:
    run = chain("r", ["A", "B", "C", "C", "C"], ["origin", "changed", "changed", "declined", "declined"],
                stop="declined")
    result = measure(run)
    assert result.fixed_point is not None
    assert (result.fixed_point.step, result.fixed_point.node, result.fixed_point.how) == (2, "C", "declines")
    assert result.fixed_point.held_steps == 2
    assert [s.d_prev for s in result.steps] == [None, 1.0, 1.0, 0.0, 0.0]
    assert [s.d_origin for s in result.steps] == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert [s.d_final for s in result.steps] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert result.cycles == [] and result.near_cycles == []


def test_exact_repeat_without_a_declines_stop() -> None:
    run = chain("r", ["A", "B", "B", "B"], ["origin", "changed", "declined", "declined"], stop="max_steps")
    result = measure(run)
    assert result.fixed_point is not None and result.fixed_point.how == "exact_repeat"
    assert (result.fixed_point.step, result.fixed_point.held_steps, result.verdict) == (1, 2, "fixed_point")
    short = measure(chain("r", ["A", "B", "B"], ["origin", "changed", "declined"], stop="max_steps"))
    assert short.fixed_point is None and short.verdict == "unsettled"  # held 1 step < K = 2


def test_parse_failures_never_hold_a_fixed_point() -> None:
    # B is held for three steps, but two of them are parse failures: one answered step < K = 2
    run = chain("r", ["A", "B", "B", "B", "B"], ["origin", "changed", "parse_failure", "truncated", "declined"],
                stop="max_steps")
    result = measure(run)
    assert result.fixed_point is None and result.verdict == "unsettled"


@pytest.mark.parametrize("failure", ["parse_failure", "truncated", "error"])
def test_a_run_that_ends_on_a_failure_has_no_verdict(failure: str) -> None:
    run = chain("r", ["A", "B", "B", "B", "B"], ["origin", "changed", "declined", "declined", failure],
                stop="parse_failures" if failure != "error" else "error")
    result = measure(run)
    assert (result.verdict, result.no_verdict) == ("no_verdict", failure)
    assert result.fixed_point is None and result.cycles == []


def test_a_model_that_only_fails_has_no_verdict_and_no_fixed_point() -> None:
    run = chain("r", ["A", "A", "A", "A"], ["origin", "parse_failure", "parse_failure", "parse_failure"],
                stop="parse_failures")
    result = measure(run)
    assert result.verdict == "no_verdict" and result.fixed_point is None


def test_an_unfinished_run_has_no_verdict() -> None:
    run = chain("r", ["A", "B", "B", "B"], ["origin", "changed", "declined", "declined"])
    run.status = "running"
    assert measure(run).verdict == "no_verdict" and measure(run).no_verdict == "unfinished"
    run.status, run.stop_reason = "failed", "budget"  # stopped by the budget: resumable, not judged
    assert measure(run).verdict == "no_verdict" and measure(run).no_verdict == "unfinished"


def test_sibling_trials_are_not_a_chain() -> None:
    run = chain("r", ["A", "B", "A", "B", "A"])
    run.chain = False
    result = measure(run)
    assert (result.verdict, result.fixed_point, result.cycles, result.near_cycles) == ("not_chain", None, [], [])
    assert [s.d_origin for s in result.steps] == [0.0, 1.0, 0.0, 1.0, 0.0]  # its curves stay


def test_fixed_point_within_epsilon_for_k_steps() -> None:
    vectors = {"A": at_angle(0.9), "B": at_angle(0.0), "B1": at_angle(0.01), "B2": at_angle(0.004)}
    run = chain("r", ["A", "B", "B1", "B2"], stop="max_steps")
    result = measure(run, vectors, epsilon=0.02)
    assert result.fixed_point is not None
    assert (result.fixed_point.step, result.fixed_point.how) == (1, "epsilon")
    assert measure(run, vectors, epsilon=0.005).fixed_point is None
    assert measure(run, vectors, epsilon=0.02, k=3).fixed_point is None


def test_two_cycle_is_found_and_counted() -> None:
    run = chain("r", ["A", "B", "A", "B", "A"], stop="cycle")
    result = measure(run)
    assert result.fixed_point is None and result.verdict == "cycle"
    [cycle] = result.cycles
    assert (cycle.nodes, cycle.period, cycle.from_step, cycle.to_step, cycle.returns) == (["A", "B"], 2, 0, 2, 3)
    assert result.near_cycles == []  # exact returns are cycles, not near cycles


def test_epsilon_near_cycle() -> None:
    vectors = {"A": at_angle(0.0), "B": at_angle(0.5), "A1": at_angle(0.01)}
    run = chain("r", ["A", "B", "A1"], stop="max_steps")
    result = measure(run, vectors, epsilon=0.02)
    assert result.cycles == []
    [near] = result.near_cycles
    assert (near.from_step, near.to_step, near.from_node, near.to_node) == (0, 2, "A", "A1")
    assert np.isclose(near.distance, 0.01, atol=1e-4)
    # Drifting within epsilon the whole time is not a cycle: it never left.
    still = chain("r", ["A", "A1", "A"], stop="max_steps")
    assert measure(still, vectors, epsilon=0.02).near_cycles == []


def test_error_visits_are_not_steps() -> None:
    run = chain("r", ["A", "B", "B"], ["origin", "changed", "error"])
    result = measure(run)
    assert [s.step for s in result.steps] == [0, 1] and result.final == "B"


def test_principle_counts_and_step_changes() -> None:
    run = chain("r", ["A", "B"])
    principles = {"A": ("honest", "harmless"), "B": ("honest", "harmless", "helpful")}
    vectors = {"honest": unit(1, 0, 0), "harmless": unit(0, 1, 0), "helpful": unit(0, 0, 1)}
    result = run_convergence(run, corpus([run], principles), FAR, vectors, Params())
    assert [s.n_principles for s in result.steps] == [2, 3]
    assert result.steps[1].changes == {"kept": 2, "reworded": 0, "moved": 0, "added": 1, "removed": 0}


def _negation_vectors(size: int = 41, seed: int = 3) -> tuple[dict[str, np.ndarray], float]:
    """Node vectors of a constitution of ``size`` principles (A) and of the same with its first principle negated
    (B): "I always tell the truth" and "I never tell the truth" share most of their words, so their principle
    vectors are close (cosine distance 0.3) though they mean the opposite. Returns the vectors and d(A, B)."""
    rng = np.random.default_rng(seed)
    others = rng.normal(size=(size - 1, 32))
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    always = rng.normal(size=32)
    always /= np.linalg.norm(always)
    noise = rng.normal(size=32)
    noise -= (noise @ always) * always
    noise /= np.linalg.norm(noise)
    never = 0.7 * always + np.sqrt(1 - 0.49) * noise  # cos 0.7 with "always"
    a, b = np.vstack([always, others]).mean(axis=0), np.vstack([never, others]).mean(axis=0)
    a, b = (a / np.linalg.norm(a)).astype(np.float32), (b / np.linalg.norm(b)).astype(np.float32)
    return {"A": a, "B": b}, float(1 - a @ b)


def test_an_exact_cycle_outranks_the_epsilon_rule() -> None:
    vectors, distance = _negation_vectors()
    assert distance < 0.02  # the flip is within the default ε: the distance rule alone would call it settled
    run = chain("r", ["A", "B", "A", "B", "A"], stop="cycle")
    result = measure(run, vectors, epsilon=0.02)
    assert (result.verdict, result.fixed_point) == ("cycle", None)
    assert [c.returns for c in result.cycles] == [3]


def test_epsilon_after_the_last_return_is_still_a_fixed_point() -> None:
    vectors = {"A": at_angle(0.9), "B": at_angle(0.0), "C": at_angle(0.5), "B1": at_angle(0.01),
               "B2": at_angle(0.004)}
    run = chain("r", ["B", "C", "B", "B1", "B2"], stop="max_steps")  # a return at step 2, then settled within ε
    result = measure(run, vectors, epsilon=0.02)
    assert result.fixed_point is not None and (result.fixed_point.step, result.fixed_point.how) == (2, "epsilon")
    inside = chain("r", ["B", "B1", "B", "B1", "B2"], stop="max_steps")  # returns inside the ε window
    assert measure(inside, vectors, epsilon=0.02).verdict == "cycle"


def test_k_governs_the_declines_rule() -> None:
    run = chain("r", ["A", "B", "B", "B"], ["origin", "changed", "declined", "declined"], stop="declined", k=2)
    default = measure(run).fixed_point
    assert default is not None and default.how == "declines"
    assert measure(run, k=2).verdict == "fixed_point"
    strict = measure(run, k=5)  # stopped on 2 declines: not a fixed point when a fixed point must hold 5 steps
    assert (strict.verdict, strict.fixed_point, strict.k) == ("unsettled", None, 5)
    assert measure(run, k=3).fixed_point is None and measure(run, k=1).verdict == "fixed_point"
