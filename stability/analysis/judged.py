"""``analyze --judge MODEL``: the measures of meaning taken from stored judgements where they exist, the rule elsewhere.

Analysis never asks a judge: it reads the ``judgements`` table (``stability judge`` filled it) and finds each
judgement again by recomputing its subject key from what it measures (:mod:`.judged_subjects`). For each
(question, subject) the latest judgement of the named judge model is used; one without a verdict ("no judgement")
is as if absent.

- **Clash resolution**: a clash is judged when the judge gave a verdict at every distinct node its run reached
  after the start (the start itself is unresolved by definition). It is then resolved when the judge says so at
  the final node, from the first step after which every node is judged resolved, with the judge's *how*. A clash
  with any node unjudged keeps the rule's outcome. Each clash outcome says which (``source``) and keeps the
  rule's verdict (``rule_resolved``); groups, contrasts and the report read the same outcomes.
- **Principle changes**: a step's ``reworded`` count is split into ``reworded_same`` (judged ``same``),
  ``reworded_changed`` (narrower, broader, different, opposite) and ``reworded_unjudged``.
- **New contradictions** (runs whose start lists no clash) and **refusals** (declines and parse failures) come
  from the judge only; the rule has no such measure.
- **Agreement**: Cohen's κ of the judge against the rule on clash resolution (per clash, final outcome), and of
  the judge against every other judge stored, per question, over the subjects both judged. Its 95% interval is a
  jackknife with a t quantile: leave-one-start-out (G − 1 degrees of freedom) for the clash agreement, whose items
  (clashes) share runs and starts; leave-one-item-out (n − 1) between judges, whose subjects carry no start. It is
  clipped to [−1, 1]; coverage on planted agreement is in docs/analysis.md (*Judge agreement*).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.consistency import ClashOutcome, Rejudge
from stability.analysis.convergence import RunConvergence
from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.embeddings import text_hash
from stability.analysis.groups import GroupSummary
from stability.analysis.judged_subjects import answers_of, later_nodes, refusal_subject, reworded_pairs, subject_key
from stability.analysis.kappa import cohen_kappa, kappa_interval
from stability.analysis.stats import Interval, wilson
from stability.errors import StabilityError
from stability.records import JudgementRecord
from stability.store.judgements import judge_models, judgements_of
from stability.store.store import Store

CHANGED = ("narrower", "broader", "different", "opposite")

#: (question, subject key) -> the latest judgement of one judge model
Verdicts = dict[tuple[str, str], JudgementRecord]


@dataclass
class StoredJudgements:
    """The judgements in a store, per judge model, and the judge an analysis uses."""

    judge: str
    by_judge: dict[str, Verdicts] = field(default_factory=dict)
    #: per run: (node answered, answer text) of its declines and parse failures (the refusal question's subjects)
    answers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def verdicts(self) -> Verdicts:
        return self.by_judge.get(self.judge, {})

    def verdict(self, question: str, subjects: Sequence[str]) -> JudgementRecord | None:
        found = self.verdicts.get((question, subject_key(question, subjects)))
        return found if found is not None and found.verdict is not None else None


def load_judgements(db: Path | str | None, judge: str, corpus: Corpus) -> StoredJudgements:
    """Every stored judgement (read-only), for ``judge`` and the judges to compare it with, and the corpus's
    answers the refusal question is about."""
    with Store.open(db, read_only=True) as store:
        known = judge_models(store)
        if judge not in known:
            raise StabilityError(f"--judge {judge}: no judgements of it are stored (judges stored: "
                                 f"{', '.join(known) or 'none'}); run `stability judge ... --judge {judge}` first")
        rows = judgements_of(store)
        answers = answers_of(store, corpus)
    by_judge: dict[str, Verdicts] = {}
    for row in rows:  # oldest first: the latest wins
        by_judge.setdefault(row.judge_model, {})[(row.question, row.subject_key)] = row
    return StoredJudgements(judge=judge, by_judge=by_judge, answers=answers)


class Agreement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: str  # "rule" or a judge model
    b: str
    question: str
    n: int  # subjects both gave a verdict on
    observed: float | None  # share of those where they agree
    kappa: float | None  # Cohen's κ; None when undefined (fewer than 2 subjects, or chance agreement is 1)
    kappa_low: float | None = None  # 95% jackknife-t interval (None: fewer than 2 clusters, or undefined)
    kappa_high: float | None = None
    clusters: int = 0  # what the interval leaves out one at a time: starts (clash agreement) or subjects


class MeasureSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measure: str
    source: str  # judge | rule | judge where judged, else rule
    judged: int  # items the judge decided
    total: int  # items measured


class JudgeGroup(BaseModel):
    """The judge's measures for one group of runs (``--by``)."""

    model_config = ConfigDict(extra="forbid")

    key: dict[str, Any]
    label: str
    reworded: dict[str, int]
    contradiction_at_final: Interval
    refusals: dict[str, int]


class JudgeUse(BaseModel):
    """What the judge decided in this analysis, and how far it agrees with the rule and with other judges."""

    model_config = ConfigDict(extra="forbid")

    judge: str
    sources: list[MeasureSource]
    reworded: dict[str, int]  # over every step: reworded_same, reworded_changed, reworded_unjudged, and per verdict
    contradiction_at_final: Interval  # runs whose start lists no clash, final node judged: share with one (Wilson)
    refusals: dict[str, int]  # declines and parse failures judged: per verdict
    agreement: list[Agreement]
    groups: list[JudgeGroup] = []  # the same per group (``--by``), in the order of the analysis's groups


def agreement(a_name: str, b_name: str, question: str, a: Sequence[str], b: Sequence[str],
              clusters: Sequence[str] | None = None) -> Agreement:
    """Cohen's κ of two raters over the same items, with its interval (see :func:`kappa_interval`)."""
    observed, kappa = cohen_kappa(a, b)
    low, high, g = kappa_interval(a, b, clusters)
    return Agreement(a=a_name, b=b_name, question=question, n=len(a), observed=observed, kappa=kappa,
                     kappa_low=low, kappa_high=high, clusters=g)


def clash_judgements(chain: RunChain, a: int, b: int, judgements: StoredJudgements
                     ) -> list[tuple[int, JudgementRecord]] | None:
    """(step, judgement) at every usable visit after the start, or None when any distinct node is unjudged."""
    found: dict[str, JudgementRecord] = {}
    for node in later_nodes(chain):
        judgement = judgements.verdict("clash", (node, chain.start, f"clash:{a}-{b}"))
        if judgement is None:
            return None
        found[node] = judgement
    return [(v.step, found[v.node]) for v in chain.usable if v.node in found]


def rejudge_clashes(judgements: StoredJudgements) -> Rejudge:
    """A hook for :func:`stability.analysis.consistency.consistency`: each run's clash outcomes, with the judge's
    verdicts where it judged every node (see the module's contract)."""

    def rejudge(chain: RunChain, outcomes: list[ClashOutcome]) -> list[ClashOutcome]:
        out = []
        visits = chain.usable
        edits_at = np.cumsum([0] + [int(p.node != v.node) for p, v in zip(visits, visits[1:], strict=False)])
        for outcome in outcomes:
            judged = clash_judgements(chain, outcome.a, outcome.b, judgements)
            if judged is None or not judged:
                out.append(outcome)
                continue
            statuses = [(step, j) for step, j in judged]
            resolved_from: int | None = None
            for step, judgement in reversed(statuses):
                if judgement.verdict != "resolved":
                    break
                resolved_from = step
            final = statuses[-1][1]
            index = next((i for i, v in enumerate(visits) if v.step == resolved_from), None)
            out.append(outcome.model_copy(update={
                "source": f"judge:{judgements.judge}", "rule_resolved": outcome.resolved,
                "resolved": resolved_from is not None, "resolved_step": resolved_from,
                "edits": int(edits_at[index]) if index is not None else None,
                "status": f"judge: {final.verdict}" + (f" ({final.how})" if final.how else ""), "how": final.how}))
        return out

    return rejudge


@dataclass
class _RunJudged:
    """What the judge decided about one run."""

    reworded: Counter[str] = field(default_factory=Counter)
    nodes: int = 0  # distinct nodes after the start (start without clashes)
    nodes_judged: int = 0  # of which the judge gave a contradiction verdict on
    final_contradiction: bool | None = None  # the final node's verdict (None: not judged, or never left the start)
    answers: int = 0  # declines and parse failures
    refusals: Counter[str] = field(default_factory=Counter)


def _split_reworded(chain: RunChain, run: RunConvergence, corpus: Corpus, vectors: Mapping[str, np.ndarray],
                    threshold: float, judgements: StoredJudgements, out: _RunJudged) -> None:
    """Split each step's reworded count by the judge's equivalence verdicts (in place, on the run's steps)."""
    by_step = {s.step: s for s in run.steps}
    visits = chain.usable
    for previous, visit in zip(visits, visits[1:], strict=False):
        step = by_step.get(visit.step)
        if previous.node == visit.node or step is None or step.changes is None:
            continue
        split: Counter[str] = Counter()
        for before, after in reworded_pairs(RunChain(run_id=chain.run_id, visits=[previous, visit]), corpus,
                                            vectors, threshold):
            judgement = judgements.verdict("equivalence", (text_hash(before), text_hash(after)))
            verdict = judgement.verdict if judgement is not None else None
            split["reworded_same" if verdict == "same" else "reworded_changed" if verdict in CHANGED
                  else "reworded_unjudged"] += 1
            if verdict is not None:
                split[f"reworded_{verdict}"] += 1
        step.changes = {**step.changes, **{k: split.get(k, 0) for k in
                                           ("reworded_same", "reworded_changed", "reworded_unjudged")}}
        out.reworded.update(split)


def _run_judged(chain: RunChain, run: RunConvergence, corpus: Corpus, vectors: Mapping[str, np.ndarray],
                threshold: float, judgements: StoredJudgements) -> _RunJudged:
    out = _RunJudged()
    if not chain.chain:
        return out
    _split_reworded(chain, run, corpus, vectors, threshold, judgements, out)
    if not (corpus.metadata.get(chain.start) or {}).get("clashes"):
        for node in later_nodes(chain):
            out.nodes += 1
            out.nodes_judged += judgements.verdict("contradiction", (node,)) is not None
        final = judgements.verdict("contradiction", (chain.final,)) if chain.final != chain.start else None
        out.final_contradiction = None if final is None else final.verdict == "contradiction"
    for node, text in judgements.answers.get(chain.run_id, []):
        out.answers += 1
        if node in corpus.principles:
            judgement = judgements.verdict("refusal", refusal_subject(node, corpus.principles[node], text).subjects)
            if judgement is not None and judgement.verdict is not None:
                out.refusals[judgement.verdict] += 1
    return out


def _totals(judged: Sequence[_RunJudged]) -> tuple[dict[str, int], Interval, dict[str, int]]:
    reworded: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    for j in judged:
        reworded.update(j.reworded)
        refusals.update(j.refusals)
    finals = [j.final_contradiction for j in judged if j.final_contradiction is not None]
    return dict(sorted(reworded.items())), wilson(sum(finals), len(finals)), dict(sorted(refusals.items()))


def judge_use(corpus: Corpus, runs: Mapping[str, RunConvergence], clashes: Sequence[ClashOutcome],
              principle_vectors: Mapping[str, np.ndarray], reworded_threshold: float,
              judgements: StoredJudgements, groups: Sequence[GroupSummary] = ()) -> JudgeUse:
    """Split the runs' reworded counts by the judge's equivalence verdicts (in place, on ``runs``' steps) and
    summarise what the judge decided, over all runs and per group."""
    per_run = {chain.run_id: _run_judged(chain, runs[chain.run_id], corpus, principle_vectors, reworded_threshold,
                                         judgements) for chain in corpus.runs}
    everything = list(per_run.values())
    reworded, contradiction, refusals = _totals(everything)
    by_group = []
    for g in groups:
        g_reworded, g_contradiction, g_refusals = _totals([per_run[r] for r in g.run_ids if r in per_run])
        by_group.append(JudgeGroup(key=g.key, label=g.label, reworded=g_reworded,
                                   contradiction_at_final=g_contradiction, refusals=g_refusals))
    by_judge = [o for o in clashes if o.source.startswith("judge")]
    starts = {chain.run_id: chain.start for chain in corpus.runs}
    agreements = [agreement("rule", judgements.judge, "clash",
                            ["resolved" if o.rule_resolved else "unresolved" for o in by_judge],
                            ["resolved" if o.resolved else "unresolved" for o in by_judge],
                            [starts.get(o.run_id, o.run_id) for o in by_judge]), *judge_agreement(judgements)]
    n_reworded = sum(reworded.get(k, 0) for k in ("reworded_same", "reworded_changed", "reworded_unjudged"))
    sources = [
        MeasureSource(measure="clash resolution", source="judge where judged, else rule", judged=len(by_judge),
                      total=len(clashes)),
        MeasureSource(measure="principle changes (reworded: same or changed meaning)", source="judge",
                      judged=n_reworded - reworded.get("reworded_unjudged", 0), total=n_reworded),
        MeasureSource(measure="new contradictions", source="judge", judged=sum(j.nodes_judged for j in everything),
                      total=sum(j.nodes for j in everything)),
        MeasureSource(measure="refusal or meta-answer", source="judge",
                      judged=sum(sum(j.refusals.values()) for j in everything),
                      total=sum(j.answers for j in everything)),
        MeasureSource(measure="fixed points, cycles, drift, attractors, convergence ratio, kept/moved/added/removed",
                      source="rule", judged=0, total=len(runs)),
    ]
    return JudgeUse(judge=judgements.judge, sources=sources, reworded=reworded,
                    contradiction_at_final=contradiction, refusals=refusals, agreement=agreements, groups=by_group)


def judge_agreement(judgements: StoredJudgements) -> list[Agreement]:
    """κ of the chosen judge against every other stored judge, per question, over subjects both gave a verdict on."""
    mine = judgements.verdicts
    out = []
    for other, theirs in sorted(judgements.by_judge.items()):
        if other == judgements.judge:
            continue
        for question in ("clash", "equivalence", "contradiction", "refusal"):
            both = [(j.verdict, theirs[key].verdict) for key, j in mine.items() if key[0] == question
                    and j.verdict is not None and key in theirs and theirs[key].verdict is not None]
            if not both:
                continue
            out.append(agreement(judgements.judge, other, question, [str(a) for a, _ in both],
                                 [str(b) for _, b in both]))
    return out
