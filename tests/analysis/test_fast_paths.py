"""The fast paths of the analysis give what the plain definitions give (issue 12, speed)."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stability.analysis.alignment import align, change_counts
from stability.analysis.attractors import spread
from stability.analysis.blas_threads import blas_thread_count, blas_threads
from stability.analysis.embeddings import HashingEmbedder, encoding_threads, normalise
from stability.analysis.final_clusters import add_transpose
from stability.analysis.transition_counts import transition_counts
from stability.constitution import Constitution
from stability.store import Store
from stability.store.analysis_reads import principle_lists

WORDS = ["I am honest.", "I am kind.", "I am brief.", "I respect privacy.", "I explain myself.", "I am kind, always.",
         "I never lie.", "I weigh the law.", "I am honest, mostly.", "I protect children.", "I respect privacy!"]


def test_change_counts_are_the_counts_of_the_full_alignment() -> None:
    vectors = dict(zip(WORDS, normalise(HashingEmbedder(64).encode(WORDS)), strict=True))
    rng = random.Random(3)
    kinds_seen: set[str] = set()
    for _ in range(3000):
        before = rng.sample(WORDS, rng.randint(0, 6)) + (rng.sample(WORDS, 1) if rng.random() < 0.1 else [])
        after = rng.sample(WORDS, rng.randint(0, 6))
        for threshold in (0.3, 0.7):
            expected = align(before, after, vectors, threshold).counts()
            assert change_counts(before, after, vectors, threshold) == expected, (before, after, threshold)
            kinds_seen |= {k for k, n in expected.items() if n}
    assert kinds_seen == {"kept", "reworded", "moved", "added", "removed"}


def test_spread_is_the_mean_off_diagonal_distance() -> None:
    rows = normalise(np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32))
    rows[5] = rows[3]  # a repeated final
    rows[7] = 0.0  # a zero vector (the hashing embedder's empty text)
    d = np.clip(1.0 - rows.astype(np.float64) @ rows.T.astype(np.float64), 0.0, 2.0)
    expected = (d.sum() - np.trace(d)) / (40 * 39)
    assert spread(rows) == pytest.approx(expected, abs=1e-6)
    assert spread(rows[:1]) == 0.0


def test_encoding_threads_one_when_the_machine_is_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr("os.getloadavg", lambda: (7.5, 6.0, 5.0))
    assert encoding_threads() == 1
    monkeypatch.setattr("os.getloadavg", lambda: (0.4, 0.6, 0.5))
    assert encoding_threads() == 2
    assert encoding_threads(3) == 3 and encoding_threads(0) == 1


def test_transition_counts_equal_change_counts_of_each_pair() -> None:
    """All transitions at once (vectorised) give ``change_counts`` of each pair: lone rewordings, in-order and
    out-of-order pairs, Hungarian searches, repeated principles, empty constitutions, a score on the threshold."""
    vectors = dict(zip(WORDS, normalise(HashingEmbedder(64).encode(WORDS)), strict=True))
    rng = random.Random(5)
    principles: dict[str, tuple[str, ...]] = {}
    for n in range(120):
        texts = rng.sample(WORDS, rng.randint(0, 7)) + (rng.sample(WORDS, 1) if rng.random() < 0.05 else [])
        principles[f"node{n}"] = tuple(texts)
        edited = list(texts)  # one edit away (the common transitions)
        kind = rng.choice(["reword", "add", "remove", "swap"])
        if kind == "reword" and edited:
            edited[rng.randrange(len(edited))] = rng.choice([w for w in WORDS if w not in edited] or WORDS)
        elif kind == "add":
            edited.insert(rng.randint(0, len(edited)), rng.choice([w for w in WORDS if w not in edited] or WORDS))
        elif kind == "remove" and edited:
            edited.pop(rng.randrange(len(edited)))
        elif kind == "swap" and len(edited) > 1:
            i, j = rng.sample(range(len(edited)), 2)
            edited[i], edited[j] = edited[j], edited[i]
        principles[f"edit{n}"] = tuple(edited)
    nodes = list(principles)
    pairs = [(f"node{n}", f"edit{n}") for n in range(120)]
    pairs += [(rng.choice(nodes), rng.choice(nodes)) for _ in range(400)]
    on_threshold = float(vectors[WORDS[1]] @ vectors[WORDS[5]])  # "kind" and "kind, always": a lone pair's score
    principles["x"], principles["y"] = (WORDS[0], WORDS[1]), (WORDS[0], WORDS[5])
    pairs.append(("x", "y"))
    kinds_seen: set[str] = set()
    just_above = float(np.nextafter(np.float32(on_threshold), np.float32(1.0)))
    for threshold in (0.3, 0.7, on_threshold, just_above):
        got = transition_counts(pairs, principles, vectors, float(threshold))
        assert list(got) == list(dict.fromkeys(pairs))
        for a, b in pairs:
            expected = change_counts(principles[a], principles[b], vectors, float(threshold))
            assert got[(a, b)] == expected, (principles[a], principles[b], threshold)
            kinds_seen |= {k for k, n in expected.items() if n}
        if threshold in (on_threshold, just_above):  # on the threshold: reworded; just above it: not
            assert got[("x", "y")]["reworded"] == (1 if threshold == on_threshold else 0)
    assert kinds_seen == {"kept", "reworded", "moved", "added", "removed"}
    assert transition_counts([], principles, vectors, 0.7) == {}


def test_blas_threads_set_for_the_block_and_restored() -> None:
    before = blas_thread_count()
    with blas_threads(1):
        inside = blas_thread_count()
        with blas_threads(2):
            assert blas_thread_count() in (0, 2)
        assert blas_thread_count() == inside
    assert blas_thread_count() == before
    assert inside == (1 if before else 0)  # numpy's OpenBLAS found: one thread in the block; else nothing changes


def test_principle_lists_are_the_principle_rows_grouped(tmp_path: Path) -> None:
    """The unsorted read ordered in numpy gives each constitution's principles as the sorted SQL read does."""
    rng = random.Random(7)
    constitutions = [Constitution(principles=tuple(rng.sample(WORDS, rng.randint(1, 8)))) for _ in range(40)]
    constitutions = list({c.hash: c for c in constitutions}.values())
    rows = [{"constitution_hash": c.hash, "position": i, "text": p} for c in constitutions
            for i, p in enumerate(c.principles)]
    rng.shuffle(rows)  # stored in no particular order
    with Store.open(tmp_path / "p.duckdb") as store:
        store.bulk_load({
            "constitutions": pd.DataFrame([{"hash": c.hash, "text": c.text, "n_principles": len(c.principles),
                                            "created_at": datetime(2026, 1, 1)} for c in constitutions]),
            "principles": pd.DataFrame(rows)})
        hashes = [c.hash for c in constitutions][::-1] + ["no-such-node"]
        grouped: dict[str, list[str]] = {h: [] for h in hashes}
        for digest, _, text in store.principle_rows(hashes):
            grouped[digest].append(text)
        got = principle_lists(store, hashes)
        assert list(got) == hashes
        assert got == {h: tuple(p) for h, p in grouped.items()}
        assert got[constitutions[0].hash] == constitutions[0].principles and got["no-such-node"] == ()
        assert principle_lists(store, []) == {}
        texts = [t for principles in got.values() for t in principles]
        assert len({id(t) for t in texts}) == len(set(texts)) < len(texts)  # one string per distinct text, shared
    with Store.open(tmp_path / "p.duckdb", read_only=True) as store:  # as the analysis reads: read-only
        assert principle_lists(store, hashes) == got


def test_add_transpose_in_place_equals_the_sum_with_the_transpose() -> None:
    for n, tile in ((1, 256), (37, 5), (64, 16), (300, 256)):  # tiles that do and do not divide the size
        d = np.random.default_rng(n).standard_normal((n, n)).astype(np.float32)
        expected = d + d.T
        add_transpose(d, tile)
        assert np.array_equal(d, expected)


def test_row_dots_in_chunks_equal_the_rows_gathered_at_once() -> None:
    from stability.analysis.transition_counts import _row_dots

    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(50, 16))
    left, right = rng.integers(0, 50, 1000), rng.integers(0, 50, 1000)
    whole = np.einsum("ij,ij->i", matrix[left], matrix[right])
    assert np.array_equal(_row_dots(matrix, left, right, chunk=7), whole)  # the same sums, bit for bit
    assert len(_row_dots(matrix, left[:0], right[:0])) == 0
