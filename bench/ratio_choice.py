"""The convergence ratio between starts: coverage of its interval, and the level and power of its null, by simulation.

Planted law: k starts are random unit vectors in 16 dimensions; each run of start c ends at
normalise(pull · T + S_c + noise · Z_run), T one target text for all, Z_run its own noise (replicates differ).
The true ratio (between-start pairs) is computed from 200 000 pairs of fresh starts. Reports, per design
(starts × replicates): coverage of the ``jackknife-t`` interval and of a between-start percentile bootstrap; the
rejection rate at α = 0.05 of the within-start permutation test when two groups share the law (type I), and when
one group pulls and the other does not (power).

    python bench/ratio_choice.py [--reps 300] [--out bench/results/ratio_choice.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stability.analysis.between_starts import StartDistances, group_ratio  # noqa: E402

DIM = 16


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def finals(rng: np.random.Generator, starts: np.ndarray, target: np.ndarray, pull: float, noise: float
           ) -> np.ndarray:
    return _unit(pull * target + starts + noise * rng.normal(size=starts.shape) / np.sqrt(DIM))


def truth(pull: float, noise: float, seed: int = 99) -> float:
    rng = np.random.default_rng(seed)
    target = _unit(rng.normal(size=DIM))
    a, b = _unit(rng.normal(size=(200_000, DIM))), _unit(rng.normal(size=(200_000, DIM)))
    fa, fb = finals(rng, a, target, pull, noise), finals(rng, b, target, pull, noise)
    return float((1 - (fa * fb).sum(1)).mean() / (1 - (a * b).sum(1)).mean())


def design(rng: np.random.Generator, k: int, m: int, target: np.ndarray, pulls: tuple[float, ...], noise: float
           ) -> tuple[StartDistances, list[dict[str, list[int]]]]:
    """Runs of len(pulls) groups at the same k starts, m replicates each; their distances and members."""
    starts = _unit(rng.normal(size=(k, DIM)))
    start_rows, final_rows, names, members = [], [], [], []
    for pull in pulls:
        group: dict[str, list[int]] = {}
        for c in range(k):
            for _ in range(m):
                group.setdefault(f"S{c}", []).append(len(names))
                names.append(f"S{c}")
                start_rows.append(starts[c])
                final_rows.append(finals(rng, starts[c][None, :], target, pull, noise)[0])
        members.append(group)
    s, f = np.array(start_rows), np.array(final_rows)
    return StartDistances(np.clip(1 - s @ s.T, 0, 2), np.clip(1 - f @ f.T, 0, 2), names), members


def percentile(distances: StartDistances, by_start: dict[str, list[int]], rng: np.random.Generator,
               resamples: int = 400) -> tuple[float, float]:
    """Between-start pairs only, starts resampled; copies of one start are not a pair."""
    names, starts, finals_ = distances.blocks(by_start)
    k = len(names)
    w = np.zeros((resamples, k))
    np.add.at(w, (np.repeat(np.arange(resamples), k), rng.integers(0, k, size=resamples * k)), 1)
    off = ~np.eye(k, dtype=bool)
    den = np.einsum("bi,ij,bj->b", w, np.where(off, starts, 0), w)
    num = np.einsum("bi,ij,bj->b", w, np.where(off, finals_, 0), w)
    draws = np.where(den > 0, num / np.where(den > 0, den, 1), np.inf)
    low, high = np.percentile(draws, [2.5, 97.5], method="inverted_cdf")
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    pull, noise = 0.8, 0.6
    true = truth(pull, noise)
    rng = np.random.default_rng(0)
    target = _unit(np.random.default_rng(99).normal(size=DIM))
    rows = []
    print(f"true ratio {true:.4f} (pull {pull}, noise {noise})")
    print(" k  m  jackknife-t  percentile  no-interval  type-I  power")
    for k in (2, 3, 5, 10, 20):
        for m in (1, 3, 10):
            covered = boot = undefined = reject_null = reject_alt = 0
            for _ in range(args.reps):
                distances, (g,) = design(rng, k, m, target, (pull,), noise)
                r = group_ratio(distances, g, g, k * m, 0, 0)
                if r.low is None or r.high is None:
                    undefined += 1
                else:
                    covered += r.low <= true <= r.high
                low, high = percentile(distances, g, rng)
                boot += low <= true <= high
                if k >= 3 and m >= 3:  # permutation tests: two groups at the same starts
                    distances, (a, b) = design(rng, k, m, target, (pull, pull), noise)
                    pool = {s: a[s] + b[s] for s in a}
                    reject_null += (group_ratio(distances, a, pool, k * m, 200, 1).p_value or 1) < 0.05
                    distances, (a, b) = design(rng, k, m, target, (pull, 0.0), noise)
                    pool = {s: a[s] + b[s] for s in a}
                    reject_alt += (group_ratio(distances, b, pool, k * m, 200, 1).p_value or 1) < 0.05
            defined = args.reps - undefined
            row = {"starts": k, "replicates": m, "jackknife_t": round(covered / defined, 4) if defined else None,
                   "percentile": round(boot / args.reps, 4), "no_interval": round(undefined / args.reps, 4),
                   "type_I": round(reject_null / args.reps, 4) if k >= 3 and m >= 3 else None,
                   "power": round(reject_alt / args.reps, 4) if k >= 3 and m >= 3 else None}
            rows.append(row)
            print(f"{k:>2} {m:>2}  {row['jackknife_t']!s:>11}  {row['percentile']!s:>10}  {row['no_interval']!s:>11}"
                  f"  {row['type_I']!s:>6}  {row['power']!s:>5}")
    if args.out:
        args.out.write_text(json.dumps({"reps": args.reps, "true_ratio": true, "pull": pull, "noise": noise,
                                        "rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
