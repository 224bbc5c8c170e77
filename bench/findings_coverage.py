"""Coverage of the findings' intervals (issue 26, questions 1, 5 and 7) on planted truths.

    python bench/findings_coverage.py            # every measure, ~2 min of CPU
    python bench/findings_coverage.py --reps 100 # fewer repetitions

Each repetition draws a planted world (:mod:`stability.testing.planted_findings`), runs the finding's own code and
checks whether its 95% interval covers the truth. Printed: the share covered per design (± about 1.5 points at
1000 repetitions, 2.5 at 300).
"""

from __future__ import annotations

import argparse

import numpy as np

from stability.analysis.corpus import Corpus
from stability.analysis.findings import generations, principles
from stability.analysis.findings.attractor_strength import strength_of
from stability.analysis.findings.principle_survival import survival_findings
from stability.testing import planted_findings as planted


def swap_rates(reps: int) -> None:
    truth = {1: 0.1, 2: 0.5, 3: 0.8}
    texts = ("I am honest.", "I am kind.", "I am brief.")
    for seeds, trials in ((3, 5), (8, 10)):
        hits: list[bool] = []
        contrast: list[bool] = []
        for r in range(reps):
            rng = np.random.default_rng(r)
            a, pa = planted.rating_runs(truth, seeds, trials, "none", rng)
            b, pb = planted.rating_runs(truth, seeds, trials, "first", rng, shift=0.1)
            found = principles.swap_findings(Corpus(runs=a + b, principles={**pa, **pb}))
            for g in found[0].groups or []:
                p = truth[texts.index(g.group["principle"]) + 1] + (0.1 if g.group["reflect"] == "first" else 0)
                hits.append(g.low is not None and g.high is not None and g.low <= p <= g.high)
            c = found[1].contrast
            contrast.append(c is not None and c.low is not None and c.high is not None and c.low <= 0.1 <= c.high)
        print(f"swap rate, {seeds} seeds x {trials} trials: rates {np.mean(hits):.3f}, "
              f"reflect-first - immediate {np.mean(contrast):.3f}")


def survival(reps: int) -> None:
    truth = planted.true_survival(0.1, 8)
    for starts in (3, 5, 10):
        hit, ratio, defined = [], [], 0
        for r in range(reps):
            found = survival_findings(planted.planted_lives(np.random.default_rng(r), starts, 3, 0.1, 2.0, 8))
            first = next(g for f in found if f.measure == "survival_by_position" for g in f.groups or []
                         if g.group["position"] == "first")
            hit.append(first.low is not None and first.high is not None and first.low <= truth <= first.high)
            hr = next(f for f in found if f.measure == "hazard_ratio").contrast
            if hr is not None and hr.low is not None and hr.high is not None:
                defined += 1
                ratio.append(hr.low <= 2.0 <= hr.high)
        print(f"survival, {starts} starts x 3 runs x 4 principles: S(8) of the first {np.mean(hit):.3f}, "
              f"hazard ratio last/first {np.mean(ratio):.3f} ({defined} of {reps} with an interval)")


def strength(reps: int) -> None:
    for starts in (3, 5, 10):
        for replicates in (1, 3):
            s_hit, p_hit, bounded = [], [], []
            for r in range(reps):
                rng = np.random.default_rng(r)
                x = rng.uniform(1, 12, starts)
                xs = np.repeat(x, replicates)
                ys = 4 + 0.5 * (xs - 4) + np.repeat(rng.normal(0, 1.0, starts), replicates) + \
                    rng.normal(0, 0.5, len(xs))
                e = strength_of(xs.tolist(), ys.tolist(), [f"s{i}" for i in np.repeat(np.arange(starts), replicates)])
                s, p = e["strength"], e["position"]
                s_hit.append(s.low is not None and s.high is not None and s.low <= 0.5 <= s.high)
                finite = p.low is not None and p.high is not None
                bounded.append(finite)
                # an unbounded Fieller interval (slope not distinguishable from 1) covers every position
                p_hit.append(not finite or p.low <= 4.0 <= p.high)  # type: ignore[operator]
            print(f"attractor strength, {starts} starts x {replicates}: strength {np.mean(s_hit):.3f}, "
                  f"position {np.mean(p_hit):.3f} (bounded in {np.mean(bounded):.3f})")


def trend(reps: int) -> None:
    value = generations.MEASURES["decline_rate"][0]
    for lineages in (3, 5, 8):
        hit = []
        for r in range(reps):
            rows = planted.lineages(np.random.default_rng(1000 + r), "none", 0.2, 0.08, lineages=lineages)
            e = generations.trend(rows, value)
            hit.append(e.low is not None and e.high is not None and e.low <= 0.08 <= e.high)
        print(f"decline trend, {lineages} lineages x 6 generations x 12 traces: {np.mean(hit):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    reps = parser.parse_args().reps
    swap_rates(reps)
    survival(reps)
    strength(reps * 3)
    trend(reps)


if __name__ == "__main__":
    main()
