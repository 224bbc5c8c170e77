"""Contrasts between two groups (a − b): paired within start where the groups share starts, else unpaired.

Groups that ran on the same starting constitutions (models, protocols, framings over one library) are compared
*within start*: the per-start differences are the data, and the interval and test are over the shared starts
(``paired``: at least 2 shared starts; runs at starts the other group lacks are left out of a paired contrast).
Otherwise each side's starts are its clusters and the two are independent (``welch``).

Every estimate says how it was made (``method``), on how many starts (``starts``), and, where there is no
interval or test, why (``note``): an undefined resample is never dropped in silence. ``p_adjusted`` is filled
over every p-value an invocation prints (:mod:`stability.analysis.multiplicity`), the competing-risks contrast's
(``incidence``: F_fixed and F_cycle differences, cause-specific hazard ratios) among them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.between_starts import StartDistances, jackknife_se, t_test
from stability.analysis.incidence import IncidenceContrast
from stability.analysis.intervals import TWO_STARTS, cluster_se, t_quantile
from stability.analysis.multiplicity import adjust
from stability.analysis.stats import MEDIAN_STARTS

Members = Mapping[str, Sequence[int]]  # start -> run indices


class ContrastEstimate(BaseModel):
    """One measure's a − b: effect size, 95% interval, raw and adjusted p-value."""

    model_config = ConfigDict(extra="forbid")

    mean: float | None  # the effect: a − b (difference of rates, medians or ratios)
    low: float | None
    high: float | None
    n: int  # runs the estimate rests on (both sides)
    starts: int = 0  # starts it rests on: shared starts when paired, else a's + b's
    method: str = "none"  # paired-t | welch-t | paired-jackknife-t | welch-jackknife-t | cluster-bootstrap | none
    p_value: float | None = None  # two-sided, H0: no difference; None: no test (``note``)
    p_adjusted: float | None = None  # over every printed p-value (``AnalysisResult.adjust``)
    note: str | None = None


class Contrast(BaseModel):
    """Group ``a`` minus group ``b``, paired within start when they share at least two starts."""

    model_config = ConfigDict(extra="forbid")

    a: dict[str, Any]
    b: dict[str, Any]
    paired: bool = False
    shared_starts: int = 0
    fixed_point_rate: ContrastEstimate  # over judged runs
    fixed_point_rate_started: ContrastEstimate | None = None  # over started runs (no verdict: not reached)
    steps_to_fixed_point: ContrastEstimate  # difference of Kaplan–Meier medians
    convergence_ratio: ContrastEstimate  # between starts
    clash_resolution: ContrastEstimate
    incidence: IncidenceContrast | None = None  # F_fixed and F_cycle at a common step, paired when starts agree


def _r(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def _none(n: int, starts: int, note: str, method: str = "none", mean: float | None = None) -> ContrastEstimate:
    return ContrastEstimate(mean=_r(mean), low=None, high=None, n=n, starts=starts, method=method, note=note)


def shared(a: Members, b: Members) -> list[str]:
    """The starts both groups have runs at."""
    return sorted(s for s in a if len(a[s]) and len(b.get(s, ())))


def _shrunk_var(y: float, n: float) -> float:
    """Binomial variance of a share y/n, with y shrunk by a half toward 1/2 (never 0 at 0 or n successes)."""
    p = (y + 0.5) / (n + 1.0)
    return p * (1 - p) / n


def _sums(y: np.ndarray, n: np.ndarray, members: Members) -> dict[str, tuple[float, float, int]]:
    """Per start with something counted: (Σy, Σn, runs)."""
    out = {}
    for start, idx in members.items():
        picked = np.asarray(idx, dtype=int)
        total = float(n[picked].sum())
        if total > 0:
            out[start] = (float(y[picked].sum()), total, len(picked))
    return out


def _side(sums: dict[str, tuple[float, float, int]]) -> tuple[float, float, float, int, int] | None:
    """One group's share Σy/Σn with its variance (cluster, floored at binomial), df, runs and starts."""
    if not sums:
        return None
    ys = np.array([v[0] for v in sums.values()])
    ns = np.array([v[1] for v in sums.values()])
    runs = sum(v[2] for v in sums.values())
    share = float(ys.sum() / ns.sum())
    floor = _shrunk_var(float(ys.sum()), float(ns.sum()))
    if len(sums) >= 2:
        var = max(float(cluster_se(ys[None, :], ns[None, :])[0]) ** 2, floor)
        return share, var, len(sums) - 1.0, runs, len(sums)
    return share, floor, max(float(ns.sum()) - 1.0, 1.0), runs, 1


def share_contrast(y: np.ndarray, n: np.ndarray, a: Members, b: Members) -> ContrastEstimate:
    """a − b of the share Σy / Σn (fixed points over runs, clashes resolved over clashes)."""
    ua, ub = _sums(y, n, a), _sums(y, n, b)
    both = sorted(s for s in ua if s in ub)
    if len(both) >= 2:
        d = np.array([ua[s][0] / ua[s][1] - ub[s][0] / ub[s][1] for s in both])
        k = len(both)
        # the binomial variance of each start's difference (pooled share of both groups at that start, shrunk by
        # a half): all the variance there is when the groups differ by the same amount at every start
        pooled = [(ua[s][0] + ub[s][0] + 0.5) / (ua[s][1] + ub[s][1] + 1.0) for s in both]  # shrunk: never 0
        binomial = sum(q * (1 - q) * (1 / ua[s][1] + 1 / ub[s][1]) for q, s in zip(pooled, both, strict=True)) / k**2
        empirical = float(d.var(ddof=1)) / k
        # more spread than binomial noise: a start × group interaction, estimated on k − 1 df; else the known
        # binomial variance, on the normal quantile
        se, df = (np.sqrt(empirical), k - 1.0) if empirical > binomial else (np.sqrt(binomial), np.inf)
        runs = sum(ua[s][2] + ub[s][2] for s in both)
        out = _estimate(float(d.mean()), float(se), df, runs, k, "paired-t", (-1.0, 1.0))
        return out.model_copy(update={"note": TWO_STARTS}) if k == 2 else out
    sa, sb = _side(ua), _side(ub)
    if sa is None and sb is None:  # nothing counted on either side (no clashes): nothing to say
        return ContrastEstimate(mean=None, low=None, high=None, n=0)
    if sa is None or sb is None:
        return _none(0, 0, "nothing counted on one side")
    (pa, va, da, na, ka), (pb, vb, db, nb, kb) = sa, sb
    df = (va + vb) ** 2 / (va**2 / da + vb**2 / db)  # Welch–Satterthwaite
    note = "1 start on each side: the difference is confounded with the start" if ka == kb == 1 else None
    out = _estimate(pa - pb, float(np.sqrt(va + vb)), df, na + nb, ka + kb, "welch-t", (-1.0, 1.0))
    return out.model_copy(update={"note": note}) if note else out


def _estimate(value: float, se: float, df: float, n: int, starts: int, method: str,
              bounds: tuple[float, float] | None = None) -> ContrastEstimate:
    half = float(t_quantile(df)) * se
    low, high = value - half, value + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return ContrastEstimate(mean=_r(value), low=_r(low), high=_r(high), n=n, starts=starts, method=method,
                            p_value=round(t_test(value, se, df), 6))


def ratio_contrast(distances: StartDistances | None, a: Members, b: Members, n: int) -> ContrastEstimate:
    """a − b of the convergence ratio between starts: jackknife over the shared starts when paired, else each
    side's jackknife variance, with Welch–Satterthwaite degrees of freedom."""
    if distances is None:
        return _none(n, 0, "too many runs for pairwise distances")
    both = shared(a, b)
    if len(both) >= 2:
        ja, jb = distances.jackknife(a, both), distances.jackknife(b, both)
        if ja.value is None or jb.value is None:
            return _none(n, len(both), "the ratio is undefined on a side")
        value = ja.value - jb.value
        deleted = [None if x is None or y is None else x - y for x, y in zip(ja.deleted, jb.deleted, strict=True)]
        if len(both) < 3:
            return _none(n, 2, "2 shared starts: no interval (deleting a start leaves no pair of starts)",
                         "paired-jackknife-t", value)
        if any(d is None for d in deleted):
            return _none(n, len(both), "a start's deletion leaves a ratio undefined: no interval",
                         "paired-jackknife-t", value)
        k = len(both)
        values = np.array(deleted, dtype=float)
        se = float(np.sqrt((k - 1) / k * np.sum((values - values.mean()) ** 2)))
        return _estimate(value, se, k - 1.0, n, k, "paired-jackknife-t")
    ja, jb = distances.jackknife(a), distances.jackknife(b)
    starts = len(ja.deleted) + len(jb.deleted)
    if ja.value is None or jb.value is None:
        return _none(n, starts, "the ratio is undefined on a side (fewer than 2 starts)")
    sa, sb = jackknife_se(ja), jackknife_se(jb)
    if sa is None or sb is None:
        return _none(n, starts, "fewer than 3 starts on a side: no interval", "welch-jackknife-t",
                     ja.value - jb.value)
    va, vb = sa**2, sb**2
    da, db = len(ja.deleted) - 1.0, len(jb.deleted) - 1.0
    df = (va + vb) ** 2 / (va**2 / da + vb**2 / db) if va + vb > 0 else da + db
    return _estimate(ja.value - jb.value, float(np.sqrt(va + vb)), df, n, starts, "welch-jackknife-t")


def median_contrast(median: Any, a: Members, b: Members, resamples: int, seed: int) -> ContrastEstimate:
    """a − b of Kaplan–Meier medians, with a 95% percentile interval over cluster resamples (shared starts drawn
    together when paired). A median the data never reach leaves no estimate; a resample where one is undefined
    counts as ±∞ (a bound that lands there is unbounded, None), and where both are, there is no interval."""
    both = shared(a, b)
    paired = len(both) >= 2
    sa = both if paired else sorted(s for s in a if len(a[s]))
    sb = both if paired else sorted(s for s in b if len(b[s]))
    ia = [np.asarray(a[s], dtype=int) for s in sa]
    ib = [np.asarray(b[s], dtype=int) for s in sb]
    n = sum(len(x) for x in ia) + sum(len(x) for x in ib)
    starts = len(both) if paired else len(sa) + len(sb)
    method = "paired-cluster-bootstrap" if paired else "cluster-bootstrap"
    if not ia or not ib:
        return _none(n, starts, "no runs on one side")
    va, vb = median(np.concatenate(ia)), median(np.concatenate(ib))
    if va is None or vb is None:
        return _none(n, starts, "a median is not reached: no difference", method)
    if len(ia) < 2 or len(ib) < 2:
        return _none(n, starts, "fewer than 2 starts on a side: no interval", method, va - vb)
    if min(len(ia), len(ib)) < MEDIAN_STARTS:  # measured: the percentile interval of a median difference excluded
        return _none(n, starts, f"fewer than {MEDIAN_STARTS} starts: no interval (a percentile bootstrap of "
                     "medians rejected 7-47% of true nulls at 2-3 starts); read contrasts[].incidence",
                     method, va - vb)
    rng = np.random.default_rng(seed)
    pick_a = rng.integers(0, len(ia), size=(resamples, len(ia)))
    pick_b = pick_a if paired else rng.integers(0, len(ib), size=(resamples, len(ib)))
    draws = np.empty(resamples)
    for r in range(resamples):
        da = median(np.concatenate([ia[i] for i in pick_a[r]]))
        db = median(np.concatenate([ib[i] for i in pick_b[r]]))
        draws[r] = np.nan if da is None and db is None else np.inf if da is None else -np.inf if db is None \
            else da - db
    undefined = float(np.mean(~np.isfinite(draws)))
    if np.isnan(draws).any():
        return _none(n, starts, f"both medians undefined in {np.isnan(draws).mean():.0%} of resamples: no "
                     "interval", method, va - vb)
    low, high = np.percentile(draws, [2.5, 97.5], method="inverted_cdf")
    note = f"a median is undefined in {undefined:.0%} of resamples: unbounded side" if not (
        np.isfinite(low) and np.isfinite(high)) else None
    return ContrastEstimate(mean=_r(va - vb), low=_r(low), high=_r(high), n=n, starts=starts, method=method,
                            note=note or "no test for medians: interval only")


MEASURES = ("fixed_point_rate", "fixed_point_rate_started", "steps_to_fixed_point", "convergence_ratio",
            "clash_resolution")


def adjust_contrasts(contrasts: list[Contrast], method: str) -> None:
    """Fill ``p_adjusted`` over every p-value of every contrast (the family an invocation prints): each measure's,
    and the competing-risks contrast's (F_fixed and F_cycle differences, both hazard ratios)."""
    raw: list[float | None] = []
    fill: list[tuple[Any, str]] = []  # (model, field) that each raw p-value's adjustment goes to
    for c in contrasts:
        for e in (getattr(c, m) for m in MEASURES):
            if e is not None:
                raw.append(e.p_value)
                fill.append((e, "p_adjusted"))
        if c.incidence is not None:
            raw += [c.incidence.p_fixed_point, c.incidence.p_cycle]
            fill += [(c.incidence, "p_fixed_point_adjusted"), (c.incidence, "p_cycle_adjusted")]
            for ratio in (c.incidence.hazard_ratio_fixed_point, c.incidence.hazard_ratio_cycle):
                if ratio is not None:
                    raw.append(ratio.p_value)
                    fill.append((ratio, "p_adjusted"))
    for (model, field), adjusted in zip(fill, adjust(raw, method), strict=True):
        setattr(model, field, None if adjusted is None else round(adjusted, 6))
