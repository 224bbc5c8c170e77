from __future__ import annotations

import numpy as np
import pytest

from stability.analysis.attractors import cluster, cross_run, project, spread
from tests.analysis.handmade import chain, unit

VECTORS = {"S1": unit(1, 0, 0), "S2": unit(0, 1, 0), "S3": unit(0, 0, 1), "M": unit(1, 1, 1),
           "F1": unit(1, 1, 0.9), "X": unit(-1, 1, 0)}


def test_two_starts_merging_into_one_node() -> None:
    runs = [chain("r1", ["S1", "M"], stop="declined"), chain("r2", ["S2", "M"], stop="declined"),
            chain("r3", ["S3", "X"], stop="declined")]
    result = cross_run(runs, VECTORS, cluster_threshold=0.1)
    [merge] = result.merges
    assert merge.node == "M" and merge.runs == ["r1", "r2"] and merge.starts == ["S1", "S2"]
    assert merge.first_steps == {"r1": 1, "r2": 1} and merge.is_final
    assert result.distinct_starts == 3 and result.distinct_finals == 2
    clusters = sorted(sorted(a.runs) for a in result.attractors)
    assert clusters == [["r1", "r2"], ["r3"]]


def test_same_start_twice_is_not_a_merge() -> None:
    runs = [chain("r1", ["S1", "M"]), chain("r2", ["S1", "M"])]
    result = cross_run(runs, VECTORS, 0.1)
    assert result.merges == []
    assert result.convergence_ratio is None  # one start: no spread to compare with


def test_convergence_ratio_below_one_when_runs_converge() -> None:
    converge = [chain("r1", ["S1", "M"]), chain("r2", ["S2", "F1"]), chain("r3", ["S3", "M"])]
    result = cross_run(converge, VECTORS, 0.1)
    assert result.start_spread == 1.0
    assert result.convergence_ratio is not None and result.convergence_ratio < 0.01
    assert len(result.attractors) == 1 and result.attractors[0].starts == ["S1", "S2", "S3"]
    diverge = [chain("r1", ["M", "S1"]), chain("r2", ["F1", "S2"])]
    ratio = cross_run(diverge, VECTORS, 0.1).convergence_ratio
    assert ratio is not None and ratio > 1


def test_graph_cycles_across_runs() -> None:
    runs = [chain("r1", ["S1", "S2"]), chain("r2", ["S2", "S1"])]
    assert cross_run(runs, VECTORS, 0.1).graph_cycles in ([["S1", "S2"]], [["S2", "S1"]])


def test_spread_cluster_project_basics() -> None:
    points = np.stack([unit(1, 0), unit(1, 0.01), unit(0, 1)])
    assert spread(points[:1]) == 0.0
    assert cluster(points, 0.1).tolist() == [1, 1, 2]
    flat = project(points)
    assert flat.shape == (3, 2) and np.allclose(flat.mean(axis=0), 0, atol=1e-6)


_CYCLES_SCRIPT = """
import json
from types import SimpleNamespace as N
from stability.analysis.attractors import graph_cycles
runs = []
for r in range(60):  # overlapping short loops over shared named nodes: more cycles than the cap keeps
    ring = [f"sha256:{(r * 5 + j * (1 + r % 4)) % 31:02d}" for j in range(1 + r % 4 + 2)]
    walk = [f"sha256:in{r}"] + ring + ring[:1] + [f"sha256:out{r}"]  # tails into and out of the loops
    runs.append(N(usable=[N(node=n) for n in walk]))
print(json.dumps(graph_cycles(runs)))
"""


def test_graph_cycles_are_the_same_whatever_the_hash_seed() -> None:
    """The cycles, their order, where each starts and which the cap keeps do not change with PYTHONHASHSEED
    (networkx walks sets of the nodes; named nodes used to come out in a new order in each process)."""
    import json
    import os
    import subprocess
    import sys

    outputs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", _CYCLES_SCRIPT], env=env, capture_output=True, text=True,
                              check=True)
        outputs.append(json.loads(done.stdout))
    assert outputs[0] and outputs[0] == outputs[1] == outputs[2]
    for cycle in outputs[0]:
        assert len(set(cycle)) == len(cycle) >= 2


def test_projection_centred_in_blocks_is_the_whole_subtraction(monkeypatch: pytest.MonkeyPatch) -> None:
    """project centres the rows a block at a time into its float64 copy: the same floats as centring them all at
    once in float32 and widening (the projection before the blocks), to the last bit."""
    import stability.analysis.attractors as attractors
    from stability.analysis.blas_threads import blas_threads

    rng = np.random.default_rng(3)
    rows = rng.normal(size=(1001, 24)).astype(np.float32)
    wide = (rows - rows.mean(axis=0)).astype(np.float64)
    with blas_threads(1):  # as project does
        _, axes = np.linalg.eigh(wide.T @ wide)
    components = axes[:, ::-1][:, :2].T
    biggest = components[np.arange(2), np.abs(components).argmax(axis=1)]
    expected = wide @ (components * np.where(biggest < 0, -1.0, 1.0)[:, None]).T
    monkeypatch.setattr(attractors, "CENTRE_ROWS", 100)
    assert np.array_equal(project(rows), expected)
