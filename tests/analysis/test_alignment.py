from __future__ import annotations

import pytest

from stability.analysis.alignment import align, fates
from tests.analysis.handmade import unit

VECTORS = {
    "honest": unit(1, 0, 0, 0), "honest and kind": unit(1, 0.3, 0, 0),
    "harmless": unit(0, 1, 0, 0), "helpful": unit(0, 0, 1, 0), "curious": unit(0, 0, 0, 1),
}


def kinds(before: list[str], after: list[str], threshold: float = 0.9) -> list[tuple[str, int | None, int | None]]:
    result = align(before, after, VECTORS, threshold)
    assert result.reworded_threshold == threshold
    return sorted((c.kind, c.before, c.after) for c in result.changes)


def test_identical_lists_are_all_kept() -> None:
    assert kinds(["honest", "harmless"], ["honest", "harmless"]) == [("kept", 0, 0), ("kept", 1, 1)]


def test_insertion_shifts_positions_but_moves_nothing() -> None:
    assert kinds(["honest", "harmless"], ["curious", "honest", "harmless"]) == [
        ("added", None, 0), ("kept", 0, 1), ("kept", 1, 2)]


def test_swap_is_one_move() -> None:
    assert kinds(["honest", "harmless", "helpful"], ["harmless", "honest", "helpful"]) == [
        ("kept", 1, 0), ("kept", 2, 2), ("moved", 0, 1)]


def test_reworded_needs_the_threshold_else_removed_and_added() -> None:
    # cos(honest, honest and kind) = 1/sqrt(1.09) = 0.958
    assert kinds(["honest", "helpful"], ["honest and kind", "helpful"], threshold=0.9) == [
        ("kept", 1, 1), ("reworded", 0, 0)]
    assert kinds(["honest", "helpful"], ["honest and kind", "helpful"], threshold=0.97) == [
        ("added", None, 0), ("kept", 1, 1), ("removed", 0, None)]


def test_matching_is_optimal_not_greedy() -> None:
    # Greedy takes the single best pair first; the assignment maximises the total.
    vectors = {"a": unit(1, 0.1), "b": unit(1, 0), "x": unit(1, 0.05), "y": unit(1, 0.6)}
    result = align(["a", "b"], ["x", "y"], vectors, 0.0)
    pairs = {(c.before, c.after) for c in result.changes}
    # total similarity: a-y + b-x beats a-x + b-y
    sims = {(i, j): float(vectors[s] @ vectors[t]) for i, s in enumerate("ab") for j, t in enumerate("xy")}
    best = max([{(0, 0), (1, 1)}, {(0, 1), (1, 0)}], key=lambda p: sum(sims[x] for x in p))
    assert pairs == best


def test_counts_and_successor() -> None:
    result = align(["honest", "harmless", "helpful"], ["helpful", "honest and kind"], VECTORS, 0.9)
    # Only one of the two matched pairs can keep its relative order: the other one moved.
    assert result.counts() == {"kept": 1, "reworded": 1, "moved": 0, "added": 0, "removed": 1}
    assert [c.moved for c in result.changes if c.kind == "reworded"] == [True]
    assert result.successor() == {0: 1, 2: 0}


@pytest.mark.parametrize("after", [[], ["curious"]])
def test_everything_removed(after: list[str]) -> None:
    result = align(["honest", "harmless"], after, VECTORS, 0.9)
    assert result.counts()["removed"] == 2 and result.counts()["added"] == len(after)


@pytest.mark.parametrize(("before", "after"), [
    (["honest", "harmless", "helpful"], ["harmless", "honest and kind"]),  # moved, reworded, removed
    (["honest", "curious"], ["curious", "helpful", "honest"]),
    (["harmless"], []),
])
def test_fates_are_the_successors_of_align(before: list[str], after: list[str]) -> None:
    successor = align(before, after, VECTORS, 0.9).successor()
    assert fates(before, after, VECTORS, 0.9) == [successor.get(i) for i in range(len(before))]
