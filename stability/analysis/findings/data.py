"""What every question module reads: the selection's runs, measured once (:class:`FindingsData`).

``load_data`` resolves the selection (experiments or runs), embeds what the embedding cache lacks and measures the
runs once (:func:`stability.analysis.measure.measure`); each question module then reads the measured runs, their
vectors and the shared measures (twins, clashes, attractors) without touching the store or a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from stability.analysis.convergence import VERDICTS, Params, RunConvergence
from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.embeddings import DEFAULT_MODEL, Embedder
from stability.analysis.measure import AnalysisResult, Vectors
from stability.records import RatingRecord

if TYPE_CHECKING:
    from stability.analysis.judged import StoredJudgements

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class FindingsData:
    """The selection, measured: ``corpus`` (every analysed run), ``vectors`` (nodes, principles, references),
    ``result`` (every measure of ``analyze`` over the runs, ungrouped), ``ratings`` (rate-alternatives trials),
    ``experiments`` (each run's experiment id), ``judgements`` (the ``--judge``'s stored verdicts, else None) and
    ``db`` (the store, for what only some questions read: the fine-tune generations)."""

    corpus: Corpus
    vectors: Vectors
    result: AnalysisResult
    ratings: list[RatingRecord] = field(default_factory=list)
    experiments: dict[str, str] = field(default_factory=dict)
    params: Params = field(default_factory=Params)
    db: str | None = None
    judgements: StoredJudgements | None = None

    @cached_property
    def measured(self) -> dict[str, RunConvergence]:
        """Each run's measures, by run id."""
        return {r.run_id: r for r in self.result.runs}

    @cached_property
    def subjects(self) -> list[RunChain]:
        """The analysed runs that are not drift-null controls (``rephrase``)."""
        return [c for c in self.corpus.runs if not c.control]

    def judged(self) -> list[RunChain]:
        """Subject chain runs with a verdict (fixed point, cycle or unsettled): the runs that have a final."""
        return [c for c in self.subjects if self.measured[c.run_id].verdict in VERDICTS]


def load_data(selection: list[str], db: Path | str | None, all_runs: bool = False,
              embedder: Embedder | str = DEFAULT_MODEL, references: list[Path | str] | None = None,
              judge: str | None = None, params: Params | None = None, progress: Progress = _quiet) -> FindingsData:
    """Load, embed and measure the selection once, for every question."""
    from stability.analysis.judged import load_judgements
    from stability.analysis.measure import load, measure

    progress("loading and embedding the runs")
    corpus, vectors, use, ratings, experiments, _ = load(selection, db, all_runs, embedder, references=references)
    judgements = load_judgements(db, judge, corpus) if judge else None
    progress(f"measuring {len(corpus.runs)} runs")
    params = params or Params()
    result = measure(corpus, vectors, params, use, ratings, [], experiments, judgements)
    return FindingsData(corpus=corpus, vectors=vectors, result=result, ratings=ratings, experiments=experiments,
                        params=params, db=None if db is None else str(db), judgements=judgements)
