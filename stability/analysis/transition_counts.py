"""Alignment counts of many transitions at once: :func:`~stability.analysis.alignment.change_counts` of every
(node, next node) pair, vectorised over the pairs with numpy.

The common transitions are settled by array operations over all pairs together: identical principles matched by
their text codes, at most one principle left on each side (a lone reworded pair: one dot product), and matched pairs
already in order (nothing moved); matched pairs out of order go through the same longest-in-order search as
``change_counts`` (``_in_order``), one transition at a time. The rest (a principle repeated within a constitution,
several principles left on both sides for the Hungarian search) goes through ``change_counts`` itself, so the
counts are the same as ``change_counts`` of each pair (tests/analysis/test_fast_paths.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from stability.analysis.alignment import _in_order, change_counts
from stability.analysis.corpus import Corpus

Pair = tuple[str, str]


class Spans(NamedTuple):
    """The principles' text codes of many nodes in one array: node ``n``'s, at ``i = number[n]``, are
    ``flat[offsets[i]:offsets[i] + sizes[i]]``."""

    number: dict[str, int]
    flat: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray

#: a lone pair's similarity computed in float64 this close to the threshold is computed again exactly as
#: ``change_counts`` does (float32 dot), so the threshold decides the same way (float32 rounding over 384-1024
#: dimensions is far below this)
RECHECK_MARGIN = 1e-4


def transitions(corpus: Corpus) -> list[Pair]:
    """The distinct (node, next node) steps between different nodes of the runs' usable visits, the steps
    :func:`~stability.analysis.convergence.run_convergence` gives alignment counts."""
    out: dict[Pair, None] = {}
    for chain in corpus.runs:
        nodes = [v.node for v in chain.usable]
        out.update(dict.fromkeys(pair for pair in zip(nodes[:-1], nodes[1:], strict=True) if pair[0] != pair[1]))
    return list(out)


def transition_counts(pairs: Iterable[Pair], principles: Mapping[str, tuple[str, ...]],
                      vectors: Mapping[str, np.ndarray], reworded_threshold: float) -> dict[Pair, dict[str, int]]:
    """``change_counts(principles[a], principles[b], vectors, reworded_threshold)`` for every pair (a, b)."""
    pairs = list(dict.fromkeys(pairs))
    out: dict[Pair, dict[str, int]] = {}
    # every loop over nodes and principle texts below runs in C (map, chain, zip): at 1M revisions there are
    # 5M principle occurrences
    nodes = list(dict.fromkeys(itertools.chain.from_iterable(pairs)))
    lists = list(map(principles.__getitem__, nodes))
    codes: dict[str, int] = dict(zip(dict.fromkeys(itertools.chain.from_iterable(lists)), itertools.count()))
    lengths = list(map(len, lists))
    sizes = np.asarray(lengths, dtype=np.int64)
    flat = np.fromiter(map(codes.__getitem__, itertools.chain.from_iterable(lists)), dtype=np.int64,
                       count=int(sizes.sum()))
    # a code per principle text, in order, by node (node i's: flat[offsets[i]:offsets[i] + sizes[i]]); repeats: a
    # principle repeated within the constitution
    spans = Spans(number=dict(zip(nodes, itertools.count())), flat=flat, offsets=np.cumsum(sizes) - sizes,
                  sizes=sizes)
    width = max(len(codes), 1)
    keyed = np.sort(np.repeat(np.arange(len(nodes)), lengths) * width + flat)
    repeats = {nodes[k] for k in np.unique(keyed[1:][keyed[1:] == keyed[:-1]] // width).tolist()}
    slow = [pair for pair in pairs if pair[0] in repeats or pair[1] in repeats]
    fast = [pair for pair in pairs if pair[0] not in repeats and pair[1] not in repeats]
    if fast:
        out.update(_fast_counts(fast, spans, codes, principles, vectors, reworded_threshold, slow))
    for pair in slow:
        out[pair] = change_counts(principles[pair[0]], principles[pair[1]], vectors, reworded_threshold)
    return {pair: out[pair] for pair in pairs}


def _row_dots(matrix: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``matrix[left[i]] @ matrix[right[i]]`` for every i, gathered a chunk at a time into two buffers kept for
    the whole loop (gathering every row at once allocated two arrays of hundreds of MB, fresh pages each time)."""
    out = np.empty(len(left), dtype=matrix.dtype)
    a = np.empty((min(chunk, len(left)), matrix.shape[1]), dtype=matrix.dtype)
    b = np.empty_like(a)
    for i in range(0, len(left), chunk):
        n = min(chunk, len(left) - i)
        np.take(matrix, left[i:i + n], axis=0, out=a[:n])
        np.take(matrix, right[i:i + n], axis=0, out=b[:n])
        out[i:i + n] = np.einsum("ij,ij->i", a[:n], b[:n])
    return out


def _codes(spans: Spans, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The text codes of the nodes ``which`` (indices), one after another, and how many each has."""
    counts = spans.sizes[which]
    ends = np.cumsum(counts)
    within = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - counts, counts)
    return spans.flat[np.repeat(spans.offsets[which], counts) + within], counts


def _fast_counts(pairs: list[Pair], spans: Spans, codes: Mapping[str, int],
                 principles: Mapping[str, tuple[str, ...]], vectors: Mapping[str, np.ndarray],
                 threshold: float, slow: list[Pair]) -> dict[Pair, dict[str, int]]:
    """Counts of the pairs the arrays settle; appends the others to ``slow``."""
    n_pairs, n_codes = len(pairs), len(codes)
    number = spans.number
    b_code, len_b = _codes(spans, np.fromiter(map(number.__getitem__, map(itemgetter(0), pairs)), dtype=np.int64,
                                              count=n_pairs))
    a_code, len_a = _codes(spans, np.fromiter(map(number.__getitem__, map(itemgetter(1), pairs)), dtype=np.int64,
                                              count=n_pairs))
    b_pair = np.repeat(np.arange(n_pairs), len_b)
    a_pair = np.repeat(np.arange(n_pairs), len_a)
    b_pos = np.arange(len(b_pair)) - np.repeat(np.cumsum(len_b) - len_b, len_b)
    a_pos = np.arange(len(a_pair)) - np.repeat(np.cumsum(len_a) - len_a, len_a)
    # step 1: identical principles, by (pair, text code) keys (unique: no text repeats within a constitution)
    b_key, a_key = b_pair * n_codes + b_code, a_pair * n_codes + a_code
    order = np.argsort(a_key, kind="stable")
    sorted_keys = a_key[order]
    slot = np.minimum(np.searchsorted(sorted_keys, b_key), max(len(sorted_keys) - 1, 0))
    hit = sorted_keys[slot] == b_key if len(sorted_keys) else np.zeros(len(b_key), bool)
    b_match = np.where(hit, a_pos[order[slot]] if len(sorted_keys) else -1, -1)  # position in the second, or -1
    a_taken = np.zeros(len(a_key), bool)
    a_taken[order[slot[hit]]] = True
    same = np.bincount(b_pair[hit], minlength=n_pairs)
    rest_b, rest_a = len_b - same, len_a - same
    searched = (rest_b > 0) & (rest_a > 0)
    lone = searched & (rest_b == 1) & (rest_a == 1)
    slow_mask = searched & ~lone  # the Hungarian search: one pair at a time
    # step 2 for a lone pair: one similarity, the reworded pair kept above the threshold
    lone_b = np.flatnonzero(~hit & lone[b_pair])  # the one unmatched principle of each lone pair, in pair order
    lone_a = np.flatnonzero(~a_taken & lone[a_pair])
    reworded = np.zeros(n_pairs, np.int64)
    if len(lone_b):
        texts = list(codes)
        matrix = np.stack([np.asarray(vectors[t], dtype=np.float64) for t in texts])
        score = _row_dots(matrix, b_code[lone_b], a_code[lone_a])
        kept = score >= threshold
        for k in np.flatnonzero(np.abs(score - threshold) < RECHECK_MARGIN).tolist():  # as change_counts does
            kept[k] = float(vectors[texts[b_code[lone_b[k]]]] @ vectors[texts[a_code[lone_a[k]]]]) >= threshold
        reworded[b_pair[lone_b[kept]]] = 1
        b_match[lone_b[kept]] = a_pos[lone_a[kept]]
    # step 3: matched pairs in order of the first's positions; any not strictly increasing -> the slow path
    matched = b_match >= 0
    m_pair, m_after = b_pair[matched], b_match[matched]
    unordered = (m_pair[1:] == m_pair[:-1]) & (m_after[1:] <= m_after[:-1])
    moved = np.zeros(n_pairs, np.int64)
    # out of order without a search: the identical pairs outside the longest in-order run (``_in_order``) moved
    starts = np.searchsorted(m_pair, np.arange(n_pairs + 1))
    m_before, m_same = b_pos[matched], hit[matched]
    for p in np.unique(m_pair[1:][unordered]).tolist():
        if slow_mask[p]:
            continue
        lo, hi = int(starts[p]), int(starts[p + 1])
        steps = list(zip(m_before[lo:hi].tolist(), m_after[lo:hi].tolist(), strict=True))
        identical = {step for step, same_text in zip(steps, m_same[lo:hi].tolist(), strict=True) if same_text}
        moved[p] = len(identical - _in_order(steps))
    fast = np.flatnonzero(~slow_mask)
    kept_n, added, removed = same - moved, len_a - same - reworded, len_b - same - reworded
    out = {pairs[p]: {"kept": k, "reworded": r, "moved": m, "added": a, "removed": d}
           for p, k, r, m, a, d in zip(fast.tolist(), kept_n[fast].tolist(), reworded[fast].tolist(),
                                       moved[fast].tolist(), added[fast].tolist(), removed[fast].tolist(), strict=True)}
    slow += [pairs[p] for p in np.flatnonzero(slow_mask).tolist()]
    return out
