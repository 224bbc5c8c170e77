"""Paired rate contrasts: type-I error and power at few starts, and the family-wise error of many identical groups.

Planted law: k shared starts, start c's own rate p_c ~ Beta(mean p, ICC 0.3); each group runs m replicates per
start. Under the null both groups have p_c; under the alternative group a has p_c + delta (capped at 1). Reports
the rejection rate at α = 0.05 of ``share_contrast`` (paired t over per-start differences, variance floored at
binomial), and for 10 identical groups (45 contrasts) the share of analyses with any p < 0.05: raw, Holm, BH.

    python bench/contrast_choice.py [--reps 1000] [--out bench/results/contrast_choice.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stability.analysis.contrasts import share_contrast  # noqa: E402
from stability.analysis.multiplicity import adjust  # noqa: E402


def members(k: int, m: int, offset: int) -> dict[str, list[int]]:
    return {f"S{s}": list(range(offset + s * m, offset + (s + 1) * m)) for s in range(k)}


def rates(rng: np.random.Generator, k: int, p: float, icc: float = 0.3) -> np.ndarray:
    return rng.beta(p * (1 - icc) / icc, (1 - p) * (1 - icc) / icc, size=k)


def interact(rng: np.random.Generator, base: np.ndarray, scale: float) -> np.ndarray:
    """Each group's own rate at each start: the start's rate moved on the logit scale by N(0, scale)."""
    if scale == 0:
        return base
    logit = np.log(np.clip(base, 1e-6, 1 - 1e-6) / (1 - np.clip(base, 1e-6, 1 - 1e-6)))
    return 1 / (1 + np.exp(-(logit + rng.normal(0, scale, size=len(base)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    print(" k  m    p  start×group  type-I  power(+0.3)")
    designs = [(k, m, s, p) for k in (2, 3, 5, 10) for m in (3, 10) for s in (0.0, 1.0) for p in (0.5, 0.2)]
    for k, m, scale, p in designs:
        null = alt = 0
        for _ in range(args.reps):
            base = rates(rng, k, p)
            for shift, counter in ((0.0, "null"), (0.3, "alt")):
                a = rng.binomial(1, np.repeat(np.minimum(interact(rng, base, scale) + shift, 1.0), m))
                b = rng.binomial(1, np.repeat(interact(rng, base, scale), m))
                fixed = np.concatenate([a, b]).astype(float)
                e = share_contrast(fixed, np.ones(len(fixed)), members(k, m, 0), members(k, m, k * m))
                hit = (e.p_value if e.p_value is not None else 1.0) < 0.05
                null, alt = (null + hit, alt) if counter == "null" else (null, alt + hit)
        row = {"starts": k, "replicates": m, "p": p, "interaction": scale, "type_I": null / args.reps,
               "power": alt / args.reps}
        rows.append(row)
        print(f"{k:>2} {m:>2} {p:>4}  {scale:>11}  {row['type_I']:.3f}  {row['power']:.3f}")
    unpaired = []
    print(" k  m    p  unpaired (own starts each side): type-I  power(+0.3)")
    for k, m, p in [(k, m, p) for k in (3, 5, 10) for m in (3, 10) for p in (0.5, 0.2)]:
        null = alt = 0
        for _ in range(args.reps):
            for shift in (0.0, 0.3):
                a = rng.binomial(1, np.repeat(np.minimum(rates(rng, k, p) + shift, 1.0), m))
                b = rng.binomial(1, np.repeat(rates(rng, k, p), m))
                fixed = np.concatenate([a, b]).astype(float)
                apart = {f"T{s}": v for s, v in members(k, m, k * m).items()}
                e = share_contrast(fixed, np.ones(len(fixed)), members(k, m, 0), apart)
                hit = (e.p_value if e.p_value is not None else 1.0) < 0.05
                null, alt = (null + hit, alt) if shift == 0 else (null, alt + hit)
        unpaired.append({"starts": k, "replicates": m, "p": p, "type_I": null / args.reps, "power": alt / args.reps})
        print(f"{k:>2} {m:>2} {p:>4}  {null / args.reps:.3f}  {alt / args.reps:.3f}")
    family = {"raw": 0, "holm": 0, "bh": 0}
    reps = max(100, args.reps // 4)
    for _ in range(reps):
        base = rates(rng, 5, 0.5)
        fixed = rng.binomial(1, np.repeat(np.tile(base, 10), 3)).astype(float)
        groups = [members(5, 3, g * 15) for g in range(10)]
        ps = [share_contrast(fixed, np.ones(len(fixed)), groups[i], groups[j]).p_value
              for i in range(10) for j in range(i + 1, 10)]
        family["raw"] += any((x or 1) < 0.05 for x in ps)
        for method in ("holm", "bh"):
            family[method] += any((x or 1) < 0.05 for x in adjust(ps, method))
    shares = {k: v / reps for k, v in family.items()}
    print(f"10 identical groups (5 starts x 3 replicates), {reps} analyses: any p < 0.05 {shares}")
    if args.out:
        record = {"reps": args.reps, "rows": rows, "unpaired": unpaired, "ten_groups": shares,
                  "ten_groups_reps": reps}
        args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
