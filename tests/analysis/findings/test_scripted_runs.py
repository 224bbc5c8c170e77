"""Questions 1 and 5 end to end: scripted models run through the engine into a store, read back as the analysis
reads any store, answered by the findings."""

from __future__ import annotations

import re
from pathlib import Path

from stability.analysis.embeddings import HashingEmbedder
from stability.analysis.findings import attractor_strength, principles
from stability.analysis.measure import load
from stability.engine import IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.vocabulary import Message


def _current(messages: list[Message]) -> list[str]:
    return [line[2:] for line in messages[-1].content.splitlines() if line.startswith("- ")]


def drop_last(messages: list[Message]) -> str:
    current = _current(messages)
    if len(current) <= 1:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in current[:-1])


def _starts(tmp_path: Path, sizes: list[int]) -> list[Path]:
    words = ["honesty", "kindness", "brevity", "courage", "patience", "rigour", "humility"]
    out = []
    for s, size in enumerate(sizes):
        path = tmp_path / f"start-{s}.md"
        path.write_text("".join(f"- I value {words[i]} in case {s}.\n" for i in range(size)), encoding="utf-8")
        out.append(path)
    return out


def test_drop_last_and_never_through_the_store(tmp_path: Path) -> None:
    scripted.register("drop-last", lambda: ScriptedModel(fn=drop_last, name="scripted/drop-last"))
    db = tmp_path / "runs.duckdb"
    ids = {"scripted/drop-last": [], "scripted/decline": []}  # type: dict[str, list[str]]
    for model in ids:
        for path in _starts(tmp_path, [2, 3, 5, 7]):
            result = iterate(IterateConfig(model=model, constitution=str(path), options={"max_steps": 10}), db)
            assert result.run.status == "done", result.run.error
            ids[model].append(result.run.id)
    corpus, vectors, *_ = load(ids["scripted/drop-last"] + ids["scripted/decline"], db, False, HashingEmbedder())
    found = attractor_strength.of_corpus(corpus, vectors.nodes)
    assert isinstance(found, list)
    sizes = {f.groups[0].group["model"]: f for f in found if f.property == "n_principles" and f.groups}
    dropping, declining = sizes["scripted/drop-last"], sizes["scripted/decline"]
    assert dropping.strength is not None and dropping.strength.estimate == 1.0
    assert dropping.position is not None and dropping.position.estimate == 1.0
    assert declining.slope is not None and declining.slope.estimate == 1.0
    assert declining.strength is not None and declining.strength.estimate == 0.0

    dropped = load(ids["scripted/drop-last"], db, False, HashingEmbedder())
    survival = principles.of_corpus(dropped[0], dropped[1].principles)
    assert isinstance(survival, list)
    by_position = {g.group["position"]: g.estimate for f in survival if f.measure == "survival_by_position"
                   for g in f.groups or []}
    assert by_position["last"] == 0.0 and by_position["first"] == 1.0
    assert by_position["last"] < by_position["middle"] < by_position["first"]  # type: ignore[operator]
    kept = load(ids["scripted/decline"], db, False, HashingEmbedder())
    never = principles.of_corpus(kept[0], kept[1].principles)
    assert isinstance(never, list)
    assert all(g.estimate == 1.0 for f in never if f.measure.startswith("survival") for g in f.groups or [])


def rater(messages: list[Message]) -> str:
    """Names "Be truthful." the favourite when asked at once, the current principle after reflecting."""
    if "Before rating anything, reflect" in messages[-1].content:
        return "I have thought about it."  # the reflection turn
    asked = next(m.content for m in messages if m.role == "user")
    options = {line[0]: line[3:] for line in asked.splitlines() if re.match(r"^[A-Z]\. ", line)}
    current = re.search(r'under consideration is number \d+: "(?P<p>[^"]+)"', asked)
    assert current is not None
    reflected = any(m.role == "assistant" for m in messages)
    wanted = current.group("p") if reflected else "Be truthful."
    best = next(label for label, text in options.items() if text == wanted)
    return "\n".join(f"{label}: {5 if label == best else 1}" for label in options) + f"\nFAVOURITE: {best}"


def test_rate_alternatives_through_the_store(tmp_path: Path) -> None:
    alternatives = tmp_path / "alts.yaml"
    alternatives.write_text("- {text: Be truthful., relation: paraphrase}\n- {text: Deceive., relation: opposite}\n",
                            encoding="utf-8")
    start = tmp_path / "start.md"
    start.write_text("- Be honest.\n- Be kind.\n", encoding="utf-8")
    scripted.register("rater", lambda: ScriptedModel(fn=rater, name="scripted/rater"))
    db = tmp_path / "ratings.duckdb"
    ids = []
    for principle in (1, 2):
        for reflect in ("none", "first"):
            for seed in (0, 1):
                result = iterate(IterateConfig(
                    protocol="rate-alternatives", model="scripted/rater", constitution=str(start), seed=seed,
                    options={"alternatives": str(alternatives), "trials": 3, "principle": principle,
                             "reflect": reflect}), db)
                assert result.run.status == "done", result.run.error
                ids.append(result.run.id)
    corpus, *_ = load(ids, db, False, HashingEmbedder())
    found = principles.swap_answer(corpus)
    assert isinstance(found, list)
    rates = {(g.group["principle"], g.group["reflect"]): g for g in found[0].groups or []}
    assert set(rates) == {(p, r) for p in ("Be honest.", "Be kind.") for r in ("none", "first")}
    assert all(g.estimate == (1.0 if r == "none" else 0.0) and g.n == 6 and g.clusters == 2
               for (_, r), g in rates.items())
    difference = found[1]
    assert difference.contrast_of is not None and difference.contrast_of[0]["reflect"] == "first"
    assert difference.contrast is not None and difference.contrast.estimate == -1.0
    assert difference.contrast.clusters == 4  # paired by principle and seed
