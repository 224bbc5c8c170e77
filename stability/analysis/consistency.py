"""Consistent against contradictory constitutions: are planted clashes resolved, and at what cost?

A run is *contradictory* when its starting constitution's metadata (front matter, stored in
``constitution_sources``) lists ``clashes: [{a, b, kind}]`` (1-based principle numbers), and *consistent* when
its metadata says ``condition: consistent`` (or has metadata but no clashes). Runs with no metadata are left out.

Each side of a clash is followed through the run by aligning every step's principles with the previous step's
(:mod:`stability.analysis.alignment`): a side lives on while it is kept, moved or reworded, and dies when it
is removed (and lives again if its original text comes back word for word). The rule that judges a clash
at a step (no model is asked):

- ``removed``: at least one side has been removed. Resolved.
- ``reworded``: both sides survive and both have been reworded away from their original text. Resolved.
- ``partly_reworded``: both survive and exactly one has been reworded. Counted as unresolved: the rule cannot
  tell whether the new wording still clashes; a judge model can (``analyze --judge``, docs/analysis.md).
- ``in_place``: both sides survive with their original text. Unresolved.

A clash is resolved at the first step from which it stays resolved to the end of the run; ``edits`` counts the
steps that changed the constitution up to that step. Confidence intervals are percentile bootstraps resampling
starting constitutions (runs, where a condition has a single start).
Only chain runs with a verdict are measured; runs without one are counted per condition (``no_verdict``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.alignment import align
from stability.analysis.convergence import VERDICTS, Params, RunConvergence
from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.stats import Interval, bootstrap, difference, mean_of, rate

RESOLVED = ("removed", "reworded")


class ClashOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    a: int  # 1-based, in the starting constitution
    b: int
    kind: str
    a_text: str
    b_text: str
    final_a_text: str | None  # None: removed
    final_b_text: str | None
    status: str  # removed | reworded | partly_reworded | in_place
    resolved: bool
    resolved_step: int | None
    edits: int | None  # steps that changed the constitution up to resolved_step
    source: str = "rule"  # rule, or judge:MODEL when a judge's stored verdicts decided it (analyze --judge)
    rule_resolved: bool | None = None  # with a judge: what the rule said
    how: str | None = None  # with a judge: removed | reconciled | prioritised | scoped


class ConditionSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    condition: str
    runs: int  # runs with a verdict
    no_verdict: int = 0  # runs of the condition that ended on a failed step (left out of the rest)
    reached_fixed_point: Interval  # fraction of runs
    steps_to_fixed_point: Interval  # over runs that reached one


class Consistency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    clashes: list[ClashOutcome]
    resolved_fraction: Interval  # over clashes, resampling runs
    edits_to_resolve: Interval  # over resolved clashes, resampling runs
    conditions: list[ConditionSummary]
    steps_difference: Interval  # contradictory minus consistent, mean steps to fixed point
    skipped: list[str]  # clashes whose metadata does not fit the constitution


RULE = ("alignment-tracked sides; resolved if a side was removed, or both sides were reworded "
        "(one side reworded counts as unresolved)")


def condition_of(metadata: Mapping[str, object] | None) -> str | None:
    if not metadata:
        return None
    if metadata.get("clashes"):
        return "contradictory"
    named = metadata.get("condition")
    return str(named) if named else "consistent"


def _status(alive_a: bool, alive_b: bool, changed_a: bool, changed_b: bool) -> str:
    if not (alive_a and alive_b):
        return "removed"
    if changed_a and changed_b:
        return "reworded"
    return "partly_reworded" if changed_a or changed_b else "in_place"


def track_clashes(chain: RunChain, corpus: Corpus, vectors: Mapping[str, np.ndarray], params: Params,
                  skipped: list[str]) -> list[ClashOutcome]:
    metadata = corpus.metadata.get(chain.start) or {}
    clashes = metadata.get("clashes") or []
    visits = chain.usable
    start = corpus.principles[chain.start]
    # successor maps for each transition between distinct nodes
    successors: list[dict[int, int] | None] = [None]
    for previous, visit in zip(visits, visits[1:], strict=False):
        successors.append(None if previous.node == visit.node else
                          align(corpus.principles[previous.node], corpus.principles[visit.node], vectors,
                                params.reworded_threshold).successor())
    out = []
    for clash in clashes:
        try:
            a, b, kind = int(clash["a"]), int(clash["b"]), str(clash.get("kind", ""))
        except (KeyError, TypeError, ValueError):
            skipped.append(f"{chain.run_id}: clash {clash!r} is not {{a, b, kind}}")
            continue
        if not (1 <= a <= len(start) and 1 <= b <= len(start)) or a == b:
            skipped.append(f"{chain.run_id}: clash {a}-{b} does not fit {len(start)} principles")
            continue
        positions: list[int | None] = [a - 1, b - 1]
        statuses = []
        edits_at = []
        edits = 0
        for i, visit in enumerate(visits):
            if i and successors[i] is not None:
                mapping = successors[i]
                assert mapping is not None
                positions = [mapping.get(p) if p is not None else None for p in positions]
                edits += 1
            current = corpus.principles[visit.node]
            for side, original in enumerate((start[a - 1], start[b - 1])):
                if positions[side] is None and original in current:  # re-added word for word: alive again
                    positions[side] = current.index(original)
            texts = [corpus.principles[visit.node][p] if p is not None else None for p in positions]
            statuses.append(_status(texts[0] is not None, texts[1] is not None,
                                    texts[0] not in (None, start[a - 1]), texts[1] not in (None, start[b - 1])))
            edits_at.append(edits)
        final_texts = [corpus.principles[visits[-1].node][p] if p is not None else None for p in positions]
        resolved_index = None
        for i in range(len(statuses) - 1, -1, -1):
            if statuses[i] not in RESOLVED:
                break
            resolved_index = i
        out.append(ClashOutcome(
            run_id=chain.run_id, a=a, b=b, kind=kind, a_text=start[a - 1], b_text=start[b - 1],
            final_a_text=final_texts[0], final_b_text=final_texts[1], status=statuses[-1],
            resolved=resolved_index is not None,
            resolved_step=visits[resolved_index].step if resolved_index is not None else None,
            edits=edits_at[resolved_index] if resolved_index is not None else None))
    return out


def by_start(entries: Sequence[tuple[str, Sequence[float]]]) -> list[list[float]]:
    """Values clustered by starting constitution (the bootstrap resamples starts); with a single start, one
    cluster per run, so the interval covers replicate noise only."""
    if len({start for start, _ in entries}) < 2:
        return [list(values) for _, values in entries]
    clusters: dict[str, list[float]] = {}
    for start, values in entries:
        clusters.setdefault(start, []).extend(values)
    return list(clusters.values())


def _difference(a: list[list[float]], b: list[list[float]], resamples: int, seed: int) -> Interval:
    """mean(a) − mean(b) over clustered values, each side's clusters resampled independently."""
    flat_a, flat_b = [x for c in a for x in c], [x for c in b for x in c]
    values = np.array(flat_a + flat_b)
    index_a: list[list[int]] = []
    index_b: list[list[int]] = []
    at = 0
    for clusters, out in ((a, index_a), (b, index_b)):
        for c in clusters:
            if c:
                out.append(list(range(at, at + len(c))))
                at += len(c)
    return difference(mean_of(values), index_a, mean_of(values), index_b, resamples, seed)


#: replaces a run's clash outcomes (``analyze --judge``: :func:`stability.analysis.judged.rejudge_clashes`)
Rejudge = Callable[[RunChain, list[ClashOutcome]], list[ClashOutcome]]


def consistency(corpus: Corpus, convergence: Mapping[str, RunConvergence], vectors: Mapping[str, np.ndarray],
                params: Params, rejudge: Rejudge | None = None) -> Consistency:
    skipped: list[str] = []
    per_run: dict[str, list[ClashOutcome]] = {}
    steps: dict[str, list[tuple[str, list[float]]]] = {}
    reached: dict[str, list[tuple[str, list[float]]]] = {}
    failed: dict[str, int] = {}
    starts: dict[str, str] = {}
    for chain in corpus.runs:
        condition = condition_of(corpus.metadata.get(chain.start))
        verdict = convergence[chain.run_id].verdict
        if condition is None or verdict == "not_chain":
            continue
        if verdict not in VERDICTS:
            failed[condition] = failed.get(condition, 0) + 1
            reached.setdefault(condition, [])
            continue
        point = convergence[chain.run_id].fixed_point
        reached.setdefault(condition, []).append((chain.start, [1.0 if point else 0.0]))
        if point is not None:
            steps.setdefault(condition, []).append((chain.start, [float(point.step)]))
        if condition == "contradictory":
            per_run[chain.run_id] = track_clashes(chain, corpus, vectors, params, skipped)
            if rejudge is not None:
                per_run[chain.run_id] = rejudge(chain, per_run[chain.run_id])
            starts[chain.run_id] = chain.start
    b, seed = params.bootstrap, params.seed
    conditions = [ConditionSummary(condition=c, runs=len(reached[c]), no_verdict=failed.get(c, 0),
                                   reached_fixed_point=rate(by_start(reached[c])),
                                   steps_to_fixed_point=bootstrap(by_start(steps.get(c, [])), b, seed))
                  for c in sorted(reached)]
    outcomes = [o for run in per_run.values() for o in run]
    return Consistency(
        rule=RULE, clashes=outcomes,
        resolved_fraction=rate(by_start([(starts[r], [float(o.resolved) for o in run])
                                         for r, run in per_run.items()])),
        edits_to_resolve=bootstrap(by_start([(starts[r], [float(o.edits) for o in run if o.edits is not None])
                                             for r, run in per_run.items()]), b, seed),
        conditions=conditions,
        steps_difference=_difference(by_start(steps.get("contradictory", [])), by_start(steps.get("consistent", [])),
                                     b, seed),
        skipped=skipped)
