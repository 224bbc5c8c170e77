"""``stability.load(db)`` (or ``stability.open``): a database as DataFrames and a networkx graph, for notebooks.

Every method opens the file read-only for as long as it reads, so a notebook never holds a lock that would
stop a run from writing (while a run writes, it reads the run's latest snapshot). ``analyze`` writes the
embeddings it computes to the embedding cache, a file of its own, never to the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from stability.analysis.graph import build_graph
from stability.store.store import Store, default_db_path

if TYPE_CHECKING:
    from stability.analysis.convergence import Params
    from stability.analysis.embeddings import Embedder
    from stability.analysis.experiments import ExperimentSummary
    from stability.analysis.measure import AnalysisResult


class Dataset:
    def __init__(self, db: Path | str | None = None) -> None:
        self.db = str(db if db is not None else default_db_path())
        with Store.open(self.db, read_only=True):
            pass  # fail now, with the store's one-line message, if the file is missing or locked

    def __repr__(self) -> str:
        return f"Dataset({self.db!r})"

    def _frame(self, table: str, run_ids: list[str] | None) -> Any:
        with Store.open(self.db, read_only=True) as store:
            return store.frame(table, run_ids)

    def runs(self) -> Any:
        return self._frame("runs", None)

    def run_ids(self) -> list[str]:
        with Store.open(self.db, read_only=True) as store:
            return store.run_ids()

    def revisions(self, run_ids: list[str] | None = None) -> Any:
        return self._frame("revisions", run_ids)

    def edges(self, run_ids: list[str] | None = None) -> Any:
        return self._frame("edges", run_ids)

    def calls(self, run_ids: list[str] | None = None) -> Any:
        return self._frame("calls", run_ids)

    def constitutions(self, run_ids: list[str] | None = None) -> Any:
        return self._frame("constitutions", run_ids)

    def principles(self, run_ids: list[str] | None = None) -> Any:
        return self._frame("principles", run_ids)

    def sources(self, run_ids: list[str] | None = None) -> Any:
        return self._frame("constitution_sources", run_ids)

    def embeddings(self, model: str | None = None) -> Any:
        """Cached vectors (the shared embedding cache): one row per (text_hash, model), with ``vector`` as a
        float32 numpy array."""
        from stability.analysis.embeddings import EmbeddingCache

        return EmbeddingCache().frame(model)

    def experiments(self) -> list[ExperimentSummary]:
        """Every experiment: spec name, factors, cells and their states (as ``stability experiments --json``)."""
        from stability.analysis.experiments import list_experiments

        return list_experiments(self.db)

    def experiment_runs(self, experiment: str) -> list[str]:
        """The run ids of an experiment (name, id or unique id prefix)."""
        with Store.open(self.db, read_only=True) as store:
            return self._runs(store, [experiment])

    def graph(self, run_ids: list[str] | None = None) -> nx.MultiDiGraph:
        """The revision graph of the selection (experiment names or ids and run ids; None: every run)."""
        with Store.open(self.db, read_only=True) as store:
            return build_graph(store, run_ids and self._runs(store, run_ids) or store.run_ids())

    @staticmethod
    def _runs(store: Store, selection: list[str]) -> list[str]:
        from stability.analysis.experiments import resolve_selection

        return resolve_selection(store, selection, False)[0]

    def analyze(self, run_ids: list[str] | None = None, params: Params | None = None,
                embedder: Embedder | str = "all-MiniLM-L6-v2", by: list[str] | None = None) -> AnalysisResult:
        """Every measure over the selection (experiment names or ids and run ids; None: every run), by ``by``."""
        from stability.analysis.measure import analyze

        return analyze(run_ids or [], self.db, all_runs=run_ids is None, params=params, embedder=embedder, by=by)


def open_dataset(db: Path | str | None = None) -> Dataset:
    return Dataset(db)
