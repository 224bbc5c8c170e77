"""Question 6: blank slate — do self-authored constitutions, iterated, end in the same attractors as provided starts?

A *self-authored* run began from the empty constitution and iterated what the model wrote (its protocol's
``starts_blank``: the iteration option ``from_blank``); its start is the authored text. The finals of every judged
run, self-authored and provided, are clustered together (average linkage at ``--cluster-threshold``, as
``analyze``). Measures:

- ``in_provided_attractor``: the share of self-authored runs whose final falls in an attractor that also holds a
  provided start's final, with the clustered rate interval (clusters: authored texts; ``wilson-t`` with two or
  more, Wilson over runs with one).
- ``one_attractor_share``: per kind of start, the share of between-start pairs whose finals fall in one attractor
  (jackknife-t over starts, as question 4).
- ``fixed_point_rate`` per kind of start, and their difference (self-authored − provided; Welch, the kinds share no
  start).
"""

from __future__ import annotations

import numpy as np

from stability.analysis.contrasts import share_contrast
from stability.analysis.findings.common import (
    by_start,
    contrast_estimate,
    effective_start,
    group_estimate,
    labels_of,
    one_cluster_share,
    starts_blank,
)
from stability.analysis.findings.data import FindingsData
from stability.analysis.findings.record import Finding, GroupEstimate, Question, Unanswerable
from stability.analysis.stats import rate

QUESTION: Question = "blank-slate"
AUTHORED, PROVIDED = {"start": "self-authored"}, {"start": "provided"}


def answer(data: FindingsData) -> list[Finding] | Unanswerable:
    chains = data.judged()
    blank = [starts_blank(c) for c in chains]
    if not any(blank):
        return Unanswerable(question=QUESTION, reason="no self-authored start: no judged run iterates a "
                                                      "constitution the model wrote (from_blank)")
    starts = [effective_start(c, data.corpus.principles) for c in chains]
    labels = labels_of(data, chains)
    authored = [i for i, b in enumerate(blank) if b]
    provided = [i for i, b in enumerate(blank) if not b]
    fixed = np.array([float(data.measured[c.run_id].fixed_point is not None) for c in chains])

    out: list[Finding] = []
    if provided:
        theirs = {int(labels[i]) for i in provided}
        inside = np.array([float(int(x) in theirs) for x in labels])
        share = rate([inside[idx].tolist() for idx in by_start(authored, starts).values()])
        out.append(Finding(question=QUESTION, measure="in_provided_attractor",
                           groups=[group_estimate(AUTHORED, share, len(by_start(authored, starts)))]))
    else:
        out.append(Finding(question=QUESTION, measure="in_provided_attractor",
                           note="no provided start in the selection: run provided starts under the same models and "
                                "protocols to compare"))
    kinds = [(AUTHORED, authored)] + ([(PROVIDED, provided)] if provided else [])
    out.append(Finding(question=QUESTION, measure="one_attractor_share", groups=[
        GroupEstimate(group=kind, **one_cluster_share(labels, starts, idx).model_dump()) for kind, idx in kinds]))
    out.append(Finding(question=QUESTION, measure="fixed_point_rate", groups=[
        group_estimate(kind, rate([fixed[m].tolist() for m in by_start(idx, starts).values()]),
                       len(by_start(idx, starts)))
        for kind, idx in kinds]))
    if provided:
        out.append(Finding(question=QUESTION, measure="fixed_point_rate_difference",
                           contrast=contrast_estimate(share_contrast(fixed, np.ones(len(chains)),
                                                                     by_start(authored, starts),
                                                                     by_start(provided, starts))),
                           contrast_of=(AUTHORED, PROVIDED)))
    return out
