"""The fast paths of the analysis give what the plain definitions give (issue 12, speed)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from stability.analysis.alignment import align, change_counts
from stability.analysis.attractors import spread
from stability.analysis.embeddings import HashingEmbedder, encoding_threads, normalise

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
