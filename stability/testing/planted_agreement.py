"""Planted judge agreement: two raters whose population Cohen's κ is known.

Each item has a true label (``r`` with probability ``prevalence``, drawn per cluster around it on the logit
scale with standard deviation ``spread``: items of one start resemble each other); rater a reports it wrongly with
probability ``err_a``, rater b with ``err_b``, independently. :func:`true_kappa` is κ over a very large draw.
Used by the tests and by ``bench/kappa_coverage.py``.
"""

from __future__ import annotations

import numpy as np

from stability.analysis.kappa import cohen_kappa


def planted_labels(rng: np.random.Generator, items: int, clusters: int, prevalence: float, err_a: float,
                   err_b: float, spread: float = 0.0) -> tuple[list[str], list[str], list[str]]:
    """(rater a's labels, rater b's labels, cluster of each item): ``items`` // ``clusters`` items per cluster."""
    per = items // clusters
    logit = np.log(prevalence / (1 - prevalence)) + spread * rng.normal(size=clusters)
    p = np.repeat(1 / (1 + np.exp(-logit)), per)
    truth = rng.random(len(p)) < p
    a = np.where(rng.random(len(p)) < err_a, ~truth, truth)
    b = np.where(rng.random(len(p)) < err_b, ~truth, truth)
    return (["r" if x else "u" for x in a], ["r" if x else "u" for x in b],
            [f"c{i}" for i in range(clusters) for _ in range(per)])


def true_kappa(prevalence: float, err_a: float, err_b: float, spread: float = 0.0) -> float:
    a, b, _ = planted_labels(np.random.default_rng(99), 2_000_000, 200_000, prevalence, err_a, err_b, spread)
    kappa = cohen_kappa(a, b)[1]
    assert kappa is not None
    return kappa
