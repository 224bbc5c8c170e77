from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from stability.analysis import analyze
from stability.analysis.embeddings import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("name", "experiment", "runs"), [("convergence.ipynb", "grid", 18),
                                                          ("consistency.ipynb", "grid-twins", 4)])
def test_notebook_runs_top_to_bottom_on_an_experiment(name: str, experiment: str, runs: int, grid_db: Path,
                                                      tmp_path: Path, minilm: SentenceTransformerEmbedder,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "grid.duckdb"
    shutil.copy(grid_db, db)
    # Fill the cache with the real model here, so the kernel finds every vector and never loads the model.
    analyze([], db, all_runs=True, embedder=minilm)
    monkeypatch.setenv("STABILITY_DB", str(db))
    monkeypatch.setenv("STABILITY_EXPERIMENT", experiment)
    monkeypatch.setenv("STABILITY_BY", "model")
    notebook = nbformat.read(ROOT / "analysis" / name, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"{runs} runs" in text and ", 0 embedded now" in text
    assert "experiment grid-" in text
    if name == "consistency.ipynb":
        assert "resolved fraction" in text and "2 pairs with the repaired twin" in text
    else:
        assert "convergence ratio" in text and "meet in node" in text and "groups by model" in text
