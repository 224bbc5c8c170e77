"""Distance at every step to named reference constitutions (``--reference FILE``).

"Do runs move toward a Claude-like constitution?": each reference file is embedded like any constitution (its
normalised principles), and every usable step of every run gets its cosine distance to it. Per group, over the
judged runs (chain runs with a verdict): the distance of the starts, of the finals, and the change (final −
start; negative means the runs moved toward the reference), each with a 95% interval resampling starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.factors import constitution_name
from stability.analysis.stats import Interval, cluster_interval, mean_of
from stability.constitution import parse_file


class ReferenceDrift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str
    start: Interval  # mean distance of the starting constitutions to the reference
    final: Interval
    change: Interval  # final − start, per run


def read_references(paths: Sequence[Path | str]) -> dict[str, tuple[str, ...]]:
    """Reference name (library-relative path, else file name) -> its normalised principles (embedded like a
    node's)."""
    return {constitution_name(str(path)): parse_file(path).principles for path in paths}


def step_distances(nodes: Sequence[str], node_vectors: Mapping[str, np.ndarray],
                   references: Mapping[str, np.ndarray]) -> dict[str, list[float]]:
    if not references:
        return {}
    vectors = np.stack([node_vectors[n] for n in nodes])
    return {name: np.round(np.clip(1.0 - vectors @ ref, 0.0, 2.0).astype(float), 6).tolist()
            for name, ref in references.items()}


def drift(distances: Sequence[Mapping[str, list[float]]], clusters: Sequence[Sequence[int]], resamples: int,
          seed: int) -> list[ReferenceDrift]:
    """Per reference: start, final and change over the runs ``distances`` (indexed by the cluster members)."""
    names = list(dict.fromkeys(name for d in distances for name in d))
    out = []
    for name in names:
        start = np.array([d[name][0] if d.get(name) else np.nan for d in distances])
        final = np.array([d[name][-1] if d.get(name) else np.nan for d in distances])

        out.append(ReferenceDrift(reference=name, start=cluster_interval(mean_of(start), clusters, resamples, seed),
                                  final=cluster_interval(mean_of(final), clusters, resamples, seed),
                                  change=cluster_interval(mean_of(final - start), clusters, resamples, seed)))
    return out
