"""Average-linkage (UPGMA) clusters cut at a distance, without building the whole dendrogram.

``cut_average_linkage(d, t)`` gives the flat clusters that ``fcluster(linkage(squareform(d), "average"), t,
criterion="distance")`` gives: the clusters of every merge at height <= t. It runs the nearest-neighbour chain
that SciPy's ``linkage`` runs for average linkage (the same tie rule: the previous element of the chain first,
else the lowest index), on the square matrix the caller already holds, with two differences:

- it stops at ``t``: when the chain's top has no cluster within ``t``, no cluster of the chain does (each link
  of a chain is at most the one before it), and none ever will: average linkage is *reducible*, the distance
  from a cluster to a union is at least the smaller of its distances to the parts. So the whole chain is
  retired, and the merges above ``t`` (which the cut discards) are never made;
- rows are read whole (``argmin`` over a contiguous row, gone clusters masked by adding infinity) instead of
  element by element through a condensed index, which strides across memory.

Merged distances are computed in float64 (as SciPy does) and stored back in the float32 matrix, so merge heights
can differ from SciPy's by float rounding; the clusters are the same unless two candidate merges tie within that
rounding (on the 100k benchmark databases: the same 1,623 and 1,431 clusters, tests/analysis/test_average_linkage).
At 8,326 finals: 0.6 s of CPU instead of 2.4 s for ``linkage`` and 0.3 s for ``squareform``, and no condensed
copies (138 MB float32 and 277 MB float64).
"""

from __future__ import annotations

import numpy as np


def next_start(active: np.ndarray, first: int) -> int:
    """Where the nearest-neighbour chain starts again once it is empty: the first cluster still active at or after
    ``first`` (``len(active)`` when none is left)."""
    n = len(active)
    while first < n and not active[first]:
        first += 1
    return first


def cut_average_linkage(d: np.ndarray, threshold: float, sizes: np.ndarray | None = None) -> np.ndarray:
    """Flat average-linkage clusters of a symmetric float32 distance matrix ``d`` (overwritten: its diagonal,
    and the rows and columns of merged clusters), cut at ``threshold``; ``sizes``: how many points each row
    stands for (identical points, or clusters already formed: the weights of the averages), default one each.

    Returns, for each row, the index of a representative row of its cluster (equal values: one cluster)."""
    n = len(d)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    np.fill_diagonal(d, np.inf)
    size = np.ones(n, dtype=np.float64) if sizes is None else np.asarray(sizes, dtype=np.float64).copy()
    merged_into = np.arange(n)
    active = np.ones(n, dtype=bool)
    gone = np.zeros(n, dtype=d.dtype)  # +inf where a cluster was merged away or retired: added to each row read
    row = np.empty(n, dtype=d.dtype)
    chain: list[int] = []
    first = 0
    while (first := next_start(active, first)) < n or chain:
        if not chain:
            chain.append(first)
        x = chain[-1]
        np.add(d[x], gone, out=row)
        y = int(row.argmin())
        nearest = float(row[y])
        if len(chain) > 1 and float(row[chain[-2]]) <= nearest:  # SciPy's rule: prefer the previous element
            y = chain[-2]
            nearest = float(row[y])
        if nearest > threshold:  # nothing within the threshold, now or later, for any cluster of the chain
            for c in chain:
                active[c] = False
                gone[c] = np.inf
            chain.clear()
            continue
        if len(chain) < 2 or y != chain[-2]:
            chain.append(y)
            continue
        del chain[-2:]  # x and y are each other's nearest: merge them into the higher index (SciPy's convention)
        a, b = (x, y) if x < y else (y, x)
        na, nb = size[a], size[b]
        joined = ((na * d[a].astype(np.float64) + nb * d[b].astype(np.float64)) / (na + nb)).astype(d.dtype)
        joined[b] = np.inf
        d[b] = joined
        d[:, b] = joined
        size[b] = na + nb
        active[a] = False
        gone[a] = np.inf
        merged_into[a] = b
    roots = merged_into
    while True:  # follow each row to the cluster it ended in
        up = roots[roots]
        if np.array_equal(up, roots):
            return roots
        roots = up
