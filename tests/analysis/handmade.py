"""Hand-built corpora and vectors, where every measure's right answer is known."""

from __future__ import annotations

import numpy as np

from stability.analysis.corpus import Corpus, RunChain, Visit


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def at_angle(distance: float) -> np.ndarray:
    """A unit vector in the plane at the given cosine distance from (1, 0)."""
    cos = 1.0 - distance
    return np.array([cos, np.sqrt(max(0.0, 1 - cos * cos)), 0.0], dtype=np.float32)


def chain(run_id: str, nodes: list[str], decisions: list[str] | None = None, stop: str | None = None,
          model: str = "m", k: int = 2) -> RunChain:
    decisions = decisions or ["origin"] + ["changed"] * (len(nodes) - 1)
    visits = [Visit(i, n, d) for i, (n, d) in enumerate(zip(nodes, decisions, strict=True))]
    return RunChain(run_id=run_id, visits=visits, model=model, stop_reason=stop, declines_to_stop=k)


def corpus(runs: list[RunChain], principles: dict[str, tuple[str, ...]] | None = None,
           metadata: dict[str, dict[str, object]] | None = None) -> Corpus:
    nodes = {v.node for r in runs for v in r.visits}
    return Corpus(runs=runs, principles=principles or {n: (n,) for n in nodes}, metadata=metadata or {})
