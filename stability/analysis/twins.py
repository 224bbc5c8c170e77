"""Contradictory constitutions against their repaired twins, compared **paired**.

A contradictory library file names its repaired twin in its metadata (``twin: consistent/NAME-repaired.md``). A
run from the contradictory file is paired with the run from its twin that shares every other grid factor (model,
protocol, seed, sampling parameters, options), so the pair differs only by the repair.

Per pair: fixed point reached (contradictory − twin), steps to the fixed point (pairs where both reached one),
and at every step the cosine distance from the contradictory run's constitution to the twin's text (does the
model repair the clash the way the library did?). Intervals resample contradictory starting constitutions (each
with all its pairs); with one contradictory start, they resample pairs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.convergence import VERDICTS, Params, RunConvergence
from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.factors import constitution_name
from stability.analysis.stats import Interval, cluster_interval, mean_of


class TwinPair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contradictory_run: str
    twin_run: str
    contradictory: str  # the contradictory file (library-relative)
    twin: str
    fixed_point: list[bool]  # [contradictory, twin]
    steps_to_fixed_point: list[int | None]
    distance_to_twin: list[float]  # per usable step of the contradictory run: distance to the twin's text


class StepDistance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    distance: Interval  # mean over pairs still running at this step


class TwinComparison(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pairs: list[TwinPair]
    unpaired: list[str]  # contradictory runs with no twin run of the same factors (or no verdict on either side)
    fixed_point_difference: Interval  # contradictory − twin, share of pairs
    steps_difference: Interval  # contradictory − twin, over pairs where both reached a fixed point
    distance_to_twin: list[StepDistance]


def _pair_key(chain: RunChain) -> str:
    config = {k: v for k, v in chain.config.items() if k not in ("constitution", "use_cache")}
    return json.dumps({**config, "model": config.get("model", chain.model),
                       "protocol": config.get("protocol", chain.protocol)}, sort_keys=True, default=str)


def _is_file(path: str | None, relative: str) -> bool:
    if not path:
        return False
    return constitution_name(path) == relative or path.replace("\\", "/").endswith("/" + relative)


def compare_twins(corpus: Corpus, runs: Mapping[str, RunConvergence], node_vectors: Mapping[str, np.ndarray],
                  params: Params) -> TwinComparison:
    twins_of = {c.run_id: str((corpus.metadata.get(c.start) or {}).get("twin") or "") for c in corpus.runs}
    candidates = [c for c in corpus.runs if twins_of[c.run_id]]
    pairs: list[TwinPair] = []
    unpaired: list[str] = []
    used: set[str] = set()
    for chain in candidates:
        twin = twins_of[chain.run_id]
        match = next((c for c in corpus.runs if c.run_id not in used and _is_file(c.config.get("constitution"), twin)
                      and _pair_key(c) == _pair_key(chain)), None)
        mine = runs[chain.run_id]
        if match is None or mine.verdict not in VERDICTS or runs[match.run_id].verdict not in VERDICTS:
            unpaired.append(chain.run_id)
            continue
        used.add(match.run_id)
        theirs = runs[match.run_id]
        target = node_vectors[match.start]
        distances = [round(float(np.clip(1.0 - node_vectors[s.node] @ target, 0.0, 2.0)), 6) for s in mine.steps]
        pairs.append(TwinPair(
            contradictory_run=chain.run_id, twin_run=match.run_id,
            contradictory=constitution_name(chain.config.get("constitution")), twin=twin,
            fixed_point=[mine.fixed_point is not None, theirs.fixed_point is not None],
            steps_to_fixed_point=[mine.fixed_point.step if mine.fixed_point else None,
                                  theirs.fixed_point.step if theirs.fixed_point else None],
            distance_to_twin=distances))
    return _summarise(pairs, unpaired, params)


def _clusters(pairs: Sequence[TwinPair], members: list[int]) -> list[list[int]]:
    by_start: dict[str, list[int]] = {}
    for i in members:
        by_start.setdefault(pairs[i].contradictory, []).append(i)
    return list(by_start.values()) if len(by_start) >= 2 else [[i] for i in members]


def _summarise(pairs: list[TwinPair], unpaired: list[str], params: Params) -> TwinComparison:
    b, seed = params.bootstrap, params.seed
    reached = np.array([float(p.fixed_point[0]) - float(p.fixed_point[1]) for p in pairs])
    both = [i for i, p in enumerate(pairs) if None not in p.steps_to_fixed_point]
    steps = np.zeros(len(pairs))
    for i in both:
        a, t = pairs[i].steps_to_fixed_point
        assert a is not None and t is not None
        steps[i] = a - t

    per_step: list[StepDistance] = []
    longest = max((len(p.distance_to_twin) for p in pairs), default=0)
    for t in range(longest):
        alive = [i for i, p in enumerate(pairs) if len(p.distance_to_twin) > t]
        values = np.zeros(len(pairs))
        for i in alive:
            values[i] = pairs[i].distance_to_twin[t]
        per_step.append(StepDistance(step=t, distance=cluster_interval(mean_of(values), _clusters(pairs, alive),
                                                                       b, seed)))
    everyone = list(range(len(pairs)))
    return TwinComparison(
        pairs=pairs, unpaired=unpaired,
        fixed_point_difference=cluster_interval(mean_of(reached), _clusters(pairs, everyone), b, seed),
        steps_difference=cluster_interval(mean_of(steps), _clusters(pairs, both), b, seed),
        distance_to_twin=per_step)
