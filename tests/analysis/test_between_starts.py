"""The convergence ratio between starts on planted truth: replicates do not move it, nothing converging reads 1,
its jackknife deletes starts, its null permutes labels within each start."""

from __future__ import annotations

import numpy as np
import pytest

from stability.analysis.between_starts import StartDistances
from stability.analysis.convergence import Params
from stability.analysis.corpus import RunChain
from stability.analysis.measure import EmbeddingUse, Vectors, measure
from tests.analysis.handmade import at_angle, chain, corpus


def _run(run_id: str, model: str, start: str, final: str, seed: int) -> RunChain:
    nodes = [start] if final == start else [start, final]
    run = chain(run_id, nodes + [nodes[-1]] * 2, ["origin"] + ["changed"] * (len(nodes) - 1) + ["declined"] * 2,
                stop="declined", model=model)
    run.config = {"model": model, "protocol": "fresh-instance", "seed": seed, "constitution": f"/x/{start}.md",
                  "options": {}}
    return run


@pytest.mark.parametrize("replicates", [1, 3, 10])
def test_nothing_converging_reads_one_whatever_the_replicates(replicates: int) -> None:
    # every run stays at its start: the finals are as far apart as the starts, with 1, 3 or 10 replicates
    vectors = {f"S{s}": at_angle(0.4 * s) for s in range(4)}
    runs = []
    for s in range(4):
        for r in range(replicates):
            runs.append(_run(f"r{s}-{r}", "m", f"S{s}", f"S{s}", r))
    result = measure(corpus(runs), Vectors(nodes=vectors, principles=vectors), Params(bootstrap=50, permutations=50),
                     EmbeddingUse(model="handmade", texts=0, computed=0))
    [group] = result.groups
    ratio = group.convergence_ratio
    assert ratio.mean == 1.0 and ratio.starts == 4 and ratio.method == "jackknife-t"
    assert ratio.low is not None and ratio.high is not None and ratio.low <= 1.0 <= ratio.high


def test_two_starts_give_a_ratio_without_an_interval_and_say_why() -> None:
    vectors = {"S0": at_angle(0.0), "S1": at_angle(1.0), "F": at_angle(0.5)}
    runs = [_run(f"r{s}{r}", "m", s, "F", r) for s in ("S0", "S1") for r in range(3)]
    result = measure(corpus(runs), Vectors(nodes=vectors, principles=vectors), Params(bootstrap=50, permutations=50),
                     EmbeddingUse(model="handmade", texts=0, computed=0))
    ratio = result.groups[0].convergence_ratio
    assert ratio.mean == 0.0 and ratio.low is None and ratio.note is not None and "2 starts" in ratio.note


def test_jackknife_deletions_equal_the_ratio_recomputed_without_each_start() -> None:
    rng = np.random.default_rng(3)
    n = 12
    starts = [f"S{i % 4}" for i in range(n)]
    start_vec = {f"S{s}": v / np.linalg.norm(v) for s, v in enumerate(rng.normal(size=(4, 5)))}
    finals = rng.normal(size=(n, 5))
    finals /= np.linalg.norm(finals, axis=1, keepdims=True)
    sv = np.stack([start_vec[s] for s in starts])
    d_starts, d_finals = 1 - sv @ sv.T, 1 - finals @ finals.T
    distances = StartDistances(d_starts, d_finals, starts)
    by_start = {s: [i for i in range(n) if starts[i] == s] for s in sorted(set(starts))}
    jack = distances.jackknife(by_start)

    def brute(keep: list[int]) -> float:
        pairs = [(i, j) for i in keep for j in keep if starts[i] != starts[j]]
        return sum(d_finals[i, j] for i, j in pairs) / sum(d_starts[i, j] for i, j in pairs)

    assert jack.value is not None and np.isclose(jack.value, brute(list(range(n))))
    for name, deleted in zip(sorted(by_start), jack.deleted, strict=True):
        assert deleted is not None and np.isclose(deleted, brute([i for i in range(n) if starts[i] != name]))


def test_the_within_start_null_finds_the_less_convergent_group() -> None:
    # model "c" takes three far-apart starts to one final; model "d" leaves them where they are (3 replicates)
    vectors = {"S1": at_angle(0.0), "S2": at_angle(0.6), "S3": at_angle(1.2), "F": at_angle(0.3)}
    runs = []
    for seed in range(3):
        for s in ("S1", "S2", "S3"):
            runs.append(_run(f"c{s}{seed}", "c", s, "F", seed))
            runs.append(_run(f"d{s}{seed}", "d", s, s, seed))
    result = measure(corpus(runs), Vectors(nodes=vectors, principles=vectors), Params(bootstrap=100,
                     permutations=300), EmbeddingUse(model="handmade", texts=0, computed=0), by=["model"])
    c, d = result.groups
    assert c.convergence_ratio.mean == 0.0 and d.convergence_ratio.mean == 1.0
    for g in (c, d):  # the null keeps each start's count: both groups lie outside it, on either side
        assert g.convergence_ratio.p_value is not None and g.convergence_ratio.p_value < 0.05
        assert g.convergence_ratio.null_low is not None and g.convergence_ratio.null_high is not None
        assert g.convergence_ratio.null_low < 1.0 and g.convergence_ratio.null_high > 0.0
    [contrast] = result.contrasts
    assert contrast.paired and contrast.convergence_ratio.mean == -1.0
    assert contrast.convergence_ratio.high is not None and contrast.convergence_ratio.high < 0
