"""Reading a fine-tune-reflect run back: one summary row per generation.

Contract: read-only over the store; the adapters' hashes and losses are joined to each stored generation, and the
caller may pass any distance between successive constitutions (the analysis passes an embedding distance).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from stability.constitution import Constitution
from stability.records import GenerationRecord
from stability.store.store import Store


class GenerationSummary(GenerationRecord):
    """A stored generation, with its adapter's hash and losses, and the caller's distance measure."""

    adapter_hash: str | None = Field(description="None when no adapter reflected (control no-training)")
    distance: float | None = Field(None, description="the caller's distance (e.g. embeddings); None if not given")
    loss_before: float | None = Field(description="mean loss over the adapter's training data before its "
                                      "training; None without an adapter")
    loss_after: float | None = Field(description="the same after training")


def generation_summaries(db: Path | str | None, run_id: str,
                         distance: Callable[[Constitution, Constitution], float] | None = None
                         ) -> list[GenerationSummary]:
    """One row per generation. ``distance`` is the hook for other measures between successive constitutions
    (the analysis passes an embedding distance); exact-match share-kept and Jaccard distance are always there."""
    with Store.open(db, read_only=True) as store:
        run = store.run(run_id)
        adapters = {a.id: a for a in store.adapters(run.id)}
        rows = []
        for g in store.generations(run.id):
            adapter = adapters.get(g.adapter_id)  # "" (none) under control no-training: the untuned subject
            measured = None
            if distance is not None:
                measured = distance(store.constitution(g.previous_hash), store.constitution(g.constitution_hash))
            rows.append(GenerationSummary(**g.model_dump(), adapter_hash=adapter.content_hash if adapter else None,
                                          distance=measured, loss_before=adapter.loss_before if adapter else None,
                                          loss_after=adapter.loss_after if adapter else None))
        return rows
