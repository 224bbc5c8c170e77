"""Benchmark: uncached embedding throughput of the analysis path against plain sentence-transformers, one process.

    python bench/embedding.py [TEXTS] [ROUNDS] [OUT.json]     # defaults: 1000 texts, 3 rounds, bench/results/

The texts are what an analysis embeds, principles (constitutions are no longer embedded, they are derived from
their principles): every distinct principle of the constitution library, then the synthetic corpus's sentences of
``bench/analysis.py`` (its 400-sentence vocabulary and their rewordings) up to TEXTS. Each round times, on the
same texts and the same loaded weights of all-MiniLM-L6-v2:

- ``plain``: ``SentenceTransformer.encode(texts)`` with its defaults (batch 32, torch's default threads);
- ``plain_same_settings``: ``encode`` with the analysis embedder's batch size and thread count, so
  ``ours / plain_same_settings`` is the cost of the analysis path itself (hashing, cache lookup and write);
- ``ours``: ``embed_texts`` through :class:`SentenceTransformerEmbedder` into an empty embedding cache (uncached:
  every text is encoded and written).

It prints and writes one JSON object: texts/s per side and round, the same-run ratios, the largest difference
between the analysis vectors and plain's (normalised), package versions, cores, threads used and
``/proc/loadavg`` before and after every measurement.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import reword, vocabulary  # noqa: E402  (bench/analysis.py: the synthetic corpus's sentences)


def principle_texts(count: int, seed: int = 0) -> list[str]:
    """Every distinct principle of the constitution library (real lengths, ~68 characters), then the synthetic
    corpus's sentences and rewordings (~23 characters) up to ``count``, shuffled."""
    from stability.constitution import parse_file

    rng = random.Random(seed)
    library = Path(__file__).resolve().parent.parent / "constitutions"
    texts: dict[str, None] = {}
    for path in sorted(p for p in library.rglob("*.md") if p.name != "README.md"):
        texts.update(dict.fromkeys(parse_file(path).principles))
    words = vocabulary()
    texts.update(dict.fromkeys(words))
    while len(texts) < count:
        texts[reword(rng.choice(list(texts)), rng)] = None
    out = list(texts)
    rng.shuffle(out)
    return out[:count]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(count: int, rounds: int, out: Path) -> dict[str, Any]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import numpy as np
    import sentence_transformers
    import torch
    import transformers

    from stability.analysis.embeddings import (
        EmbeddingCache,
        SentenceTransformerEmbedder,
        embed_texts,
        encoding_threads,
        normalise,
    )

    texts = principle_texts(count)
    ours = SentenceTransformerEmbedder()
    started = time.perf_counter()
    plain_model = ours._load()  # the same weights for every side; loading is not timed below
    load_s = time.perf_counter() - started
    default_threads = torch.get_num_threads()
    plain_model.encode(texts[:32])  # warm up
    rows: list[dict[str, Any]] = []
    diff = 0.0
    for round_ in range(rounds):
        threads = encoding_threads(ours.threads)  # what the analysis path will use now
        sides: dict[str, Any] = {}
        for side in ("plain", "plain_same_settings", "ours"):
            before = loadavg()
            t0, c0 = time.perf_counter(), time.process_time()
            if side == "plain":
                torch.set_num_threads(default_threads)
                vectors = plain_model.encode(texts)
            elif side == "plain_same_settings":
                torch.set_num_threads(threads)
                plain_model.encode(texts, batch_size=ours.batch_size)
                torch.set_num_threads(default_threads)
            else:
                with tempfile.TemporaryDirectory() as folder:
                    found = embed_texts(ours, texts, cache=EmbeddingCache(Path(folder) / "cache.duckdb"))
            wall = time.perf_counter() - t0
            sides[side] = {"wall_s": round(wall, 3), "cpu_s": round(time.process_time() - c0, 3),
                           "texts_per_s": round(len(texts) / wall, 1), "load_before": before,
                           "load_after": loadavg()}
            if side == "plain":
                reference = normalise(np.asarray(vectors, dtype=np.float32))
        diff = max(diff, float(np.abs(np.stack([found[t] for t in texts]) - reference).max()))
        rows.append({"round": round_ + 1, "threads_ours": threads, **sides,
                     "ours_over_plain": round(sides["ours"]["texts_per_s"] / sides["plain"]["texts_per_s"], 3),
                     "ours_over_same_settings": round(sides["ours"]["texts_per_s"]
                                                      / sides["plain_same_settings"]["texts_per_s"], 3)})
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "what": "uncached embedding throughput, all-MiniLM-L6-v2 on CPU, distinct principle texts",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "texts": len(texts),
        "mean_chars": round(statistics.mean(len(t) for t in texts), 1), "rounds": rows,
        "median_texts_per_s": {side: statistics.median(r[side]["texts_per_s"] for r in rows)
                               for side in ("plain", "plain_same_settings", "ours")},
        "median_ours_over_plain": statistics.median(r["ours_over_plain"] for r in rows),
        "median_ours_over_same_settings": statistics.median(r["ours_over_same_settings"] for r in rows),
        "max_abs_diff_ours_vs_plain": diff, "model_load_s": round(load_s, 2),
        "batch_size": {"plain": 32, "ours": ours.batch_size}, "torch_default_threads": default_threads,
        "cores": os.cpu_count(), "versions": {
            "python": platform.python_version(), "torch": torch.__version__,
            "sentence-transformers": sentence_transformers.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}), flush=True)
    return result


if __name__ == "__main__":
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, int(sys.argv[2]) if len(sys.argv) > 2 else 3,
         Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).parent / "results" / f"embedding-{stamp}.json")
