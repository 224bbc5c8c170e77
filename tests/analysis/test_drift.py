"""The rephrase null: controls matched on steps, and an ε suggestion bounded by the distance of a negation."""

from __future__ import annotations

import numpy as np

from stability.analysis.convergence import Params
from stability.analysis.corpus import RunChain
from stability.analysis.drift import library_negations, negation_distance
from stability.analysis.measure import AnalysisResult, EmbeddingUse, Vectors, measure
from tests.analysis.handmade import at_angle, chain, corpus


def _runs(model: str = "m") -> list[RunChain]:
    """Subjects stop at step 1 (one edit, then declines); rephrase controls of the same starts keep rewording to
    step 4, drifting further at every step."""
    runs = []
    for seed in range(2):
        for start in ("S1", "S2"):
            runs.append(chain(f"s{start}{seed}", [start, f"F{start}", f"F{start}", f"F{start}"],
                              ["origin", "changed", "declined", "declined"], stop="declined", model=model))
            control = chain(f"r{start}{seed}", [start] + [f"{start}r{i}" for i in range(1, 5)], stop="max_steps",
                            model=model)
            control.protocol, control.control = "rephrase", True
            runs.append(control)
    return runs


def _vectors() -> dict[str, np.ndarray]:
    vectors = {"S1": at_angle(0.0), "S2": at_angle(0.0), "FS1": at_angle(0.2), "FS2": at_angle(0.2)}
    for start in ("S1", "S2"):
        for i in range(1, 5):  # the controls drift 0.01 per step: 0.01 at step 1, 0.04 at step 4
            vectors[f"{start}r{i}"] = at_angle(0.01 * i)
    return vectors


def _measure(vectors: dict[str, np.ndarray], negations: tuple[tuple[str, str], ...] = ()) -> AnalysisResult:
    return measure(corpus(_runs()), Vectors(nodes=vectors, principles=vectors, negations=list(negations)),
                   Params(bootstrap=100), EmbeddingUse(model="handmade", texts=0, computed=0))


def test_controls_are_compared_at_the_subjects_steps() -> None:
    [group] = _measure(_vectors()).groups
    null = group.paraphrase_null
    assert null is not None and (null.cells, null.control_runs) == (2, 4)
    # subjects stopped at step 3 (one change, two declines): the controls' drift at step 3, not at their step 4
    assert np.isclose(null.rephrase_drift.mean or 0, 0.03, atol=2e-4)
    assert np.isclose(null.excess.mean or 0, 0.2 - 0.03, atol=2e-4)
    # the step distances counted are the controls' steps up to step 3 only (each about 0.01 apart)
    assert null.rephrase_step_p95 is not None and null.rephrase_step_p95 < 0.02
    assert null.epsilon_note is not None and "no planted negation" in null.epsilon_note


def test_no_epsilon_suggestion_above_the_distance_of_a_negation() -> None:
    vectors = _vectors()
    # a planted pair whose flip, added to a one-principle start, moves it by far more than the rephrase steps
    vectors["always"], vectors["never"] = at_angle(0.0), at_angle(1.0)
    [far] = _measure(vectors, (("always", "never"),)).groups
    assert far.paraphrase_null is not None and far.paraphrase_null.suggested_epsilon is not None
    assert (far.paraphrase_null.negation_distance or 0) > far.paraphrase_null.suggested_epsilon
    # a negation whose vectors are close (most words shared): its flip is smaller than a rephrase step
    vectors["never"] = at_angle(0.004)
    [near] = _measure(vectors, (("always", "never"),)).groups
    null = near.paraphrase_null
    assert null is not None and null.suggested_epsilon is None and null.rephrase_step_p95 is not None
    assert null.negation_distance is not None and null.negation_distance <= null.rephrase_step_p95
    assert null.epsilon_note is not None and "would hide flips" in null.epsilon_note


def test_negation_distance_shrinks_with_the_size_of_the_start() -> None:
    rng = np.random.default_rng(0)
    principles = {f"p{i}": v / np.linalg.norm(v) for i, v in enumerate(rng.normal(size=(40, 16)))}
    principles["always"], principles["never"] = principles["p0"], -principles["p0"]
    small = negation_distance([["p1", "p2"]], [("always", "never")], principles)
    large = negation_distance([[f"p{i}" for i in range(1, 40)]], [("always", "never")], principles)
    assert small is not None and large is not None and large < small / 5
    assert negation_distance([["p1"]], [("absent", "never")], principles) is None


def test_the_library_plants_negation_pairs() -> None:
    pairs = library_negations()
    assert ("I always give my own opinion when a question touches on values.",
            "I never share opinions of my own.") in pairs
