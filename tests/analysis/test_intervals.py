"""Rate intervals on planted truth: their coverage at the designs researchers run, rare events, two starts."""

from __future__ import annotations

import numpy as np
import pytest

from stability.analysis.intervals import TWO_STARTS, rate_interval_arrays, wilson_arrays
from stability.analysis.stats import rate, wilson


def _coverage(k: int, m: int, p: float, icc: float, reps: int, seed: int, method: str = "wilson-t") -> float:
    rng = np.random.default_rng(seed)
    shape = (p * (1 - icc) / icc, (1 - p) * (1 - icc) / icc) if icc > 0 else None
    pc = rng.beta(*shape, size=(reps, k)) if shape else np.full((reps, k), p)
    successes = rng.binomial(m, pc)
    truth = pc[:, 0] if k == 1 else np.full(reps, p)
    low, high = rate_interval_arrays(successes, np.full((reps, k), m), method)
    return float(np.mean((low <= truth + 1e-12) & (truth <= high + 1e-12)))


@pytest.mark.parametrize(("k", "m", "p", "icc"), [(3, 3, 0.3, 0.3), (5, 10, 0.5, 0.3), (10, 3, 0.2, 0.0)])
def test_rate_intervals_hold_their_level_with_few_starts(k: int, m: int, p: float, icc: float) -> None:
    # the fast subset of bench/interval_choice.py: planted rates, clustered by start, 400 repetitions
    covered = _coverage(k, m, p, icc, 400, seed=k * 100 + m)
    assert covered >= 0.93
    # the percentile bootstrap it replaces covered 72-86% at these designs; Wilson over runs, ignoring the
    # clusters, covers far less when starts differ
    if icc > 0 and m >= 10:
        assert _coverage(k, m, p, icc, 400, seed=1, method="wilson-runs") < 0.85


def test_one_start_rare_events_get_wilson_over_runs() -> None:
    # p = 0.05 at one start, 10 and 20 runs: the old bootstrap over runs covered 39% / 64%
    for n, least in ((10, 0.90), (20, 0.92)):
        assert _coverage(1, n, 0.05, 0.0, 2000, seed=n) >= least
    interval = rate([[1.0] + [0.0] * 19])
    assert interval.method == "wilson" and interval.clusters == 1 and interval.n == 20
    expected = wilson(1, 20)
    assert interval.low is not None and interval.high is not None and expected.low is not None
    assert np.allclose([interval.low, interval.high], [expected.low, expected.high or 0], atol=1e-4)  # z 1.96 there
    none = rate([[0.0] * 10])  # no event at all: still a proper upper bound, not [0, 0]
    assert none.mean == 0.0 and none.low == 0.0 and none.high is not None and none.high > 0.25


def test_two_starts_are_wide_and_warned_never_narrower_than_one_start() -> None:
    # 240 runs over 2 starts (the old bootstrap printed [0.55, 0.575], narrower than either start's own interval)
    a, b = [1.0] * 66 + [0.0] * 54, [1.0] * 69 + [0.0] * 51
    both = rate([a, b])
    assert both.method == "wilson-t" and both.clusters == 2 and both.warning == TWO_STARTS
    for one in (rate([a]), rate([b])):
        assert one.low is not None and one.high is not None and both.low is not None and both.high is not None
        assert both.high - both.low > one.high - one.low
    assert rate([a, b, a]).warning is None


def test_wilson_arrays_match_the_scalar_wilson() -> None:
    for successes, trials in ((0, 5), (3, 7), (20, 20)):
        low, high = wilson_arrays(np.array([successes / trials]), np.array([trials]), 1.959963984540054)
        scalar = wilson(successes, trials)
        assert np.isclose(low[0], scalar.low or 0, atol=1e-4) and np.isclose(high[0], scalar.high or 0, atol=1e-4)
