from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stability.analysis.alignment import align
from stability.analysis.embeddings import (
    EmbeddingCache,
    EmbeddingStats,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    embed_texts,
    get_embedder,
    text_hash,
)
from stability.errors import StabilityError


class Counting(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(64)
        self.batches: list[int] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.batches.append(len(texts))
        return super().encode(texts)


def test_a_text_is_never_embedded_twice(tmp_path: Path) -> None:
    embedder = Counting()
    cache = EmbeddingCache(tmp_path / "cache.duckdb")
    stats = EmbeddingStats()
    first = embed_texts(embedder, ["a b", "c d", "a b"], stats, cache)
    assert embedder.batches == [2] and (stats.requested, stats.computed) == (2, 2)
    again = EmbeddingStats()
    second = embed_texts(embedder, ["c d", "e f", "a b"], again, cache)
    assert embedder.batches == [2, 1] and (again.requested, again.computed) == (3, 1)
    assert cache.count(embedder.name) == 3
    assert cache.count("other-model") == 0
    np.testing.assert_array_equal(first["a b"], second["a b"])
    assert np.isclose(np.linalg.norm(second["e f"]), 1.0)
    reopened = EmbeddingCache(tmp_path / "cache.duckdb")  # it is in the file, which nobody holds open
    assert set(reopened.get(embedder.name, [text_hash("a b"), text_hash("zz")])) == {text_hash("a b")}


def test_an_unwritable_cache_is_skipped_not_fatal(tmp_path: Path) -> None:
    blocked = EmbeddingCache(tmp_path / "file-not-folder" / "cache.duckdb")
    (tmp_path / "file-not-folder").write_text("x")
    stats = EmbeddingStats()
    vectors = embed_texts(HashingEmbedder(), ["a", "b"], stats, blocked)
    assert set(vectors) == {"a", "b"} and stats.computed == 2 and blocked.count() == 0


def test_hashing_embedder_is_deterministic() -> None:
    a, b = HashingEmbedder().encode(["I am honest", "I am honest"])
    np.testing.assert_array_equal(a, b)
    assert get_embedder("hashing-32").name == "hashing-32"


def test_unknown_model_is_one_line_error() -> None:
    with pytest.raises(StabilityError, match="cannot load offline"):
        SentenceTransformerEmbedder("no/such-model-here").encode(["x"])


def test_real_minilm_meaning_and_alignment(minilm: SentenceTransformerEmbedder, db) -> None:  # type: ignore[no-untyped-def]
    before = ["I always tell the truth, even when it is unwelcome.", "I tell people what they want to hear.",
              "I use plain language."]
    after = ["I use plain and simple language.", "I always tell the truth, even when the truth is unwelcome.",
             "I keep answers short."]
    vectors = embed_texts(minilm, before + after)
    assert len(vectors[before[0]]) == 384
    assert float(vectors[before[0]] @ vectors[after[1]]) > 0.9
    assert float(vectors[before[1]] @ vectors[after[2]]) < 0.5
    result = align(before, after, vectors, 0.7)
    kinds = {(c.kind, c.before, c.after) for c in result.changes}
    assert kinds == {("reworded", 0, 1), ("reworded", 2, 0), ("removed", 1, None), ("added", None, 2)}
