"""Which interval for a rate over runs clustered by start? Coverage of candidate 95% intervals, by simulation.

Each repetition plants a design: ``k`` starts with ``m`` replicates each; start c has its own probability p_c drawn
from a Beta with mean ``p`` and intra-class correlation ``icc`` (0: every start has p); each run reaches a fixed
point with its start's p_c. The estimand with k >= 2 is the population mean ``p``; with one start it is that
start's own p_c (nothing else can be estimated from one start). Candidates (see docs/analysis.md, *Methods*):

- ``percentile``: 95% percentile bootstrap over starts (the method before issue 25);
- ``cluster-t``: ratio estimate ± t(k−1) × linearised cluster standard error, clipped to [0, 1];
- ``wilson-t``: Wilson's score interval with the effective sample size n* = p̂(1−p̂)/SE² (at most n) and the
  t(k−1) quantile in place of z (a Wilson form of Korn and Graubard's survey interval);
- ``wilson-df``: ``wilson-t`` with Satterthwaite-like degrees of freedom that grow when the spread between starts
  looks binomial (rejected: 84–87% at 3 starts with ICC 0.3);
- ``wilson-runs``: Wilson over runs, as if runs were independent (for reference).

    python bench/interval_choice.py [--reps 2000] [--out bench/results/interval_choice.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stability.analysis.intervals import rate_interval_arrays  # noqa: E402

STARTS = (1, 2, 3, 5, 10, 20)
REPLICATES = (1, 3, 10)
ICCS = (0.0, 0.3)


def draw(rng: np.random.Generator, reps: int, k: int, m: int, p: float, icc: float
         ) -> tuple[np.ndarray, np.ndarray]:
    """Successes per start (reps, k) and each start's own probability (reps, k)."""
    if icc > 0:
        a, b = p * (1 - icc) / icc, (1 - p) * (1 - icc) / icc
        pc = rng.beta(a, b, size=(reps, k))
    else:
        pc = np.full((reps, k), p)
    return rng.binomial(m, pc), pc


def percentile(successes: np.ndarray, m: int, rng: np.random.Generator, resamples: int = 400
               ) -> tuple[np.ndarray, np.ndarray]:
    reps, k = successes.shape
    picks = rng.integers(0, k, size=(reps, resamples, k))
    means = np.take_along_axis(successes[:, None, :].repeat(resamples, 1), picks, 2).sum(2) / (k * m)
    return np.percentile(means, 2.5, axis=1), np.percentile(means, 97.5, axis=1)


def coverage(reps: int, seed: int, p: float) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    rows = []
    for k in STARTS:
        for m in REPLICATES:
            for icc in ICCS:
                successes, pc = draw(rng, reps, k, m, p, icc)
                truth = pc[:, 0] if k == 1 else np.full(reps, p)
                sizes = np.full((reps, k), m)
                row: dict[str, object] = {"starts": k, "replicates": m, "icc": icc, "p": p}
                for method in ("cluster-t", "wilson-t", "wilson-df", "wilson-runs"):
                    low, high = rate_interval_arrays(successes, sizes, method)
                    row[method] = round(float(np.mean((low <= truth + 1e-12) & (truth <= high + 1e-12))), 4)
                    row[f"{method} width"] = round(float(np.mean(high - low)), 4)
                if k >= 2:
                    low, high = percentile(successes, m, rng)
                    row["percentile"] = round(float(np.mean((low <= truth + 1e-12) & (truth <= high + 1e-12))), 4)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for p in (0.5, 0.2, 0.05):
        rows += coverage(args.reps, args.seed, p)
    methods = ("percentile", "cluster-t", "wilson-t", "wilson-df", "wilson-runs")
    print("p     k  m  icc  " + "  ".join(f"{m:>11}" for m in methods))
    for r in rows:
        print(f"{r['p']:<5} {r['starts']:>2} {r['replicates']:>2} {r['icc']:<4} "
              + "  ".join(f"{r.get(m, float('nan')):>11.3f}" for m in methods))
    if args.out:
        args.out.write_text(json.dumps({"reps": args.reps, "seed": args.seed, "rows": rows}, indent=1) + "\n",
                            encoding="utf-8")


if __name__ == "__main__":
    main()
