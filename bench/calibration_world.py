"""The planted world of bench/calibration.py (issue 25), and how its results are read and tallied.

The world: starts with their own fixed-point probabilities (Beta, given mean and ICC), runs as chains of visits
to nodes with random unit vectors, one shared attractor (see bench/calibration.py for the truths it plants).
The reading: interval-like fields of ``measure()``'s JSON, read defensively, so the same harness reads the schema
before and after the estimators change. The tallies: coverage and rejection rates with their Monte Carlo error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from stability.analysis.corpus import Corpus, RunChain, Visit

DIM = 32
FIXED_STEPS = (2, 9)  # a fixed point is reached at a step uniform in 2..9 (then confirmed by two declines)
CYCLE_STEPS = (3, 6)  # a cycle returns at a step uniform in 3..6
MAX_STEPS = 12
ALPHA = 0.05
NULL_P = 0.6
ALT_P = (0.7, 0.0)  # a planted difference: one model converges, the other does not (as in issue 25)


# ---------------------------------------------------------------------------------------------------- the world

@dataclass(frozen=True)
class Law:
    p: float  # mean over starts of P(fixed point | judged run)
    cycle_share: float = 0.5  # of the judged runs that reach no fixed point, the share that cycle
    no_verdict: float = 0.1  # share of runs that end without a verdict (independent of the start)

    def fixed_by(self, step: int) -> float:
        low, high = FIXED_STEPS
        return self.p * min(1.0, max(0.0, (step - low + 1) / (high - low + 1)))

    def median_step(self) -> float | None:
        for step in range(FIXED_STEPS[0], FIXED_STEPS[1] + 1):
            if self.fixed_by(step) >= 0.5 - 1e-12:
                return float(step)
        return None

    def ratio(self) -> float:
        return 1.0 - self.p * self.p


def start_probabilities(law: Law, uniforms: np.ndarray, icc: float) -> np.ndarray:
    """``p_s`` per start: the Beta(mean p, ICC icc) quantile of each start's uniform (p itself when it cannot vary)."""
    if icc <= 0 or law.p <= 0 or law.p >= 1:
        return np.full(len(uniforms), law.p)
    total = 1.0 / icc - 1.0
    return np.asarray(scipy_stats.beta.ppf(uniforms, law.p * total, (1 - law.p) * total), dtype=float)


class Builder:
    """One synthetic corpus: runs as chains of visits, a unit vector per node."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.vectors: dict[str, np.ndarray] = {}
        self.runs: list[RunChain] = []
        self.attractor = self.node("A")

    def node(self, name: str) -> str:
        v = self.rng.standard_normal(DIM)
        self.vectors[name] = (v / np.linalg.norm(v)).astype(np.float32)
        return name

    def run(self, run_id: str, model: str, start: str, p_start: float, law: Law) -> None:
        rng = self.rng
        visits = [Visit(0, start, "origin")]

        def walk(to: int) -> None:
            for step in range(1, to):
                visits.append(Visit(step, self.node(f"{run_id}.{step}"), "changed"))

        if rng.random() < law.no_verdict:
            last = int(rng.integers(2, MAX_STEPS + 1))
            walk(last)
            visits.append(Visit(last, visits[-1].node, "parse_failure"))
            stop = "parse_failures"
        elif rng.random() < p_start:
            at = int(rng.integers(FIXED_STEPS[0], FIXED_STEPS[1] + 1))
            walk(at)
            visits += [Visit(at, self.attractor, "changed"), Visit(at + 1, self.attractor, "declined"),
                       Visit(at + 2, self.attractor, "declined")]
            stop = "declined"
        elif rng.random() < law.cycle_share:
            at = int(rng.integers(CYCLE_STEPS[0], CYCLE_STEPS[1] + 1))
            walk(at)
            visits.append(Visit(at, visits[at - 2].node, "changed"))
            stop = "cycle"
        else:
            walk(MAX_STEPS + 1)
            stop = "max_steps"
        self.runs.append(RunChain(run_id=run_id, visits=visits, model=model, stop_reason=stop, declines_to_stop=2))

    def corpus(self) -> Corpus:
        nodes = {v.node for r in self.runs for v in r.visits}
        return Corpus(runs=self.runs, principles={n: (n,) for n in nodes})


def build(rng: np.random.Generator, starts: int, replicates: int, laws: list[Law], icc: float
          ) -> tuple[Corpus, dict[str, np.ndarray], list[float]]:
    """A corpus of ``len(laws)`` groups (models g0, g1, ...) on the same ``starts`` starts, ``replicates`` runs each;
    also the realised p_s of group 0 per start."""
    builder = Builder(rng)
    start_nodes = [builder.node(f"s{j}") for j in range(starts)]
    uniforms = rng.random(starts)
    per_law = [start_probabilities(law, uniforms, icc) for law in laws]
    for g, law in enumerate(laws):
        for j, start in enumerate(start_nodes):
            for r in range(replicates):
                builder.run(f"g{g}.s{j}.r{r}", f"g{g}", start, float(per_law[g][j]), law)
    return builder.corpus(), builder.vectors, per_law[0].tolist()


# ---------------------------------------------------------------------------------- reading results defensively

ESTIMATE_KEYS = ("mean", "estimate", "median", "value", "incidence")


def number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else None


@dataclass
class Read:
    """One interval as printed: estimate, bounds (None: undefined; a missing upper bound beside a lower one is
    read as unbounded, as the analysis prints an interval that is unbounded above), and its p-values."""

    estimate: float | None
    low: float | None
    high: float | None
    method: str | None = None
    p_value: float | None = None
    p_adjusted: float | None = None

    @property
    def defined(self) -> bool:
        return self.low is not None

    def covers(self, truth: float | None) -> bool | None:
        if truth is None or self.low is None:
            return None
        high = math.inf if self.high is None else self.high
        return self.low - 1e-9 <= truth <= high + 1e-9

    def width(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low

    def significant(self) -> tuple[bool | None, str]:
        if self.p_adjusted is not None:
            return self.p_adjusted < ALPHA, "p_adjusted"
        if self.p_value is not None:
            return self.p_value < ALPHA, "p_value"
        if self.low is None:
            return None, "n/a"
        high = math.inf if self.high is None else self.high
        return self.low > 0 or high < 0, "interval"


def read_interval(block: Any, owner: dict[str, Any] | None = None) -> Read | None:
    """An interval-like dict ({mean|median|estimate, low, high, ...}); p-values from it, else from ``owner``."""
    if not isinstance(block, dict) or ("low" not in block and "high" not in block):
        return None
    estimate = next((number(block[k]) for k in ESTIMATE_KEYS if k in block), None)
    owner = owner or {}

    def pick(key: str) -> float | None:
        return number(block.get(key, owner.get(key)))

    method = block.get("method", owner.get("method"))
    return Read(estimate=estimate, low=number(block.get("low")), high=number(block.get("high")),
                method=str(method) if method is not None else None, p_value=pick("p_value"),
                p_adjusted=pick("p_adjusted"))


def read_incidence(group: dict[str, Any]) -> tuple[Read, int] | None:
    """The cumulative incidence of a fixed point the group prints (``incidence.fixed_point``: F_fixed at the step
    by which every run's outcome is known) with that step; None where the group has none."""
    block = group.get("incidence")
    if not isinstance(block, dict) or not isinstance(block.get("fixed_point"), dict):
        return None
    at = block["fixed_point"]
    if not isinstance(at.get("step"), int):
        return None
    return read_interval(at), at["step"]


def group_of(result: dict[str, Any], model: str | None) -> dict[str, Any] | None:
    for group in result.get("groups", []):
        if model is None or group.get("key", {}).get("model") == model:
            return group
    return None


def contrast_of(result: dict[str, Any], a: str, b: str) -> tuple[dict[str, Any] | None, int]:
    """The contrast between models a and b (sign: a - b) and +1, or -1 when printed as b - a."""
    for contrast in result.get("contrasts", []):
        ka, kb = contrast.get("a", {}).get("model"), contrast.get("b", {}).get("model")
        if (ka, kb) == (a, b):
            return contrast, 1
        if (ka, kb) == (b, a):
            return contrast, -1
    return None, 1


def flipped(read: Read | None, sign: int) -> Read | None:
    """``read`` of b - a as a - b (an interval unbounded above becomes one unbounded below)."""
    if read is None or sign == 1:
        return read
    estimate = None if read.estimate is None else -read.estimate
    low = None if read.low is None else -math.inf if read.high is None else -read.high
    high = None if read.low is None else -read.low
    return Read(estimate=estimate, low=low, high=high, method=read.method, p_value=read.p_value,
                p_adjusted=read.p_adjusted)


# ------------------------------------------------------------------------------------------------ bookkeeping

@dataclass
class Tally:
    """Per repetition: the values of one interval (coverage) or one test (rejection) across its groups."""

    kind: str  # coverage | rejection
    truth: float | None = None
    reps: list[list[dict[str, Any]]] = field(default_factory=list)

    def add(self, rep: int, record: dict[str, Any]) -> None:
        while len(self.reps) <= rep:
            self.reps.append([])
        self.reps[rep].append(record)

    def summary(self) -> dict[str, Any]:
        key = "covers" if self.kind == "coverage" else "rejects"
        hits = [sum(bool(r[key]) for r in rep if r.get(key) is not None) for rep in self.reps]
        counts = [sum(r.get(key) is not None for r in rep) for rep in self.reps]
        total = sum(counts)
        values = [r for rep in self.reps for r in rep]
        out: dict[str, Any] = {"kind": self.kind, "truth": self.truth, "repetitions": len(self.reps),
                               "values": len(values), "defined": total}
        if total:
            rate = sum(hits) / total
            k = sum(c > 0 for c in counts)
            spread = sum((h - rate * c) ** 2 for h, c in zip(hits, counts, strict=True))
            se = math.sqrt(spread * k / max(k - 1, 1)) / total if k > 1 else None
            out.update(rate=round(rate, 4), mc_se=None if se is None else round(se, 4))
        estimates = [r["estimate"] for r in values if r.get("estimate") is not None]
        if estimates:
            out["mean_estimate"] = round(float(np.mean(estimates)), 4)
            out["below_own_interval"] = round(float(np.mean([
                r["estimate"] < r["low"] - 1e-9 for r in values if r.get("low") is not None
                and r.get("estimate") is not None])), 4) if any(r.get("low") is not None for r in values) else None
        widths = [r["high"] - r["low"] for r in values if r.get("low") is not None and r.get("high") is not None]
        if widths:
            out["median_width"] = round(float(np.median(widths)), 4)  # a mean is swamped by near-unbounded ratios
        methods = sorted({str(r["method"]) for r in values if r.get("method")})
        if methods:
            out["methods"] = methods
        rules = sorted({str(r["rule"]) for r in values if r.get("rule")})
        if rules:
            out["rules"] = rules
        return out


def _unraw(x: Any) -> Any:
    return float(x) if isinstance(x, str) and x in ("inf", "-inf", "nan") else x


def _record(value: list[Any], tally: Tally) -> dict[str, Any]:
    if tally.kind == "rejection":
        return {"rejects": value[0], "p": value[1]}
    estimate, low, high = (_unraw(v) for v in value)
    read = Read(estimate=estimate, low=low, high=high)
    return {"estimate": estimate, "low": low, "high": high, "covers": read.covers(tally.truth)}


class Design:
    """The tallies of one design, filled repetition by repetition."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}
        self.extra: dict[str, list[Any]] = {}

    def tally(self, name: str, kind: str, truth: float | None = None) -> Tally:
        if name not in self.tallies:
            self.tallies[name] = Tally(kind, truth)
        return self.tallies[name]

    def interval(self, rep: int, name: str, read: Read | None, truth: float | None) -> None:
        record: dict[str, Any] = {"estimate": None, "low": None, "high": None, "covers": None}
        if read is not None:
            record = {"estimate": read.estimate, "low": read.low, "high": read.high, "covers": read.covers(truth),
                      "method": read.method}
        self.tally(name, "coverage", truth).add(rep, record)

    def test(self, rep: int, name: str, rejects: bool | None, rule: str, p: float | None = None) -> None:
        self.tally(name, "rejection").add(rep, {"rejects": rejects, "rule": rule, "p": p})

    def note(self, key: str, value: Any) -> None:
        self.extra.setdefault(key, []).append(value)

    def summary(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        for key, values in self.extra.items():
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            extra[key] = round(float(np.mean(numbers)), 4) if numbers and len(numbers) == len(values) else values[:5]
        return {"metrics": {k: t.summary() for k, t in self.tallies.items()}, "extra": extra}

    @classmethod
    def from_raw(cls, raw: dict[str, Any], metrics: dict[str, Any]) -> Design:
        """The design again from its raw values (``raw()``) and truths (its summary's metrics): summaries re-derived
        by this code, whichever version wrote the file."""
        design = cls()
        for name, reps in raw.items():
            old = metrics.get(name, {})
            tally = design.tally(name, old.get("kind", "coverage"), old.get("truth"))
            tally.reps = [[_record(v, tally) for v in values] for values in reps]
        return design

    def raw(self) -> dict[str, Any]:
        """Per metric, per repetition, per group: [estimate, low, high] (intervals) or [rejects, p] (tests)."""
        def r(x: Any) -> Any:
            return round(x, 5) if isinstance(x, float) and math.isfinite(x) else x if not isinstance(x, float) \
                else str(x)

        def compact(record: dict[str, Any]) -> list[Any]:
            if "covers" in record:
                return [r(record["estimate"]), r(record["low"]), r(record["high"])]
            return [record["rejects"], r(record.get("p"))]

        return {k: [[compact(x) for x in rep] for rep in t.reps] for k, t in self.tallies.items()}
