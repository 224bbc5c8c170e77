"""Attractor clusters without an n x n matrix over runs (stability.analysis.final_clusters)."""

from __future__ import annotations

import numpy as np
import pytest

import stability.analysis.final_clusters as final_clusters
from stability.analysis.average_linkage import cut_average_linkage
from stability.analysis.final_clusters import cluster


def _partition(labels: np.ndarray) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(i)
    return sorted(groups.values())


def _old_cluster(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """The method before issue 30: the full runs x runs float32 matrix, cut."""
    d = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0).astype(np.float32)
    np.fill_diagonal(d, 0.0)
    d = (d + d.T) / 2
    return cut_average_linkage(d, threshold)


def _finals(rng: np.random.Generator, n: int, dim: int, centres: int, noise: float, copies: float
            ) -> tuple[np.ndarray, list[str]]:
    """Unit rows around centres; a share of runs end in a final another run ended in (same row, same key)."""
    middle = rng.normal(size=(centres, dim))
    rows = middle[rng.integers(0, centres, n)] + noise * rng.normal(size=(n, dim))
    keys = [f"node{i}" for i in range(n)]
    again = np.flatnonzero(rng.random(n) < copies)
    source = rng.integers(0, n, len(again))
    for i, j in zip(again.tolist(), source.tolist(), strict=True):
        rows[i], keys[i] = rows[j], keys[j]
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32), keys


def _adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) / 2).sum())
    _, joint = np.unique(np.stack([a, b]), axis=1, return_counts=True)
    both = pairs(joint)
    left, right = pairs(np.unique(a, return_counts=True)[1]), pairs(np.unique(b, return_counts=True)[1])
    expected = left * right / (len(a) * (len(a) - 1) / 2)
    return (both - expected) / ((left + right) / 2 - expected)


@pytest.mark.parametrize("seed", range(6))
def test_distinct_finals_give_the_old_clusters(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vectors, _ = _finals(rng, 300, 12, 10, float(rng.choice([0.1, 0.3])), 0.3)
    for threshold in (0.05, 0.1, 0.3):
        assert _partition(cluster(vectors, threshold)) == _partition(_old_cluster(vectors, threshold))


def test_runs_with_one_final_count_as_one_weighted_point(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors, keys = _finals(np.random.default_rng(3), 400, 8, 6, 0.2, 0.6)
    sizes: list[int] = []
    real = final_clusters.cut_average_linkage

    def watched(d: np.ndarray, threshold: float, weights: np.ndarray | None = None) -> np.ndarray:
        sizes.append(len(d))
        assert weights is not None and weights.sum() == len(vectors)  # each point weighs its runs
        return real(d, threshold, weights)

    monkeypatch.setattr(final_clusters, "cut_average_linkage", watched)
    cluster(vectors, 0.1)
    assert sizes == [len(set(keys))] and sizes[0] < len(vectors)  # a final's runs are one point


def test_above_the_exact_limit_no_matrix_over_runs_and_close_to_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors, _ = _finals(np.random.default_rng(11), 3000, 16, 40, 0.25, 0.1)
    exact = cluster(vectors, 0.1)
    monkeypatch.setattr(final_clusters, "EXACT_LIMIT", 256)
    monkeypatch.setattr(final_clusters, "BLOCK", 256)
    largest: list[int] = []
    real = final_clusters.block_pairs

    def watched(rows: np.ndarray, k: int, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        largest.append(len(rows))
        return real(rows, k, threshold)

    monkeypatch.setattr(final_clusters, "block_pairs", watched)
    approximate = cluster(vectors, 0.1)
    assert largest and max(largest) <= 256  # every matrix is a block's, never runs x runs
    assert _adjusted_rand(exact, approximate) > 0.9
    # every cluster it forms is within the cut on average (an average-linkage merge never exceeds it)
    for label in np.unique(approximate):
        members = vectors[approximate == label]
        if len(members) > 1:
            d = 1.0 - members @ members.T
            assert d[~np.eye(len(members), dtype=bool)].mean() <= 0.1 + 1e-6  # by induction over its merges


def test_the_graph_path_is_exact_when_every_pair_is_a_neighbour(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors, _ = _finals(np.random.default_rng(5), 200, 6, 5, 0.2, 0.0)
    exact = _partition(cluster(vectors, 0.1))
    monkeypatch.setattr(final_clusters, "EXACT_LIMIT", 10)  # the graph path, one block holding every point
    monkeypatch.setattr(final_clusters, "NEIGHBOURS", 200)
    assert _partition(cluster(vectors, 0.1)) == exact


def test_small_inputs() -> None:
    assert cluster(np.zeros((0, 4), dtype=np.float32), 0.1).tolist() == []
    one = np.array([[1.0, 0.0]], dtype=np.float32)
    assert cluster(one, 0.1).tolist() == [1]
    same = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert cluster(same, 0.0).tolist() == [1, 1, 2]  # one final: one cluster even at a 0 cut


def test_the_graph_path_survives_ties(monkeypatch: pytest.MonkeyPatch) -> None:
    # many points almost at the same few places (ties within float rounding, which can order a pair differently
    # from each side), few enough per place that the 32 neighbours reach the other places
    rng = np.random.default_rng(2)
    places, _ = _finals(rng, 40, 8, 6, 0.3, 0.0)
    vectors = places[rng.integers(0, 40, 600)] + np.float32(1e-7) * rng.normal(size=(600, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = cluster(vectors, 0.1)
    monkeypatch.setattr(final_clusters, "EXACT_LIMIT", 50)
    monkeypatch.setattr(final_clusters, "BLOCK", 128)
    approximate = cluster(vectors, 0.1)
    assert _adjusted_rand(exact, approximate) > 0.9


def test_clustering_leaves_its_input_as_it_was() -> None:
    """The sums are made in place from a gathered copy, never in the caller's array (float32 or float64)."""
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((50, 8))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    rows = np.concatenate([rows, rows[:10]])  # repeated rows: weighted points
    for vectors in (rows.astype(np.float32), rows.copy()):
        kept = vectors.copy()
        labels = cluster(vectors, 0.5)
        assert np.array_equal(vectors, kept)
        assert np.array_equal(labels[50:], labels[:10])  # a repeated row is in its original's cluster


def _planted(rng: np.random.Generator, groups: int, per: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``groups`` far-apart centres (random directions in ``dim``), ``per`` points tightly around each (cosine
    distance ~0.005 to their centre), a fifth of them repeated (a final reached by several runs)."""
    centres = rng.normal(size=(groups, dim))
    truth = np.repeat(np.arange(groups), per)
    rows = centres[truth] / np.linalg.norm(centres[truth], axis=1, keepdims=True) + 0.1 / np.sqrt(dim) * rng.normal(
        size=(len(truth), dim))
    again = rng.random(len(truth)) < 0.2
    rows[again] = rows[np.flatnonzero(again) - 1]
    truth[again] = truth[np.flatnonzero(again) - 1]
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32), truth


@pytest.mark.parametrize("path", ["exact", "graph"])
def test_planted_clusters_are_recovered_exactly_on_both_paths(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    vectors, truth = _planted(np.random.default_rng(7), 30, 80, 48)
    if path == "graph":  # 30 groups of 80 over blocks of 256: groups cut by the trees' splits, joined again
        monkeypatch.setattr(final_clusters, "EXACT_LIMIT", 100)
        monkeypatch.setattr(final_clusters, "BLOCK", 256)
        monkeypatch.setattr(final_clusters, "NEIGHBOURS", 8)
    assert _partition(cluster(vectors, 0.1)) == _partition(truth)


def test_the_bounds_never_change_a_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pair a neighbour: the graph chain is the exact cut, also when it computes as few distances as it can
    (the lowest bound first, then only those below the best found) and drops candidates beyond the cut."""
    vectors, _ = _finals(np.random.default_rng(8), 400, 8, 12, 0.25, 0.2)
    for threshold in (0.05, 0.1, 0.2):
        exact = _partition(cluster(vectors, threshold))
        with monkeypatch.context() as patch:
            patch.setattr(final_clusters, "EXACT_LIMIT", 10)
            patch.setattr(final_clusters, "NEIGHBOURS", 400)
            patch.setattr(final_clusters, "LOOK", 1)
            assert _partition(cluster(vectors, threshold)) == exact


def test_every_graph_cluster_is_within_the_cut_on_average(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each merge of the chain joins two clusters whose exact average distance is at or below the cut, whatever
    the bounds said; so (by induction over its merges) each cluster's mean distance over its pairs of runs is too."""
    vectors, _ = _finals(np.random.default_rng(9), 1500, 16, 30, 0.3, 0.2)
    first, inverse = final_clusters.distinct_rows(vectors)
    sizes = np.bincount(inverse).astype(np.float64)
    sums = vectors[first].astype(np.float64) * sizes[:, None]
    monkeypatch.setattr(final_clusters, "BLOCK", 128)
    monkeypatch.setattr(final_clusters, "LOOK", 2)
    graph = final_clusters.neighbours((sums / sizes[:, None]).astype(np.float32), 0.1)
    labels = final_clusters.cut_on_graph(sums, sizes, 0.1, graph)
    spreads = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        s, n = sums[members].sum(axis=0), sizes[members].sum()
        if n > 1:
            spreads.append((n * n - s @ s) / (n * (n - 1)))  # unit rows: sum over i != j of 1 - v_i . v_j
    assert len(spreads) > 20 and max(spreads) > 0.05  # it merged, and not only near-identical points
    assert max(spreads) <= 0.1 + 1e-6
