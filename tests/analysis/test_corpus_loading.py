"""Loading runs as columns (integer codes) gives the corpus and vectors that reading them row by row gives."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from stability.analysis.corpus import Corpus, RunChain, Visit, is_chain, is_drift_null, load_corpus
from stability.analysis.embeddings import EmbeddingCache, EmbeddingStats, HashingEmbedder, normalise, text_hash
from stability.analysis.measure import Vectors, embed_corpus
from stability.store import Store

WHEN = datetime(2026, 1, 1)
TEXTS = ["I am honest.", "I am kind.", "I am brief.", "I respect privacy.", "I explain myself.", "I never lie."]


def _constitutions(rng: random.Random) -> list[tuple[str, tuple[str, ...]]]:
    """Twelve nodes of 1-6 principles (some listing one twice: it counts twice) and one with none stored."""
    out = []
    for i in range(12):
        principles = tuple(rng.sample(TEXTS, rng.randint(1, 5))) + (("I am kind.",) if i % 4 == 0 else ())
        out.append((f"sha256:node-{i}", principles))
    return out + [("sha256:no-principles", ())]


def _store(path: Path) -> list[str]:
    """Runs of every kind the loader must tell apart, written in shuffled order; returns the run ids."""
    rng = random.Random(5)
    nodes = _constitutions(rng)
    runs: list[dict[str, Any]] = []
    revisions: list[dict[str, Any]] = []
    plans = [("r-done", "fresh-instance", "done", ["origin", "changed", "declined", "changed", "declined"]),
             ("r-error", "fresh-instance", "done", ["origin", "changed", "error"]),
             ("r-failed", "fresh-instance", "failed", ["origin", "parse_failure"]),
             ("r-truncated", "fresh-instance", "done", ["origin", "changed", "truncated"]),
             ("r-running", "in-context", "running", ["origin", "changed"]),
             ("r-rephrase", "rephrase", "done", ["origin", "changed", "changed"]),
             ("r-siblings", "rate-alternatives", "done", ["origin", "declined", "declined"]),
             ("r-empty", "fresh-instance", "running", [])]  # no revision yet: not in the corpus
    for number, (run_id, protocol, status, decisions) in enumerate(plans):
        runs.append({"id": run_id, "protocol": protocol, "model": f"scripted/m{number % 3}", "model_params": {},
                     "config": {"options": {"declines_to_stop": 2 + number % 2}, "seed": number}, "seed": number,
                     "start_hash": nodes[0][0], "template_hash": "-", "package_version": "t", "status": status,
                     "stop_reason": None if status == "running" else "declined", "created_at": WHEN})
        walk = [nodes[number % len(nodes)][0]] if decisions else []
        for decision in decisions[1:]:
            walk.append(walk[-1] if decision != "changed" else rng.choice(nodes)[0])
        if run_id == "r-done":
            walk[3] = walk[0]  # a return to the start
        if run_id == "r-rephrase":
            walk[2] = "sha256:no-principles"
        for step, (decision, digest) in enumerate(zip(decisions, walk, strict=True)):
            revisions.append({"id": f"{run_id}:{step}", "run_id": run_id, "step": step, "constitution_hash": digest,
                              "parent_id": f"{run_id}:{step - 1}" if step else None, "decision": decision,
                              "cycle_to": f"{run_id}:0" if run_id == "r-done" and step == 3 else None,
                              "detail": None, "created_at": WHEN})
    rng.shuffle(revisions)
    principles = [{"constitution_hash": digest, "position": i, "text": text}
                  for digest, texts in nodes for i, text in enumerate(texts)]
    rng.shuffle(principles)
    with Store.open(path) as store:
        store.bulk_load({
            "runs": pd.DataFrame(runs),
            "constitutions": pd.DataFrame([{"hash": digest, "text": "\n".join(texts), "n_principles": len(texts),
                                            "created_at": WHEN} for digest, texts in nodes]),
            "principles": pd.DataFrame(principles), "revisions": pd.DataFrame(revisions)})
    return [plan[0] for plan in plans]


def _row_by_row(store: Store, run_ids: list[str]) -> Corpus:
    """The corpus as the analysis read it before (1491f86): one Python row per revision and per principle."""
    runs = {run.id: run for run in store.runs()}
    visits: dict[str, list[Visit]] = {r: [] for r in run_ids}
    for run_id, step, revision_id, node, decision, cycle_to in store.revision_rows(run_ids):
        visits[run_id].append(Visit(step, node, decision, revision_id, cycle_to))
    chains = [RunChain(run_id=r, visits=visits[r], model=runs[r].model, protocol=runs[r].protocol,
                       stop_reason=runs[r].stop_reason, status=runs[r].status,
                       declines_to_stop=int((runs[r].config.get("options") or {}).get("declines_to_stop", 2)),
                       chain=is_chain(runs[r].protocol), control=is_drift_null(runs[r].protocol),
                       config=runs[r].config) for r in run_ids if visits[r]]
    nodes = list(dict.fromkeys(v.node for chain in chains for v in chain.visits))
    grouped: dict[str, list[str]] = {n: [] for n in nodes}
    for digest, _, text in store.principle_rows(nodes):
        grouped[digest].append(text)
    return Corpus(runs=chains, principles={n: tuple(p) for n, p in grouped.items()})


@pytest.fixture
def store_path(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "runs.duckdb"
    return path, _store(path)


def test_loading_as_columns_gives_the_corpus_read_row_by_row(store_path: tuple[Path, list[str]]) -> None:
    path, run_ids = store_path
    selection = run_ids[::-1] + [run_ids[2]]  # not the store's order, one run twice
    with Store.open(path, read_only=True) as store:
        loaded = load_corpus(store, selection)
        expected = _row_by_row(store, selection)
    assert [c.run_id for c in loaded.runs] == [c.run_id for c in expected.runs]
    assert "r-empty" not in [c.run_id for c in loaded.runs] and len(loaded.runs) == len(run_ids)  # 7 + the repeat
    assert loaded.runs == expected.runs  # every field, every visit (step, node, decision, revision id, cycle_to)
    assert list(loaded.principles.items()) == list(expected.principles.items())  # same nodes, same order
    assert loaded.principles["sha256:no-principles"] == ()
    assert loaded.nodes() == expected.nodes()
    done = next(c for c in loaded.runs if c.run_id == "r-done")
    assert done.visits[3].cycle_to == "r-done:0" and done.visits[3].node == done.start
    assert [v.cycle_to for v in done.visits].count(None) == 4
    kinds = {c.run_id: (c.chain, c.control, c.declines_to_stop) for c in loaded.runs}
    assert kinds["r-siblings"][0] is False and kinds["r-rephrase"][1] is True and kinds["r-error"] == (True, False, 3)
    # the visits of one node share one string (1M revisions visit ~0.5M nodes)
    assert len({id(v.node) for c in loaded.runs for v in c.visits}) == len(loaded.principles)


def test_a_failed_or_unfinished_run_has_no_verdict(store_path: tuple[Path, list[str]]) -> None:
    path, run_ids = store_path
    with Store.open(path, read_only=True) as store:
        runs = {c.run_id: c for c in load_corpus(store, run_ids).runs}
    assert {r: c.no_verdict for r, c in runs.items()} == {
        "r-done": None, "r-error": "error", "r-failed": "parse_failure", "r-truncated": "truncated",
        "r-running": "unfinished", "r-rephrase": None, "r-siblings": None}
    assert runs["r-error"].final == runs["r-error"].visits[1].node  # an error is not a step of the chain


def _vector_bytes(vectors: Vectors) -> list[Any]:
    return [[(k, v.dtype.str, v.tobytes()) for k, v in part.items()]
            for part in (vectors.nodes, vectors.principles, vectors.references)] + [vectors.negations]


def test_embedding_the_codes_gives_the_vectors_of_the_principle_lists(store_path: tuple[Path, list[str]],
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The loaded corpus's codes and a corpus made by hand of the same runs give the same bytes; what the cache
    lacks is embedded (and only that)."""
    path, run_ids = store_path
    monkeypatch.setenv("STABILITY_EMBEDDING_CACHE", str(tmp_path / "cache.duckdb"))
    embedder = HashingEmbedder(32)
    with Store.open(path, read_only=True) as store:
        loaded = load_corpus(store, run_ids)
    by_hand = Corpus(runs=list(loaded.runs), principles=dict(loaded.principles))
    assert loaded.coded_principles(loaded.nodes()) is not None and by_hand.coded_principles(by_hand.nodes()) is None
    references = {"ref": ("I am kind.", "A text only the reference has."), "blank": ()}
    negations = [("I am honest.", "I am not honest.")]
    cached = ["I am honest.", "I am brief."]
    EmbeddingCache().put(embedder.name, [(text_hash(t), 32, normalise(embedder.encode([t]))[0].tobytes())
                                         for t in cached])
    stats = EmbeddingStats()
    coded = embed_corpus(loaded, embedder, stats, references, negations)
    distinct = {p for texts in loaded.principles.values() for p in texts} | {"A text only the reference has.",
                                                                              "I am not honest.", ""}
    assert stats.requested == len(distinct) and stats.computed == len(distinct) - len(cached)
    again = EmbeddingStats()
    plain = embed_corpus(by_hand, embedder, again, references, negations)
    assert again.requested == len(distinct) and again.computed == 0  # all cached now
    assert _vector_bytes(coded) == _vector_bytes(plain)
    assert list(coded.nodes) == loaded.nodes()
    # no principles: the empty text's vector (the hashing embedder's is zero), for a node as for a reference
    assert coded.nodes["sha256:no-principles"].tobytes() == coded.references["blank"].tobytes()
    norms = np.linalg.norm(np.stack([v for n, v in coded.nodes.items() if loaded.principles[n]]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-6)


def test_the_codes_are_not_used_once_the_runs_are_others(store_path: tuple[Path, list[str]]) -> None:
    path, run_ids = store_path
    with Store.open(path, read_only=True) as store:
        corpus = load_corpus(store, run_ids)
    corpus.runs = [c for c in corpus.runs if c.run_id != "r-done"]
    assert corpus.nodes() == list(dict.fromkeys(v.node for c in corpus.runs for v in c.visits))
    assert corpus.coded_principles(corpus.nodes()) is None


def test_a_run_row_that_is_not_a_run_is_refused(store_path: tuple[Path, list[str]]) -> None:
    """The columns read are validated as RunRecord validates them: bad data is an error, not a corpus."""
    path, run_ids = store_path
    for column, value in (("status", "exploded"), ("config", "[1, 2]")):
        with Store.open(path) as store:
            store.con.execute(f"UPDATE runs SET {column} = ? WHERE id = 'r-done'", [value])
        with Store.open(path, read_only=True) as store, pytest.raises(ValidationError, match=column):
            load_corpus(store, run_ids)
        with Store.open(path) as store:
            store.con.execute(f"UPDATE runs SET {column} = ? WHERE id = 'r-done'",
                              ["done" if column == "status" else '{"options": {"declines_to_stop": 2}}'])


def test_normalise_block_by_block_equals_the_whole_matrix() -> None:
    rows = np.random.default_rng(1).standard_normal((20_000, 24)).astype(np.float32)  # more rows than one block
    rows[[3, 9_000, 19_999]] = 0.0
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    expected = rows / np.where(norms == 0, 1.0, norms)
    got = rows.copy()
    assert normalise(got) is got  # in place
    assert got.tobytes() == expected.tobytes()


def test_no_runs_or_unknown_runs_load_an_empty_corpus(store_path: tuple[Path, list[str]]) -> None:
    path, _ = store_path
    with Store.open(path, read_only=True) as store:
        for selection in ([], ["no-such-run"], ["r-empty"]):
            corpus = load_corpus(store, selection)
            assert corpus.runs == [] and corpus.principles == {} and corpus.nodes() == []
