"""Every measure per group of runs (``--by FACTOR,...``), and contrasts between groups, with intervals.

A group is the runs that share a value of each chosen factor (:mod:`stability.analysis.factors`); with no factor
there is one group, all runs. Chain runs with a verdict are *judged*; the rest are counted (``no_verdict``,
``verdicts.not_chain``) and measured nowhere else, except in ``fixed_point_rate_started`` (over every started
chain run: a run with no verdict did not reach a fixed point).

Intervals rest on the group's starting constitutions (``starts``, the clusters): rates use
:mod:`stability.analysis.intervals` (Wilson over runs with one start), the convergence ratio a jackknife over
starts (:mod:`stability.analysis.between_starts`). Contrasts (:mod:`stability.analysis.contrasts`) are paired
within start where two groups share starts, and their p-values are adjusted over the whole printed family.
Competing risks (:mod:`stability.analysis.incidence`): each group's cumulative incidence of a fixed point, a cycle
and no verdict over every started chain run (``incidence``), and each contrast's difference of them
(``Contrast.incidence``), whose p-values join the same family.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.attractors import Attractor, attractors_of
from stability.analysis.between_starts import ConvergenceRatio, StartDistances, group_ratio
from stability.analysis.consistency import ClashOutcome
from stability.analysis.contrasts import Contrast, adjust_contrasts, median_contrast, ratio_contrast, share_contrast
from stability.analysis.convergence import VERDICTS, Params, RunConvergence
from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.drift import ParaphraseNull, paraphrase_null
from stability.analysis.factors import group_key, key_text
from stability.analysis.incidence import Incidence, Outcomes, contrast_of, incidence_of, outcomes
from stability.analysis.references import ReferenceDrift, drift
from stability.analysis.stats import Interval, Survival, km_median, rate, survival

__all__ = ["MAX_CONTRASTS", "Arrays", "Contrast", "ConvergenceRatio", "GroupSummary", "summarise"]

MAX_CONTRASTS = 45  # contrasts printed at most; ``contrasts_total`` says how many there are
MAX_PAIRWISE_RUNS = 6000  # above this many judged runs the convergence ratio is not computed


class GroupSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: dict[str, Any]
    label: str
    runs: int
    run_ids: list[str]
    starts: int  # distinct starting constitutions of the judged runs: the clusters of the intervals
    models: int = 0  # distinct models of the judged runs
    resampled: str  # starts | runs: what the intervals' clusters are (runs: a single start)
    verdicts: dict[str, int]  # fixed_point, cycle, unsettled, no_verdict, not_chain
    no_verdict: int
    probed: int = 0  # judged runs with probes of their final node (``stability probe``)
    confirmed: int = 0  # fixed points confirmed by their probes (Wilson lower bound of P(decline) >= tau)
    fixed_point_rate: Interval  # over judged runs
    fixed_point_rate_started: Interval | None = None  # over started chain runs (no verdict: not reached)
    cycle_rate: Interval
    repeated_cycle_rate: Interval  # share whose cycle came round again (needs cycle_returns >= 2 to be seen)
    steps_to_fixed_point: Survival  # Kaplan–Meier, cycles censored: the fixed-point time were there no cycles
    incidence: Incidence | None = None  # competing risks (Aalen–Johansen) over every chain run: see .incidence
    convergence_ratio: ConvergenceRatio
    clash_resolution: Interval  # share of planted clashes resolved, over the judged contradictory runs
    attractors: list[Attractor]
    references: list[ReferenceDrift] = []  # distance to each --reference constitution: start, final, change
    paraphrase_null: ParaphraseNull | None = None  # drift against rephrase runs of the same models and starts


class Arrays:
    """Per-run values of every analysed run, indexed like ``runs``; pairwise distances of the judged runs."""

    def __init__(self, runs: Sequence[RunConvergence], clashes: Sequence[ClashOutcome],
                 node_vectors: Mapping[str, np.ndarray]) -> None:
        self.runs = runs
        self.judged = np.array([r.verdict in VERDICTS for r in runs], dtype=bool)
        self.chain = np.array([r.verdict in (*VERDICTS, "no_verdict") for r in runs], dtype=bool)  # started chains
        self.fixed = np.array([r.verdict == "fixed_point" for r in runs], dtype=float)
        self.cycled = np.array([r.verdict == "cycle" for r in runs], dtype=float)
        self.repeated = np.array([r.verdict == "cycle" and any(c.repeated for c in r.cycles) for r in runs],
                                 dtype=float)
        last = [max((s.step for s in r.steps if s.decision not in ("parse_failure", "truncated", "error")),
                    default=0) for r in runs]
        self.times = np.array([r.fixed_point.step if r.fixed_point else t for r, t in zip(runs, last, strict=True)])
        resolved: dict[str, list[float]] = {}
        for o in clashes:
            resolved.setdefault(o.run_id, []).append(float(o.resolved))
        self.resolved = np.array([sum(resolved.get(r.run_id, [])) for r in runs])
        self.clashes = np.array([len(resolved.get(r.run_id, [])) for r in runs])
        self.position = {i: j for j, i in enumerate(np.flatnonzero(self.judged).tolist())}
        self.pairwise = len(self.position) <= MAX_PAIRWISE_RUNS
        self.d_starts = self.d_finals = np.zeros((0, 0), dtype=np.float32)
        if self.pairwise and self.position:
            order = [runs[i] for i in self.position]
            starts = np.stack([node_vectors[r.start] for r in order]).astype(np.float32)
            finals = np.stack([node_vectors[r.final] for r in order]).astype(np.float32)
            self.d_starts = np.clip(1.0 - starts @ starts.T, 0.0, 2.0)
            self.d_finals = np.clip(1.0 - finals @ finals.T, 0.0, 2.0)
        self.distances = StartDistances(self.d_starts, self.d_finals, [runs[i].start for i in self.position]) \
            if self.pairwise else None

    def median(self, idx: np.ndarray) -> float | None:
        return km_median(self.times[idx], self.fixed[idx].astype(bool))

    def clash_share(self, idx: np.ndarray) -> float | None:
        total = self.clashes[idx].sum()
        return float(self.resolved[idx].sum() / total) if total else None

    def by_start(self, members: Sequence[int], positions: bool = False) -> dict[str, list[int]]:
        """``members`` (run indices) by start; ``positions``: as positions among the judged runs (the rows of
        the distance matrices), for the judged members only."""
        out: dict[str, list[int]] = {}
        for i in members:
            if positions:
                if i in self.position:
                    out.setdefault(self.runs[i].start, []).append(self.position[i])
            else:
                out.setdefault(self.runs[i].start, []).append(i)
        return out


def _attractors(chains: list[RunChain], node_vectors: Mapping[str, np.ndarray], params: Params,
                known: Mapping[tuple[str, ...], list[Attractor]]) -> list[Attractor]:
    """The attractors of the chains' finals; ``known``: attractors already clustered for these very runs, in this
    order (the cross-run ones, when one group holds every judged run), reused rather than clustered again."""
    if not chains:
        return []
    found = known.get(tuple(c.run_id for c in chains))
    if found is not None:
        return found
    return attractors_of(chains, np.stack([node_vectors[c.final] for c in chains]), params.cluster_threshold)[1]


def _contrast(arrays: Arrays, a: GroupSummary, b: GroupSummary, ma: list[int], mb: list[int], params: Params,
              oa: Outcomes, ob: Outcomes) -> Contrast:
    ja, jb = (arrays.by_start([i for i in m if arrays.judged[i]]) for m in (ma, mb))
    sa, sb = (arrays.by_start([i for i in m if arrays.chain[i]]) for m in (ma, mb))
    pa, pb = (arrays.by_start(m, positions=True) for m in (ma, mb))
    both = sorted(s for s in ja if s in jb)
    ones = np.ones(len(arrays.runs))
    n = sum(len(v) for v in ja.values()) + sum(len(v) for v in jb.values())
    return Contrast(
        a=a.key, b=b.key, paired=len(both) >= 2, shared_starts=len(both),
        fixed_point_rate=share_contrast(arrays.fixed, ones, ja, jb),
        fixed_point_rate_started=share_contrast(arrays.fixed, ones, sa, sb),
        steps_to_fixed_point=median_contrast(arrays.median, ja, jb, params.bootstrap, params.seed),
        convergence_ratio=ratio_contrast(arrays.distances, pa, pb, n),
        clash_resolution=share_contrast(arrays.resolved, arrays.clashes.astype(float), ja, jb),
        incidence=contrast_of(oa, ob))


def summarise(corpus: Corpus, runs: Sequence[RunConvergence], clashes: Sequence[ClashOutcome],
              node_vectors: Mapping[str, np.ndarray], params: Params, factors: list[str],
              experiments: Mapping[str, str], controls: Sequence[RunConvergence] = (),
              known_attractors: Mapping[tuple[str, ...], list[Attractor]] | None = None, adjust: str = "holm"
              ) -> tuple[list[GroupSummary], list[Contrast], int]:
    """Groups of ``runs`` (aligned with ``corpus.runs``), each set against the drift-null ``controls``;
    ``known_attractors``: attractors by the run ids they were clustered from (see ``_attractors``).

    Returns the groups, the first ``MAX_CONTRASTS`` contrasts (p-values adjusted by ``adjust`` over all of
    them) and how many contrasts there are."""
    known_attractors = known_attractors or {}
    arrays = Arrays(runs, clashes, node_vectors)
    keyed: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for i, chain in enumerate(corpus.runs):
        key = group_key(chain, factors, corpus, experiments)
        keyed.setdefault(json.dumps(key, sort_keys=True, default=str), (key, []))[1].append(i)
    pool = arrays.by_start(np.flatnonzero(arrays.judged).tolist(), positions=True)
    b, seed = params.bootstrap, params.seed
    groups: list[GroupSummary] = []
    members_of: list[list[int]] = []
    outcomes_of: list[Outcomes] = []
    chains = {c.run_id: c for c in corpus.runs}
    for text in sorted(keyed):
        key, members = keyed[text]
        judged = [i for i in members if arrays.judged[i]]
        by_start = arrays.by_start(judged)
        clusters = list(by_start.values())
        started = list(arrays.by_start([i for i in members if arrays.chain[i]]).values())
        local = {run: j for j, run in enumerate(judged)}
        local_clusters = [[local[i] for i in c] for c in clusters] if len(clusters) >= 2 else \
            [[local[i]] for i in judged]
        outcomes_of.append(outcomes([runs[i] for i in members]))  # (step, cause, start) of each chain run
        verdicts = {v: sum(runs[i].verdict == v for i in members) for v in (*VERDICTS, "no_verdict", "not_chain")}
        group = GroupSummary(
            key=key, label=key_text(key), runs=len(members), run_ids=[runs[i].run_id for i in members],
            starts=len(by_start), models=len({runs[i].model for i in judged}),
            resampled="starts" if len(by_start) >= 2 else "runs", verdicts=verdicts,
            no_verdict=verdicts["no_verdict"],
            probed=sum(runs[i].probe is not None for i in judged),
            confirmed=sum(p is not None and p.confirmed is True for p in (runs[i].probe for i in judged)),
            fixed_point_rate=rate([arrays.fixed[c].tolist() for c in clusters]),
            fixed_point_rate_started=rate([arrays.fixed[c].tolist() for c in started]),
            cycle_rate=rate([arrays.cycled[c].tolist() for c in clusters]),
            repeated_cycle_rate=rate([arrays.repeated[c].tolist() for c in clusters]),
            steps_to_fixed_point=survival(arrays.times[judged].tolist(), arrays.fixed[judged].astype(bool).tolist(),
                                          local_clusters, b, seed,
                                          starts=len(by_start)),
            incidence=incidence_of(*outcomes_of[-1]),
            convergence_ratio=group_ratio(arrays.distances, arrays.by_start(judged, positions=True), pool,
                                          len(judged), params.permutations, params.seed + 7),
            clash_resolution=rate([arrays.resolved[c].tolist() for c in clusters],
                                  [arrays.clashes[c].tolist() for c in clusters])
            if arrays.clashes[judged].sum() else Interval(mean=None, low=None, high=None, n=0),
            attractors=_attractors([chains[runs[i].run_id] for i in judged], node_vectors, params,
                                   known_attractors),
            references=drift([runs[i].references for i in judged], local_clusters, b, seed),
            paraphrase_null=paraphrase_null([runs[i] for i in judged], controls, b, seed))
        groups.append(group)
        members_of.append(members)
    total = len(groups) * (len(groups) - 1) // 2
    pairs = [(i, j) for i in range(len(groups)) for j in range(i + 1, len(groups))][:MAX_CONTRASTS]
    contrasts = [_contrast(arrays, groups[i], groups[j], members_of[i], members_of[j], params,
                           outcomes_of[i], outcomes_of[j]) for i, j in pairs]
    adjust_contrasts(contrasts, adjust)
    return groups, contrasts, total
