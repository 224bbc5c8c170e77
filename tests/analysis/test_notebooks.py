from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from stability.analysis import analyze
from stability.analysis.embeddings import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["convergence.ipynb", "consistency.ipynb"])
def test_notebook_runs_top_to_bottom(name: str, experiment_copy: Path, minilm: SentenceTransformerEmbedder,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Fill the cache with the real model here, so the kernel finds every vector and never loads the model.
    analyze([], experiment_copy, all_runs=True, embedder=minilm)
    monkeypatch.setenv("STABILITY_DB", str(experiment_copy))
    notebook = nbformat.read(ROOT / "analysis" / name, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "9 runs" in text and ", 0 embedded now" in text
    if name == "consistency.ipynb":
        assert "resolved fraction" in text
    else:
        assert "convergence ratio" in text and "meet in node" in text
