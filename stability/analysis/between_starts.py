"""The convergence ratio between starts: how much closer a group's finals are than its starts, over pairs of runs
from *different* starting constitutions.

Estimand: R = E[d(final_i, final_j)] / E[d(start_i, start_j)] over pairs of runs i, j of the group whose starts
differ. Pairs of runs from one start are left out of both sums (their start distance is 0, so in the numerator
alone they would push R above 1), so replicates do not move R, and a group whose runs all stay where they start
reads exactly 1. 0: every run ends at one text.

Interval: delete-one-start jackknife, R̂ ± t(k − 1) · SE (``jackknife-t``); with two starts a deletion leaves
one, so no interval (``note`` says why). Null: labels permuted *within each start* — the group keeps its number
of runs at each start, drawn from all analysed runs at that start — so the null has the group's design.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import special

from stability.analysis.intervals import t_quantile


class ConvergenceRatio(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mean: float | None  # between-start spread of finals / of starts; None with fewer than 2 starts
    low: float | None
    high: float | None
    n: int  # judged runs
    starts: int = 0  # starts (clusters) the ratio rests on
    method: str = "jackknife-t"  # interval: delete-one-start jackknife with t(starts − 1)
    note: str | None = None  # why there is no interval or null
    null_low: float | None  # 95% range of the ratio when labels are permuted within each start
    null_high: float | None
    p_value: float | None  # two-sided within-start permutation p-value (None when nothing can be permuted)


class Jackknife(BaseModel):
    """An estimate and its delete-one-start values."""

    model_config = ConfigDict(extra="forbid")

    value: float | None
    deleted: list[float | None]  # the estimate without each start, in the order given


def _r(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


class StartDistances:
    """Block sums of pairwise start and final distances between the judged runs of each start.

    ``d_starts``, ``d_finals``: distances between judged runs (by position); ``start_of``: each position's start."""

    def __init__(self, d_starts: np.ndarray, d_finals: np.ndarray, start_of: Sequence[str]) -> None:
        self.d_starts, self.d_finals = d_starts, d_finals
        self.start_of = list(start_of)

    def blocks(self, by_start: Mapping[str, Sequence[int]]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The starts, and (starts × starts) sums of start and final distances over their runs' pairs."""
        names = sorted(s for s, members in by_start.items() if len(members))
        index = [i for name in names for i in by_start[name]]  # only the group's own runs: n_g², not n²
        label = np.repeat(np.arange(len(names)), [len(by_start[name]) for name in names])
        member = (label[None, :] == np.arange(len(names))[:, None]).astype(np.float64)
        starts = member @ self.d_starts[np.ix_(index, index)].astype(np.float64) @ member.T
        finals = member @ self.d_finals[np.ix_(index, index)].astype(np.float64) @ member.T
        return names, starts, finals

    @staticmethod
    def ratio_of(starts: np.ndarray, finals: np.ndarray, keep: np.ndarray | None = None) -> float | None:
        """Σ finals / Σ starts over pairs of *different* starts (the diagonal blocks left out)."""
        k = len(starts)
        mask = ~np.eye(k, dtype=bool)
        if keep is not None:
            mask &= keep[:, None] & keep[None, :]
        den = float(starts[mask].sum())
        return float(finals[mask].sum()) / den if den > 0 else None

    def jackknife(self, by_start: Mapping[str, Sequence[int]], only: Sequence[str] | None = None) -> Jackknife:
        """The ratio over ``only`` starts (all of the group's by default), and without each of them in turn."""
        names, starts, finals = self.blocks({s: m for s, m in by_start.items() if only is None or s in only})
        value = self.ratio_of(starts, finals)
        deleted = []
        for i in range(len(names)):
            keep = np.ones(len(names), dtype=bool)
            keep[i] = False
            deleted.append(self.ratio_of(starts, finals, keep))
        return Jackknife(value=value, deleted=deleted)

    def null(self, by_start: Mapping[str, Sequence[int]], pool: Mapping[str, Sequence[int]], observed: float | None,
             permutations: int, seed: int) -> tuple[float | None, float | None, float | None]:
        """95% range and two-sided p-value of the ratio when the group's runs at each start are drawn at random
        from ``pool``'s runs at that start (None when no start has runs to swap)."""
        names = sorted(s for s, m in by_start.items() if len(m))
        if observed is None or len(names) < 2 or all(len(pool[s]) <= len(by_start[s]) for s in names):
            return None, None, None
        order = [i for s in names for i in pool[s]]
        label = np.repeat(np.arange(len(names)), [len(pool[s]) for s in names])
        between = label[:, None] != label[None, :]
        starts = np.where(between, self.d_starts[np.ix_(order, order)], 0.0).astype(np.float32)
        finals = np.where(between, self.d_finals[np.ix_(order, order)], 0.0).astype(np.float32)
        rng = np.random.default_rng(seed)
        values = []
        offsets = np.concatenate([[0], np.cumsum([len(pool[s]) for s in names])])
        for first in range(0, permutations, 100):  # x^T D x for 100 permutations at a time (one BLAS product)
            chunk = min(100, permutations - first)
            x = np.zeros((chunk, len(order)), dtype=np.float32)
            for s, name in enumerate(names):
                size, take = len(pool[name]), len(by_start[name])
                picks = rng.random((chunk, size)).argsort(axis=1)[:, :take] + offsets[s]
                np.put_along_axis(x, picks, 1.0, axis=1)
            den = ((x @ starts) * x).sum(axis=1)
            num = ((x @ finals) * x).sum(axis=1)
            values.append(num[den > 0] / den[den > 0])
        drawn = np.concatenate(values) if values else np.zeros(0)
        if not len(drawn):
            return None, None, None
        centre = float(drawn.mean())
        extreme = int((np.abs(drawn - centre) >= abs(observed - centre) - 1e-12).sum())
        p = (extreme + 1) / (len(drawn) + 1)  # the observed labelling counts as one of the permutations
        low, high = np.percentile(drawn, [2.5, 97.5])
        return _r(low), _r(high), round(p, 6)


def jackknife_se(jack: Jackknife) -> float | None:
    """The delete-one-start jackknife standard error (None when any deletion is undefined or k < 3)."""
    values = [v for v in jack.deleted if v is not None]
    if len(jack.deleted) < 3 or len(values) < len(jack.deleted):
        return None
    k = len(values)
    return float(np.sqrt((k - 1) / k * np.sum((np.array(values) - np.mean(values)) ** 2)))


def group_ratio(distances: StartDistances | None, by_start: Mapping[str, Sequence[int]],
                pool: Mapping[str, Sequence[int]], n: int, permutations: int, seed: int) -> ConvergenceRatio:
    """A group's convergence ratio between starts, with its jackknife-t interval and within-start null."""
    k = sum(1 for m in by_start.values() if len(m))
    if distances is None:
        return ConvergenceRatio(mean=None, low=None, high=None, n=n, starts=k, note="too many runs for pairwise "
                                "distances", null_low=None, null_high=None, p_value=None)
    jack = distances.jackknife(by_start)
    se = jackknife_se(jack)
    low = high = None
    note = None
    if jack.value is None:
        note = "fewer than 2 starts: no pairs of runs from different starts"
    elif se is None:
        note = "2 starts: no interval (deleting a start leaves no pair of starts)" if k == 2 else \
            "a start's deletion leaves the ratio undefined: no interval"
    else:
        half = float(t_quantile(k - 1)) * se
        low, high = max(0.0, jack.value - half), jack.value + half
    null_low, null_high, p = distances.null(by_start, pool, jack.value, permutations, seed)
    return ConvergenceRatio(mean=_r(jack.value), low=_r(low), high=_r(high), n=n, starts=k, note=note,
                            null_low=null_low, null_high=null_high, p_value=p)


def t_test(difference: float, se: float, df: float) -> float:
    """Two-sided p-value of ``difference`` / ``se`` on t(``df``); a zero SE gives 0 (a difference) or 1 (none)."""
    if se <= 0:
        return 0.0 if abs(difference) > 1e-12 else 1.0
    return float(2 * special.stdtr(df, -abs(difference) / se))
