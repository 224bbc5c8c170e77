"""Question 3: consistent vs contradictory — more changes on the contradictory one, and do they make it consistent?

From the paired twin comparison of :mod:`stability.analysis.twins` (a contradictory run against the run of its
repaired twin with every other grid factor equal) and the clash outcomes of :mod:`stability.analysis.consistency`:

- ``changes_difference``: contradictory − twin, the number of steps that changed the constitution, mean over
  pairs, with a percentile interval over resamples of contradictory starts (of pairs with one start);
- ``fixed_point_rate_difference`` and ``steps_to_fixed_point_difference``: the same pairs' reached-a-fixed-point
  and steps (pairs where both reached one);
- ``clash_resolved_share``: the share of planted clashes resolved by the end (the alignment rule, or the judge's
  stored verdicts where ``--judge`` names one), with its interval over runs;
- ``final_distance_to_twin``: the cosine distance from the contradictory run's final to its twin's text.
"""

from __future__ import annotations

import numpy as np

from stability.analysis.findings.common import estimate, group_estimate
from stability.analysis.findings.data import FindingsData
from stability.analysis.findings.record import Finding, GroupEstimate, Question, Unanswerable
from stability.analysis.stats import cluster_interval, mean_of

QUESTION: Question = "consistent-vs-contradictory"


def changes(data: FindingsData, run_id: str) -> int:
    """Steps at which the run's constitution changed (a move to another node)."""
    nodes = [s.node for s in data.measured[run_id].steps]
    return sum(a != b for a, b in zip(nodes, nodes[1:], strict=False))


def answer(data: FindingsData) -> list[Finding] | Unanswerable:
    twins, clashes = data.result.twins, data.result.consistency
    if not twins.pairs and not clashes.clashes:
        return Unanswerable(question=QUESTION, reason="no contradictory start (clashes in its metadata) with a "
                                                      "verdict, and no run of a repaired twin to pair it with")
    contrast_of = ({"condition": "contradictory"}, {"condition": "consistent twin"})
    out: list[Finding] = []
    if twins.pairs:
        by_start: dict[str, list[int]] = {}
        for i, pair in enumerate(twins.pairs):
            by_start.setdefault(pair.contradictory, []).append(i)
        clusters = list(by_start.values()) if len(by_start) >= 2 else [[i] for i in range(len(twins.pairs))]
        unit = "starts" if len(by_start) >= 2 else "pairs"
        b, seed = data.params.bootstrap, data.params.seed
        diff = np.array([changes(data, p.contradictory_run) - changes(data, p.twin_run) for p in twins.pairs],
                        dtype=float)
        final = np.array([p.distance_to_twin[-1] if p.distance_to_twin else np.nan for p in twins.pairs])
        for measure, interval in (
                ("changes_difference", cluster_interval(mean_of(diff), clusters, b, seed)),
                ("fixed_point_rate_difference", twins.fixed_point_difference),
                ("steps_to_fixed_point_difference", twins.steps_difference)):
            e = estimate(interval, len(clusters))
            e.clusters, e.method = len(clusters), f"paired-cluster-bootstrap ({unit})" if e.low is not None \
                else "none"
            if e.low is None and e.note is None:
                e.note = "one pair: no interval" if len(twins.pairs) < 2 else "no interval"
            out.append(Finding(question=QUESTION, measure=measure, contrast=e, contrast_of=contrast_of))
        distance = cluster_interval(mean_of(final), clusters, b, seed)
        distance.method = f"cluster-bootstrap ({unit})" if distance.low is not None else None
        out.append(Finding(question=QUESTION, measure="final_distance_to_twin",
                           groups=[group_estimate({"condition": "contradictory"}, distance, len(clusters))]))
    else:
        out.append(Finding(question=QUESTION, measure="changes_difference",
                           note=f"no contradictory run has a twin run of the same factors ({len(twins.unpaired)} "
                                "unpaired)"))
    if clashes.clashes:
        sources = sorted({o.source for o in clashes.clashes})
        source = " + ".join(sources)
        resolved = estimate(clashes.resolved_fraction, len({o.run_id for o in clashes.clashes}))
        if resolved.low is not None and resolved.method == "none":
            resolved.method = "percentile-bootstrap"
        out.append(Finding(question=QUESTION, measure="clash_resolved_share",
                           groups=[GroupEstimate(group={"condition": "contradictory", "decided by": source},
                                                 **resolved.model_dump())], note=clashes.rule))
    return out
