"""A null model for drift: each group's drift against the ``rephrase`` drift of the same model and starts.

Runs of a ``drift_null`` protocol (``rephrase``: restate without changing the meaning) are controls. A run's
*drift* is the cosine distance from its start to its final constitution. For a group, the cells it shares with
the controls are the (model, start) pairs both have judged runs for (chain runs with a verdict).

*Matched on steps*: a subject that stopped at step T is set against the controls' drift at step T (the distance
from the start to the control's constitution at its last step <= T), not at the controls' own end (controls run
to the step cap, subjects often stop early, and drift grows with steps). Per cell, the control drift is the mean
over the cell's controls and its subjects' stopping steps; the excess is the group's mean drift minus that, and
``excess`` is the mean over cells with an interval resampling starts. A positive excess means the group moved
further than paraphrase alone would in the same number of steps.

``suggested_epsilon`` is the 95th percentile of the controls' step-to-step distances on steps that changed the
text, up to the last step a subject of the cell reached: a change smaller than that is what rewording alone looks
like for these models. It is a candidate ``--epsilon`` only if it stays below the distance of a negation: used as
ε, anything larger would call a flip of one principle into its opposite "no change". ``negation_distance`` is
the smallest distance between a start of the group's cells with one side of a planted direct-negation pair of
the library appended and the same start with the other side appended (a flip of one principle, at the start's
own size); where the percentile is not below it, ``suggested_epsilon`` is None and ``epsilon_note`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.convergence import VERDICTS, RunConvergence
from stability.analysis.stats import Interval, cluster_interval, mean_of


class ParaphraseNull(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cells: int  # (model, start) pairs with judged runs in both the group and the controls
    control_runs: int
    drift: Interval  # the group's runs in those cells: distance start -> final
    rephrase_drift: Interval  # the controls in those cells
    excess: Interval  # per cell: group mean drift − control mean drift at the same steps; mean over cells
    suggested_epsilon: float | None  # None: no changed control step, or not below ``negation_distance``
    rephrase_step_p95: float | None = None  # the 95th percentile of the controls' changed-step distances
    negation_distance: float | None = None  # a flipped planted negation in the cells' starts (the smallest)
    epsilon_note: str | None = None  # why there is no suggestion, or what bounds it


def _drift(run: RunConvergence) -> float:
    return run.steps[-1].d_origin


def _last_step(run: RunConvergence) -> int:
    return run.steps[-1].step


def _drift_at(run: RunConvergence, step: int) -> float:
    """Distance from the start to the constitution the run held at ``step`` (its last visit at or before it)."""
    held = run.steps[0].d_origin
    for s in run.steps:
        if s.step > step:
            break
        held = s.d_origin
    return held


def paraphrase_null(subjects: Sequence[RunConvergence], controls: Sequence[RunConvergence], resamples: int,
                    seed: int) -> ParaphraseNull | None:
    """The comparison for one group's runs (``subjects``); None when no control shares a (model, start)."""
    mine: dict[tuple[str, str], list[RunConvergence]] = {}
    theirs: dict[tuple[str, str], list[RunConvergence]] = {}
    for run in subjects:
        if run.verdict in VERDICTS:
            mine.setdefault((run.model, run.start), []).append(run)
    for run in controls:
        if run.verdict in VERDICTS:
            theirs.setdefault((run.model, run.start), []).append(run)
    cells = sorted(set(mine) & set(theirs))
    if not cells:
        return None
    by_start: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        by_start.setdefault(cell[1], []).append(i)
    clusters = list(by_start.values()) if len(by_start) >= 2 else [[i] for i in range(len(cells))]
    group = np.array([np.mean([_drift(r) for r in mine[c]]) for c in cells])
    control = np.array([np.mean([_drift_at(r, _last_step(s)) for r in theirs[c] for s in mine[c]]) for c in cells])
    steps = [s.d_prev for c in cells for run in theirs[c]
             for s in run.steps if s.d_prev is not None and s.decision == "changed"
             and s.step <= max(_last_step(m) for m in mine[c])]
    p95 = round(float(np.percentile(steps, 95)), 6) if steps else None
    return ParaphraseNull(
        cells=len(cells), control_runs=sum(len(theirs[c]) for c in cells),
        drift=cluster_interval(mean_of(group), clusters, resamples, seed),
        rephrase_drift=cluster_interval(mean_of(control), clusters, resamples, seed),
        excess=cluster_interval(mean_of(group - control), clusters, resamples, seed),
        suggested_epsilon=p95, rephrase_step_p95=p95,
        epsilon_note=None if steps else "no control step changed the text")


def negation_distance(starts: Sequence[Sequence[str]], pairs: Sequence[tuple[str, str]],
                      principle_vectors: Mapping[str, np.ndarray]) -> float | None:
    """The smallest distance between start + [a] and start + [b] over ``starts`` (each a list of principles) and
    planted negation ``pairs`` (a, b): a flip of one principle into its opposite, at each start's own size."""
    pairs = [(a, b) for a, b in pairs if a in principle_vectors and b in principle_vectors]
    if not pairs or not starts:
        return None
    best = np.inf
    for principles in starts:
        total = np.sum([principle_vectors[p] for p in principles], axis=0) if principles else 0.0
        for a, b in pairs:
            x = total + principle_vectors[a]
            y = total + principle_vectors[b]
            cos = float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
            best = min(best, max(0.0, 1.0 - cos))
    return round(float(best), 6)


def bound_by_negation(null: ParaphraseNull, distance: float | None) -> ParaphraseNull:
    """``null`` with its ε suggestion kept only below ``distance`` (the negation distance of its starts)."""
    if null.rephrase_step_p95 is None:
        return null
    if distance is None:
        return null.model_copy(update={"epsilon_note": "not checked against a negation: no planted negation pair"})
    if null.rephrase_step_p95 >= distance:
        return null.model_copy(update={
            "suggested_epsilon": None, "negation_distance": distance,
            "epsilon_note": f"no suggestion: the rephrase steps' 95th percentile ({null.rephrase_step_p95}) is not "
                            f"below the distance of a negated principle ({distance}); as ε it would hide flips"})
    return null.model_copy(update={"negation_distance": distance, "epsilon_note": None})


def library_negations() -> list[tuple[str, str]]:
    """The library's planted direct-negation pairs (principle a, principle b) of its contradictory files; a file
    that does not load is skipped (``stability constitutions check`` reports it)."""
    from stability.library import ContradictoryMeta, library_problems

    pairs = []
    entries, _ = library_problems()
    for entry in entries:
        if isinstance(entry.metadata, ContradictoryMeta):
            for clash in entry.metadata.clashes:
                if clash.kind == "direct-negation" and max(clash.a, clash.b) <= len(entry.principles):
                    pairs.append((entry.principles[clash.a - 1], entry.principles[clash.b - 1]))
    return list(dict.fromkeys(pairs))
