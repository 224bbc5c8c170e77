"""The per-run measures computed for many runs at once (stability/analysis/run_measures.py) against the plain rules
of stability/analysis/convergence.py written out one run at a time, on planted truths and random chains."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from stability.analysis import run_measures
from stability.analysis.convergence import FixedPoint, NearCycle, Params, RunConvergence, StepMeasure, exact_cycles
from stability.analysis.corpus import FAILED_DECISIONS, Corpus, RunChain, Visit
from stability.analysis.run_measures import pairs_within, round6, run_convergence, run_convergences
from tests.analysis.handmade import chain, corpus, unit


def _plain_distances(vectors: np.ndarray) -> np.ndarray:
    """One run's distances as the per-run code made them (einsum up to 64 distinct nodes, BLAS above)."""
    product = np.einsum("ik,jk->ij", vectors, vectors) if len(vectors) <= 64 else vectors @ vectors.T
    return np.clip(1.0 - product, 0.0, 2.0)


def _plain(run: RunChain, nodes_vectors: dict[str, np.ndarray], params: Params) -> dict[str, object]:
    """The rules of convergence.py, one run, one visit at a time (no arrays beyond the distance matrix)."""
    visits = run.usable
    nodes, steps = [v.node for v in visits], [v.step for v in visits]
    distinct = list(dict.fromkeys(nodes))
    small = _plain_distances(np.array([nodes_vectors[x] for x in distinct]))
    matrix = [[small[distinct.index(a), distinct.index(b)] for b in nodes] for a in nodes]
    eps, k = params.epsilon, params.k if params.k is not None else run.declines_to_stop
    near = []
    for t in range(len(nodes)):
        for s in range(t - 2, -1, -1):
            left = any(matrix[s][u] > eps for u in range(s + 1, t))
            if nodes[s] != nodes[t] and matrix[s][t] <= eps and left:
                near.append((steps[s], steps[t], round(float(matrix[s][t]), 6)))
                break
    point = None
    cycles: list[tuple[tuple[str, ...], int, int, int]] = []
    if not run.chain:
        verdict, near = "not_chain", []
    elif run.no_verdict is not None:
        verdict = "no_verdict"
    else:
        answered = [i for i, v in enumerate(visits) if v.decision not in FAILED_DECISIONS]
        a_nodes = [nodes[i] for i in answered]
        last = len(answered) - 1
        begin = last
        while begin > 0 and a_nodes[begin - 1] == a_nodes[last]:
            begin -= 1
        returns = [t for t in range(len(a_nodes)) if a_nodes[t] in a_nodes[:t]
                   and t - max(s for s in range(t) if a_nodes[s] == a_nodes[t]) > 1]
        if last - begin >= k:
            how = "declines" if run.stop_reason == "declined" else "exact_repeat"
            point = (steps[answered[begin]], a_nodes[begin], how, last - begin)
        else:
            for s in range(max(0, max(returns, default=-1)), last - k + 1):
                if max(float(matrix[answered[s]][answered[t]]) for t in range(s, last + 1)) <= eps:
                    point = (steps[answered[s]], a_nodes[s], "epsilon", last - s)
                    break
        cycles = [(tuple(c.nodes), c.from_step, c.to_step, c.returns)
                  for c in exact_cycles(a_nodes, [steps[i] for i in answered])]
        verdict = "fixed_point" if point else "cycle" if cycles else "unsettled"
    d = [[round(float(matrix[i][j]), 6) for j in range(len(nodes))] for i in range(len(nodes))]
    return {"verdict": verdict, "point": point, "cycles": cycles, "near": near[:50], "near_total": len(near),
            "d_prev": [None] + [d[i - 1][i] for i in range(1, len(nodes))], "d_origin": [row[0] for row in d],
            "d_final": [row[-1] for row in d]}


def _seen(result: RunConvergence) -> dict[str, object]:
    p = result.fixed_point
    return {"verdict": result.verdict, "point": (p.step, p.node, p.how, p.held_steps) if p else None,
            "cycles": [(tuple(c.nodes), c.from_step, c.to_step, c.returns) for c in result.cycles],
            "near": [(c.from_step, c.to_step, c.distance) for c in result.near_cycles],
            "near_total": result.near_cycles_total, "d_prev": [s.d_prev for s in result.steps],
            "d_origin": [s.d_origin for s in result.steps], "d_final": [s.d_final for s in result.steps]}


def _random_runs(rng: random.Random, count: int) -> list[RunChain]:
    runs = []
    for i in range(count):
        alphabet = "ABCDEFGH"[:rng.randint(1, 8)]
        length = rng.randint(1, 30)
        nodes = [rng.choice(alphabet) for _ in range(length)]
        if rng.random() < 0.3:  # settles on a node and its twin within ε (an ε fixed point, unless a return)
            twin = rng.randint(0, 3)
            nodes += ["ABCD"[twin]] * rng.randint(1, 3) + ["EFGH"[twin]] * rng.randint(1, 3)
            length = len(nodes)
        decisions = ["origin"] + [rng.choice(["changed", "declined", "declined", "parse_failure", "truncated",
                                              "error"]) for _ in range(length - 1)]
        if rng.random() < 0.7:  # most runs end on an answer
            decisions[-1] = rng.choice(["changed", "declined"])
        run = RunChain(run_id=f"r{i}", visits=[Visit(s, n, d) for s, (n, d) in enumerate(zip(nodes, decisions,
                                                                                              strict=True))],
                       stop_reason=rng.choice(["declined", "max_steps", "cycle"]), declines_to_stop=rng.randint(1, 4),
                       status=rng.choice(["done"] * 5 + ["running"]), chain=rng.random() < 0.9)
        if run.usable:
            runs.append(run)
    return runs


def _vectors(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Eight nodes in four directions, some pairs within ε of each other (near cycles), float32 unit rows."""
    base = rng.normal(size=(4, 16))
    rows = np.concatenate([base, base + rng.normal(scale=0.05, size=(4, 16))])
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return dict(zip("ABCDEFGH", rows, strict=True))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_run_of_a_batch_follows_the_rules_one_at_a_time(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_measures, "PAIRS", 200)  # many batches, and a run larger than a batch alone
    monkeypatch.setattr(run_measures, "GATHER", 40)
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    runs = _random_runs(rng, 300)
    vectors = _vectors(nrng)
    params = Params(epsilon=0.03, k=None if seed else 2)
    results = run_convergences(runs, corpus(runs), vectors, None, params)
    assert [r.run_id for r in results] == [r.run_id for r in runs]
    for run, result in zip(runs, results, strict=True):
        assert _seen(result) == _plain(run, vectors, params), run.run_id
    kinds = {r.verdict for r in results} | {r.fixed_point.how for r in results if r.fixed_point}
    assert {"fixed_point", "cycle", "unsettled", "no_verdict", "not_chain", "declines", "exact_repeat",
            "epsilon"} <= kinds
    assert sum(r.near_cycles_total for r in results) > 20


def test_a_run_with_more_distinct_nodes_than_one_einsum_takes_and_one_too_long_for_a_matrix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    names = [f"n{i}" for i in range(80)]
    rows = rng.normal(size=(80, 8))
    vectors = {n: (r / np.linalg.norm(r)).astype(np.float32) for n, r in zip(names, rows, strict=True)}
    wide = chain("wide", names + names[:3])  # 80 distinct nodes: the BLAS product, as before
    result = run_convergence(wide, corpus([wide]), vectors, None, Params())
    assert _seen(result) == _plain(wide, vectors, Params())
    monkeypatch.setattr(run_measures, "FULL_MATRIX_LIMIT", 20)  # too long: curves by products, no ε rule
    long = chain("long", ["n0", "n1"] * 10 + ["n2", "n2", "n2"], ["origin"] + ["changed"] * 20 + ["declined"] * 2,
                 stop="declined")
    short = chain("short", ["n0", "n1", "n1", "n1"], ["origin", "changed", "declined", "declined"], stop="declined")
    got = run_convergences([long, short], corpus([long, short]), vectors, None, Params())
    assert got[0].near_cycles_total == 0 and got[0].fixed_point is not None
    assert (got[0].fixed_point.step, got[0].fixed_point.how, got[0].verdict) == (20, "declines", "fixed_point")
    assert [c.period for c in got[0].cycles] == [2]  # the n0-n1 loop: every visit after the first two returns
    assert got[0].cycles[0].returns == 18
    d = 1.0 - float(vectors["n0"] @ vectors["n1"])
    assert got[0].steps[1].d_prev == pytest.approx(d, abs=1e-6) and got[0].steps[0].d_prev is None
    assert got[1] == run_convergence(short, corpus([short]), vectors, None, Params())


def test_planted_a_fixed_point_at_step_3_a_two_cycle_and_a_near_cycle() -> None:
    vectors = {"A": unit(1, 0, 0), "B": unit(0, 1, 0), "C": unit(0, 0, 1), "A2": unit(1, 0.01, 0)}
    settles = chain("settles", ["A", "B", "B", "C", "C", "C"],
                    ["origin", "changed", "declined", "changed", "declined", "declined"], stop="declined")
    two = chain("two", ["A", "B", "A", "B", "A"], stop="cycle")
    near = chain("near", ["A", "B", "A2", "C"], stop="max_steps")
    got = run_convergences([settles, two, near], corpus([settles, two, near]), vectors, None, Params())
    assert got[0].fixed_point == FixedPoint(step=3, node="C", how="declines", held_steps=2)
    assert got[1].verdict == "cycle" and [(c.nodes, c.period, c.returns, c.repeated) for c in got[1].cycles] == \
        [(["A", "B"], 2, 3, True)]
    assert got[1].near_cycles == []  # exact returns are not near cycles
    assert got[2].verdict == "unsettled" and got[2].near_cycles == [NearCycle(
        from_step=0, to_step=2, distance=round(float(1 - unit(1, 0, 0) @ unit(1, 0.01, 0)), 6), from_node="A",
        to_node="A2")]


def test_alignment_counts_are_filled_once_per_transition_and_shared_by_its_steps() -> None:
    """One mapping per transition, held by every step that makes it (not a copy each: 1M steps at 1M revisions)."""
    vectors = {"A": unit(1, 0), "B": unit(0, 1)}
    principles: dict[str, tuple[str, ...]] = {"A": ("keep", "drop"), "B": ("keep", "new")}
    word = {"keep": unit(1, 0), "drop": unit(0, 1), "new": unit(-1, 0.1)}
    runs = [chain("r1", ["A", "B", "B"]), chain("r2", ["A", "B"])]
    counts: dict[tuple[str, str], dict[str, int]] = {}
    got = run_convergences(runs, Corpus(runs=runs, principles=principles), vectors, word, Params(), counts)
    assert list(counts) == [("A", "B")]
    assert got[0].steps[1].changes == {"kept": 1, "reworded": 0, "moved": 0, "added": 1, "removed": 1}
    assert got[0].steps[2].changes is None and got[0].steps[0].changes is None
    assert got[1].steps[1].changes is counts[("A", "B")] and got[0].steps[1].changes is counts[("A", "B")]
    assert [s.n_principles for s in got[0].steps] == [2, 2, 2]


def test_records_built_without_validation_equal_validated_ones() -> None:
    values = {"step": 3, "node": "n", "decision": "changed", "n_principles": 2, "d_prev": None, "d_origin": 0.5,
              "d_final": 0.25, "changes": {"kept": 1}}
    built = run_measures._record(StepMeasure, dict(values))
    assert built == StepMeasure.model_validate(values)
    assert built.model_dump_json() == StepMeasure.model_validate(values).model_dump_json()
    run = chain("r", ["A", "B"])
    result = run_convergence(run, corpus([run]), {"A": unit(1, 0), "B": unit(0, 1)}, None, Params())
    assert RunConvergence.model_validate(result.model_dump()) == result
    assert result.model_dump_json() == RunConvergence.model_validate(result.model_dump()).model_dump_json()


def test_round6_is_pythons_round() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.random(20000).astype(np.float32).astype(np.float64), rng.random(20000) * 2,
                             np.arange(0, 2, 1e-6)[::997] + 5e-7,  # exact halves of the sixth place, near enough
                             np.array([0.0, 0.0078125, 2.0, 1e-9, 0.5e-6, 1.5e-6])])
    assert round6(values) == [round(float(x), 6) for x in values]


def test_pairs_within_segments() -> None:
    lengths = np.array([3, 0, 1, 4])
    starts = np.cumsum(lengths) - lengths
    for diagonal in (False, True):
        s, t = pairs_within(lengths, diagonal)
        expected = [(a + o, b + o) for o, n in zip(starts.tolist(), lengths.tolist(), strict=True)
                    for a, b in (itertools.combinations_with_replacement(range(n), 2) if diagonal
                                 else itertools.combinations(range(n), 2))]
        assert list(zip(s.tolist(), t.tolist(), strict=True)) == expected
