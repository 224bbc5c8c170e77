"""The calibration harness (bench/calibration.py, issue 25): a fast subset of its simulations, so a regression in
the analysis's intervals fails here, and checks that the harness itself measures what it says."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stability.analysis.convergence import Params

PATH = Path(__file__).resolve().parents[2] / "bench" / "calibration.py"
QUICK = Params(bootstrap=500, permutations=100)  # the quick subset's resamples (bench/calibration.py --quick)
REPS = 200


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_calibration", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


calibration = _load()
world = importlib.import_module("calibration_world")  # its sibling (bench/ is on the path once it is loaded)


@pytest.fixture(scope="module")
def wilson_case() -> Any:
    return calibration.run_single_start(20, 0.3, REPS, 25, QUICK).summary()


@pytest.fixture(scope="module")
def three_by_three() -> Any:
    return calibration.run_grid_design(3, 3, 0.3, REPS, 25, QUICK, alternative=False).summary()


def _band(metric: dict[str, Any], low: float, high: float) -> tuple[float, float]:
    """The goal band widened by 2.5 Monte Carlo standard errors of this many repetitions."""
    slack = 2.5 * metric["mc_se"]
    return low - slack, high + slack


def test_the_harness_measures_a_known_coverage(wilson_case: Any) -> None:
    """A Wilson interval over the analysis's own verdict counts: its coverage over the planted repetitions agrees
    with its exact coverage (summed over the binomial), so the world, the reading and the tally are right."""
    metrics = wilson_case["metrics"]
    wilson = metrics["wilson_from_counts"]
    exact = wilson_case["extra"]["wilson_exact_coverage"]
    assert wilson["defined"] == REPS and 0.9 < exact < 0.99
    assert abs(wilson["rate"] - exact) <= 3 * math.sqrt(exact * (1 - exact) / REPS)
    # the point estimate the analysis prints is unbiased for the planted rate (it is a plain share here)
    estimate = metrics["fixed_point_rate"]["mean_estimate"]
    assert abs(estimate - 0.3) <= 3 * math.sqrt(0.3 * 0.7 / 20 / REPS)


def test_the_world_plants_what_it_says() -> None:
    law = world.Law(0.6)
    assert law.median_step() == 8.0 and world.Law(0.4).median_step() is None
    assert law.fixed_by(5) == pytest.approx(0.3) and law.ratio() == pytest.approx(0.64)
    probabilities = world.start_probabilities(law, world.np.random.default_rng(0).random(20000), 0.3)
    variance = probabilities.var()
    assert probabilities.mean() == pytest.approx(0.6, abs=0.01)
    assert variance / (0.6 * 0.4) == pytest.approx(0.3, abs=0.02)  # the ICC asked for


def test_fields_are_read_from_either_schema() -> None:
    today = {"mean": 0.5, "low": 0.3, "high": None, "n": 9}
    read = world.read_interval(today)
    assert read.covers(7.0) is True and read.covers(0.1) is False and read.significant() == (True, "interval")
    after = {"estimate": 0.1, "low": -0.2, "high": 0.4, "p_value": 0.01, "p_adjusted": 0.2, "method": "bca"}
    read = world.read_interval(after)
    assert read.significant() == (False, "p_adjusted") and read.method == "bca"
    assert world.read_interval({"mean": None, "low": None, "high": None}).covers(0.5) is None
    flipped = world.flipped(world.read_interval(today), -1)
    assert (flipped.low, flipped.high, flipped.estimate) == (-math.inf, -0.3, -0.5)
    incidence = {"fixed_point": {"step": 12, "estimate": 0.4, "low": 0.3, "high": 0.5, "method": "jackknife"}}
    read, step = world.read_incidence({"incidence": incidence})
    assert (read.estimate, read.low, read.high, step) == (0.4, 0.3, 0.5, 12)
    assert world.read_incidence({}) is None


def test_fixed_point_rate_holds_its_level_at_3_starts_by_3_replicates(three_by_three: Any) -> None:
    """The 95% interval of the fixed-point rate (wilson-t over 3 starts) covers at least 93% (less 2.5 Monte Carlo
    errors). The percentile cluster bootstrap it replaced covered 68% here. The bound is one-sided on purpose:
    wilson-t over-covers at 3 starts (100% here, median width 0.86; docs/benchmarks/calibration.md), which is the
    price of its level with three clusters, and a regression to under-coverage is what this guards against."""
    metric = three_by_three["metrics"]["fixed_point_rate"]
    assert metric["methods"] == ["wilson-t"]
    low, _ = _band(metric, 0.93, 0.97)
    assert metric["rate"] >= low, metric


def test_the_subset_ran_through_the_analysis(three_by_three: Any) -> None:
    """Every repetition produced both groups' intervals (the harness read the schema it was given)."""
    metrics = three_by_three["metrics"]
    assert metrics["fixed_point_rate"]["defined"] == 2 * REPS
    assert metrics["fixed_point_rate"]["mean_estimate"] == pytest.approx(0.6, abs=0.03)
    assert metrics["ratio_permutation_null"]["defined"] == 2 * REPS
