from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stability.analysis import analyze
from stability.analysis.alignment import align
from stability.analysis.corpus import load_corpus
from stability.analysis.embeddings import (
    EmbeddingCache,
    EmbeddingStats,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    embed_constitutions,
    embed_texts,
    get_embedder,
    normalise,
    text_hash,
)
from stability.constitution import principles_text
from stability.errors import StabilityError
from stability.store import Store


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


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def test_a_constitution_is_the_normalised_mean_of_its_principles_each_embedded_once(tmp_path: Path) -> None:
    embedder = Counting()
    cache = EmbeddingCache(tmp_path / "cache.duckdb")
    honest, kind, brief = "I am honest and open.", "I am kind to all.", "I keep it brief."
    stats = EmbeddingStats()
    vectors, principles = embed_constitutions(embedder, [(honest, kind), (kind, brief, kind), ()], stats, cache)
    assert embedder.batches == [4] and (stats.requested, stats.computed) == (4, 4)  # 3 principles + the empty text
    raw = dict(zip([honest, kind, brief], HashingEmbedder(64).encode([honest, kind, brief]), strict=True))
    np.testing.assert_allclose(vectors[0], unit(unit(raw[honest]) + unit(raw[kind])), atol=1e-6)
    np.testing.assert_allclose(vectors[1], unit((2 * unit(raw[kind]) + unit(raw[brief])) / 3), atol=1e-6)
    np.testing.assert_allclose(principles[brief], unit(raw[brief]), atol=1e-6)
    np.testing.assert_array_equal(vectors[2], embed_texts(embedder, [""], cache=cache)[""])  # no principles
    # not the whole text's vector: the words of the principle listed twice weigh twice, once per principle
    whole = unit(HashingEmbedder(64).encode(["- I am kind to all.\n- I keep it brief.\n- I am kind to all.\n"])[0])
    assert not np.allclose(vectors[1], whole, atol=1e-3)
    again, _ = embed_constitutions(embedder, [(kind, honest)], cache=cache)
    assert embedder.batches == [4]  # everything was cached: the encoder is not called again
    np.testing.assert_allclose(again[0], vectors[0], atol=1e-6)  # the order of principles does not matter


def test_a_long_constitution_is_not_cut_at_256_word_pieces(minilm: SentenceTransformerEmbedder) -> None:
    topics = ["the truth", "privacy", "children", "the law", "animals", "my mistakes", "the planet", "dissent"]
    principles = [f"I carefully weigh what {t} asks of me in answer number {i}, and I explain my reasons plainly."
                  for i, t in enumerate(topics * 3)]
    changed = [*principles[:-1], "I refuse to talk about the weather with anyone, under any circumstances."]
    tokenizer = minilm._load().tokenizer
    assert len(tokenizer(principles_text(principles))["input_ids"]) > 256 + 200
    # the old way, one text per constitution: the model reads its first 256 word pieces, so the change is lost
    before, after = normalise(minilm.encode([principles_text(principles), principles_text(changed)]))
    assert float(before @ after) > 0.99999
    vectors, by_principle = embed_constitutions(minilm, [principles, changed], cache=EmbeddingCache())
    assert float(vectors[0] @ vectors[1]) < 0.999  # one principle in 24 changed: the vector moves
    np.testing.assert_allclose(vectors[1], unit(np.mean([by_principle[p] for p in changed], axis=0)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_a_second_analysis_embeds_no_new_text(experiment_copy: Path) -> None:
    first = Counting()
    result = analyze([], experiment_copy, all_runs=True, embedder=first)
    with Store.open(experiment_copy, read_only=True) as store:
        corpus = load_corpus(store, store.run_ids())
    distinct = {p for node in corpus.nodes() for p in corpus.principles[node]}
    assert sum(first.batches) == result.embeddings.computed == result.embeddings.texts == len(distinct) > 0
    second = Counting()
    again = analyze([], experiment_copy, all_runs=True, embedder=second)
    assert second.batches == [] and again.embeddings.computed == 0
    assert again.model_dump(exclude={"embeddings"}) == result.model_dump(exclude={"embeddings"})
