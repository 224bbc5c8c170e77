"""Attractor clusters of the runs' finals: average linkage on cosine distance, cut at a threshold, without an
n x n matrix over runs.

1. **Distinct finals.** Runs that end in the same node have the same vector: each distinct final is one point
   weighted by its number of runs (weighted average linkage, :func:`cut_average_linkage` with ``sizes``). This
   gives the clusters the runs themselves would give: identical points are at distance 0, merge first, and a
   merged group of identical points averages exactly as its members would.
2. **Exact up to** ``EXACT_LIMIT`` **distinct points.** Then the whole (distinct x distinct) float32 matrix is
   built once and cut (at most 256 MiB); on the benchmark databases up to 100k revisions (7,394 distinct finals
   of 8,326 runs) this is the exact method of before.
3. **Above it, on a neighbour graph.** Each point's up to ``NEIGHBOURS`` nearest points within the cut are
   searched inside blocks of at most ``BLOCK`` similar points, in ``TREES`` trees (one split at the median of
   each part's projection on its leading principal axis, the others on random directions, seeded: the same
   result every time); then the nearest-neighbour chain runs on that graph, with exact average distances from
   each cluster's sum of vectors (for unit vectors the average cosine distance between clusters a and b is
   ``1 - S_a . S_b / (n_a n_b)``) and two clusters only compared where a member of one is a neighbour of a
   member of the other. Memory ``O(points · NEIGHBOURS + BLOCK²)``, time ``O(points · BLOCK · dim · TREES)``:
   linear in the runs.

   Every merge it makes is an average-linkage merge at or below the cut; what it can miss is a merge of two
   clusters no member pair of which was found as neighbours (a pair the trees split into different blocks, or
   beyond the ``NEIGHBOURS`` nearest). On the 100k benchmark database's 7,394 distinct finals (MiniLM) with this
   path forced, against the exact cut: adjusted Rand index 0.99, 90% of the points in exactly the same cluster,
   1,469 clusters against 1,467 (tests/analysis/test_final_clusters.py checks the agreement on planted data).
"""

from __future__ import annotations

import numpy as np

from stability.analysis.average_linkage import cut_average_linkage, next_start
from stability.analysis.blas_threads import blas_threads
from stability.analysis.embeddings import encoding_threads

EXACT_LIMIT = 8192  # distinct points cut exactly at once: a float32 matrix of 256 MiB
BLOCK = 2048  # points per block of the neighbour search above it: 16 MiB per block matrix
TREES = 5  # trees whose blocks are searched for neighbours
NEIGHBOURS = 32  # nearest neighbours kept per point


def distinct_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first row of each distinct row (by content: one final reached by several runs, or two orders
    of one constitution's principles, which have one mean vector) and, for each row, its distinct point."""
    first: dict[bytes, int] = {}
    rows = np.ascontiguousarray(vectors)
    inverse = np.fromiter((first.setdefault(row.tobytes(), len(first)) for row in rows), dtype=np.int64,
                          count=len(rows))
    return np.unique(inverse, return_index=True)[1], inverse


def add_transpose(d: np.ndarray, tile: int = 256) -> None:
    """``d += d.T`` for a square matrix, in place and tile by tile: the same values as ``d + d.T`` (float addition
    commutes), without the temporary n x n copy that numpy makes for ``d += d.T`` (its operands overlap)."""
    n = len(d)
    for i in range(0, n, tile):
        for j in range(i, n, tile):
            block = d[i:i + tile, j:j + tile] + d[j:j + tile, i:i + tile].T
            d[i:i + tile, j:j + tile] = block
            d[j:j + tile, i:i + tile] = block.T


def _distances(means: np.ndarray) -> np.ndarray:
    """``1 - m_a . m_b`` in float32, clipped to [0, 2], symmetric, zero diagonal (in place from the product)."""
    rows = means.astype(np.float32)
    with blas_threads(encoding_threads()):
        d = rows @ rows.T
    np.subtract(1.0, d, out=d)
    np.clip(d, 0.0, 2.0, out=d)
    np.fill_diagonal(d, 0.0)
    add_transpose(d)
    d /= 2
    return d


def _cut(sums: np.ndarray, sizes: np.ndarray, threshold: float) -> np.ndarray:
    """Exact weighted average linkage of the points (sums of their members' vectors, sizes): a representative
    point of each point's cluster."""
    if len(sizes) == 1:
        return np.zeros(1, dtype=np.int64)
    return cut_average_linkage(_distances(sums / sizes[:, None]), threshold, sizes)


def _axis(rows: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """The rows' leading principal axis (``rng`` None), else a random direction (a random-projection tree)."""
    if rng is not None:
        return np.asarray(rng.normal(size=rows.shape[1]))
    centred = rows - rows.mean(axis=0)
    with blas_threads(1):
        _, axes = np.linalg.eigh(centred.T @ centred)
    axis = axes[:, -1]
    return axis if axis[np.abs(axis).argmax()] >= 0 else -axis


def blocks(means: np.ndarray, size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """The rows split into blocks of at most ``size`` similar rows: a tree split at the median of each part's
    projection on its leading principal axis, or (``rng``) on random directions."""
    out: list[np.ndarray] = []
    pending = [np.arange(len(means))]
    while pending:
        part = pending.pop()
        if len(part) <= size:
            out.append(part)
            continue
        rows = means[part]  # gathered once (a random axis needs only its width)
        along = rows @ _axis(rows, rng)
        order = part[np.argsort(along, kind="stable")]
        half = len(order) // 2
        pending += [order[half:], order[:half]]
    return out


def neighbours(means: np.ndarray, threshold: float) -> list[set[int]]:
    """For each point, up to ``NEIGHBOURS`` nearest other points within ``threshold``, searched within the
    blocks of ``TREES`` trees (one PCA tree, the others random projections, seeded): symmetric sets."""
    n = len(means)
    rows, cols, dists = [], [], []
    rng = np.random.default_rng(0)
    for tree in range(TREES):
        for part in blocks(means, BLOCK, rng if tree else None):
            k = min(NEIGHBOURS, len(part) - 1)
            if k < 1:
                continue
            d = _distances(means[part])
            np.fill_diagonal(d, np.inf)
            nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
            near_d = np.take_along_axis(d, nearest, axis=1)
            keep = near_d <= threshold
            rows.append(np.repeat(part, k)[keep.ravel()])
            cols.append(part[nearest][keep])
            dists.append(near_d[keep])
    if not rows:
        return [set() for _ in range(n)]
    row, col, dist = np.concatenate(rows), np.concatenate(cols), np.concatenate(dists)
    pair = row * n + col
    pair, first = np.unique(pair, return_index=True)  # a pair found by several trees: once
    row, col, dist = row[first], col[first], dist[first]
    order = np.lexsort((col, dist, row))  # by row, then nearest first
    row, col = row[order], col[order]
    starts = np.searchsorted(row, row)  # each row's first position: a rank within the row
    keep = np.arange(len(row)) - starts < NEIGHBOURS
    row, col = row[keep], col[keep]
    both_r, both_c = np.concatenate([row, col]), np.concatenate([col, row])
    order = np.argsort(both_r, kind="stable")
    both_r, both_c = both_r[order], both_c[order]
    bounds = np.searchsorted(both_r, np.arange(n + 1))
    listed = both_c.tolist()
    return [set(listed[bounds[i]:bounds[i + 1]]) for i in range(n)]


def cut_on_graph(sums: np.ndarray, sizes: np.ndarray, threshold: float, adjacency: list[set[int]]) -> np.ndarray:
    """Weighted average linkage cut at ``threshold`` where clusters only merge along ``adjacency`` (a cluster's
    candidates: its members' neighbours), each distance the exact average ``1 - S_a . S_b / (n_a n_b)``; the
    nearest-neighbour chain of :func:`cut_average_linkage` (the same tie rule). A representative per point."""
    n = len(sizes)
    sums, size = sums.astype(np.float64), sizes.astype(np.float64)
    active = np.ones(n, dtype=bool)
    merged_into = np.arange(n)
    chain: list[int] = []
    in_chain: set[int] = set()
    first = 0
    while (first := next_start(active, first)) < n or chain:
        if not chain:
            chain.append(first)
            in_chain.add(first)
        x = chain[-1]
        candidates = np.fromiter(adjacency[x], dtype=np.int64, count=len(adjacency[x]))
        candidates = np.sort(candidates[active[candidates]])  # retired clusters are out (they merge no more)
        if not len(candidates):
            for c in chain:
                active[c] = False
            chain.clear()
            in_chain.clear()
            continue
        near = 1.0 - (sums[candidates] @ sums[x]) / (size[candidates] * size[x])
        at = int(near.argmin())
        y, nearest = int(candidates[at]), float(near[at])
        if len(chain) > 1:
            previous = chain[-2]
            where = int(np.searchsorted(candidates, previous))
            back = float(near[where]) if where < len(candidates) and candidates[where] == previous else nearest
            if back <= nearest or y in in_chain:
                # SciPy's rule: prefer the previous element; and a cluster already in the chain (a tie that float
                # rounding ordered differently from each side) closes it here: the chain's last link is <= the cut
                y, nearest = previous, min(back, nearest)
        if nearest > threshold:
            for c in chain:
                active[c] = False
            chain.clear()
            in_chain.clear()
            continue
        if len(chain) < 2 or y != chain[-2]:
            chain.append(y)
            in_chain.add(y)
            continue
        del chain[-2:]
        in_chain -= {x, y}
        a, b = (x, y) if x < y else (y, x)
        sums[b] += sums[a]
        size[b] += size[a]
        for c in adjacency[a]:
            adjacency[c].discard(a)
            if c != b:
                adjacency[c].add(b)
        adjacency[b] |= adjacency[a]
        adjacency[b] -= {a, b}
        adjacency[a] = set()
        active[a] = False
        merged_into[a] = b
    roots = merged_into
    while True:
        up = roots[roots]
        if np.array_equal(up, roots):
            return roots
        roots = up


def cut_points(sums: np.ndarray, sizes: np.ndarray, threshold: float) -> np.ndarray:
    """Weighted average-linkage clusters of points (rows of ``sums``: the sum of each point's members' unit
    vectors; ``sizes``: how many members), exact up to ``EXACT_LIMIT`` points, on a neighbour graph above: for
    each point, a representative point of its cluster (equal values: one cluster)."""
    # no copies where they are float64 already (neither path writes to them; ``cut_on_graph`` copies the sums)
    sums, sizes = sums.astype(np.float64, copy=False), sizes.astype(np.float64, copy=False)
    if len(sizes) <= EXACT_LIMIT:
        return _cut(sums, sizes, threshold)
    return cut_on_graph(sums, sizes, threshold, neighbours(sums / sizes[:, None], threshold))


def cluster(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels 1..m of the rows (unit vectors, or zero rows), numbered by first appearance; rows with the
    same content are one point, weighted by their number."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.int64)
    first, inverse = distinct_rows(vectors)
    points = np.asarray(np.asarray(vectors)[first], dtype=np.float64)  # gathered, then widened: one float64 copy
    sizes = np.bincount(inverse).astype(np.float64)
    points *= sizes[:, None]  # in place: each point's sum of its members' vectors
    raw = cut_points(points, sizes, threshold)[inverse]
    _, first_seen, dense = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(len(first_seen), dtype=np.int64)
    rank[np.argsort(first_seen, kind="stable")] = np.arange(1, len(first_seen) + 1)
    return rank[dense]
