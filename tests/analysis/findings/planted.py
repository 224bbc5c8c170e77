"""Planted corpora for the findings tests: scripted behaviours applied to principle lists, with known truths."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stability.analysis.corpus import Corpus, RunChain, Visit
from stability.constitution import Constitution

Behaviour = Callable[[tuple[str, ...]], tuple[str, ...]]


def node(principles: tuple[str, ...]) -> str:
    return Constitution(principles=principles).hash


def drop_last(principles: tuple[str, ...]) -> tuple[str, ...]:
    """Drops the last principle while more than one is left; then declines."""
    return principles[:-1] if len(principles) > 1 else principles


def never(principles: tuple[str, ...]) -> tuple[str, ...]:
    return principles


def start_lists(sizes: list[int]) -> list[tuple[str, ...]]:
    return [tuple(f"Start {s} principle {i}: I value thing {s}-{i}." for i in range(size))
            for s, size in enumerate(sizes)]


def iterate(behaviour: Behaviour, starts: list[tuple[str, ...]], replicates: int = 2, declines: int = 2,
            max_steps: int = 20, protocol: str = "fresh-instance") -> Corpus:
    """Chain runs of ``behaviour`` from each start, stopping after ``declines`` declines in a row."""
    runs, principles = [], {}
    for s, start in enumerate(starts):
        for r in range(replicates):
            current = start
            principles[node(current)] = current
            visits = [Visit(0, node(current), "origin")]
            quiet = 0
            for step in range(1, max_steps + 1):
                revised = behaviour(current)
                quiet = quiet + 1 if revised == current else 0
                principles[node(revised)] = revised
                visits.append(Visit(step, node(revised), "declined" if revised == current else "changed"))
                current = revised
                if quiet >= declines:
                    break
            runs.append(RunChain(run_id=f"run-{s}-{r}", visits=visits, model="m", protocol=protocol,
                                 stop_reason="declined", declines_to_stop=declines,
                                 config={"model": "m", "seed": r}))
    return Corpus(runs=runs, principles=principles)


def vectors(corpus: Corpus, dim: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """A random unit vector per principle text (distinct texts nearly orthogonal: never read as reworded)."""
    rng = np.random.default_rng(seed)
    texts = sorted({t for ps in corpus.principles.values() for t in ps})
    out = {}
    for text in texts:
        v = rng.normal(size=dim)
        out[text] = (v / np.linalg.norm(v)).astype(np.float32)
    return out
