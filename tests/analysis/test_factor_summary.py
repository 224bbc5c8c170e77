"""An experiment's factors from its cells in one pass: every distinct value in grid order (1, 1.0 and True apart,
as JSON keeps them; a dict or list by its JSON), the factors that vary, and the replicates (cells per combination
of every factor but the seed)."""

from __future__ import annotations

from stability.analysis.experiments import factor_summary


def test_values_are_kept_in_order_with_their_types_and_replicates_ignore_the_seed() -> None:
    cells = [{"model": "a", "temperature": 1, "options": {"k": [1, 2]}, "seed": 0},
             {"model": "a", "temperature": 1.0, "options": {"k": [1, 2]}, "seed": 1},
             {"model": "b", "temperature": True, "options": {"k": [1, 2]}, "seed": 2},
             {"model": "a", "temperature": 1, "options": {"k": [1, 2]}, "seed": 3},
             {"model": "a", "temperature": 1, "options": {"k": [2, 1]}, "seed": 4}]
    factors, varied, replicates = factor_summary(cells)
    assert factors["model"] == ["a", "b"]
    assert [(v, type(v)) for v in factors["temperature"]] == [(1, int), (1.0, float), (True, bool)]
    assert factors["options"] == [{"k": [1, 2]}, {"k": [2, 1]}]
    assert factors["seed"] == [0, 1, 2, 3, 4]
    assert varied == ["model", "temperature", "options", "seed"]
    assert replicates == 2  # model a, temperature 1 (int), options k=[1, 2]: seeds 0 and 3
    assert factor_summary([]) == ({}, [], 0)
