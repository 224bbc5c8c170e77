"""Intervals for a rate over runs clustered by starting constitution, chosen by measured coverage.

Replicates of one start share that start's own chance of reaching a fixed point, so runs are not independent:
the information is in the starts (clusters). The estimand with two or more starts is the *mean over starts of
the population the starts stand for* (each run weighted equally: the ratio Σ successes / Σ runs); with one start
it is that start's own rate, the only one its runs can speak to.

Methods (``method`` in every :class:`~stability.analysis.stats.Interval` that carries one):

- ``wilson``: one start (or runs that are their own clusters): Wilson's score interval over runs.
- ``wilson-t``: two or more starts: Wilson's score interval with the *effective* number of runs
  n* = p̂(1 − p̂) / SE² (SE: the linearised cluster standard error of the ratio; n* at most n, so replicates never
  count for more than independent runs) and the t quantile with k − 1 degrees of freedom for z (k starts). It is
  the Wilson form of Korn and Graubard's interval for survey proportions. Its coverage at 1–20 starts × 1–10
  replicates is in docs/analysis.md (*Methods*), measured by ``bench/interval_choice.py``.
- ``cluster-t`` (measured, not used for rates): p̂ ± t(k − 1) · SE; it collapses to a point when every start
  has the same share (0 or 1 in particular), so it under-covers rare events.
- ``wilson-df`` (measured, not used): ``wilson-t`` whose degrees of freedom grow when the spread between starts
  looks binomial; it under-covers (84–87%) at 3 starts with heterogeneous starts.

With two starts every interval is very wide (t with 1 degree of freedom is 12.7): it is printed with a warning
(``TWO_STARTS``) rather than made to look precise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

Z95 = 1.959963984540054
TWO_STARTS = ("2 starts: the interval rests on 1 degree of freedom between starts and is wide; "
              "run more starting constitutions to narrow it")


def t_quantile(df: np.ndarray | float) -> np.ndarray:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom (z where df is infinite)."""
    return np.asarray(special.stdtrit(np.asarray(df, dtype=float), 0.975))


def wilson_arrays(p: np.ndarray, n: np.ndarray, z: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval for share ``p`` of ``n`` trials, quantile ``z`` (all broadcast)."""
    n = np.maximum(np.asarray(n, dtype=float), 1e-12)
    z2 = np.asarray(z, dtype=float) ** 2
    scale = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / scale
    half = np.sqrt(z2) / scale * np.sqrt(np.maximum(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def cluster_se(successes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Linearised standard error of the ratio Σy / Σn over clusters (rows: repetitions, columns: clusters;
    a cluster of size 0 is absent). NaN with fewer than two clusters."""
    successes, sizes = np.atleast_2d(successes).astype(float), np.atleast_2d(sizes).astype(float)
    k = (sizes > 0).sum(axis=1)
    n = sizes.sum(axis=1)
    p = successes.sum(axis=1) / np.maximum(n, 1e-12)
    residual = successes - p[:, None] * sizes
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(k >= 2, k / np.maximum(k - 1, 1) * (residual**2).sum(axis=1) / np.maximum(n, 1e-12) ** 2,
                       np.nan)
    return np.sqrt(var)


def rate_interval_arrays(successes: np.ndarray, sizes: np.ndarray, method: str
                         ) -> tuple[np.ndarray, np.ndarray]:
    """95% interval of Σy / Σn per row (repetition) of clustered counts, by ``method`` (``wilson-t``,
    ``cluster-t``, or ``wilson-runs``: independent runs); a row with one cluster gets Wilson over its runs."""
    successes, sizes = np.atleast_2d(successes).astype(float), np.atleast_2d(sizes).astype(float)
    k = (sizes > 0).sum(axis=1)
    n = sizes.sum(axis=1)
    p = successes.sum(axis=1) / np.maximum(n, 1e-12)
    runs_low, runs_high = wilson_arrays(p, n, Z95)
    if method == "wilson-runs":
        return runs_low, runs_high
    se = cluster_se(successes, sizes)
    t = t_quantile(np.maximum(k - 1, 1))
    if method == "cluster-t":
        low, high = np.clip(p - t * se, 0.0, 1.0), np.clip(p + t * se, 0.0, 1.0)
    elif method == "wilson-t":
        with np.errstate(divide="ignore", invalid="ignore"):
            effective = np.where(se > 0, p * (1 - p) / se**2, n)
        low, high = wilson_arrays(p, np.minimum(effective, n), t)
    elif method == "wilson-df":
        binomial = p * (1 - p) / np.maximum(n, 1e-12)
        var = np.nan_to_num(se**2)
        excess = np.maximum(var - binomial, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            effective = np.where(var > binomial, p * (1 - p) / np.maximum(var, 1e-300), n)
            df = np.where(excess > 0, np.maximum(k - 1, 1) * (np.maximum(var, binomial) / excess) ** 2, np.inf)
        low, high = wilson_arrays(p, np.minimum(effective, n), t_quantile(df))
    else:
        raise ValueError(f"unknown interval method {method!r}")
    one = k < 2
    return np.where(one, runs_low, low), np.where(one, runs_high, high)


def share_interval(successes: Sequence[float], sizes: Sequence[float]) -> tuple[float | None, float | None,
                                                                                float | None, str, str | None]:
    """The share Σ successes / Σ sizes over clusters (one entry per start; a size is runs, or clashes, ...) with
    its 95% interval: (mean, low, high, method, warning). Wilson over the one start's units with one start,
    ``wilson-t`` with more."""
    pairs = [(float(y), float(n)) for y, n in zip(successes, sizes, strict=True) if n > 0]
    if not pairs:
        return None, None, None, "none", None
    y = np.array([[p[0] for p in pairs]])
    n = np.array([[p[1] for p in pairs]])
    method = "wilson" if len(pairs) < 2 else "wilson-t"
    low, high = rate_interval_arrays(y, n, "wilson-runs" if method == "wilson" else method)
    warning = TWO_STARTS if len(pairs) == 2 else None
    return float(y.sum() / n.sum()), float(low[0]), float(high[0]), method, warning


def rate_interval(clusters: Sequence[Sequence[float]]) -> tuple[float | None, float | None, float | None, str,
                                                                  str | None]:
    """The share of successes (0/1 values) over all runs of ``clusters`` (one list per start), as
    :func:`share_interval`."""
    return share_interval([sum(c) for c in clusters], [len(c) for c in clusters])
