from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from stability.analysis.embeddings import SentenceTransformerEmbedder
from tests.analysis import experiment, grid


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    """The real all-MiniLM-L6-v2, loaded once for the session."""
    embedder = SentenceTransformerEmbedder()
    embedder.encode(["warm up"])
    return embedder


@pytest.fixture(scope="session")
def experiment_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scripted-model experiment over the constitution library (see tests/analysis/experiment.py).

    Read-only for tests: copy it (``experiment_copy``) before anything writes to it."""
    folder = tmp_path_factory.mktemp("experiment")
    db = folder / "experiment.duckdb"
    experiment.build(db, folder)
    return db


@pytest.fixture
def experiment_copy(experiment_db: Path, tmp_path: Path) -> Iterator[Path]:
    experiment.register()
    target = tmp_path / "copy.duckdb"
    shutil.copy(experiment_db, target)
    yield target


@pytest.fixture(scope="session")
def grid_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two scripted-model experiments with known grouped answers (see tests/analysis/grid.py). Read-only for tests."""
    folder = tmp_path_factory.mktemp("grid")
    db = folder / "grid.duckdb"
    grid.build(db, folder)
    return db
