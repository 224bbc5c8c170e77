"""Statistics every grouped measure shares: intervals, cluster bootstraps, Kaplan–Meier survival.

Replicates of one starting constitution are not independent, so intervals rest on *clusters* (a group's starting
constitutions, each with all its runs) rather than runs. Rates and shares use the small-sample intervals of
:mod:`stability.analysis.intervals` (chosen by measured coverage, docs/analysis.md *Methods*); measures without
one (medians, drift) keep a 95% percentile bootstrap over clusters, and say so in ``method``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.intervals import share_interval


class Interval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mean: float | None
    low: float | None
    high: float | None
    n: int  # runs (or the units counted: clashes, pairs, trials)
    clusters: int | None = None  # starts the interval rests on (None: not recorded by this measure)
    method: str | None = None  # wilson | wilson-t | percentile-bootstrap | ... (docs/analysis.md, *Methods*)
    warning: str | None = None  # e.g. two starts: wide, read with care


def rate(clusters: Sequence[Sequence[float]], counts: Sequence[Sequence[float]] | None = None) -> Interval:
    """Σ values / Σ counts over ``clusters`` (one list per start; counts 1 per value unless given) with its
    95% interval: Wilson over runs with one start, ``wilson-t`` with more (:func:`.intervals.share_interval`)."""
    clusters = [list(c) for c in clusters]
    sizes = [sum(n) for n in counts] if counts is not None else [len(c) for c in clusters]
    kept = [(sum(c), n) for c, n in zip(clusters, sizes, strict=True) if n > 0]
    units = sum(len(c) for c, n in zip(clusters, sizes, strict=True) if n > 0) if counts is None else \
        int(sum(n for _, n in kept))
    mean, low, high, method, warning = share_interval([y for y, _ in kept], [n for _, n in kept])
    if mean is None:
        return Interval(mean=None, low=None, high=None, n=0, clusters=0, method=None)
    return Interval(mean=_round(mean), low=_round(low), high=_round(high), n=units, clusters=len(kept),
                    method=method, warning=warning)


def _round(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def bootstrap(groups: Sequence[Sequence[float]], resamples: int, seed: int) -> Interval:
    """Mean of all values with a 95% percentile interval, resampling the groups (clusters) with replacement."""
    groups = [list(g) for g in groups if len(g)]
    values = [x for g in groups for x in g]
    if not values:
        return Interval(mean=None, low=None, high=None, n=0)
    mean = float(np.mean(values))
    if len(groups) < 2:
        return Interval(mean=round(mean, 6), low=None, high=None, n=len(values))
    rng = np.random.default_rng(seed)
    sums = np.array([sum(g) for g in groups])
    counts = np.array([len(g) for g in groups])
    picks = rng.integers(0, len(groups), size=(resamples, len(groups)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(mean=round(mean, 6), low=round(float(low), 6), high=round(float(high), 6), n=len(values))


def mean_of(values: np.ndarray) -> Callable[[np.ndarray], float | None]:
    """The statistic "mean of ``values`` at the drawn indices" (None for an empty draw)."""
    return lambda idx: float(values[idx].mean()) if len(idx) else None


def wilson(successes: int, trials: int, z: float = 1.96) -> Interval:
    """The share ``successes / trials`` with its Wilson score interval (95% for z = 1.96)."""
    if trials == 0:
        return Interval(mean=None, low=None, high=None, n=0)
    p = successes / trials
    scale = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / scale
    half = z / scale * float(np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)))
    return Interval(mean=round(p, 6), low=round(max(0.0, centre - half), 6), high=round(min(1.0, centre + half), 6),
                    n=trials)


def resample_clusters(clusters: Sequence[Sequence[int]], resamples: int, seed: int) -> list[np.ndarray]:
    """``resamples`` bootstrap draws of member indices: whole clusters drawn with replacement."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(c, dtype=int) for c in clusters]
    picks = rng.integers(0, len(arrays), size=(resamples, len(arrays)))
    return [np.concatenate([arrays[i] for i in row]) for row in picks]


def cluster_interval(statistic: Callable[[np.ndarray], float | None], clusters: Sequence[Sequence[int]],
                     resamples: int, seed: int,
                     all_draws: Callable[[], np.ndarray | None] | None = None) -> Interval:
    """``statistic`` of all members, with a 95% percentile interval over cluster resamples (None where undefined).

    ``all_draws``: the statistic of every draw of :func:`resample_clusters` at once (inf where undefined), or None
    where it cannot: then each draw is computed on its own."""
    members = np.asarray([i for c in clusters for i in c], dtype=int)
    if not len(members):
        return Interval(mean=None, low=None, high=None, n=0)
    value = statistic(members)
    if len(clusters) < 2 or value is None:
        return Interval(mean=_round(value), low=None, high=None, n=len(members))
    finite = all_draws() if all_draws is not None else None
    if finite is None:
        draws = [statistic(idx) for idx in resample_clusters(clusters, resamples, seed)]
        finite = np.array([np.inf if d is None else d for d in draws], dtype=float)
    low, high = np.percentile(finite, [2.5, 97.5], method="inverted_cdf")  # no inf - inf interpolation
    return Interval(mean=_round(value), low=_round(low), high=_round(high), n=len(members))


class SurvivalPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    surviving: float  # estimated share of runs not yet at a fixed point after this step
    at_risk: int


class Survival(BaseModel):
    """Kaplan–Meier estimate of steps to a fixed point; runs that stopped without one are censored."""

    model_config = ConfigDict(extra="forbid")

    median: float | None  # first step where the surviving share is <= 0.5; None: not reached
    low: float | None  # 95% bootstrap interval of the median; None: unbounded (not reached in > 2.5% of draws)
    high: float | None
    n: int  # runs with a verdict
    events: int  # runs that reached a fixed point
    censored: int  # runs that stopped without one (max_steps, a cycle, ...), counted up to their last step
    mean_observed: float | None  # mean step of the runs that reached a fixed point (biased low: ignores censoring)
    warning: str | None = None  # where the median's interval does not hold its level (fewer than MEDIAN_STARTS)
    curve: list[SurvivalPoint]


def _km(times: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event steps, the surviving share after each, and the runs at risk at each (vectorised)."""
    if not len(times):
        return np.zeros(0, dtype=int), np.zeros(0), np.zeros(0, dtype=int)
    if times.min() >= 0 and times.max() < 100_000:  # steps: count per step directly, no sort (bootstraps call
        inverse = times.astype(np.int64)             # this tens of thousands of times); steps no run has are
        steps = np.arange(int(inverse.max()) + 1)   # never an event step, so they drop out below
    else:
        steps, inverse = np.unique(times, return_inverse=True)
    reached = np.bincount(inverse, weights=events.astype(float), minlength=len(steps))
    at_risk = np.bincount(inverse, minlength=len(steps))[::-1].cumsum()[::-1]
    hit = reached > 0
    return steps[hit], np.cumprod(1.0 - reached[hit] / at_risk[hit]), at_risk[hit]


def kaplan_meier(times: np.ndarray, events: np.ndarray) -> list[tuple[int, float, int]]:
    """(step, surviving share, at risk) at each step where a fixed point was reached."""
    steps, surviving, at_risk = _km(times, events)
    return [(int(t), float(v), int(r)) for t, v, r in zip(steps, surviving, at_risk, strict=True)]


def km_median(times: np.ndarray, events: np.ndarray) -> float | None:
    """The first step at which the surviving share is at most 0.5; None if it never is."""
    steps, surviving, _ = _km(times, events)
    below = np.flatnonzero(surviving <= 0.5 + 1e-12)
    return float(steps[below[0]]) if len(below) else None


def km_median_draws(times: np.ndarray, events: np.ndarray, clusters: Sequence[Sequence[int]], resamples: int,
                    seed: int, chunk: int = 256) -> np.ndarray | None:
    """``km_median(times[idx], events[idx])`` of every draw ``idx`` of ``resample_clusters(clusters, resamples,
    seed)`` (inf where the median is not reached), without building the draws: a draw's Kaplan–Meier curve
    depends only on how many runs it holds, and how many reached a fixed point, at each step, so each cluster's
    counts per step are summed with the number of times the draw picked it (whole numbers: exact in float64, as
    are the at-risk sums, so every draw's curve is the same floats :func:`_km` gives). None where the steps are
    not small whole numbers (then :func:`_km` sorts them)."""
    if not len(times) or not clusters or times.min() < 0 or times.max() >= 100_000:
        return None
    rng = np.random.default_rng(seed)  # the same draws as resample_clusters
    picks = rng.integers(0, len(clusters), size=(resamples, len(clusters)))
    sizes = np.fromiter((len(c) for c in clusters), dtype=np.int64, count=len(clusters))
    members = np.fromiter((i for c in clusters for i in c), dtype=np.int64, count=int(sizes.sum()))
    width = int(times.max()) + 1
    cell = np.repeat(np.arange(len(clusters)), sizes) * width + times[members].astype(np.int64)
    runs = np.bincount(cell, minlength=len(clusters) * width).reshape(len(clusters), width).astype(float)
    reached = np.bincount(cell, weights=events[members].astype(float),
                          minlength=len(clusters) * width).reshape(len(clusters), width)
    out = np.full(resamples, np.inf)
    for lo in range(0, resamples, chunk):
        rows = picks[lo:lo + chunk]
        weight = np.zeros((len(rows), len(clusters)))
        np.add.at(weight, (np.repeat(np.arange(len(rows)), len(clusters)), rows.ravel()), 1.0)
        draw_reached = weight @ reached
        at_risk = (weight @ runs)[:, ::-1].cumsum(axis=1)[:, ::-1]
        hit = draw_reached > 0
        factor = np.where(hit, 1.0 - draw_reached / np.where(hit, at_risk, 1.0), 1.0)
        below = np.cumprod(factor, axis=1) <= 0.5 + 1e-12  # first crossed at a step with events, as km_median
        found = below.any(axis=1)
        out[lo:lo + chunk][found] = below[found].argmax(axis=1)
    return out


MEDIAN_STARTS = 10  # below this many starts a KM median's percentile interval does not hold its level
MEDIAN_WARNING = ("KM median interval: a percentile bootstrap over {k} starts, which covered 45-81% at 2-3 starts "
                  "and 85-94% at 5 (bench/calibration.py); read incidence.median_fixed_point and the incidence "
                  "intervals, which hold their level")


def survival(times: Sequence[int], events: Sequence[bool], clusters: Sequence[Sequence[int]], resamples: int,
             seed: int, starts: int | None = None) -> Survival:
    """KM of steps to a fixed point; ``starts``: how many starting constitutions the runs come from (below
    :data:`MEDIAN_STARTS` the median's interval carries a warning)."""
    t, e = np.asarray(times, dtype=int), np.asarray(events, dtype=bool)
    interval = cluster_interval(lambda idx: km_median(t[idx], e[idx]), clusters, resamples, seed,
                                lambda: km_median_draws(t, e, clusters, resamples, seed))
    median = km_median(t, e) if len(t) else None
    if median is None:  # the bootstrap cannot bound a median the data never reached
        interval = Interval(mean=None, low=interval.low, high=None, n=len(t))
    curve = [SurvivalPoint(step=s, surviving=round(v, 6), at_risk=r) for s, v, r in kaplan_meier(t, e)]
    return Survival(median=median, low=interval.low, high=interval.high, n=len(t), events=int(e.sum()),
                    censored=int((~e).sum()), mean_observed=_round(float(t[e].mean())) if e.any() else None,
                    curve=curve,
                    warning=MEDIAN_WARNING.format(k=starts) if starts is not None and starts < MEDIAN_STARTS
                    and interval.low is not None else None)


def difference(a: Callable[[np.ndarray], float | None], a_clusters: Sequence[Sequence[int]],
               b: Callable[[np.ndarray], float | None], b_clusters: Sequence[Sequence[int]], resamples: int,
               seed: int) -> Interval:
    """a − b with a 95% interval, resampling each side's clusters independently."""
    a_all = np.asarray([i for c in a_clusters for i in c], dtype=int)
    b_all = np.asarray([i for c in b_clusters for i in c], dtype=int)
    va, vb = (a(a_all), b(b_all)) if len(a_all) and len(b_all) else (None, None)
    if va is None or vb is None:
        return Interval(mean=None, low=None, high=None, n=len(a_all) + len(b_all))
    if len(a_clusters) < 2 or len(b_clusters) < 2:
        return Interval(mean=_round(va - vb), low=None, high=None, n=len(a_all) + len(b_all))
    draws = []
    for ia, ib in zip(resample_clusters(a_clusters, resamples, seed),
                      resample_clusters(b_clusters, resamples, seed + 1), strict=True):
        da, db = a(ia), b(ib)
        if da is not None and db is not None:
            draws.append(da - db)
    if not draws:
        return Interval(mean=_round(va - vb), low=None, high=None, n=len(a_all) + len(b_all))
    low, high = np.percentile(draws, [2.5, 97.5])
    return Interval(mean=_round(va - vb), low=_round(low), high=_round(high), n=len(a_all) + len(b_all))
