"""Question 2: does iteration converge to a constitution the model no longer wants to change, by route?

Routes are the iteration protocols' ``route`` (fresh instances, in context, multi-agent). Per route (and model,
when the selection has several): the fixed-point rate over its judged runs (chain runs with a verdict), with the
clustered interval of :mod:`stability.analysis.intervals` (Wilson over runs with one start, ``wilson-t`` over
starts with more; a blank-slate run's start is the text the model authored). Every two routes of one model are
contrasted (a − b) by :func:`stability.analysis.contrasts.share_contrast`: paired within start where they share at
least two starts, else Welch; its p-value joins the multiplicity family.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np

from stability.analysis.contrasts import share_contrast
from stability.analysis.findings.common import contrast_estimate, effective_start, group_estimate, route_of
from stability.analysis.findings.data import FindingsData
from stability.analysis.findings.record import Finding, GroupEstimate, Question, Unanswerable
from stability.analysis.stats import rate

QUESTION: Question = "convergence-by-route"
ROUTE_ORDER = ("fresh-instances", "in-context", "multi-agent")


def answer(data: FindingsData) -> list[Finding] | Unanswerable:
    routes = {c.protocol: route_of(c.protocol) for c in data.subjects}
    chains = [c for c in data.judged() if routes[c.protocol]]
    if not chains:
        return Unanswerable(question=QUESTION, reason="no judged runs of an iteration route (fresh instances, in "
                                                      "context, multi-agent)")
    several_models = len({c.model for c in chains}) > 1
    fixed = np.array([float(data.measured[c.run_id].fixed_point is not None) for c in chains])
    members: dict[str, tuple[dict[str, Any], dict[str, list[int]]]] = {}
    for i, chain in enumerate(chains):
        key: dict[str, Any] = {"route": routes[chain.protocol]}
        if several_models:
            key = {"model": chain.model, **key}
        start = effective_start(chain, data.corpus.principles)  # a blank-slate run's: what the model authored
        members.setdefault(json.dumps(key, sort_keys=True), (key, {}))[1].setdefault(start, []).append(i)

    def order(text: str) -> tuple[str, int]:
        key = members[text][0]
        route = key["route"]
        return str(key.get("model", "")), ROUTE_ORDER.index(route) if route in ROUTE_ORDER else len(ROUTE_ORDER)

    keys = sorted(members, key=order)
    groups: list[GroupEstimate] = []
    for text in keys:
        key, by_start = members[text]
        groups.append(group_estimate(key, rate([fixed[idx].tolist() for idx in by_start.values()]), len(by_start)))
    out = [Finding(question=QUESTION, measure="fixed_point_rate", groups=groups)]
    ones = np.ones(len(chains))
    for a, b in itertools.combinations(keys, 2):
        (ka, ma), (kb, mb) = members[a], members[b]
        if ka.get("model") != kb.get("model"):
            continue  # routes are contrasted within a model
        out.append(Finding(question=QUESTION, measure="fixed_point_rate_difference",
                           contrast=contrast_estimate(share_contrast(fixed, ones, ma, mb)), contrast_of=(ka, kb)))
    if len(out) == 1:
        out[0].note = "one route" + (" per model" if several_models else "") + ": no route contrast"
    return out
