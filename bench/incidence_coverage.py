"""Coverage of the cumulative-incidence interval (and the level of its contrast test) at few starts.

    python bench/incidence_coverage.py [REPETITIONS] [OUT.json]

Planted competing risks (:mod:`stability.testing.planted_incidence`): each step a run reaches a fixed point
with probability ``fixed`` and enters a cycle with probability ``cycle``, drawn per start around those values
with logit-scale standard deviation ``spread`` (0: no between-start heterogeneity; 1.2: a latent intra-start
correlation of about 0.3); runs still moving at step 20 are censored. For every design (starts × replicates ×
spread × hazards) it reports how often the 95% interval of F_fixed(10) printed by the analysis
(:func:`stability.analysis.incidence.cause_at`) covers the true value, beside a 95% percentile cluster bootstrap
of the same estimate (1000 resamples) for comparison; and how often the paired and unpaired contrast tests
(:func:`stability.analysis.incidence.contrast_of`: the difference of F_fixed and the cause-specific hazard ratio)
reject at α = 0.05 when both groups share one law (type-I error). Prints a Markdown table; writes the raw numbers
as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from stability.analysis.incidence import FIXED, cause_at, contrast_of
from stability.testing.planted_incidence import planted_runs, start_hazards, true_incidence

STEP, CAP = 10, 20
BOOTSTRAP = 1000  # resamples of the comparison bootstrap
LAWS = {"common": (0.08, 0.04), "rare": (0.006, 0.04)}  # F_fixed(10): 0.481 and ~0.047 (no spread)


def _bootstrap_covers(times: np.ndarray, causes: np.ndarray, starts: list[str], truth: float,
                      rng: np.random.Generator) -> bool | None:
    """Whether the 95% percentile cluster bootstrap of F_fixed(STEP) covers the truth. No run is censored before
    the cap (20 > STEP), so F_fixed(STEP) is the share of runs with a fixed point by STEP: resampled from
    per-start sums."""
    groups = sorted(set(starts))
    if len(groups) < 2:
        return None
    index = np.asarray([groups.index(s) for s in starts])
    hits = np.bincount(index, weights=((causes == FIXED) & (times <= STEP)).astype(float), minlength=len(groups))
    sizes = np.bincount(index, minlength=len(groups)).astype(float)
    picks = rng.integers(0, len(groups), size=(BOOTSTRAP, len(groups)))
    low, high = np.percentile(hits[picks].sum(axis=1) / sizes[picks].sum(axis=1), [2.5, 97.5])
    return bool(low <= truth <= high)


def _rejects(p: float | None) -> bool:
    return p is not None and p < 0.05


def design(starts: int, replicates: int, spread: float, law: str, repetitions: int, seed: int) -> dict[str, object]:
    fixed, cycle = LAWS[law]
    truth = true_incidence(fixed, cycle, STEP, spread)
    rng = np.random.default_rng(seed)
    covered, boot, widths, methods = [], [], [], set()
    paired_rejects, unpaired_rejects, paired_hr, unpaired_hr = [], [], [], []
    for _ in range(repetitions):
        hazards = start_hazards(rng, starts, fixed, cycle, spread)
        times, causes, names = planted_runs(rng, starts, replicates, fixed, cycle, CAP, spread, hazards)
        point = cause_at(times, causes, names, FIXED, STEP)
        assert point.low is not None and point.high is not None
        covered.append(point.low <= truth <= point.high)
        widths.append(point.high - point.low)
        methods.add(point.method)
        b = _bootstrap_covers(times, causes, names, truth, rng)
        if b is not None:
            boot.append(b)
        # the null, a second group with the same law: paired (the same starts, so each start's own hazards) and
        # unpaired (other starts drawn from the same population)
        if starts >= 2:
            paired_b = planted_runs(rng, starts, replicates, fixed, cycle, CAP, spread, hazards)
            paired = contrast_of((times, causes, names), paired_b)
            other = planted_runs(rng, starts, replicates, fixed, cycle, CAP, spread)
            renamed = [f"other-{n}" for n in other[2]]
            unpaired = contrast_of((times, causes, names), (other[0], other[1], renamed))
            paired_rejects.append(_rejects(paired.p_fixed_point))
            unpaired_rejects.append(_rejects(unpaired.p_fixed_point))
            paired_hr.append(_rejects(paired.hazard_ratio_fixed_point.p_value
                                      if paired.hazard_ratio_fixed_point else None))
            unpaired_hr.append(_rejects(unpaired.hazard_ratio_fixed_point.p_value
                                        if unpaired.hazard_ratio_fixed_point else None))
    return {"starts": starts, "replicates": replicates, "spread": spread, "law": law, "truth": round(truth, 4),
            "coverage": round(float(np.mean(covered)), 4), "mean_width": round(float(np.mean(widths)), 4),
            "methods": sorted(methods),
            "bootstrap_coverage": round(float(np.mean(boot)), 4) if boot else None,
            "paired_type_i": round(float(np.mean(paired_rejects)), 4) if paired_rejects else None,
            "unpaired_type_i": round(float(np.mean(unpaired_rejects)), 4) if unpaired_rejects else None,
            "paired_hr_type_i": round(float(np.mean(paired_hr)), 4) if paired_hr else None,
            "unpaired_hr_type_i": round(float(np.mean(unpaired_hr)), 4) if unpaired_hr else None,
            "repetitions": repetitions}


def main() -> None:
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("bench/results/incidence_coverage.json")
    rows = []
    seed = 0
    for law in LAWS:
        for spread in (0.0, 1.2):
            for starts in (1, 2, 3, 4, 5, 6, 10):
                for replicates in (3, 10):
                    seed += 1
                    rows.append(design(starts, replicates, spread, law, repetitions, seed))
                    print(json.dumps(rows[-1]), file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print("| law | spread | starts | replicates | truth | coverage | width | bootstrap | paired α | unpaired α "
          "| HR paired α | HR unpaired α |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['law']} | {r['spread']} | {r['starts']} | {r['replicates']} | {r['truth']} | {r['coverage']} "
              f"| {r['mean_width']} | {r['bootstrap_coverage']} | {r['paired_type_i']} | {r['unpaired_type_i']} "
              f"| {r['paired_hr_type_i']} | {r['unpaired_hr_type_i']} |")


if __name__ == "__main__":
    main()
