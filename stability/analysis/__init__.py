"""Analysis: embeddings, principle alignment, convergence, attractors, consistency, the graph and the report.

Analysis reads the store and never a language model; the only model it runs is the embedding model.
"""

from stability.analysis.analyze import AnalysisResult, analyze
from stability.analysis.convergence import Params

__all__ = ["AnalysisResult", "Params", "analyze"]
