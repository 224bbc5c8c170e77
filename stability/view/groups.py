"""An experiment's analysis groups for the viewer: ``stability analyze EXPERIMENT --by FACTORS``, cached.

The analysis is the one ``stability analyze`` runs (:func:`stability.analysis.measure.analyze`), on a pinned copy
of the state the viewer reads, grouped by the experiment's varied factors (seed aside) unless the page names
others. Its result is kept per (experiment, factors, state read) and cut to the key figures a page shows; its
figures are the report's (:func:`stability.analysis.report.group_figures.figures`: the same code draws both).
"""

from __future__ import annotations

import threading
from typing import Any

from stability.analysis.contrasts import MEASURES, Contrast
from stability.analysis.factors import key_text
from stability.analysis.groups import GroupSummary
from stability.analysis.measure import AnalysisResult, analyze
from stability.analysis.summary_text import (
    contrast_cell,
    group_warnings,
    incidence_contrast_text,
    incidence_text,
    interval_text,
    median_text,
    ratio_text,
)
from stability.view.source import StoreSource

#: results kept at once (each may hold thousands of runs)
CACHED = 8


class GroupCache:
    def __init__(self, source: StoreSource, embedder: str) -> None:
        self.source = source
        self.embedder = embedder
        self._results: dict[tuple[str, tuple[str, ...], int], AnalysisResult] = {}
        self._lock = threading.Lock()  # one analysis at a time: each may take a while and much memory

    def result(self, experiment_id: str, by: list[str]) -> AnalysisResult:
        with self._lock:
            key = (experiment_id, tuple(by), self.source.refreshes)
            if key not in self._results:
                with self.source.pinned() as path:
                    result = analyze([experiment_id], path, by=by, embedder=self.embedder)
                if len(self._results) >= CACHED:
                    self._results.pop(next(iter(self._results)))
                self._results[(experiment_id, tuple(by), self.source.refreshes)] = result
                return result
            return self._results[key]

    def groups(self, experiment_id: str, by: list[str]) -> dict[str, Any]:
        result = self.result(experiment_id, by)
        return {"experiment": experiment_id, "by": result.by, "embedder": result.embeddings.model,
                "groups": [key_figures(i, g) for i, g in enumerate(result.groups)],
                "warnings": group_warnings(result), "adjust": result.adjust,
                "contrasts_total": result.contrasts_total,
                "contrasts": [{**c.model_dump(), "text": contrast_text(c)} for c in result.contrasts]}

    def figures(self, experiment_id: str, by: list[str]) -> dict[str, Any]:
        """The report's group figures for the groups :meth:`groups` lists, as inline SVG text."""
        from stability.analysis.report.group_figures import figures

        result = self.result(experiment_id, by)
        with self._lock:  # matplotlib's pyplot is not thread-safe
            drawn = figures(result)
        return {"experiment": experiment_id, "by": result.by,
                "figures": [{"name": name, "svg": svg} for name, svg in drawn]}

    def group_runs(self, experiment_id: str, by: list[str], index: int) -> list[str]:
        groups = self.result(experiment_id, by).groups
        return list(groups[index].run_ids) if 0 <= index < len(groups) else []


def contrast_text(contrast: Contrast) -> dict[str, str | None]:
    """A contrast's cells as the terminal and the report print them (:mod:`stability.analysis.summary_text`)."""
    return {"a": key_text(contrast.a), "b": key_text(contrast.b),
            "paired": f"yes ({contrast.shared_starts} starts)" if contrast.paired else "no",
            **{m: contrast_cell(getattr(contrast, m)) for m in MEASURES},
            "incidence": incidence_contrast_text(contrast)}


def key_figures(index: int, group: GroupSummary) -> dict[str, Any]:
    """The figures a page shows for a group: runs, starts and models, verdicts, rates with intervals (and their
    method), steps to a fixed point, the convergence ratio and its null range, attractors, the competing risks
    (``text.incidence``); ``text``: the cells
    as the terminal and the report print them."""
    started = group.fixed_point_rate_started
    return {"index": index, "key": group.key, "label": group.label, "runs": group.runs, "starts": group.starts,
            "models": group.models,
            "verdicts": group.verdicts, "fixed_point_rate": group.fixed_point_rate.model_dump(),
            "fixed_point_rate_started": started.model_dump() if started is not None else None,
            "text": {"fixed_point_rate": interval_text(group.fixed_point_rate),
                     "fixed_point_rate_started": interval_text(started), "cycle_rate": interval_text(group.cycle_rate),
                     "convergence_ratio": ratio_text(group.convergence_ratio, null_range=True),
                     "steps_to_fixed_point": median_text(group.steps_to_fixed_point),
                     "incidence": incidence_text(group.incidence)},
            "cycle_rate": group.cycle_rate.model_dump(),
            "steps_to_fixed_point": {k: getattr(group.steps_to_fixed_point, k) for k in ("median", "low", "high", "n")},
            "convergence_ratio": group.convergence_ratio.model_dump(),
            "attractors": len(group.attractors), "confirmed": group.confirmed, "probed": group.probed}
