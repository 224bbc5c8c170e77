"""Question 4: similar vs dissimilar starts — do runs end in the same place?

Groups are the starting files' ``similarity`` metadata (``close``, ``dissimilar``; one group ``all starts`` when no
start carries it). Only provided starts take part (a blank-slate start is question 6's). Per group:

- ``convergence_ratio``: the between-start convergence ratio of :mod:`stability.analysis.between_starts` (pairs of
  runs from different starts; 1 when every run stays where it started, 0 when all end at one text), with its
  delete-one-start jackknife-t interval; groups contrasted by ``ratio_contrast``.
- ``one_attractor_share``: the share of pairs of runs from different starts whose finals fall in one attractor
  (the finals of every analysed run clustered together, as ``analyze``), with a delete-one-start jackknife-t
  interval (clusters: starts); groups contrasted the same way.
- ``final_distance_to_reference``: per ``--reference``, the mean distance of the finals, with a percentile
  interval over start resamples.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from stability.analysis.between_starts import group_ratio
from stability.analysis.contrasts import ratio_contrast
from stability.analysis.findings.common import (
    LabelBlocks,
    VectorBlocks,
    by_start,
    contrast_estimate,
    group_estimate,
    labels_of,
    one_cluster_share,
    starts_blank,
)
from stability.analysis.findings.data import FindingsData
from stability.analysis.findings.record import Finding, GroupEstimate, Question, Unanswerable
from stability.analysis.stats import cluster_interval, mean_of

QUESTION: Question = "similar-vs-dissimilar-starts"


def _group(value: Any) -> dict[str, Any]:
    return {"similarity": value}


def answer(data: FindingsData) -> list[Finding] | Unanswerable:
    chains = [c for c in data.judged() if not starts_blank(c)]
    starts = [c.start for c in chains]
    if len(set(starts)) < 2:
        return Unanswerable(question=QUESTION, reason="one start: no between-start convergence" if chains else
                            "no judged runs from provided starts")
    labelled = {s: (data.corpus.metadata.get(s) or {}).get("similarity") for s in set(starts)}
    named = any(v is not None for v in labelled.values())
    group_of = [str(labelled[s] or "unlabelled") if named else "all starts" for s in starts]
    names = sorted(set(group_of))
    members = {g: [i for i, x in enumerate(group_of) if x == g] for g in names}

    vectors = data.vectors.nodes
    distances = VectorBlocks(np.stack([vectors[c.start] for c in chains]),
                             np.stack([vectors[c.final] for c in chains]), starts)
    labels = labels_of(data, chains)
    pairs = LabelBlocks(labels, starts)

    ratios: list[GroupEstimate] = []
    shares: list[GroupEstimate] = []
    for g in names:
        idx = members[g]
        r = group_ratio(distances, by_start(idx, starts), by_start(idx, starts), len(idx), 0, data.params.seed)
        ratios.append(GroupEstimate(group=_group(g), estimate=r.mean, low=r.low, high=r.high, n=r.n,
                                    clusters=r.starts, method=r.method, note=r.note))
        shares.append(GroupEstimate(group=_group(g), **one_cluster_share(labels, starts, idx).model_dump()))
    out = [Finding(question=QUESTION, measure="convergence_ratio", groups=ratios),
           Finding(question=QUESTION, measure="one_attractor_share", groups=shares)]
    for a, b in itertools.combinations(names, 2):
        ma, mb = by_start(members[a], starts), by_start(members[b], starts)
        n = len(members[a]) + len(members[b])
        out.append(Finding(question=QUESTION, measure="convergence_ratio_difference",
                           contrast=contrast_estimate(ratio_contrast(distances, ma, mb, n)),
                           contrast_of=(_group(a), _group(b))))
        out.append(Finding(question=QUESTION, measure="one_attractor_share_difference",
                           contrast=contrast_estimate(ratio_contrast(pairs, ma, mb, n)),
                           contrast_of=(_group(a), _group(b))))
    for reference in data.result.references:
        final = np.array([data.measured[c.run_id].references.get(reference, [np.nan])[-1] for c in chains])
        per_group = []
        for g in names:
            clusters = list(by_start(members[g], starts).values())
            interval = cluster_interval(mean_of(final), clusters if len(clusters) >= 2 else
                                        [[i] for i in members[g]], data.params.bootstrap, data.params.seed)
            interval.method = "cluster-bootstrap" if interval.low is not None else None
            per_group.append(group_estimate({**_group(g), "reference": reference}, interval, len(clusters)))
        out.append(Finding(question=QUESTION, measure="final_distance_to_reference", groups=per_group))
    return out

