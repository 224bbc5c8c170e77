"""A null model for drift: each group's drift against the ``rephrase`` drift of the same model and starts.

Runs of a ``drift_null`` protocol (``rephrase``: restate without changing the meaning) are controls. A run's
*drift* is the cosine distance from its start to its final constitution. For a group, the cells it shares with
the controls are the (model, start) pairs both have judged runs for (chain runs with a verdict); per cell, the
excess is the group's mean drift minus the controls' mean drift, and ``excess`` is the mean over cells with an
interval resampling starts. A positive excess means the group moved further than paraphrase alone would.

``suggested_epsilon`` is the 95th percentile of the controls' step-to-step distances (steps that changed the
text): a change smaller than that is what rewording alone looks like for these models.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    excess: Interval  # per cell: group mean drift − control mean drift; mean over cells
    suggested_epsilon: float | None


def _drift(run: RunConvergence) -> float:
    return run.steps[-1].d_origin


def paraphrase_null(subjects: Sequence[RunConvergence], controls: Sequence[RunConvergence], resamples: int,
                    seed: int) -> ParaphraseNull | None:
    """The comparison for one group's runs (``subjects``); None when no control shares a (model, start)."""
    mine: dict[tuple[str, str], list[float]] = {}
    theirs: dict[tuple[str, str], list[float]] = {}
    for run in subjects:
        if run.verdict in VERDICTS:
            mine.setdefault((run.model, run.start), []).append(_drift(run))
    for run in controls:
        if run.verdict in VERDICTS:
            theirs.setdefault((run.model, run.start), []).append(_drift(run))
    cells = sorted(set(mine) & set(theirs))
    if not cells:
        return None
    shared = set(cells)
    matched = [run for run in controls if run.verdict in VERDICTS and (run.model, run.start) in shared]
    by_start: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        by_start.setdefault(cell[1], []).append(i)
    clusters = list(by_start.values()) if len(by_start) >= 2 else [[i] for i in range(len(cells))]
    group = np.array([np.mean(mine[c]) for c in cells])
    control = np.array([np.mean(theirs[c]) for c in cells])

    steps = [s.d_prev for run in matched for s in run.steps if s.d_prev is not None and s.decision == "changed"]
    return ParaphraseNull(
        cells=len(cells), control_runs=len(matched),
        drift=cluster_interval(mean_of(group), clusters, resamples, seed),
        rephrase_drift=cluster_interval(mean_of(control), clusters, resamples, seed),
        excess=cluster_interval(mean_of(group - control), clusters, resamples, seed),
        suggested_epsilon=round(float(np.percentile(steps, 95)), 6) if steps else None)
