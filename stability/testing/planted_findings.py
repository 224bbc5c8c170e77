"""Planted truths for the findings (questions 1, 5 and 7): scripted behaviours applied to principle lists, rating
trials with known swap probabilities, fine-tune generations whose decline probability rises by a known step.

Used by tests/analysis/findings and by ``bench/findings_coverage.py``; nothing here estimates anything.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stability.analysis.corpus import Corpus, RunChain, Visit
from stability.analysis.findings.generations import GenerationRow
from stability.analysis.findings.principle_survival import Life
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


def rating_runs(probabilities: dict[int, float], seeds: int, trials: int, reflect: str, rng: np.random.Generator,
                 shift: float = 0.0) -> tuple[list[RunChain], dict[str, tuple[str, ...]]]:
    """Principle-mode rate-alternatives runs: principle ``index`` of a three-principle start is swapped in each
    trial with probability ``probabilities[index] + shift``; ``seeds`` runs of ``trials`` trials per principle."""
    start = ("I am honest.", "I am kind.", "I am brief.")
    head = node(start)
    runs = []
    for index, p in probabilities.items():
        for seed in range(seeds):
            swaps = rng.random(trials) < p + shift
            visits = [Visit(0, head, "origin")] + [Visit(t + 1, f"swap-{index}" if s else head,
                                                         "changed" if s else "declined")
                                                   for t, s in enumerate(swaps)]
            runs.append(RunChain(run_id=f"{reflect}-{index}-{seed}", visits=visits, model="m",
                                 protocol="rate-alternatives", chain=False,
                                 config={"model": "m", "seed": seed,
                                         "options": {"principle": index, "reflect": reflect}}))
    return runs, {head: start, **{f"swap-{i}": ("x",) for i in probabilities}}


def lineages(rng: np.random.Generator, arm: str, base: float, rise: float, lineages: int = 8, gens: int = 6,
             traces: int = 12, spread: float = 0.05) -> list[GenerationRow]:
    """Fine-tune lineages of one arm: at generation g each trace declines with probability base + offset + rise·g
    (offset: the lineage's own, normal with sd ``spread``); a majority of changes moves the constitution."""
    rows = []
    for lineage in range(lineages):
        offset = rng.normal(0, spread)  # lineages differ: the clustering matters
        distance = 0.0
        for g in range(gens):
            p = float(np.clip(base + offset + rise * g, 0.01, 0.99))
            declines = int(rng.binomial(traces, p))
            step = 0.0 if declines * 2 >= traces else float(rng.uniform(0.05, 0.15))
            distance += step
            held = int(rng.binomial(4, p))
            rows.append(GenerationRow(lineage=f"{arm}-{lineage}", arm=arm, pair=f"start:{lineage}", generation=g,
                                      parsed=traces, changed=traces - declines, step_distance=step,
                                      origin_distance=distance, heldout_parsed=4, heldout_changed=4 - held))
    return rows


def planted_lives(rng: np.random.Generator, starts: int, replicates: int, hazard: float, last_ratio: float,
                  cap: int, size: int = 4, spread: float = 0.3) -> list[Life]:
    """Principles of ``starts`` × ``replicates`` runs removed at each step with probability h_s (the start's own:
    ``hazard`` times a lognormal with sd ``spread``), the last position with ``last_ratio`` × h_s; censored at
    ``cap``. The truth: S(cap) = E_s[(1 − h_s)^cap] for a non-last position, hazard ratio last/first =
    ``last_ratio``."""
    out = []
    for s in range(starts):
        h = float(np.clip(hazard * np.exp(rng.normal(0, spread)), 0.0, 0.45))
        for r in range(replicates):
            for i in range(size):
                t = int(rng.geometric(h * (last_ratio if i == size - 1 else 1.0)))
                out.append(Life(run_id=f"{s}-{r}", start=f"s{s}", place=i, text=f"p{s}-{i}", size=size,
                                time=min(t, cap), removed=t <= cap, reworded=False, clash=False, condition="c"))
    return out


def true_survival(hazard: float, cap: int, spread: float = 0.3, draws: int = 200_000, seed: int = 12345) -> float:
    """S(cap) of a non-last principle over the population of starts of :func:`planted_lives`."""
    h = np.clip(hazard * np.exp(np.random.default_rng(seed).normal(0, spread, draws)), 0.0, 0.45)
    return float(np.mean((1 - h) ** cap))
