"""Cohen's κ with its jackknife-t interval, on planted agreement."""

from __future__ import annotations

import numpy as np

from stability.analysis.kappa import cohen_kappa, kappa_interval
from stability.testing.planted_agreement import planted_labels, true_kappa


def test_kappa_interval_covers_planted_agreement_at_six_starts() -> None:
    truth = true_kappa(0.3, 0.1, 0.2, spread=1.0)
    rng = np.random.default_rng(4)
    covered = []
    for _ in range(200):
        a, b, starts = planted_labels(rng, 60, 6, 0.3, 0.1, 0.2, spread=1.0)
        low, high, clusters = kappa_interval(a, b, starts)
        assert clusters == 6
        covered.append(low is not None and high is not None and low <= truth <= high)
    assert 0.9 <= float(np.mean(covered)) <= 0.99  # bench/kappa_coverage.py: 0.95 at this design (400 repetitions)


def test_items_of_one_start_are_not_independent() -> None:
    rng = np.random.default_rng(1)
    a, b, _ = planted_labels(rng, 40, 40, 0.5, 0.1, 0.2)
    copies = 5  # every item repeated five times within its start: no new information
    a5, b5 = [x for x in a for _ in range(copies)], [x for x in b for _ in range(copies)]
    starts = [str(i) for i in range(len(a)) for _ in range(copies)]
    item_low, item_high, _ = kappa_interval(a5, b5)  # as if 200 independent items
    start_low, start_high, g = kappa_interval(a5, b5, starts)
    assert g == 40 and None not in (item_low, item_high, start_low, start_high)
    assert (start_high - start_low) > 1.8 * (item_high - item_low)  # type: ignore[operator]
    kappa = cohen_kappa(a5, b5)[1]
    assert kappa is not None and start_low < kappa < start_high  # type: ignore[operator]


def test_kappa_interval_is_undefined_where_kappa_is() -> None:
    assert kappa_interval(["y", "y", "y"], ["y", "y", "y"]) == (None, None, 3)
    assert kappa_interval(["y", "n"], ["y", "n"], ["s", "s"]) == (None, None, 1)
    low, high, _ = kappa_interval(["y", "n"] * 10, ["y", "n"] * 10)
    assert (low, high) == (1.0, 1.0)
