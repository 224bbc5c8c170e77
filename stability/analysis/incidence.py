"""Competing risks: how likely a run is to end at a fixed point (or in a cycle, or with no verdict) by a step.

A chain run ends in exactly one way: a fixed point, a cycle, or no verdict (its last step failed). These are
*competing* outcomes: a run that cycled will never reach a fixed point, so it is not censored. Only runs that
hit the step cap still moving (``unsettled``) or did not finish (``unfinished``: to be resumed) are censored, at
their last step.

Estimand: the cumulative incidence of cause c by step t, F_c(t) = P(the run ends by cause c at a step <= t), over
the group's started chain runs (no-verdict runs included: they are started runs that ended without one).
Estimator: Aalen–Johansen, F_c(t) = sum over event steps s <= t of S(s-) d_c(s) / n(s), with S the all-cause
Kaplan–Meier survival, d_c(s) the runs that ended by cause c at s, n(s) the runs still at risk at s. Without
censoring before t it is the share of runs that ended by cause c by t. (1 − Kaplan–Meier with cycles censored,
the old ``steps_to_fixed_point``, estimates the fixed-point time in a world without cycles, and overstates
F_fixed(t) whenever cycles happen.)

Event steps: a fixed point at the step it was first reached (``fixed_point.step``); a cycle at the run's last
answered step (where the run ended on it); no verdict at the run's last visit; censoring at the last step.

Interval (95%, pointwise at one step): with 2 or more starting constitutions, a leave-one-start-out (cluster)
jackknife standard error, carried to the logit scale (delta method), with a t quantile on G − 1 degrees of
freedom (G starts), and back; where the jackknife is degenerate (every start gives the same value), where F is
0 or 1, or with one start, a Wilson interval over the runs whose outcome by t is known. (On the plain scale the
same interval covered a rare incidence, F ≈ 0.08 with heterogeneous starts, in only 80–89% at 5–10 starts of 10
runs; on the logit scale 92–97%.) Its coverage at 1–6 starts is measured by ``bench/incidence_coverage.py``
(docs/analysis.md, *Competing risks*).

Contrasts: F_c(t) of group a − group b at the last step by which both groups' outcomes are all known (the
earliest censoring step of either); *paired* (the jackknife
leaves each shared start out of both groups at once, df = G − 1) when the two groups ran the same starts, else
unpaired (variances added, Welch–Satterthwaite degrees of freedom). Beside them, the cause-specific hazard ratio
a / b (Mantel–Haenszel over the steps up to that step), with a jackknife-t interval on the log scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.convergence import RunConvergence
from stability.analysis.stats import wilson

CENSORED, FIXED, CYCLE, NO_VERDICT = 0, 1, 2, 3
CAUSES = {"fixed_point": FIXED, "cycle": CYCLE, "no_verdict": NO_VERDICT}
JACKKNIFE = "leave-one-start-out jackknife, t(G-1)"  # for F_c(t) itself: on the logit scale
WILSON = "Wilson over runs"
Outcomes = tuple[np.ndarray, np.ndarray, list[str]]  # (event step, cause, start) of each chain run: ``outcomes``


class CauseAtStep(BaseModel):
    """F_c(step) with its 95% interval."""

    model_config = ConfigDict(extra="forbid")

    step: int | None
    estimate: float | None
    low: float | None
    high: float | None
    method: str  # JACKKNIFE or WILSON (see the module)


class IncidencePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    fixed_point: float  # F_fixed(step)
    cycle: float
    no_verdict: float
    at_risk: int


class Incidence(BaseModel):
    """Cumulative incidence of each way a chain run ends (Aalen–Johansen); see the module."""

    model_config = ConfigDict(extra="forbid")

    n: int  # chain runs: judged and no-verdict
    clusters: int  # distinct starting constitutions
    events: dict[str, int]  # fixed_point, cycle, no_verdict, censored
    horizon: int | None  # the last step by which every run's outcome is known (the earliest censoring step)
    fixed_point: CauseAtStep  # F_fixed(horizon)
    cycle: CauseAtStep  # F_cycle(horizon)
    no_verdict: CauseAtStep  # F_no_verdict(horizon)
    median_fixed_point: int | None  # first step where F_fixed >= 0.5; None: never
    curve: list[IncidencePoint]
    warning: str | None = None  # where the interval does not hold its level (one or two starts)


class HazardRatio(BaseModel):
    """Cause-specific hazard of group a over group b (Mantel–Haenszel over steps), with a 95% interval."""

    model_config = ConfigDict(extra="forbid")

    estimate: float | None  # None: no event of the cause on one side
    low: float | None  # jackknife-t on the log scale (None: fewer than 2 starts on a side, or degenerate)
    high: float | None
    p_value: float | None
    p_adjusted: float | None = None  # over every printed p-value (stability.analysis.multiplicity)


class IncidenceContrast(BaseModel):
    """F_c(step) of group a − group b, for a fixed point and for a cycle; cause-specific hazard ratios a / b."""

    model_config = ConfigDict(extra="forbid")

    step: int | None
    paired: bool  # both groups ran the same starts: differences within start
    clusters: int  # starts the interval rests on (paired: shared starts; else the smaller group's)
    fixed_point: CauseAtStep
    cycle: CauseAtStep
    p_fixed_point: float | None  # two-sided, t test on the jackknife standard error
    p_cycle: float | None
    p_fixed_point_adjusted: float | None = None  # over every printed p-value (stability.analysis.multiplicity)
    p_cycle_adjusted: float | None = None
    hazard_ratio_fixed_point: HazardRatio | None = None  # up to ``step``
    hazard_ratio_cycle: HazardRatio | None = None


def outcomes(runs: Sequence[RunConvergence]) -> Outcomes:
    """(event step, cause, start) of every chain run (judged or no verdict); sibling-trial runs are left out."""
    times, causes, starts = [], [], []
    for run in runs:
        if run.verdict == "not_chain" or not run.steps:
            continue
        answered = [s.step for s in run.steps if s.decision not in ("parse_failure", "truncated", "error")]
        last = answered[-1] if answered else run.steps[0].step
        if run.verdict == "fixed_point" and run.fixed_point is not None:
            time, cause = run.fixed_point.step, FIXED
        elif run.verdict == "cycle":
            time, cause = last, CYCLE
        elif run.verdict == "no_verdict" and run.no_verdict != "unfinished":
            time, cause = run.steps[-1].step, NO_VERDICT
        else:  # unsettled (the step cap) or unfinished: censored
            time, cause = run.steps[-1].step, CENSORED
        times.append(time)
        causes.append(cause)
        starts.append(run.start)
    return np.asarray(times, dtype=np.int64), np.asarray(causes, dtype=np.int64), starts


def _table(times: np.ndarray, causes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step 0..max: runs at risk, and runs ending by each cause (columns 0..3; 0: censored)."""
    size = int(times.max()) + 1
    at_risk = np.bincount(times, minlength=size)[::-1].cumsum()[::-1]
    ended = np.zeros((size, 4))
    np.add.at(ended, (times, causes), 1.0)
    return np.arange(size), at_risk, ended


def cumulative_incidence(times: np.ndarray, causes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aalen–Johansen: steps 0..max, F (steps × 4: column c is cause c; column 0 unused) and runs at risk."""
    if not len(times):
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
    steps, at_risk, ended = _table(times, causes)
    events = ended[:, 1:].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where((at_risk > 0)[:, None], ended / np.maximum(at_risk, 1)[:, None], 0.0)
        survival = np.cumprod(1.0 - np.where(at_risk > 0, events / np.maximum(at_risk, 1), 0.0))
    before = np.concatenate([[1.0], survival[:-1]])
    incidence = np.cumsum(before[:, None] * hazard, axis=0)
    incidence[:, CENSORED] = 0.0
    return steps, incidence, at_risk


def incidence_at(times: np.ndarray, causes: np.ndarray, cause: int, step: int) -> float:
    """F_cause(step) (0 with no runs; the last value past the longest run)."""
    if not len(times):
        return 0.0
    steps, incidence, _ = cumulative_incidence(times, causes)
    return float(incidence[min(step, len(steps) - 1), cause]) if step >= 0 else 0.0


def horizon(times: np.ndarray, causes: np.ndarray) -> int | None:
    """The last step by which every run's outcome is known: the earliest censoring step (a run censored at s had
    not ended by s), else the last step."""
    if not len(times):
        return None
    censored = times[causes == CENSORED]
    return int(censored.min()) if len(censored) else int(times.max())


@lru_cache(maxsize=4096)
def _t_quantile(df: float) -> float:
    # scipy.stats.t.ppf is special.stdtrit (the same value); importing scipy.stats costs ~1 s of CPU, special less
    from scipy.special import stdtrit  # cached: findings call it once per principle

    return float(stdtrit(df, 0.975))


def _t_p_value(statistic: float, df: float) -> float:
    from scipy.special import stdtr  # scipy.stats.t.sf(x, df) is stdtr(df, -x)

    return float(2 * stdtr(df, -abs(statistic)))


def _groups(starts: Sequence[str]) -> list[np.ndarray]:
    by: dict[str, list[int]] = {}
    for i, start in enumerate(starts):
        by.setdefault(start, []).append(i)
    return [np.asarray(v, dtype=np.int64) for v in by.values()]


def _cluster_tables(times: np.ndarray, causes: np.ndarray, clusters: list[np.ndarray], step: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster and step 0..``step``: runs at risk (clusters × steps) and runs ending by each cause (× 4)."""
    label = np.empty(len(times), dtype=np.int64)
    for g, members in enumerate(clusters):
        label[members] = g
    size = step + 1
    counts = np.zeros((len(clusters), size + 1))
    np.add.at(counts, (label, np.minimum(times, size)), 1.0)  # a run past ``step`` is only at risk up to it
    at_risk = counts[:, ::-1].cumsum(axis=1)[:, ::-1][:, :size]
    ended = np.zeros((len(clusters), size, 4))
    inside = times <= step
    np.add.at(ended, (label[inside], times[inside], causes[inside]), 1.0)
    return at_risk, ended


def _leave_out(times: np.ndarray, causes: np.ndarray, clusters: list[np.ndarray], cause: int, step: int
               ) -> np.ndarray:
    """F_cause(step) without each cluster in turn, all at once: the per-cluster tables subtracted from the
    totals, then Aalen–Johansen along the steps."""
    at_risk_g, ended_g = _cluster_tables(times, causes, clusters, step)
    at_risk = at_risk_g.sum(axis=0)[None] - at_risk_g
    ended = ended_g.sum(axis=0)[None] - ended_g
    events = ended[:, :, 1:].sum(axis=2)
    safe = np.maximum(at_risk, 1.0)
    survival = np.cumprod(np.where(at_risk > 0, 1.0 - events / safe, 1.0), axis=1)
    before = np.concatenate([np.ones((len(clusters), 1)), survival[:, :-1]], axis=1)
    return (before * np.where(at_risk > 0, ended[:, :, cause] / safe, 0.0)).sum(axis=1)


def _jackknife_variance(values: np.ndarray) -> float:
    g = len(values)
    return float((g - 1) / g * ((values - values.mean()) ** 2).sum())


def _wilson(times: np.ndarray, causes: np.ndarray, cause: int, step: int, estimate: float) -> tuple[float, float]:
    known = int(((times >= step) | (causes != CENSORED)).sum())  # runs whose outcome by ``step`` is known
    interval = wilson(int(round(estimate * known)), known)
    return float(interval.low or 0.0), float(interval.high if interval.high is not None else 1.0)


def _at(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def cause_at(times: np.ndarray, causes: np.ndarray, starts: Sequence[str], cause: int, step: int | None
             ) -> CauseAtStep:
    """F_cause(step) with its 95% interval (see the module)."""
    if step is None or not len(times):
        return CauseAtStep(step=step, estimate=None, low=None, high=None, method=WILSON)
    estimate = incidence_at(times, causes, cause, step)
    clusters = _groups(starts)
    if len(clusters) >= 2 and 0.0 < estimate < 1.0:
        variance = _jackknife_variance(_leave_out(times, causes, clusters, cause, step))
        if variance > 1e-15:  # on the logit scale (delta method): skewed near 0 and 1, never outside [0, 1]
            half = _t_quantile(len(clusters) - 1) * np.sqrt(variance) / (estimate * (1.0 - estimate))
            centre = float(np.log(estimate / (1.0 - estimate)))
            return CauseAtStep(step=step, estimate=_at(estimate), low=_at(1.0 / (1.0 + np.exp(half - centre))),
                               high=_at(1.0 / (1.0 + np.exp(-centre - half))), method=JACKKNIFE)
    low, high = _wilson(times, causes, cause, step, estimate)
    return CauseAtStep(step=step, estimate=_at(estimate), low=_at(low), high=_at(high), method=WILSON)


def incidence_of(times: np.ndarray, causes: np.ndarray, starts: Sequence[str]) -> Incidence:
    """Cumulative incidence of runs given as (event step, cause, start)."""
    steps, incidence, at_risk = cumulative_incidence(times, causes)
    events = {name: int((causes == code).sum()) for name, code in CAUSES.items()}
    events["censored"] = int((causes == CENSORED).sum())
    if len(times):
        _, _, ended = _table(times, causes)
        points = np.flatnonzero(ended[:, 1:].sum(axis=1) > 0)
    else:
        points = np.zeros(0, dtype=np.int64)
    curve = [IncidencePoint(step=int(steps[i]), fixed_point=round(float(incidence[i, FIXED]), 6),
                            cycle=round(float(incidence[i, CYCLE]), 6),
                            no_verdict=round(float(incidence[i, NO_VERDICT]), 6), at_risk=int(at_risk[i]))
             for i in points.tolist()]
    reached = np.flatnonzero(incidence[:, FIXED] >= 0.5 - 1e-12) if len(times) else np.zeros(0, dtype=np.int64)
    end = horizon(times, causes)
    clusters = len(set(starts))
    warning = ("one start: the intervals cover replicate noise around this start only, not a population of starts"
               if clusters == 1 else "two starts: the intervals are wide and hold their level only roughly (88-100%)"
               if clusters == 2 else None)
    return Incidence(n=len(times), clusters=clusters, events=events, horizon=end, warning=warning,
                     fixed_point=cause_at(times, causes, starts, FIXED, end),
                     cycle=cause_at(times, causes, starts, CYCLE, end),
                     no_verdict=cause_at(times, causes, starts, NO_VERDICT, end),
                     median_fixed_point=int(steps[reached[0]]) if len(reached) else None, curve=curve)


def incidence(runs: Sequence[RunConvergence]) -> Incidence:
    """Cumulative incidence of fixed points, cycles and no verdicts over a group's chain runs."""
    return incidence_of(*outcomes(runs))


def _difference(a: tuple[np.ndarray, np.ndarray, list[str]], b: tuple[np.ndarray, np.ndarray, list[str]],
                cause: int, step: int, paired: bool) -> tuple[CauseAtStep, float | None]:
    value = incidence_at(a[0], a[1], cause, step) - incidence_at(b[0], b[1], cause, step)
    if paired:
        shared = sorted(set(a[2]))
        ca, cb = _groups(a[2]), _groups(b[2])
        index_a = {s: c for s, c in zip(dict.fromkeys(a[2]), ca, strict=True)}
        index_b = {s: c for s, c in zip(dict.fromkeys(b[2]), cb, strict=True)}
        draws = (_leave_out(a[0], a[1], [index_a[s] for s in shared], cause, step)
                 - _leave_out(b[0], b[1], [index_b[s] for s in shared], cause, step))
        variance, df = _jackknife_variance(draws), float(len(shared) - 1)
    else:
        parts = []
        for times, causes, starts in (a, b):
            clusters = _groups(starts)
            if len(clusters) >= 2:
                parts.append((_jackknife_variance(_leave_out(times, causes, clusters, cause, step)),
                              float(len(clusters) - 1)))
            else:  # one start: the binomial variance over the runs whose outcome is known, df from the runs
                p = incidence_at(times, causes, cause, step)
                known = max(1, int(((times >= step) | (causes != CENSORED)).sum()))
                parts.append((p * (1 - p) / known, float(max(1, known - 1))))
        variance = sum(v for v, _ in parts)
        denominator = sum(v * v / d for v, d in parts)
        df = variance * variance / denominator if denominator > 0 else float("inf")
    if variance <= 1e-15 or not np.isfinite(df) or df < 1:
        return CauseAtStep(step=step, estimate=_at(value), low=None, high=None, method=JACKKNIFE), None
    se = float(np.sqrt(variance))
    half = _t_quantile(df) * se
    return (CauseAtStep(step=step, estimate=_at(value), low=_at(max(-1.0, value - half)),
                        high=_at(min(1.0, value + half)), method=JACKKNIFE),
            round(_t_p_value(value / se, df), 6))


def incidence_contrast(a_runs: Sequence[RunConvergence], b_runs: Sequence[RunConvergence]) -> IncidenceContrast:
    """F_fixed and F_cycle of group a − group b at the last step by which both groups' outcomes are known."""
    return contrast_of(outcomes(a_runs), outcomes(b_runs))


def contrast_of(a: tuple[np.ndarray, np.ndarray, list[str]], b: tuple[np.ndarray, np.ndarray, list[str]]
                ) -> IncidenceContrast:
    if not len(a[0]) or not len(b[0]):
        step = None
    else:  # the earliest censoring step of either group; with none, the last step of either
        censored = np.concatenate([a[0][a[1] == CENSORED], b[0][b[1] == CENSORED]])
        step = int(censored.min()) if len(censored) else int(max(a[0].max(), b[0].max()))
    starts_a, starts_b = set(a[2]), set(b[2])
    paired = starts_a == starts_b and len(starts_a) >= 2
    clusters = len(starts_a) if paired else min(len(starts_a), len(starts_b))
    if step is None or step < 0:
        empty = CauseAtStep(step=step, estimate=None, low=None, high=None, method=JACKKNIFE)
        return IncidenceContrast(step=step, paired=paired, clusters=clusters, fixed_point=empty, cycle=empty,
                                 p_fixed_point=None, p_cycle=None)
    fixed, p_fixed = _difference(a, b, FIXED, step, paired)
    cycle, p_cycle = _difference(a, b, CYCLE, step, paired)
    return IncidenceContrast(step=step, paired=paired, clusters=clusters, fixed_point=fixed, cycle=cycle,
                             p_fixed_point=p_fixed, p_cycle=p_cycle,
                             hazard_ratio_fixed_point=hazard_ratio(a, b, FIXED, step, paired),
                             hazard_ratio_cycle=hazard_ratio(a, b, CYCLE, step, paired))


def _mantel_haenszel(at_a: np.ndarray, ended_a: np.ndarray, at_b: np.ndarray, ended_b: np.ndarray, cause: int
                     ) -> np.ndarray:
    """log of Σ d_a n_b / n over Σ d_b n_a / n along the last axis of steps (NaN where undefined)."""
    total = np.maximum(at_a + at_b, 1.0)
    num = (ended_a[..., cause] * at_b / total).sum(axis=-1)
    den = (ended_b[..., cause] * at_a / total).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((num > 0) & (den > 0), np.log(num) - np.log(np.where(den > 0, den, 1.0)), np.nan)


def hazard_ratio(a: tuple[np.ndarray, np.ndarray, list[str]], b: tuple[np.ndarray, np.ndarray, list[str]],
                 cause: int, step: int, paired: bool) -> HazardRatio:
    """The cause-specific hazard ratio a / b over steps 0..``step`` (Mantel–Haenszel: a common ratio of the
    per-step hazards d/n, other causes and censoring leaving the risk set), its interval a jackknife over starts
    on the log scale with a t quantile (paired: a start left out of both, df = G − 1; unpaired: each side's
    jackknife variance added, Welch–Satterthwaite df)."""
    ca, cb = _groups(a[2]), _groups(b[2])
    at_ga, ended_ga = _cluster_tables(a[0], a[1], ca, step)
    at_gb, ended_gb = _cluster_tables(b[0], b[1], cb, step)
    at_a, ended_a, at_b, ended_b = at_ga.sum(0), ended_ga.sum(0), at_gb.sum(0), ended_gb.sum(0)
    log_ratio = float(_mantel_haenszel(at_a, ended_a, at_b, ended_b, cause))
    if not np.isfinite(log_ratio):
        return HazardRatio(estimate=None, low=None, high=None, p_value=None)
    estimate = _at(np.exp(log_ratio))
    if paired:  # the same starts in the same order on both sides
        order_b = {s: g for g, s in enumerate(dict.fromkeys(b[2]))}
        pick = [order_b[s] for s in dict.fromkeys(a[2])]
        draws = _mantel_haenszel(at_a - at_ga, ended_a - ended_ga, at_b - at_gb[pick], ended_b - ended_gb[pick],
                                 cause)
        parts = [(draws, float(len(ca) - 1))]
    else:
        if len(ca) < 2 or len(cb) < 2:
            return HazardRatio(estimate=estimate, low=None, high=None, p_value=None)
        parts = [(_mantel_haenszel(at_a - at_ga, ended_a - ended_ga, at_b, ended_b, cause), float(len(ca) - 1)),
                 (_mantel_haenszel(at_a, ended_a, at_b - at_gb, ended_b - ended_gb, cause), float(len(cb) - 1))]
    if any(not np.isfinite(d).all() for d, _ in parts):  # a start holds every event of the cause on a side
        return HazardRatio(estimate=estimate, low=None, high=None, p_value=None)
    variances = [(_jackknife_variance(d), df) for d, df in parts]
    variance = sum(v for v, _ in variances)
    denominator = sum(v * v / df for v, df in variances)
    if variance <= 1e-15 or denominator <= 0:
        return HazardRatio(estimate=estimate, low=None, high=None, p_value=None)
    df = variance * variance / denominator
    se = float(np.sqrt(variance))
    half = _t_quantile(df) * se
    return HazardRatio(estimate=estimate, low=_at(np.exp(log_ratio - half)), high=_at(np.exp(log_ratio + half)),
                       p_value=round(_t_p_value(log_ratio / se, df), 6))
