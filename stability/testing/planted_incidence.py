"""Planted competing risks: runs whose cumulative incidence of fixed points and cycles is known exactly.

Each step a run still moving reaches a fixed point with probability ``fixed`` and enters a cycle with probability
``cycle`` (per start, these are drawn around the given values on the logit scale with standard deviation
``spread``: between-start heterogeneity); a run still moving at ``cap`` is censored there. For one start,
F_fixed(t) = fixed / (fixed + cycle) · (1 − (1 − fixed − cycle)^t); the truth for a population of starts is its
mean over starts (:func:`true_incidence`). Used by the tests and by ``bench/incidence_coverage.py``.
"""

from __future__ import annotations

import numpy as np

from stability.analysis.incidence import CENSORED, CYCLE, FIXED


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def start_hazards(rng: np.random.Generator, n: int, fixed: float, cycle: float, spread: float
             ) -> tuple[np.ndarray, np.ndarray]:
    if spread == 0:
        return np.full(n, fixed), np.full(n, cycle)
    f = 1 / (1 + np.exp(-(_logit(fixed) + spread * rng.normal(size=n))))
    c = 1 / (1 + np.exp(-(_logit(cycle) + spread * rng.normal(size=n))))
    scale = np.minimum(1.0, 0.95 / (f + c))  # keep the two hazards a probability between them
    return f * scale, c * scale


def planted_runs(rng: np.random.Generator, starts: int, replicates: int, fixed: float, cycle: float, cap: int,
                 spread: float = 0.0, hazards: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(event step, cause, start) of ``starts`` × ``replicates`` runs (steps 1..cap); ``hazards``: each start's
    (fixed, cycle) hazards, to run a second group on the same starts (else drawn, see :func:`start_hazards`)."""
    f, c = hazards if hazards is not None else start_hazards(rng, starts, fixed, cycle, spread)
    f, c = np.repeat(f, replicates), np.repeat(c, replicates)
    ended = rng.geometric(f + c)  # the first step at which the run ends, by either cause
    cause = np.where(rng.random(len(ended)) < f / (f + c), FIXED, CYCLE)
    censored = ended > cap
    times = np.where(censored, cap, ended).astype(np.int64)
    causes = np.where(censored, CENSORED, cause).astype(np.int64)
    return times, causes, [f"s{i}" for i in range(starts) for _ in range(replicates)]


def true_incidence(fixed: float, cycle: float, step: int, spread: float = 0.0, cause: int = FIXED,
                   draws: int = 400_000, seed: int = 12345) -> float:
    """F_cause(step) over the population of starts (exact for ``spread`` = 0, else Monte Carlo over starts)."""
    f, c = start_hazards(np.random.default_rng(seed), draws if spread else 1, fixed, cycle, spread)
    share = f / (f + c) if cause == FIXED else c / (f + c)
    return float(np.mean(share * (1 - (1 - f - c) ** step)))
