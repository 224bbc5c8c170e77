"""``analyze``: every measure over a set of runs, as one result (the JSON that ``stability analyze --json`` prints).

The schema is :class:`AnalysisResult` (``AnalysisResult.model_json_schema()``), documented in docs/analysis.md.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.attractors import CrossRun, cross_run
from stability.analysis.consistency import Consistency, consistency
from stability.analysis.convergence import VERDICTS, Params, RunConvergence
from stability.analysis.corpus import Corpus, load_corpus
from stability.analysis.drift import bound_by_negation, library_negations, negation_distance
from stability.analysis.embeddings import (
    DEFAULT_MODEL,
    Embedder,
    EmbeddingStats,
    coded_vectors,
    constitution_vectors,
    embed_constitutions,
    embed_texts,
    get_embedder,
)
from stability.analysis.experiments import resolve_selection
from stability.analysis.factors import check_factors
from stability.analysis.graph import build_graph
from stability.analysis.groups import Contrast, GroupSummary, summarise
from stability.analysis.judged import JudgeUse, StoredJudgements, judge_use, load_judgements, rejudge_clashes
from stability.analysis.preferences import Preferences, preferences
from stability.analysis.probes import probe_summary
from stability.analysis.references import read_references, step_distances
from stability.analysis.run_measures import run_convergences
from stability.analysis.transition_counts import transition_counts, transitions
from stability.analysis.twins import TwinComparison, compare_twins
from stability.records import RatingRecord
from stability.store.analysis_reads import ratings_of
from stability.store.store import Store

SCHEMA_VERSION = 2  # 2: verdicts, experiments, groups, contrasts, twins, references
NOTES: list[str] = []


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the duration (restored after, as it was).

    An analysis allocates hundreds of thousands of objects (visits, steps, runs) and frees few cycles: each full
    collection walks them all, to find nothing. On the cached 100k benchmark the collector cost 1-2 s of CPU
    (ten full collections) of ~8 (docs/benchmarks/analysis-scale.md, *A third cut*)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class EmbeddingUse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    texts: int  # distinct texts the analysis needed: principles (constitutions are derived from them)
    computed: int  # of which embedded now; the rest came from the cache


class AnalysisResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int
    params: Params
    embeddings: EmbeddingUse
    runs: list[RunConvergence]
    cross_run: CrossRun
    experiments: list[str] = []  # experiments the analysed runs belong to
    by: list[str] = []  # the factors the runs are grouped by
    references: list[str] = []  # names of the reference constitutions every step is measured against
    groups: list[GroupSummary] = []  # every measure per group (one group, all runs, without ``by``)
    contrasts: list[Contrast] = []  # between every two groups (the first 45 pairs; ``contrasts_total`` in all)
    contrasts_total: int = 0  # contrasts there are (groups × (groups − 1) / 2), printed or not
    adjust: str = "holm"  # how ``p_adjusted`` is adjusted over every printed p-value: holm | bh
    consistency: Consistency
    twins: TwinComparison  # contradictory runs against runs of their repaired twins, paired
    preferences: Preferences
    judge: JudgeUse | None = None  # ``--judge``: which measures the judge decided, and its agreement (κ)
    notes: list[str]


class Vectors(BaseModel):
    """Unit vectors of a corpus's nodes (derived from their principles') and principles."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    nodes: dict[str, np.ndarray]
    principles: dict[str, np.ndarray]
    references: dict[str, np.ndarray] = {}  # reference constitutions (``--reference``) by name
    negations: list[tuple[str, str]] = []  # planted negation pairs (their vectors in ``principles``), see .drift


def embed_corpus(corpus: Corpus, embedder: Embedder, stats: EmbeddingStats,
                 references: Mapping[str, tuple[str, ...]] | None = None,
                 negations: list[tuple[str, str]] | None = None) -> Vectors:
    """Every node's and reference's vector, derived from their principles' (embedded once each, see
    :func:`embed_constitutions`); ``negations``: planted negation pairs whose principles are embedded too.

    A loaded corpus has its nodes' principles as codes (:meth:`Corpus.coded_principles`): the node vectors are
    then one gather and one sparse product over those codes (:func:`coded_vectors`), with the same values."""
    nodes = corpus.nodes()
    references = references or {}
    negations = negations or []
    coded = corpus.coded_principles(nodes)
    if coded is None:
        lists = [corpus.principles[node] for node in nodes] + list(references.values()) + list(negations)
        matrix, principles = embed_constitutions(embedder, lists, stats)
        return Vectors(nodes=dict(zip(nodes, matrix[:len(nodes)], strict=True)), principles=principles,
                       references=dict(zip(references, matrix[len(nodes):len(nodes) + len(references)],
                                           strict=True)), negations=negations)
    extra = list(references.values()) + list(negations)
    first = np.full(len(coded.texts), len(coded.codes), dtype=np.int64)  # each text's first use
    np.minimum.at(first, coded.codes, np.arange(len(coded.codes)))
    used = np.flatnonzero(first < len(coded.codes))
    texts = [coded.texts[c] for c in used[np.argsort(first[used], kind="stable")].tolist()]  # in order of use
    ordered = list(dict.fromkeys(texts + [p for c in extra for p in c]))  # as embed_constitutions orders them
    empty_needed = bool((coded.lengths == 0).any()) or any(len(c) == 0 for c in extra)
    by_text = embed_texts(embedder, ordered + ([""] if empty_needed and "" not in ordered else []), stats)
    principles = {p: by_text[p] for p in ordered}
    empty = by_text.get("") if empty_needed else None
    dim = len(next(iter(by_text.values()))) if by_text else 0
    matrix = (np.stack([by_text[t] for t in coded.texts]) if coded.texts
              else np.zeros((0, dim), dtype=np.float32))
    node_matrix = coded_vectors(matrix, coded.codes, coded.offsets, empty)
    extra_matrix = constitution_vectors(extra, principles, empty)
    return Vectors.model_construct(  # made here, not read: validating 524k rows (1M revisions) cost 0.25 s
        nodes=dict(zip(nodes, node_matrix, strict=True)), principles=principles,
        references=dict(zip(references, extra_matrix[:len(references)], strict=True)), negations=negations)


def _bound_suggestions(groups: list[GroupSummary], by_id: Mapping[str, RunConvergence],
                       controls: list[RunConvergence], corpus: Corpus, vectors: Vectors) -> None:
    """Keep each group's rephrase ε suggestion only below the distance of a negation in its cells' starts."""
    cells = {(r.model, r.start) for r in controls if r.verdict in VERDICTS}
    for group in groups:
        if group.paraphrase_null is None:
            continue
        starts = sorted({r.start for r in (by_id[i] for i in group.run_ids)
                         if r.verdict in VERDICTS and (r.model, r.start) in cells})
        distance = negation_distance([corpus.principles[s] for s in starts], vectors.negations, vectors.principles)
        group.paraphrase_null = bound_by_negation(group.paraphrase_null, distance)


@gc_paused()
def measure(corpus: Corpus, vectors: Vectors, params: Params, embeddings: EmbeddingUse,
            ratings: list[RatingRecord] | None = None, by: list[str] | None = None,
            experiments: Mapping[str, str] | None = None, judgements: StoredJudgements | None = None,
            adjust: str = "holm") -> AnalysisResult:
    """Every measure over an already loaded and embedded corpus (no store, no model), grouped by ``by``; with
    ``judgements``, the measures of meaning come from the judge where it judged (:mod:`.judged`); ``adjust``:
    the multiplicity adjustment of the contrasts' p-values (``holm`` or ``bh``)."""
    by = by or []
    experiments = experiments or {}
    check_factors(by, corpus)
    # alignment counts by transition, shared by the runs: every transition aligned at once (vectorised); the
    # mapping itself is not kept (at 1M revisions its 583k keys are ~70 MB): the steps hold its counts
    runs = run_convergences(corpus.runs, corpus, vectors.nodes, vectors.principles, params,
                            transition_counts(transitions(corpus), corpus.principles, vectors.principles,
                                              params.reworded_threshold))
    for run in runs:
        run.references = step_distances([s.node for s in run.steps], vectors.nodes, vectors.references)
        if run.verdict in VERDICTS:
            run.probe = probe_summary(corpus.probes.get(run.run_id, []), run.final, run.fixed_point is not None,
                                      params.tau)
    by_id = {r.run_id: r for r in runs}
    # drift-null runs (rephrase) are controls: measured, and compared with the groups, but in none of them
    subjects = Corpus(runs=[c for c in corpus.runs if not c.control], principles=corpus.principles,
                      metadata=corpus.metadata)
    controls = [by_id[c.run_id] for c in corpus.runs if c.control]
    judged = [chain for chain in subjects.runs if by_id[chain.run_id].verdict in VERDICTS]
    clashes = consistency(subjects, by_id, vectors.principles, params,
                          rejudge_clashes(judgements) if judgements is not None else None)
    across = cross_run(judged, vectors.nodes, params.cluster_threshold)
    groups, contrasts, total = summarise(subjects, [by_id[c.run_id] for c in subjects.runs], clashes.clashes,
                                         vectors.nodes, params, by, experiments, controls,
                                         {tuple(c.run_id for c in judged): across.attractors}, adjust)
    _bound_suggestions(groups, by_id, controls, corpus, vectors)
    judged_use = None
    if judgements is not None:
        clashes.rule += f"; judge {judgements.judge} instead wherever it gave a verdict at every node (source)"
        judged_use = judge_use(subjects, by_id, clashes.clashes, vectors.principles, params.reworded_threshold,
                               judgements, groups)
    return AnalysisResult(
        schema_version=SCHEMA_VERSION, params=params, embeddings=embeddings, runs=runs,
        cross_run=across,
        experiments=sorted({experiments[r.run_id] for r in corpus.runs if r.run_id in experiments}), by=by,
        references=list(vectors.references),
        groups=groups, contrasts=contrasts, contrasts_total=total, adjust=adjust, consistency=clashes,
        twins=compare_twins(subjects, by_id, vectors.nodes, params),
        preferences=preferences(ratings or [], params.bootstrap, params.seed), judge=judged_use, notes=list(NOTES))


@gc_paused()
def load(selection: list[str], db: Path | str | None, all_runs: bool, embedder: Embedder | str,
         with_graph: bool = False, references: list[Path | str] | None = None
         ) -> tuple[Corpus, Vectors, EmbeddingUse, list[RatingRecord], dict[str, str], Any]:
    """Resolve the selection (experiments or runs), load the runs (reading the store only) and embed what the
    embedding cache lacks (caching it).

    Returns the corpus, its vectors, the embedding use, the ratings, each run's experiment, and (``with_graph``)
    the revision graph, else None."""
    model = get_embedder(embedder) if isinstance(embedder, str) else embedder
    reference_principles = read_references(references or [])  # bad input fails here, before anything is written
    with Store.open(db, read_only=True) as store:
        ids, experiments = resolve_selection(store, selection, all_runs)
        corpus = load_corpus(store, ids)
        ratings = ratings_of(store, [chain.run_id for chain in corpus.runs])
        graph = build_graph(store, ids) if with_graph else None
    stats = EmbeddingStats()  # the embedding cache is its own file: the store is only read
    negations = library_negations() if any(c.control for c in corpus.runs) else []
    vectors = embed_corpus(corpus, model, stats, reference_principles, negations)
    corpus.coded = None  # read for embedding only (at 1M revisions: 5.2M principle codes)
    use = EmbeddingUse(model=model.name, texts=stats.requested, computed=stats.computed)
    return corpus, vectors, use, ratings, experiments, graph


def analyze(run_ids: list[str], db: Path | str | None = None, all_runs: bool = False, params: Params | None = None,
            embedder: Embedder | str = DEFAULT_MODEL, by: list[str] | None = None,
            references: list[Path | str] | None = None, judge: str | None = None, adjust: str = "holm"
            ) -> AnalysisResult:
    """Measure the selected runs: ``run_ids`` holds experiment names or ids and run ids (or use ``all_runs``);
    ``references`` are constitution files every step is measured against; ``judge`` a judge model whose stored
    judgements decide the measures of meaning where they exist; ``adjust`` the contrasts' multiplicity
    adjustment (``holm`` or ``bh``)."""
    corpus, vectors, use, ratings, experiments, _ = load(run_ids, db, all_runs, embedder, references=references)
    judgements = load_judgements(db, judge, corpus) if judge else None
    return measure(corpus, vectors, params or Params(), use, ratings, by, experiments, judgements, adjust)
