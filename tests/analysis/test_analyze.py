from __future__ import annotations

from pathlib import Path

from stability.analysis import Params, analyze
from stability.analysis.embeddings import EmbeddingCache, SentenceTransformerEmbedder
from stability.analysis.measure import AnalysisResult
from stability.store import Store


def test_experiment_with_real_model_and_cache(experiment_copy: Path, minilm: SentenceTransformerEmbedder) -> None:
    first = analyze([], experiment_copy, all_runs=True, embedder=minilm)
    assert first.embeddings.computed == first.embeddings.texts > 0
    fresh = SentenceTransformerEmbedder()  # not loaded: a second analysis must not need the model at all
    second = analyze([], experiment_copy, all_runs=True, embedder=fresh)
    assert second.embeddings.computed == 0 and not fresh.loaded
    assert second.model_dump(exclude={"embeddings"}) == first.model_dump(exclude={"embeddings"})
    assert EmbeddingCache().count("all-MiniLM-L6-v2") == first.embeddings.texts

    by_model: dict[str, list] = {}
    for run in first.runs:
        by_model.setdefault(run.model, []).append(run)
    [flip] = by_model["scripted/flip"]
    assert flip.fixed_point is None and [c.period for c in flip.cycles] == [2]
    for run in by_model["scripted/resolver"] + by_model["scripted/canon"]:
        assert run.fixed_point is not None and run.fixed_point.how == "declines"
    [merge] = first.cross_run.merges
    assert sorted(merge.runs) == sorted(r.run_id for r in by_model["scripted/canon"]) and merge.is_final
    # Clashes: honesty-vs-comfort 1-4 removed, 2-5 in place; brevity 1-2 both reworded; obedience in place.
    outcomes = {(o.a_text[:20], o.b_text[:20]): o.status for o in first.consistency.clashes}
    assert outcomes == {
        ("I always tell the tr", "I tell people what t"): "removed",
        ("Honesty comes before", "Keeping people comfo"): "in_place",
        ("I keep every answer ", "I cover every releva"): "reworded",
        ("I always do exactly ", "I refuse requests th"): "in_place",
        ("I answer every quest", "I never discuss medi"): "in_place",
    }
    assert first.consistency.resolved_fraction.mean == 0.4
    assert first.params.reworded_threshold == 0.7
    assert first.notes == [] and first.preferences.targets == []  # no rate-alternatives runs in this experiment


def test_parameters_are_reported_and_used(experiment_copy: Path) -> None:
    loose = analyze([], experiment_copy, all_runs=True, embedder="hashing", params=Params(reworded_threshold=0.0))
    strict = analyze([], experiment_copy, all_runs=True, embedder="hashing", params=Params(reworded_threshold=0.99))
    assert loose.params.reworded_threshold == 0.0 and strict.params.reworded_threshold == 0.99
    def reworded(result: AnalysisResult) -> int:
        return sum((s.changes or {}).get("reworded", 0) for r in result.runs for s in r.steps)
    assert reworded(loose) > reworded(strict)
    assert strict.embeddings.computed == 0  # the hashing vectors were cached by the first call


def test_one_run_by_prefix(experiment_copy: Path) -> None:
    with Store.open(experiment_copy) as store:
        run_id = store.run_ids()[0]
    result = analyze([run_id[:8]], experiment_copy, embedder="hashing")
    assert [r.run_id for r in result.runs] == [run_id] and result.cross_run.runs == 1
