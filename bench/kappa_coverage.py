"""Coverage of the κ interval (judge agreement) on planted agreement.

    python bench/kappa_coverage.py [REPETITIONS] [OUT.json]

Two raters of binary labels with known error rates (:mod:`stability.testing.planted_agreement`), items either
independent (each its own cluster: the interval between judges) or in 3–6 clusters with and without between-cluster
heterogeneity (the clash agreement, left out a start at a time). Reports how often the 95% interval of
:func:`stability.analysis.kappa.kappa_interval` covers the true κ, its mean width and how often it is undefined.
Prints a Markdown table; writes the raw numbers as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from stability.analysis.kappa import kappa_interval
from stability.testing.planted_agreement import planted_labels, true_kappa

LAWS = [(0.5, 0.1, 0.15, 0.0), (0.3, 0.1, 0.2, 0.0), (0.3, 0.1, 0.2, 1.0)]  # prevalence, errors, spread
DESIGNS = [(30, 30), (100, 100), (30, 3), (60, 6), (100, 5)]  # items, clusters (items = clusters: independent)


def main() -> None:
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("bench/results/kappa_coverage.json")
    rows = []
    for prevalence, err_a, err_b, spread in LAWS:
        truth = true_kappa(prevalence, err_a, err_b, spread)
        for items, clusters in DESIGNS:
            rng = np.random.default_rng(items * 1000 + clusters)
            covered, widths, undefined = [], [], 0
            for _ in range(repetitions):
                a, b, c = planted_labels(rng, items, clusters, prevalence, err_a, err_b, spread)
                low, high, _ = kappa_interval(a, b, None if clusters == items else c)
                if low is None or high is None:
                    undefined += 1
                    continue
                covered.append(low <= truth <= high)
                widths.append(high - low)
            rows.append({"prevalence": prevalence, "err_a": err_a, "err_b": err_b, "spread": spread,
                         "truth": round(truth, 4), "items": items, "clusters": clusters,
                         "coverage": round(float(np.mean(covered)), 4), "mean_width": round(float(np.mean(widths)), 4),
                         "undefined": undefined, "repetitions": repetitions})
            print(json.dumps(rows[-1]), file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print("| prevalence | errors | spread | true κ | items | clusters | coverage | width |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['prevalence']} | {r['err_a']}, {r['err_b']} | {r['spread']} | {r['truth']} | {r['items']} "
              f"| {r['clusters']} | {r['coverage']} | {r['mean_width']} |")


if __name__ == "__main__":
    main()
