"""Calibration of the analysis's intervals and tests (issue 25): synthetic corpora with planted truth, run through
the real entry point :func:`stability.analysis.measure.measure`, compared with the truth over many repetitions.

    python bench/calibration.py --label after          # every design and case, 30 repetitions (~13 min of CPU)
    python bench/calibration.py --quick --label quick  # 3x3 and 20x3 at ICC 0.3, 200 repetitions, null only
    python bench/calibration.py --designs 3x3,20x10 --icc 0.3 --reps 200 --cases "" --label x
    python bench/calibration.py --designs 20x1 --cases rare,two240,identical --reps 100 --label specials
    python bench/calibration.py --merge bench/results/calibration-a.json bench/results/calibration-b.json --label ab

``--designs`` takes STARTSxREPLICATES,... (default all 18: 1, 2, 3, 5, 10, 20 starts x 1, 3, 10 replicates), each
at every ``--icc`` (default 0 and 0.3). Processes can split the designs and ``--merge`` their files afterwards.

Nothing here re-implements an estimator: each repetition builds a :class:`Corpus` and unit vectors by hand (no
embedding model; the tests' fast path), calls ``measure()`` with the default :class:`Params` (2000 bootstrap
resamples, 1000 permutations unless ``--bootstrap``/``--permutations`` say otherwise), and reads the JSON dump of
its result. Fields are read defensively (``n/a`` where a field is absent), so the same harness measures the code
before and after the estimators change (new names it looks for: ``fixed_point_rate_started``, ``clusters``,
``method``, ``p_value``/``p_adjusted`` on contrasts, ``incidence``).

The planted world (one *law* per group):

- Every start ``s`` has its own probability ``p_s`` that a judged run from it reaches a fixed point, drawn from a
  Beta with mean ``p`` and intra-class correlation ``icc`` (``Var p_s = icc p (1 - p)``; ``icc = 0``: ``p_s = p``).
  Groups that share a start share its draw (one uniform per start through each group's Beta quantile), as models
  run on the same constitutions do.
- A run first fails with probability ``no_verdict`` (its last visit a parse failure: no verdict); otherwise it
  reaches a fixed point with probability ``p_s`` (at a step uniform in 2..9, on the one attractor node all fixed
  points share, then two declines), else cycles with probability ``cycle_share`` (a return at a step uniform in
  3..6) or runs unsettled to step 12. Every other node is a fresh random unit vector in 32 dimensions.

Truths, in that world: fixed-point rate over judged runs ``p``; over all started runs ``(1 - no_verdict) p``;
cycle rate ``(1 - p) cycle_share``; convergence ratio over pairs of runs from *different* starts ``1 - p^2``
(finals coincide only when both are at the attractor; random unit vectors are at expected cosine distance 1);
nothing converging: 1; the cumulative incidence of a fixed point by step t over every chain run
``(1 - no_verdict) p min(1, (t - 1) / 8)``, read at the step the analysis prints it for (``incidence.fixed_point``);
the median step to a fixed point: the first step where that incidence reaches 1/2 (none when ``p < 0.5``).
Contrasts: the differences of these. Tests: a significant contrast is an adjusted p < 0.05 where the result carries
``p_adjusted``, else a p < 0.05 where it carries ``p_value``, else an interval that excludes 0.

Output: raw per-repetition values and summaries as JSON (``--out``, default bench/results/calibration-LABEL.json)
and Markdown tables on stdout. Monte Carlo error: the standard error of each rate over repetitions (repetitions are
independent; two groups of one repetition are counted as one cluster).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # 2 shared cores: threads that wait for each other cost more
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy import stats as scipy_stats  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration_world import (  # noqa: E402
    ALPHA,
    ALT_P,
    CYCLE_STEPS,
    DIM,
    FIXED_STEPS,
    MAX_STEPS,
    NULL_P,
    Design,
    Law,
    Read,
    build,
    contrast_of,
    flipped,
    group_of,
    number,
    read_incidence,
    read_interval,
)

from stability.analysis.convergence import Params  # noqa: E402
from stability.analysis.corpus import Corpus  # noqa: E402
from stability.analysis.measure import EmbeddingUse, Vectors, measure  # noqa: E402

STARTS = (1, 2, 3, 5, 10, 20)
REPLICATES = (1, 3, 10)


def analyse(corpus: Corpus, vectors: dict[str, np.ndarray], params: Params, grouped: bool) -> dict[str, Any]:
    result = measure(corpus, Vectors(nodes=vectors, principles=vectors), params,
                     EmbeddingUse(model="planted", texts=0, computed=0), by=["model"] if grouped else None)
    return result.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------- the designs

def _ratio_test(group: dict[str, Any] | None) -> tuple[bool | None, float | None]:
    if group is None:
        return None, None
    ratio = group.get("convergence_ratio") or {}
    p = number(ratio.get("p_adjusted", ratio.get("p_value"))) if isinstance(ratio, dict) else None
    return (None, None) if p is None else (p < ALPHA, p)


def record_groups(design: Design, rep: int, result: dict[str, Any], models: list[str], law: Law,
                  prefix: str = "") -> None:
    for model in models:
        group = group_of(result, model)
        if group is None:
            continue
        design.interval(rep, prefix + "fixed_point_rate", read_interval(group.get("fixed_point_rate")), law.p)
        if group.get("fixed_point_rate_started") is not None:  # over every started run: no verdict counts as not
            design.interval(rep, prefix + "fixed_point_rate_started",   # reaching a fixed point
                            read_interval(group.get("fixed_point_rate_started")), (1 - law.no_verdict) * law.p)
        design.interval(rep, prefix + "cycle_rate", read_interval(group.get("cycle_rate")),
                        (1 - law.p) * law.cycle_share)
        design.interval(rep, prefix + "convergence_ratio", read_interval(group.get("convergence_ratio")),
                        law.ratio())
        design.interval(rep, prefix + "steps_median", read_interval(group.get("steps_to_fixed_point")),
                        law.median_step())
        incidence = read_incidence(group)
        if incidence is not None:  # F_fixed(t) over every chain run: judged (1 - no_verdict) and fixed by t
            read, step = incidence
            design.interval(rep, prefix + "incidence", read, (1 - law.no_verdict) * law.fixed_by(step))
        if "clusters" in group:
            design.note(prefix + "clusters", group["clusters"])


def record_contrast(design: Design, rep: int, result: dict[str, Any], laws: tuple[Law, Law], suffix: str) -> None:
    contrast, sign = contrast_of(result, "g0", "g1")
    if contrast is None:
        return
    a, b = laws
    truths = {"fixed_point_rate": a.p - b.p, "convergence_ratio": a.ratio() - b.ratio()}
    ma, mb = a.median_step(), b.median_step()
    truths["steps_to_fixed_point"] = None if ma is None or mb is None else ma - mb
    for metric, truth in truths.items():
        read = flipped(read_interval(contrast.get(metric), contrast), sign)
        if truth is not None:
            design.interval(rep, f"contrast_{metric}_{suffix}", read, truth)
        rejects, rule = read.significant() if read is not None else (None, "n/a")
        design.test(rep, f"contrast_{metric}_{suffix}_sig", rejects, rule)
    if "paired" in contrast:
        design.note(f"contrast_paired_{suffix}", contrast["paired"])


def run_grid_design(starts: int, replicates: int, icc: float, reps: int, seed: int, params: Params,
                    alternative: bool = True) -> Design:
    """Two groups on the same starts: under the null (same law) and, with ``alternative``, a planted difference."""
    design = Design()
    null = (Law(NULL_P), Law(NULL_P))
    alt = (Law(ALT_P[0]), Law(ALT_P[1]))
    for rep in range(reps):
        rng = np.random.default_rng([seed, starts, replicates, int(icc * 1000), rep])
        corpus, vectors, _ = build(rng, starts, replicates, list(null), icc)
        result = analyse(corpus, vectors, params, grouped=True)
        record_groups(design, rep, result, ["g0", "g1"], null[0])
        for model in ("g0", "g1"):
            rejects, p = _ratio_test(group_of(result, model))
            design.test(rep, "ratio_permutation_null", rejects, "p_value", p)
        record_contrast(design, rep, result, null, "null")
        if not alternative or starts < 2:  # one start: no ratio, no contrast interval to power
            continue
        corpus, vectors, _ = build(rng, starts, replicates, list(alt), icc)
        result = analyse(corpus, vectors, params, grouped=True)
        design.interval(rep, "ratio_nothing_converges",
                        read_interval((group_of(result, "g1") or {}).get("convergence_ratio")), 1.0)
        for model, name in (("g0", "ratio_permutation_power_converging"), ("g1", "ratio_permutation_power_not")):
            rejects, p = _ratio_test(group_of(result, model))
            design.test(rep, name, rejects, "p_value", p)
        record_contrast(design, rep, result, alt, "alt")
    return design


def wilson_bounds(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    p = successes / trials
    scale = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def exact_wilson_coverage(p: float, n: int) -> float:
    """Coverage of the 95% Wilson interval for a binomial(n, p), summed exactly over its outcomes."""
    return float(sum(scipy_stats.binom.pmf(k, n, p) for k in range(n + 1)
                     if wilson_bounds(k, n)[0] - 1e-12 <= p <= wilson_bounds(k, n)[1] + 1e-12))


def run_single_start(n: int, p: float, reps: int, seed: int, params: Params) -> Design:
    """One start, ``n`` runs, P(fixed point) = p, no failures: the analysis's interval against a Wilson interval
    computed here from the verdict counts the analysis reports (the harness's own check: the Wilson coverage over
    repetitions must agree with its exact coverage)."""
    design = Design()
    law = Law(p, no_verdict=0.0)
    for rep in range(reps):
        rng = np.random.default_rng([seed, 1, n, int(p * 1000), rep])
        corpus, vectors, _ = build(rng, 1, n, [law], 0.0)
        result = analyse(corpus, vectors, params, grouped=False)
        group = group_of(result, None) or {}
        design.interval(rep, "fixed_point_rate", read_interval(group.get("fixed_point_rate")), p)
        verdicts = group.get("verdicts", {})
        judged = sum(int(verdicts.get(v, 0)) for v in ("fixed_point", "cycle", "unsettled"))
        low, high = wilson_bounds(int(verdicts.get("fixed_point", 0)), judged)
        design.interval(rep, "wilson_from_counts", Read(estimate=verdicts.get("fixed_point", 0) / judged, low=low,
                                                        high=high, method="wilson"), p)
    design.note("wilson_exact_coverage", exact_wilson_coverage(p, n))
    return design


def run_two_starts(replicates: int, icc: float, reps: int, seed: int, params: Params) -> Design:
    """2 starts x ``replicates`` runs (issue 25: 240 runs): coverage, width, and each start's own Wilson width."""
    design = Design()
    law = Law(NULL_P, no_verdict=0.0)
    for rep in range(reps):
        rng = np.random.default_rng([seed, 2, replicates, int(icc * 1000), rep])
        corpus, vectors, _ = build(rng, 2, replicates, [law], icc)
        result = analyse(corpus, vectors, params, grouped=False)
        group = group_of(result, None) or {}
        design.interval(rep, "fixed_point_rate", read_interval(group.get("fixed_point_rate")), law.p)
        design.interval(rep, "convergence_ratio", read_interval(group.get("convergence_ratio")), law.ratio())
        runs = {r["run_id"]: r for r in result["runs"]}
        for j in range(2):
            mine = [r for rid, r in runs.items() if rid.startswith(f"g0.s{j}.")]
            low, high = wilson_bounds(sum(r["verdict"] == "fixed_point" for r in mine), len(mine))
            design.note("per_start_wilson_width", high - low)
    return design


def run_identical_groups(groups: int, starts: int, replicates: int, reps: int, seed: int, params: Params
                         ) -> Design:
    """``groups`` groups under one law on the same starts: how often at least one contrast is significant, and
    how many contrasts are printed of the groups*(groups-1)/2 that exist."""
    design = Design()
    law = Law(NULL_P)
    metrics = ("fixed_point_rate", "steps_to_fixed_point", "convergence_ratio")
    for rep in range(reps):
        rng = np.random.default_rng([seed, 10, groups, starts, replicates, rep])
        corpus, vectors, _ = build(rng, starts, replicates, [law] * groups, 0.0)
        result = analyse(corpus, vectors, params, grouped=True)
        contrasts = result.get("contrasts", [])
        design.note("contrasts_printed", len(contrasts))
        any_metric = False
        for metric in metrics:
            found, rules = False, set()
            for contrast in contrasts:
                read = read_interval(contrast.get(metric), contrast)
                if read is None:
                    continue
                rejects, rule = read.significant()
                rules.add(rule)
                found = found or bool(rejects)
            any_metric = any_metric or found
            design.test(rep, f"any_significant_{metric}", found, ",".join(sorted(rules)))
        design.test(rep, "any_significant_any_metric", any_metric, "")
    design.note("contrasts_existing", groups * (groups - 1) // 2)
    return design


# ------------------------------------------------------------------------------------------------- the runner

def versions() -> dict[str, str]:
    import duckdb
    import scipy

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "duckdb": duckdb.__version__, "machine": platform.machine(), "cpus": str(os.cpu_count())}


def git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=False)
    except OSError:
        return None
    return out.stdout.strip() or None


def parse_designs(text: str) -> list[tuple[int, int]]:
    if text == "all":
        return [(s, r) for s in STARTS for r in REPLICATES]
    out = []
    for part in filter(None, text.split(",")):
        starts, _, replicates = part.strip().partition("x")
        out.append((int(starts), int(replicates)))
    return out


Job = tuple[str, dict[str, Any], Callable[[int], Design]]


def jobs(args: argparse.Namespace, params: Params) -> list[Job]:
    out: list[Job] = []
    seed = args.seed
    for starts, replicates in parse_designs(args.designs):
        for icc in args.icc:
            out.append((f"{starts}x{replicates} icc={icc:g}",
                        {"case": "grid", "starts": starts, "replicates": replicates, "icc": icc},
                        lambda reps, s=starts, r=replicates, i=icc: run_grid_design(s, r, i, reps, seed, params,
                                                                                    not args.no_alternative)))
    cases = [c for c in args.cases.split(",") if c]
    if "rare" in cases:
        for n in (10, 20):
            out.append((f"1 start, n={n}, p=0.05", {"case": "rare", "starts": 1, "replicates": n, "p": 0.05},
                        lambda reps, n=n: run_single_start(n, 0.05, reps, seed, params)))
    if "two240" in cases:
        for icc in (0.0, 0.3):
            out.append((f"2 starts x 120 icc={icc:g}", {"case": "two240", "starts": 2, "replicates": 120, "icc": icc},
                        lambda reps, i=icc: run_two_starts(120, i, reps, seed, params)))
    if "identical" in cases:
        out.append(("10 identical groups, 5x3", {"case": "identical", "groups": 10, "starts": 5, "replicates": 3},
                    lambda reps: run_identical_groups(10, 5, 3, reps, seed, params)))
        out.append(("11 identical groups, 5x3", {"case": "identical", "groups": 11, "starts": 5, "replicates": 3},
                    lambda reps: run_identical_groups(11, 5, 3, max(1, reps // 10), seed, params)))
    if "wilson" in cases:
        out.append(("harness: 1 start, n=20, p=0.3", {"case": "wilson", "starts": 1, "replicates": 20, "p": 0.3},
                    lambda reps: run_single_start(20, 0.3, reps, seed, params)))
    return out


def reps_for(case: dict[str, Any], args: argparse.Namespace) -> int:
    """Repetitions per design: ``--reps``, scaled down where one repetition is expensive (the run count)."""
    if case["case"] == "identical":
        return max(1, args.reps // args.identical_divisor)
    if case["case"] == "two240":
        return max(1, args.reps // args.two240_divisor)
    return args.reps


def fmt(metric: dict[str, Any] | None, truth: bool = False) -> str:
    if not metric or "rate" not in metric:
        return "n/a"
    text = f"{100 * metric['rate']:.0f}%"
    if metric.get("mc_se") is not None:
        text += f" ±{100 * metric['mc_se']:.0f}"
    if truth and metric.get("mean_estimate") is not None:
        text += f" ({metric['mean_estimate']:.2f})"
    return text


def undefined(metric: dict[str, Any] | None) -> str:
    """A measure that should not be printed (one start: no between-start pair): n/a, or what was printed."""
    if not metric or metric.get("mean_estimate") is None:
        return "n/a"
    return f"none (prints {metric['mean_estimate']:.2g})"


GRID_INTERVALS = [("fixed_point_rate", "fp rate"), ("fixed_point_rate_started", "fp rate (started)"),
                  ("cycle_rate", "cycle rate"), ("convergence_ratio", "ratio (mean; truth 0.64)"),
                  ("ratio_nothing_converges", "ratio, none converge (mean; truth 1)"),
                  ("steps_median", "steps median"), ("incidence", "incidence (F_fixed at the horizon)"),
                  ("contrast_fixed_point_rate_null", "Δ fp rate"), ("contrast_convergence_ratio_null", "Δ ratio"),
                  ("contrast_steps_to_fixed_point_null", "Δ steps")]
GRID_TESTS = [("ratio_permutation_null", "ratio perm. (null)"),
              ("ratio_permutation_power_converging", "power: converging"),
              ("ratio_permutation_power_not", "power: not converging"),
              ("contrast_fixed_point_rate_null_sig", "Δ fp (null)"),
              ("contrast_fixed_point_rate_alt_sig", "Δ fp (power)"),
              ("contrast_convergence_ratio_null_sig", "Δ ratio (null)"),
              ("contrast_convergence_ratio_alt_sig", "Δ ratio (power)"),
              ("contrast_steps_to_fixed_point_null_sig", "Δ steps (null)")]


def tables(report: dict[str, Any]) -> str:
    designs = report["designs"]
    lines = []
    grid = sorted((d for d in designs if d["case"]["case"] == "grid"),
                  key=lambda d: (d["case"]["starts"], d["case"]["replicates"], d["case"]["icc"]))
    if grid:
        present = [(k, t) for k, t in GRID_INTERVALS if any(k in d["metrics"] for d in grid)]
        lines += ["Coverage of the planted truth by the printed 95% intervals (± Monte Carlo standard error; "
                  "mean estimate in brackets where shown):", "",
                  "| design | reps | " + " | ".join(t for _, t in present) + " | ratio below its own interval |",
                  "|---|---:|" + "---:|" * (len(present) + 1)]
        for d in grid:
            cells = [fmt(d["metrics"].get(k), truth="ratio" in k) for k, _ in present]
            if d["case"]["starts"] < 2:  # no pair of runs from different starts: a ratio has no truth to cover
                cells = [undefined(d["metrics"].get(k)) if "ratio" in k else c
                         for (k, _), c in zip(present, cells, strict=True)]
            below = d["metrics"].get("convergence_ratio", {}).get("below_own_interval")
            cells.append("n/a" if below is None or d["case"]["starts"] < 2 else f"{100 * below:.0f}%")
            lines.append(f"| {d['name']} | {d['repetitions']} | " + " | ".join(cells) + " |")
        present = [(k, t) for k, t in GRID_TESTS if any(k in d["metrics"] for d in grid)]
        lines += ["", "Rejection rate at α = 0.05 (null: type-I error, goal 3-7%; planted difference: power):", "",
                  "| design | " + " | ".join(t for _, t in present) + " |", "|---|" + "---:|" * len(present)]
        for d in grid:
            lines.append(f"| {d['name']} | " + " | ".join(fmt(d["metrics"].get(k)) for k, _ in present) + " |")
    special = [d for d in designs if d["case"]["case"] != "grid"]
    if special:
        lines += ["", "| case | reps | measure | value |", "|---|---:|---|---|"]
        for d in special:
            for key, metric in d["metrics"].items():
                value = fmt(metric, truth=True)
                if metric.get("median_width") is not None:
                    value += f", median width {metric['median_width']:.3g}"
                lines.append(f"| {d['name']} | {d['repetitions']} | {key} | {value} |")
            for key, value in d["extra"].items():
                lines.append(f"| {d['name']} | {d['repetitions']} | {key} | {value} |")
    return "\n".join(lines)


def write(report: dict[str, Any], out: Path) -> None:
    """The report as JSON, its raw values one line per design (the summaries stay readable, the file compact)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    head = {k: v for k, v in report.items() if k != "raw"}
    text = json.dumps(head, indent=1, default=str)[:-2]
    text += ',\n "raw": {\n' + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, default=str)}"
                                           for k, v in report["raw"].items()) + "\n }\n}\n"
    json.loads(text)  # still one JSON document
    out.write_text(text, encoding="utf-8")


def merge(paths: list[Path], out: Path, label: str) -> dict[str, Any]:
    """Join result files: designs split over processes side by side, the same design run again (another
    ``--seed``) pooled; every summary re-derived from the raw values by this code (methods and rules kept)."""
    parts = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    report = {k: v for k, v in parts[0].items() if k not in ("designs", "raw", "table")}
    entries: dict[str, dict[str, Any]] = {}
    raw: dict[str, dict[str, list[Any]]] = {}
    for part in parts:
        for entry in part["designs"]:
            name = entry["name"]
            if name not in entries:
                entries[name] = {**entry, "metrics": dict(entry["metrics"]), "seeds": [part.get("seed")]}
                raw[name] = {k: list(v) for k, v in part["raw"][name].items()}
                continue
            pooled = entries[name]
            pooled["cpu_seconds"] = round(pooled["cpu_seconds"] + entry["cpu_seconds"], 2)
            pooled["seeds"].append(part.get("seed"))
            for key, value in entry["metrics"].items():
                pooled["metrics"].setdefault(key, value)
            for key, value in part["raw"][name].items():
                raw[name].setdefault(key, []).extend(value)
    for name, entry in entries.items():
        old = entry["metrics"]
        new = Design.from_raw(raw[name], old).summary()["metrics"]
        for key, metric in new.items():
            metric.update({x: old[key][x] for x in ("methods", "rules") if x in old.get(key, {})})
        entry["metrics"] = new
        entry["repetitions"] = max((m["repetitions"] for m in new.values()), default=0)
        entry["cpu_seconds_per_repetition"] = round(entry["cpu_seconds"] / max(entry["repetitions"], 1), 4)
    report.update(label=label, merged_from=[p.name for p in paths],
                  cpu_seconds=round(sum(p.get("cpu_seconds", 0.0) for p in parts), 1),
                  complete=all(p.get("complete") for p in parts), designs=list(entries.values()), raw=raw)
    report["table"] = tables(report)
    write(report, out)
    print(report["table"])
    return report


def main(argv: Iterable[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions per design (default 30: ~15 min of CPU for the whole default run; "
                             "--quick: 200)")
    parser.add_argument("--designs", default="all", help="STARTSxREPLICATES,... or all (default)")
    parser.add_argument("--icc", default="0,0.3", help="between-start ICCs, comma-separated (default 0,0.3)")
    parser.add_argument("--cases", default="rare,two240,identical,wilson",
                        help="special cases: rare, two240, identical, wilson (comma-separated; empty: none)")
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument("--bootstrap", type=int, default=None, help="resamples (default: Params' default)")
    parser.add_argument("--permutations", type=int, default=None, help="permutations (default: Params' default)")
    parser.add_argument("--no-alternative", action="store_true", help="skip the planted-difference corpora")
    parser.add_argument("--identical-divisor", type=int, default=2, help="identical groups get reps / this")
    parser.add_argument("--two240-divisor", type=int, default=2, help="2 x 120 designs get reps / this")
    parser.add_argument("--quick", action="store_true",
                        help="the test-suite subset: 3x3 and 20x3 at ICC 0.3, 200 repetitions, null only, "
                             "500 resamples, plus the harness's Wilson check")
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/calibration-LABEL)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--merge", type=Path, nargs="+", default=None,
                        help="instead of simulating: join these result files (runs split over processes) into one")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.merge:
        return merge(args.merge, args.out or ROOT / "bench" / "results" / f"calibration-{args.label}.json",
                     args.label)
    if args.quick:
        args.designs, args.icc, args.cases, args.no_alternative = "3x3,20x3", "0.3", "wilson", True
        args.reps = args.reps or 200
        args.bootstrap = args.bootstrap or 500
        args.permutations = args.permutations or 200
    args.reps = args.reps or 30
    args.icc = [float(x) for x in str(args.icc).split(",") if x != ""]
    defaults = Params()
    params = Params(bootstrap=args.bootstrap or defaults.bootstrap,
                    permutations=args.permutations or defaults.permutations)
    report: dict[str, Any] = {
        "label": args.label, "commit": git_commit(), "versions": versions(),
        "params": params.model_dump(), "seed": args.seed, "alpha": ALPHA,
        "world": {"dim": DIM, "fixed_steps": FIXED_STEPS, "cycle_steps": CYCLE_STEPS, "max_steps": MAX_STEPS,
                  "null_p": NULL_P, "alternative_p": ALT_P, "no_verdict": Law(0).no_verdict,
                  "cycle_share": Law(0).cycle_share},
        "designs": [], "raw": {}}
    out = None if args.no_write else args.out or ROOT / "bench" / "results" / f"calibration-{args.label}.json"
    started = time.process_time()
    for name, case, job in jobs(args, params):
        reps = reps_for(case, args)
        t0 = time.process_time()
        design = job(reps)
        seconds = time.process_time() - t0
        summary = design.summary()
        reps = max((len(t.reps) for t in design.tallies.values()), default=reps)  # as run (11 groups: fewer)
        report["designs"].append({"name": name, "case": case, "repetitions": reps,
                                  "cpu_seconds": round(seconds, 2),
                                  "cpu_seconds_per_repetition": round(seconds / max(reps, 1), 4), **summary})
        report["raw"][name] = design.raw()
        report["cpu_seconds"] = round(time.process_time() - started, 1)
        report["complete"] = False
        if out is not None:  # after every design: a run cut short keeps what it measured
            write(report, out)
        print(f"{name}: {reps} repetitions, {seconds:.1f} s CPU", file=sys.stderr, flush=True)
    report["complete"] = True
    table = tables(report)
    report["table"] = table
    if out is not None:
        write(report, out)
        print(f"wrote {out}", file=sys.stderr)
    print(table)
    return report


if __name__ == "__main__":
    main()
