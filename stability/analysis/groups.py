"""Every measure per group of runs (``--by FACTOR,...``), and contrasts between groups, with intervals.

A group is the runs that share a value of each chosen factor (:mod:`stability.analysis.factors`); with no factor
there is one group, all runs. Chain runs with a verdict are *judged*; the rest are counted (``no_verdict``,
``verdicts.not_chain``) and measured nowhere else.

Intervals resample the group's starting constitutions (each with all its runs); a group with a single start
resamples its runs instead (``resampled``), so its interval covers replicate noise only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.attractors import Attractor, attractors_of
from stability.analysis.consistency import ClashOutcome
from stability.analysis.convergence import VERDICTS, Params, RunConvergence
from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.drift import ParaphraseNull, paraphrase_null
from stability.analysis.factors import group_key, key_text
from stability.analysis.incidence import Incidence, IncidenceContrast, contrast_of, incidence_of, outcomes
from stability.analysis.references import ReferenceDrift, drift
from stability.analysis.stats import (
    Interval,
    Survival,
    bootstrap,
    cluster_counts,
    cluster_interval,
    difference,
    draws_interval,
    km_median,
    mean_of,
    survival,
)

MAX_CONTRASTS = 45
MAX_PAIRWISE_RUNS = 6000  # above this many judged runs the convergence ratio gets no interval or null


class ConvergenceRatio(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mean: float | None  # spread of finals / spread of starts; None with a single start
    low: float | None
    high: float | None
    n: int  # judged runs
    null_low: float | None  # 95% range of the ratio when the group's runs are drawn at random from all groups
    null_high: float | None
    p_value: float | None  # two-sided permutation p-value (None with one group)


class GroupSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: dict[str, Any]
    label: str
    runs: int
    run_ids: list[str]
    starts: int  # distinct starting constitutions of the judged runs
    resampled: str  # starts | runs: what the intervals resample
    verdicts: dict[str, int]  # fixed_point, cycle, unsettled, no_verdict, not_chain
    no_verdict: int
    probed: int = 0  # judged runs with probes of their final node (``stability probe``)
    confirmed: int = 0  # fixed points confirmed by their probes (Wilson lower bound of P(decline) >= tau)
    fixed_point_rate: Interval  # over judged runs
    cycle_rate: Interval
    repeated_cycle_rate: Interval  # share whose cycle came round again (needs cycle_returns >= 2 to be seen)
    steps_to_fixed_point: Survival  # Kaplan–Meier, cycles censored: the fixed-point time were there no cycles
    incidence: Incidence | None = None  # competing risks (Aalen–Johansen) over every chain run: see .incidence
    convergence_ratio: ConvergenceRatio
    clash_resolution: Interval  # share of planted clashes resolved, over the judged contradictory runs
    attractors: list[Attractor]
    references: list[ReferenceDrift] = []  # distance to each --reference constitution: start, final, change
    paraphrase_null: ParaphraseNull | None = None  # drift against rephrase runs of the same models and starts


class Contrast(BaseModel):
    """Group ``a`` minus group ``b``, each side's clusters resampled independently."""

    model_config = ConfigDict(extra="forbid")

    a: dict[str, Any]
    b: dict[str, Any]
    fixed_point_rate: Interval
    steps_to_fixed_point: Interval  # difference of Kaplan–Meier medians
    convergence_ratio: Interval
    clash_resolution: Interval
    incidence: IncidenceContrast | None = None  # F_fixed and F_cycle at a common step, paired when starts agree


class Arrays:
    """Per-run values of every analysed run, indexed like ``runs``; pairwise distances of the judged runs."""

    def __init__(self, runs: Sequence[RunConvergence], clashes: Sequence[ClashOutcome],
                 node_vectors: Mapping[str, np.ndarray]) -> None:
        self.runs = runs
        self.judged = np.array([r.verdict in VERDICTS for r in runs], dtype=bool)
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

    def median(self, idx: np.ndarray) -> float | None:
        return km_median(self.times[idx], self.fixed[idx].astype(bool))

    def clash_share(self, idx: np.ndarray) -> float | None:
        total = self.clashes[idx].sum()
        return float(self.resolved[idx].sum() / total) if total else None

    def ratio(self, idx: np.ndarray) -> float | None:
        """Convergence ratio of judged runs ``idx`` (each once): mean pairwise distance of finals over starts."""
        if not self.pairwise or len(idx) < 2:
            return None
        p = np.array([self.position[int(i)] for i in idx])
        start = float(self.d_starts[np.ix_(p, p)].sum())
        return float(self.d_finals[np.ix_(p, p)].sum()) / start if start > 0 else None

    def ratio_draws(self, clusters: Sequence[Sequence[int]], resamples: int, seed: int) -> np.ndarray | None:
        """The ratio in each cluster resample (NaN where undefined), from cluster block sums: a draw that takes
        cluster c w_c times has pair sums w^T S w (copies of one run are at distance 0 and count in neither sum,
        and the pair counts cancel in the ratio), so each draw costs k² for k clusters, not n² for n runs."""
        if not self.pairwise or len(clusters) < 2:
            return None
        member = np.zeros((len(clusters), len(self.position)), dtype=np.float32)  # cluster x judged run
        for c, cluster in enumerate(clusters):
            member[c, [self.position[int(i)] for i in cluster]] = 1.0
        starts = (member @ self.d_starts @ member.T).astype(np.float64)  # block sums of pairwise distances
        finals = (member @ self.d_finals @ member.T).astype(np.float64)
        w = cluster_counts(len(clusters), resamples, seed)
        den = np.einsum("bi,ij,bj->b", w, starts, w)
        num = np.einsum("bi,ij,bj->b", w, finals, w)
        out = np.full(len(w), np.nan)
        np.divide(num, den, out=out, where=den > 0)
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


def _clusters(arrays: Arrays, members: list[int]) -> tuple[list[list[int]], str]:
    by_start: dict[str, list[int]] = {}
    for i in members:
        by_start.setdefault(arrays.runs[i].start, []).append(i)
    if len(by_start) >= 2:
        return list(by_start.values()), "starts"
    return [[i] for i in members], "runs"


def _null(arrays: Arrays, members: list[int], pool: list[int], observed: float | None, params: Params
          ) -> tuple[float | None, float | None, float | None]:
    if observed is None or len(pool) <= len(members):
        return None, None, None
    rng = np.random.default_rng(params.seed + 7)
    positions = np.array([arrays.position[int(i)] for i in pool])
    starts = arrays.d_starts[np.ix_(positions, positions)]
    finals = arrays.d_finals[np.ix_(positions, positions)]
    values_list = []
    for first in range(0, params.permutations, 100):  # x^T D x for 100 random subsets at a time
        chunk = min(100, params.permutations - first)
        x = np.zeros((chunk, len(pool)), dtype=np.float32)
        for row in range(chunk):
            x[row, rng.choice(len(pool), size=len(members), replace=False)] = 1.0
        den = ((x @ starts) * x).sum(axis=1)
        num = ((x @ finals) * x).sum(axis=1)
        values_list.append(num[den > 0] / den[den > 0])
    values = np.concatenate(values_list) if values_list else np.zeros(0)
    if not len(values):
        return None, None, None
    centre = float(values.mean())
    extreme = int((np.abs(values - centre) >= abs(observed - centre) - 1e-12).sum())
    p = (extreme + 1) / (len(values) + 1)  # the observed grouping counts as one of the shuffles: never 0
    low, high = np.percentile(values, [2.5, 97.5])
    return round(float(low), 6), round(float(high), 6), round(p, 6)


def _ratio_difference(arrays: Arrays, a: list[list[int]], b: list[list[int]], resamples: int, seed: int
                      ) -> Interval:
    """Convergence ratio of group a − group b, each side's clusters resampled independently."""
    va = arrays.ratio(np.asarray([i for c in a for i in c], dtype=int))
    vb = arrays.ratio(np.asarray([i for c in b for i in c], dtype=int))
    n = sum(len(c) for c in a) + sum(len(c) for c in b)
    if va is None or vb is None:
        return Interval(mean=None, low=None, high=None, n=n)
    da, db = arrays.ratio_draws(a, resamples, seed), arrays.ratio_draws(b, resamples, seed + 1)
    if da is None or db is None:
        return draws_interval(va - vb, None, n)
    both = ~(np.isnan(da) | np.isnan(db))
    return draws_interval(va - vb, (da - db)[both], n)


def summarise(corpus: Corpus, runs: Sequence[RunConvergence], clashes: Sequence[ClashOutcome],
              node_vectors: Mapping[str, np.ndarray], params: Params, factors: list[str],
              experiments: Mapping[str, str], controls: Sequence[RunConvergence] = (),
              known_attractors: Mapping[tuple[str, ...], list[Attractor]] | None = None
              ) -> tuple[list[GroupSummary], list[Contrast]]:
    """Groups of ``runs`` (aligned with ``corpus.runs``), each set against the drift-null ``controls``;
    ``known_attractors``: attractors by the run ids they were clustered from (see ``_attractors``)."""
    known_attractors = known_attractors or {}
    arrays = Arrays(runs, clashes, node_vectors)
    keyed: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for i, chain in enumerate(corpus.runs):
        key = group_key(chain, factors, corpus, experiments)
        keyed.setdefault(json.dumps(key, sort_keys=True, default=str), (key, []))[1].append(i)
    pool = np.flatnonzero(arrays.judged).tolist()
    b, seed = params.bootstrap, params.seed
    groups, clusters_of, outcomes_of = [], [], []
    chains = {c.run_id: c for c in corpus.runs}
    for text in sorted(keyed):
        key, members = keyed[text]
        judged = [i for i in members if arrays.judged[i]]
        clusters, resampled = _clusters(arrays, judged)
        local = {run: j for j, run in enumerate(judged)}
        clusters_of.append(clusters)
        outcomes_of.append(outcomes([runs[i] for i in members]))  # (step, cause, start) of each chain run
        ratio = draws_interval(arrays.ratio(np.asarray(judged, dtype=int)), arrays.ratio_draws(clusters, b, seed),
                               len(judged))
        null_low, null_high, p = _null(arrays, judged, pool, ratio.mean, params) if arrays.pairwise else (None,) * 3
        verdicts = {v: sum(runs[i].verdict == v for i in members) for v in (*VERDICTS, "no_verdict", "not_chain")}
        groups.append(GroupSummary(
            key=key, label=key_text(key), runs=len(members), run_ids=[runs[i].run_id for i in members],
            starts=len({runs[i].start for i in judged}), resampled=resampled, verdicts=verdicts,
            no_verdict=verdicts["no_verdict"],
            probed=sum(runs[i].probe is not None for i in judged),
            confirmed=sum(p is not None and p.confirmed is True for p in (runs[i].probe for i in judged)),
            fixed_point_rate=bootstrap([arrays.fixed[c].tolist() for c in clusters], b, seed),
            cycle_rate=bootstrap([arrays.cycled[c].tolist() for c in clusters], b, seed),
            repeated_cycle_rate=bootstrap([arrays.repeated[c].tolist() for c in clusters], b, seed),
            steps_to_fixed_point=survival(arrays.times[judged].tolist(), arrays.fixed[judged].astype(bool).tolist(),
                                          [[local[i] for i in c] for c in clusters], b, seed),
            incidence=incidence_of(*outcomes_of[-1]),
            convergence_ratio=ConvergenceRatio(mean=ratio.mean, low=ratio.low, high=ratio.high, n=ratio.n,
                                               null_low=null_low, null_high=null_high, p_value=p),
            clash_resolution=cluster_interval(arrays.clash_share, clusters, b, seed)
            if arrays.clashes[judged].sum() else Interval(mean=None, low=None, high=None, n=0),
            attractors=_attractors([chains[runs[i].run_id] for i in judged], node_vectors, params,
                                   known_attractors),
            references=drift([runs[i].references for i in judged], [[local[i] for i in c] for c in clusters], b,
                             seed),
            paraphrase_null=paraphrase_null([runs[i] for i in judged], controls, b, seed)))
    contrasts: list[Contrast] = []
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            if len(contrasts) >= MAX_CONTRASTS:
                break
            ca, cb = clusters_of[i], clusters_of[j]
            contrasts.append(Contrast(
                a=groups[i].key, b=groups[j].key,
                fixed_point_rate=difference(mean_of(arrays.fixed), ca, mean_of(arrays.fixed), cb, b, seed),
                steps_to_fixed_point=difference(arrays.median, ca, arrays.median, cb, b, seed),
                convergence_ratio=_ratio_difference(arrays, ca, cb, b, seed),
                clash_resolution=difference(arrays.clash_share, ca, arrays.clash_share, cb, b, seed),
                incidence=contrast_of(outcomes_of[i], outcomes_of[j])))
    return groups, contrasts
