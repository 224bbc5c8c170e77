"""The cheaper per-run paths give what the plain definitions give, and the analysis pauses the garbage collector
without leaving it off (issue 12, speed: the third cut)."""

from __future__ import annotations

import gc
import random
from itertools import groupby

import pytest

from stability.analysis import measure as measure_module
from stability.analysis.convergence import exact_cycles
from stability.analysis.measure import EmbeddingUse, Params, Vectors, gc_paused
from tests.analysis.handmade import chain, corpus, unit


def _exact_cycles_by_definition(nodes: list[str]) -> dict[tuple[str, ...], tuple[int, int, int]]:
    """The earlier test: a revisit is a cycle when any other node lies between the two visits. Per cycle (its
    nodes from the smallest, consecutive repeats collapsed): (first from, first to, returns)."""
    out: dict[tuple[str, ...], tuple[int, int, int]] = {}
    for t, node in enumerate(nodes):
        earlier = [s for s in range(t) if nodes[s] == node]
        if not earlier or set(nodes[earlier[-1]:t]) == {node}:
            continue
        s = earlier[-1]
        turn = [n for n, _ in groupby(nodes[s:t])]
        pivot = turn.index(min(turn))  # the rotation from the first smallest node names the cycle
        key = tuple(turn[pivot:] + turn[:pivot])
        first = out.get(key, (s, t, 0))
        out[key] = (first[0], first[1], first[2] + 1)
    return out


def test_exact_cycles_as_defined_on_random_chains() -> None:
    rng = random.Random(5)
    cycling = 0
    for _ in range(3000):
        nodes = [rng.choice("ABCDE"[: rng.randint(1, 5)]) for _ in range(rng.randint(1, 25))]
        steps = list(range(len(nodes)))
        expected = _exact_cycles_by_definition(nodes)
        found = exact_cycles(nodes, steps)
        assert {tuple(c.nodes[c.nodes.index(min(c.nodes)):] + c.nodes[:c.nodes.index(min(c.nodes))]):
                (c.from_step, c.to_step, c.returns) for c in found} == expected, nodes
        assert all(c.period == len(c.nodes) and c.repeated == (c.returns > 1) for c in found)
        cycling += bool(expected)
    assert 500 < cycling < 2900  # both kinds of chain were tried


def test_the_collector_is_paused_for_the_measures_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    original = measure_module.check_factors

    def spy(*args: object) -> None:
        seen.append(gc.isenabled())
        original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(measure_module, "check_factors", spy)
    runs = corpus([chain("r1", ["A", "B", "B", "B"], ["origin", "changed", "declined", "declined"], stop="declined")])
    points = {"A": unit(1, 0), "B": unit(0, 1)}
    vectors = Vectors(nodes=points, principles=points)
    assert gc.isenabled()
    result = measure_module.measure(runs, vectors, Params(bootstrap=20, permutations=20),
                                    EmbeddingUse(model="m", texts=2, computed=0))
    assert seen == [False] and gc.isenabled() and result.runs[0].verdict == "fixed_point"
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as it was found: off
    finally:
        gc.enable()
