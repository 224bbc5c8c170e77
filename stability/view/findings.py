"""An experiment's findings for the viewer (``stability findings EXPERIMENT``), cached, with the report's figures.

The findings are computed as the command computes them (:func:`stability.analysis.findings.data.load_data`, then
:func:`~stability.analysis.findings.assemble.assemble`) on a pinned copy of the state the viewer reads, kept per
(experiment, state read). The figures are the report's (:mod:`stability.analysis.report.finding_figures`), sent as
``data:`` SVG images, which the page's content policy allows and which run no script.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

from stability.analysis.findings.assemble import assemble
from stability.analysis.findings.data import load_data
from stability.analysis.findings.record import Findings
from stability.analysis.report.finding_figures import HEADERS, questions
from stability.view.source import StoreSource

CACHED = 4


class FindingsCache:
    def __init__(self, source: StoreSource, embedder: str, lock: threading.Lock | None = None) -> None:
        """``lock``: the one the analysis groups take, so one analysis runs at a time (two at once would both
        write the embedding cache)."""
        self.source = source
        self.embedder = embedder
        self._results: dict[tuple[str, int], Findings] = {}
        self._lock = lock or threading.Lock()

    def result(self, experiment_id: str) -> Findings:
        with self._lock:
            key = (experiment_id, self.source.refreshes)
            if key not in self._results:
                with self.source.pinned() as path:
                    found = assemble(load_data([experiment_id], path, embedder=self.embedder))
                if len(self._results) >= CACHED:
                    self._results.pop(next(iter(self._results)))
                self._results[key] = found
            return self._results[key]

    def page(self, experiment_id: str) -> dict[str, Any]:
        """Per answered question: title, figures (``data:`` URLs), rows; then what cannot be answered and why."""
        result = self.result(experiment_id)
        return {"experiment": experiment_id, "adjust": result.adjust, "headers": HEADERS,
                "questions": [{**q, "figures": [svg_url(svg) for svg in q["figures"]]} for q in questions(result)],
                "unanswerable": [u.model_dump() for u in result.unanswerable]}


def svg_url(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
