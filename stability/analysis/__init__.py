"""Analysis: embeddings, principle alignment, convergence, attractors, consistency, the graph and the report.

Analysis reads the store and never a language model; the only model it runs is the embedding model.
Names are imported lazily, so ``import stability`` does not pull in scipy or torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AnalysisResult", "Params", "analyze"]


def __getattr__(name: str) -> Any:
    if name in ("AnalysisResult", "analyze"):
        from stability.analysis import measure as module

        return getattr(module, name)
    if name == "Params":
        from stability.analysis.convergence import Params

        return Params
    raise AttributeError(name)
