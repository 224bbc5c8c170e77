"""Cohen's κ between two raters of the same items, and its interval.

Interval (95%): a jackknife with a t quantile. Items are left out a cluster at a time (each item its own cluster
when no clusters are given): κ_(g) is κ without cluster g, the standard error is sqrt((G − 1)/G · Σ (κ_(g) −
mean)²), and the interval κ ± t(0.975; G − 1) · se, clipped to [−1, 1]. Items that share a run or a start (the
clashes of one start) are not independent, so the clash agreement leaves one start out at a time. Its coverage on
planted agreement is measured by ``bench/kappa_coverage.py`` (docs/analysis.md, *Judge agreement*).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> tuple[float | None, float | None]:
    """(observed agreement, Cohen's κ) of two raters' labels of the same items."""
    if not a:
        return None, None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    count_a, count_b = Counter(a), Counter(b)
    chance = sum(count_a[k] * count_b[k] for k in count_a) / (len(a) ** 2)
    if len(a) < 2 or chance >= 1.0:
        return round(observed, 6), None
    return round(observed, 6), round((observed - chance) / (1.0 - chance), 6)


def _kappa_from_tables(tables: np.ndarray) -> np.ndarray:
    """Cohen's κ of each (k × k) agreement table (rows: rater a's label, columns: b's); NaN where undefined."""
    n = tables.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = np.trace(tables, axis1=1, axis2=2) / n
        chance = (tables.sum(axis=2) * tables.sum(axis=1)).sum(axis=1) / (n * n)
        kappa = (observed - chance) / (1.0 - chance)
    return np.where((n >= 2) & (chance < 1.0 - 1e-12), kappa, np.nan)


def kappa_interval(a: Sequence[str], b: Sequence[str], clusters: Sequence[str] | None = None
                   ) -> tuple[float | None, float | None, int]:
    """95% interval of Cohen's κ: leave-one-cluster-out jackknife (each item its own cluster when ``clusters`` is
    None) with a t quantile on G − 1 degrees of freedom, clipped to [−1, 1]; (None, None, G) when undefined (or
    when leaving some cluster out leaves κ undefined)."""
    from scipy.stats import t

    codes = {label: i for i, label in enumerate(dict.fromkeys([*a, *b]))}
    names = list(clusters) if clusters is not None else [str(i) for i in range(len(a))]
    cluster_codes = {name: i for i, name in enumerate(dict.fromkeys(names))}
    g = len(cluster_codes)
    if g < 2:
        return None, None, g
    per = np.zeros((g, len(codes), len(codes)))
    np.add.at(per, ([cluster_codes[x] for x in names], [codes[x] for x in a], [codes[x] for x in b]), 1.0)
    whole = per.sum(axis=0)
    kappa = _kappa_from_tables(whole[None])[0]
    jack = _kappa_from_tables(whole[None] - per)
    if not np.isfinite(kappa) or not np.isfinite(jack).all():
        return None, None, g
    se = float(np.sqrt((g - 1) / g * ((jack - jack.mean()) ** 2).sum()))
    half = float(t.ppf(0.975, g - 1)) * se
    return round(max(-1.0, float(kappa) - half), 6), round(min(1.0, float(kappa) + half), 6), g
