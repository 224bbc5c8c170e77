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
   searched inside blocks of at most ``BLOCK`` points, in ``TREES`` trees. The points are projected once on each
   tree's directions (one tree on the leading principal axes of all the points, the others on random
   directions, seeded: the same result every time), and level ``l`` of a tree splits each part at the median
   of its ``l``-th projection, so no split gathers rows; a block's pairs within the cut come from one float32
   product. Then the nearest-neighbour chain runs on that graph (:func:`cut_on_graph`): two clusters are only
   compared where a member of one is a neighbour of a member of the other, and each merge is decided on the
   exact average distance from the clusters' sums of vectors (for unit vectors the average cosine distance
   between clusters a and b is ``1 - S_a . S_b / (n_a n_b)``). A step does not compute every candidate's
   distance again: each cluster keeps, per candidate, the summed distance of the member pairs known so far,
   added up on a merge (Lance-Williams for average linkage), whose share of all the pairs is a lower bound;
   only the candidates whose bound can be the nearest within the cut are computed, and candidates beyond the
   cut leave the list. The clusters of this round are then points in their turn, cut exactly once they are at
   most ``EXACT_LIMIT`` (else on their own graph, up to ``ROUNDS`` rounds). Memory ``O(points · NEIGHBOURS +
   BLOCK²)``, time ``O(points · BLOCK · dim · TREES)`` for the graph, and for the chain about linear in the
   merges (docs/benchmarks/analysis-scale.md: 10k, 100k, 1M).

   Every merge it makes is an average-linkage merge at or below the cut; what it can miss is a merge of two
   clusters no member pair of which was found as neighbours (a pair the trees split into different blocks, or
   beyond the ``NEIGHBOURS`` nearest), and the merges that follow differ from the exact path's from there. On
   the 100k benchmark database's 7,380 distinct finals (MiniLM, 8,325 runs) with this path forced, against the
   exact cut: adjusted Rand index 0.978 over runs, 81% of the runs in exactly the same cluster, 1,437 clusters
   against 1,431 (the graph of the version before this one: 0.989, 87%, at its seed; with three other seeds
   each, both 0.976-0.983). tests/analysis/test_final_clusters.py checks planted clusters on both paths.
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
ROUNDS = 4  # graph rounds above the exact limit: the clusters of one round are the points of the next
LOOK = 32  # candidates computed first in a chain step (the lowest bounds); then those below the best
SLACK = 1e-6  # a float32 neighbour distance may exceed the exact one by rounding: bounds this close are computed


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


def _axes(means: np.ndarray, depth: int, rng: np.random.Generator | None) -> np.ndarray:
    """``depth`` directions (columns) for one tree's levels: the leading principal axes of all the rows (``rng``
    None; computed once, on at most ~16k rows taken at a fixed stride), else random directions."""
    dim = means.shape[1]
    if rng is not None:
        return np.asarray(rng.normal(size=(dim, depth)))
    sample = means[::max(1, len(means) // 16384)].astype(np.float64)
    centred = sample - sample.mean(axis=0)
    with blas_threads(1):
        _, axes = np.linalg.eigh(centred.T @ centred)
    leading = axes[:, ::-1][:, np.arange(depth) % dim]
    signs = np.where(leading[np.abs(leading).argmax(axis=0), np.arange(depth)] < 0, -1.0, 1.0)
    return np.asarray(leading * signs)


def blocks(projected: np.ndarray, size: int) -> list[np.ndarray]:
    """The rows split into blocks of at most ``size`` rows: level ``l`` of the tree splits each part at the median
    of column ``l`` of ``projected`` (the rows projected once on the tree's directions: no rows gathered)."""
    parts = [np.arange(len(projected))]
    for level in range(projected.shape[1]):
        split: list[np.ndarray] = []
        for part in parts:
            if len(part) <= size:
                split.append(part)
                continue
            half = len(part) // 2
            order = np.argpartition(projected[part, level], half)
            split += [part[order[:half]], part[order[half:]]]
        parts = split
    return parts


def _depth(n: int, size: int) -> int:
    """Median splits that bring ``n`` rows to blocks of at most ``size``."""
    return max(0, int(np.ceil(np.log2(n / size)))) if n > size else 0


def block_pairs(rows: np.ndarray, k: int, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Within one block (float32 unit rows): each row's up to ``k`` most similar other rows at cosine distance
    within ``threshold``, as (row, column, similarity) positions in the block."""
    with blas_threads(encoding_threads()):
        sim = rows @ rows.T
    np.fill_diagonal(sim, -np.inf)
    close = sim >= np.float32(1.0 - threshold)
    heavy = np.flatnonzero(np.count_nonzero(close, axis=1) > k)
    if len(heavy):  # more than k within the cut: the k nearest (only these rows are partitioned)
        close[heavy] = False
        top = np.argpartition(-sim[heavy], k - 1, axis=1)[:, :k]
        close[heavy[:, None], top] = True
    row, col = np.nonzero(close)
    return row, col, sim[row, col]


def neighbours(means: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point, up to ``NEIGHBOURS`` nearest other points within ``threshold``, searched within the
    blocks of ``TREES`` trees (one on the principal axes, the others on random directions, seeded), made
    symmetric: a graph as (row starts, neighbour columns sorted within each row, float32 distances)."""
    n = len(means)
    rows32 = np.ascontiguousarray(means, dtype=np.float32)
    depth = _depth(n, BLOCK)
    rng = np.random.default_rng(0)
    directions = np.concatenate([_axes(rows32, depth, rng if tree else None) for tree in range(TREES)], axis=1)
    with blas_threads(encoding_threads()):
        projected = rows32 @ directions.astype(np.float32)
    found_key, found_sim = [], []  # pairs as row * n + column: 12 bytes a pair until they are deduplicated
    for tree in range(TREES):
        for part in blocks(projected[:, tree * depth:(tree + 1) * depth], BLOCK):
            k = min(NEIGHBOURS, len(part) - 1)
            if k < 1:
                continue
            r, c, s = block_pairs(rows32[part], k, threshold)
            found_key.append(part[r] * n + part[c])
            found_sim.append(s)
    if not found_key:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    key, sim = np.concatenate(found_key), np.concatenate(found_sim)
    del found_key, found_sim
    key, first = np.unique(key, return_index=True)  # a pair found by several trees: once (by row, column)
    sim = sim[first]
    del first
    row, col = np.divmod(key, n)
    del key
    # by row, then nearest first (a distance is in [0, 2]: one float key; a tie keeps the lower column first)
    order = np.argsort(4.0 * row + (1.0 - sim.astype(np.float64)).clip(0.0, 2.0), kind="stable")
    row, col, sim = row[order], col[order], sim[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row)
    keep = rank < NEIGHBOURS
    row, col, sim = row[keep], col[keep], sim[keep]
    key = np.concatenate([row * n + col, col * n + row])  # both directions, each pair once
    key, first = np.unique(key, return_index=True)
    dist = np.concatenate([sim, sim])[first]
    row, col = np.divmod(key, n)
    np.subtract(np.float32(1.0), dist, out=dist)
    np.maximum(dist, np.float32(0.0), out=dist)
    return np.searchsorted(row, np.arange(n + 1)), col, dist


class _Candidates:
    """Each cluster's candidates (other clusters it may merge with) and what is known of its distance to each,
    as a lower bound that merges keep without any vector work.

    For clusters x and y with ``n_x n_y`` member pairs (weighted by runs), ``mass`` is the summed distance of
    the pairs known so far (a graph edge, or computed from the sums); the unknown pairs are at distance >= 0, so
    ``mass / (n_x n_y)`` is at most the average distance. It is a sum over member pairs, so a merged cluster's
    entries are its parts' entries added (Lance-Williams for average linkage,
    ``d(a+b, c) = (n_a d(a,c) + n_b d(b,c)) / (n_a + n_b)``, where a pair not yet known counts 0). An entry can
    name a cluster that has merged since: it is read as the cluster it merged into, and entries for one cluster
    are added together when the list is compacted."""

    def __init__(self, graph: tuple[np.ndarray, np.ndarray, np.ndarray], size: np.ndarray) -> None:
        starts, cols, dist = graph
        rows = np.repeat(np.arange(len(size)), np.diff(starts))
        weight = size[rows] * size[cols]
        mass = dist.astype(np.float64) * weight
        bounds = starts.tolist()
        self.ids = [cols[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        self.mass = [mass[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _exact(sums: np.ndarray, x: int, ys: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Average distances of cluster ``x`` to clusters ``ys`` from their sums (``pairs``: ``n_x n_y``)."""
    return 1.0 - (sums[ys] @ sums[x]) / pairs


def cut_on_graph(sums: np.ndarray, sizes: np.ndarray, threshold: float,
                 graph: tuple[np.ndarray, np.ndarray, np.ndarray], overwrite: bool = False) -> np.ndarray:
    """Weighted average linkage cut at ``threshold`` where clusters only merge along ``graph`` (a cluster's
    candidates: its members' neighbours), each merge decided on the exact average ``1 - S_a . S_b / (n_a n_b)``
    from the clusters' sums; the nearest-neighbour chain of :func:`cut_average_linkage` (the same tie rule).

    A chain step does not compute every candidate's distance: it reads each candidate's lower bound
    (:class:`_Candidates`) and computes exactly only those whose bound is within the cut (the others cannot be
    the nearest within it), and records what it computed. A representative point per point; with ``overwrite``
    (float64 ``sums`` the caller gives up) the clusters merge in place: a representative's row is its cluster's sum."""
    n = len(sizes)
    # ``overwrite`` (float64 sums the caller gives up): merged in place, each cluster's row its sum, no copy
    sums = sums if overwrite and sums.dtype == np.float64 else np.array(sums, dtype=np.float64)
    size = np.array(sizes, dtype=np.float64)
    known = _Candidates(graph, size)
    ids, mass = known.ids, known.mass
    limit = threshold + SLACK
    active = np.ones(n, dtype=bool)
    group, root_of = np.arange(n), np.arange(n)  # each point's group of points; each group's cluster now
    members = [np.array([i]) for i in range(n)]
    chain: list[int] = []
    first = 0
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    slot = np.zeros(n, dtype=np.int64)

    def retire() -> None:
        for c in chain:
            active[c] = False
        chain.clear()

    while (first := next_start(active, first)) < n or chain:
        if not chain:
            chain.append(first)
        x = chain[-1]
        listed = ids[x]
        roots = root_of[group[listed]]
        if (roots != listed).any():  # clusters merged since: entries added up by the cluster they are in now
            at = np.arange(len(roots))
            slot[roots] = at  # the last entry of each cluster collects the entries for it (no sort: the list is
            where = slot[roots]  # in no order, so a tie for the nearest is broken by id below)
            m = np.bincount(where, mass[x], len(roots))
            live = (where == at) & active[roots] & (roots != x)
            ids[x], mass[x] = roots[live], m[live]
        elif not active[roots].all():
            live = active[roots]
            ids[x], mass[x] = roots[live], mass[x][live]
        listed, m = ids[x], mass[x]
        pairs = size[listed] * size[x]
        near = np.flatnonzero(m <= limit * pairs)  # the others are beyond the cut
        previous = chain[-2] if len(chain) > 1 else -1
        if len(near) > LOOK:  # the lowest bounds first; then only those whose bound is below the best found
            lowest = near[np.argpartition(m[near] / pairs[near], LOOK - 1)[:LOOK]]
            found = _exact(sums, x, listed[lowest], pairs[lowest])
            m[lowest] = found * pairs[lowest]
            near = near[m[near] <= (min(float(found.min()), threshold) + SLACK) * pairs[near]]
            exact = _exact(sums, x, listed[near], pairs[near])
            m[near] = exact * pairs[near]  # known now, every pair
            keep = m <= limit * pairs
            ids[x], mass[x] = listed[keep], m[keep]
        else:
            exact = _exact(sums, x, listed[near], pairs[near])
            keep = exact <= limit
            # a candidate beyond the cut stays so for any union with x (average linkage is reducible), unless a new
            # member lists it again: out of the list, which then holds only candidates within the cut
            ids[x], mass[x] = listed[near[keep]], (exact * pairs[near])[keep]
        if not len(near) and previous < 0:
            retire()
            continue
        if len(near):
            lowest_at = int(exact.argmin())
            y, nearest = int(listed[near[lowest_at]]), float(exact[lowest_at])
            tied = listed[near[exact == nearest]]
            if len(tied) > 1:  # ties go to the lowest id
                y = int(tied.min())
        else:
            y, nearest = -1, np.inf
        if previous >= 0:
            back = 1.0 - float(sums[previous] @ sums[x]) / (size[previous] * size[x])
            if back <= nearest or y in chain:
                # SciPy's rule: prefer the previous element; and a cluster already in the chain (a tie that float
                # rounding ordered differently from each side) closes it here: the chain's last link is <= the cut
                y, nearest = previous, min(back, nearest)
        if nearest > threshold:
            retire()
            continue
        if len(chain) < 2 or y != chain[-2]:
            chain.append(y)
            continue
        del chain[-2:]
        a, b = (x, y) if x < y else (y, x)
        sums[b] += sums[a]
        size[b] += size[a]
        ids[b] = np.concatenate([ids[a], ids[b]])
        mass[b] = np.concatenate([mass[a], mass[b]])
        ids[a], mass[a] = empty_i, empty_f
        active[a] = False
        big, small = group[b], group[a]  # union by size: the smaller group's points move
        if len(members[big]) < len(members[small]):
            big, small = small, big
        group[members[small]] = big
        members[big] = np.concatenate([members[big], members[small]])
        members[small] = empty_i
        root_of[big] = b
    return root_of[group]


def _clusters_as_points(sums: np.ndarray, sizes: np.ndarray, labels: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clusters of ``labels`` as weighted points: their sums, their sizes, and each point's cluster."""
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(inverse.max() + 1))
    return np.add.reduceat(sums[order], starts, axis=0), np.bincount(inverse, sizes), inverse


def cut_points(sums: np.ndarray, sizes: np.ndarray, threshold: float, overwrite: bool = False) -> np.ndarray:
    """Weighted average-linkage clusters of points (rows of ``sums``: the sum of each point's members' unit
    vectors; ``sizes``: how many members), exact up to ``EXACT_LIMIT`` points, on a neighbour graph above: for
    each point, a representative of its cluster (equal values: one cluster).

    Above the limit, the clusters the graph gave are points in their turn (their sums and sizes) and are cut
    again, exactly once they are few enough, else on their own neighbour graph, up to ``ROUNDS`` rounds: a
    merge the graph missed (two clusters no member pair of which was found as neighbours) is made there, and
    each is still an average-linkage merge at or below the cut (the distance of two clusters is
    ``1 - S_a . S_b / (n_a n_b)`` whatever points they were made of). ``overwrite``: the caller gives up
    ``sums`` (float64), which the graph path then merges in place instead of copying."""
    # no copies where they are float64 already (the exact path never writes to them)
    sums, sizes = sums.astype(np.float64, copy=False), sizes.astype(np.float64, copy=False)
    labels = np.arange(len(sizes))
    for _ in range(ROUNDS):
        if len(sizes) <= EXACT_LIMIT:
            return _cut(sums, sizes, threshold)[labels]
        means = np.divide(sums, sizes[:, None], out=np.empty(sums.shape, dtype=np.float32), casting="same_kind")
        graph = neighbours(means, threshold)
        del means
        found = cut_on_graph(sums, sizes, threshold, graph, overwrite)
        del graph
        if overwrite:  # each representative's row holds its cluster's sum
            roots, inverse = np.unique(found, return_inverse=True)
            sums, sizes = sums[roots], np.bincount(inverse, sizes)
        else:
            sums, sizes, inverse = _clusters_as_points(sums, sizes, found)
        overwrite = True  # the clusters' sums are this function's own
        if len(sizes) == len(found):  # nothing merged: nothing more will
            return inverse[labels]
        labels = inverse[labels]
    return _cut(sums, sizes, threshold)[labels] if len(sizes) <= EXACT_LIMIT else labels


def cluster(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels 1..m of the rows (unit vectors, or zero rows), numbered by first appearance; rows with the
    same content are one point, weighted by their number."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.int64)
    first, inverse = distinct_rows(vectors)
    points = np.asarray(np.asarray(vectors)[first], dtype=np.float64)  # gathered, then widened: one float64 copy
    sizes = np.bincount(inverse).astype(np.float64)
    points *= sizes[:, None]  # in place: each point's sum of its members' vectors
    raw = cut_points(points, sizes, threshold, overwrite=True)[inverse]
    _, first_seen, dense = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(len(first_seen), dtype=np.int64)
    rank[np.argsort(first_seen, kind="stable")] = np.arange(1, len(first_seen) + 1)
    return rank[dense]
