"""The average-linkage cut gives SciPy's flat clusters (``fcluster(linkage(..., "average"), t, "distance")``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from stability.analysis.attractors import cluster
from stability.analysis.average_linkage import cut_average_linkage


def _partition(labels: np.ndarray) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(i)
    return sorted(groups.values())


def _scipy(d: np.ndarray, threshold: float) -> list[list[int]]:
    return _partition(fcluster(linkage(squareform(d.astype(np.float64), checks=False), method="average"),
                               t=threshold, criterion="distance"))


def _points(rng: np.random.Generator, n: int, dim: int, centres: int, noise: float) -> np.ndarray:
    """Unit rows around a few centres, some rows exact copies of others (as identical finals are)."""
    middle = rng.normal(size=(centres, dim))
    rows = middle[rng.integers(0, centres, n)] + noise * rng.normal(size=(n, dim))
    copies = rng.random(n) < 0.2
    rows[copies] = rows[rng.integers(0, n, int(copies.sum()))]
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _distances(points: np.ndarray) -> np.ndarray:
    d = np.clip(1.0 - points @ points.T, 0.0, 2.0).astype(np.float32)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    return d


@pytest.mark.parametrize("seed", range(12))
def test_the_same_clusters_as_scipy_at_every_threshold(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = _points(rng, int(rng.integers(2, 160)), int(rng.integers(3, 24)), int(rng.integers(1, 9)),
                     float(rng.choice([0.05, 0.2, 0.6])))
    d = _distances(points)
    for threshold in (0.0, 0.02, 0.1, 0.3, 0.7, 1.5, 2.5):
        expected = _scipy(d, threshold)
        assert _partition(cut_average_linkage(d.copy(), threshold)) == expected, (seed, threshold)


def test_it_really_averages_rather_than_taking_the_nearest_or_farthest() -> None:
    # points on a line: {0, 1} at 0.1 and {2, 3} at 0.12; between the pairs the nearest is 0.2, the farthest
    # 0.42, the average 0.31; point 4 is 0.48 from the nearest of the four, 0.695 on average, 0.9 at most
    positions = np.array([0.0, 0.1, 0.3, 0.42, 0.9])
    d = np.abs(positions[:, None] - positions[None, :]).astype(np.float32)
    expected = {0.05: [[0], [1], [2], [3], [4]], 0.25: [[0, 1], [2, 3], [4]], 0.35: [[0, 1, 2, 3], [4]],
                0.6: [[0, 1, 2, 3], [4]], 0.7: [[0, 1, 2, 3, 4]]}
    for threshold, partition in expected.items():
        assert _partition(cut_average_linkage(d.copy(), threshold)) == _scipy(d, threshold) == partition


def test_small_and_degenerate_inputs() -> None:
    assert cut_average_linkage(np.zeros((0, 0), dtype=np.float32), 0.1).tolist() == []
    assert cut_average_linkage(np.zeros((1, 1), dtype=np.float32), 0.1).tolist() == [0]
    far = np.array([[0, 1], [1, 0]], dtype=np.float32)
    assert len(set(cut_average_linkage(far.copy(), 0.5).tolist())) == 2
    assert len(set(cut_average_linkage(far.copy(), 1.0).tolist())) == 1  # a merge exactly at t is kept
    same = np.zeros((4, 4), dtype=np.float32)
    assert len(set(cut_average_linkage(same, 0.0).tolist())) == 1


def test_cluster_labels_match_scipy_on_unit_vectors() -> None:
    points = _points(np.random.default_rng(7), 300, 16, 12, 0.15)
    labels = cluster(points, 0.1)
    assert labels[0] == 1 and set(labels.tolist()) == set(range(1, labels.max() + 1))  # numbered by appearance
    assert _partition(labels) == _scipy(_distances(points), 0.1)
