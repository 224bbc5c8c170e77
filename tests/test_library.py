from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from stability.alternatives import MIN_ALTERNATIVES, RELATIONS, load_alternatives
from stability.errors import InputError, StabilityError
from stability.library import (
    AxesMeta,
    ContradictoryMeta,
    FrontierMeta,
    LibraryEntry,
    NeutralMeta,
    find_constitution,
    library_problems,
    list_constitutions,
    load_library,
)
from tests.conftest import ROOT, write

LIBRARY = ROOT / "constitutions"


@pytest.fixture(scope="module")
def entries() -> list[LibraryEntry]:
    return load_library(LIBRARY)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A copy of the real library, to break one thing at a time."""
    return Path(shutil.copytree(LIBRARY, tmp_path / "constitutions"))


def by_condition(entries: list[LibraryEntry], condition: str) -> list[LibraryEntry]:
    return [e for e in entries if e.metadata.condition == condition]


# -- the real library -----------------------------------------------------------------------------------------------


def test_whole_library_validates() -> None:
    good, problems = library_problems(LIBRARY)
    assert [str(p) for p in problems] == []
    files = [p for p in LIBRARY.rglob("*.md") if p.name != "README.md"]
    assert len(good) == len(files) >= 30


def test_consistent_covers_sizes_and_styles(entries: list[LibraryEntry]) -> None:
    consistent = by_condition(entries, "consistent")
    assert {3, 7, 15} <= {e.metadata.size for e in consistent}
    assert {e.metadata.style for e in consistent} == {"first-person", "imperative", "third-person"}


def test_every_contradictory_file_has_a_repaired_twin_and_every_kind_is_planted(entries: list[LibraryEntry]) -> None:
    named = {e.name + ".md": e for e in entries}
    contradictory = by_condition(entries, "contradictory")
    kinds: Counter[str] = Counter()
    for entry in contradictory:
        meta = entry.metadata
        assert isinstance(meta, ContradictoryMeta)
        twin = named[meta.twin]
        assert twin.metadata.condition == "consistent"
        clashing = {n for c in meta.clashes for n in (c.a, c.b)}
        for i, principle in enumerate(entry.principles, 1):
            if i not in clashing:
                assert principle in twin.principles, (entry.name, principle)
        kinds.update(c.kind for c in meta.clashes)
    assert set(kinds) == {"direct-negation", "priority", "scope", "subtle"}
    assert len(contradictory) >= 5


def test_neutral_controls_match_a_value_laden_file_of_each_size(entries: list[LibraryEntry]) -> None:
    named = {e.name + ".md": e for e in entries}
    neutral = by_condition(entries, "neutral")
    for entry in neutral:
        assert isinstance(entry.metadata, NeutralMeta)
        assert named[entry.metadata.pair].metadata.size == entry.metadata.size
    assert {3, 7, 15} <= {e.metadata.size for e in neutral}


def test_frontier_like_has_both_close_sources_and_dissimilar_starts(entries: list[LibraryEntry]) -> None:
    frontier = by_condition(entries, "frontier-like")
    metas = [e.metadata for e in frontier if isinstance(e.metadata, FrontierMeta)]
    close = {m.source.publisher for m in metas if m.similarity == "close" and m.source}
    assert close == {"Anthropic", "OpenAI"}
    assert sum(m.similarity == "dissimilar" for m in metas) >= 2


def test_axes_sweep_varies_one_axis_at_a_time(entries: list[LibraryEntry]) -> None:
    axes = [e.metadata for e in by_condition(entries, "axes") if isinstance(e.metadata, AxesMeta)]
    values = {(m.axis, m.value) for m in axes}
    assert {("framing", "consequentialist"), ("framing", "deontological"), ("framing", "virtue"),
            ("target", "corrigibility"), ("target", "moral-alignment")} <= values
    assert sum(m.axis == "priority-order" for m in axes) >= 2
    assert all(m.changes for m in axes if m.axis != "base")


def test_main_constitutions_have_complete_alternative_pools(entries: list[LibraryEntry]) -> None:
    main = [e for e in entries if e.metadata.main]
    assert {"consistent/minimal", "contradictory/honesty-vs-comfort"} <= {e.name for e in main}
    for entry in main:
        pool = load_alternatives(entry.path)
        assert pool.constitution_hash == entry.hash
        assert [p.text for p in pool.principles] == list(entry.principles)
        for principle in pool.principles:
            assert len(principle.alternatives) >= MIN_ALTERNATIVES
            assert {a.relation for a in principle.alternatives} == set(RELATIONS)


# -- broken entries are reported, one line each, naming the file ---------------------------------------------------


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


BREAKAGES = [
    ("consistent/minimal.md", "size: 3", "size: 4", "metadata size: says 4 but the file has 3 principles"),
    ("consistent/minimal.md", "style: first-person", "style: casual", "metadata style: Input should be"),
    ("consistent/minimal.md", "main: true", "main: true\nmood: cheerful", "metadata mood: unknown key"),
    ("consistent/minimal.md", "condition: consistent", "condition: nice", "metadata condition: 'nice' is not one"),
    ("consistent/minimal.md", "condition: consistent", "condition: neutral",
     "metadata condition 'neutral' does not match its folder 'consistent'"),
    ("contradictory/honesty-vs-comfort.md", "{a: 2, b: 5,", "{a: 2, b: 9,",
     "metadata clashes.1.b: principle 9 does not exist (the file has 5)"),
    ("contradictory/honesty-vs-comfort.md", "kind: priority", "kind: mild", "metadata clashes.1.kind"),
    ("contradictory/honesty-vs-comfort.md", "{a: 1, b: 4,", "{a: 4, b: 4,", "two different principles"),
    ("contradictory/honesty-vs-comfort.md", "twin: consistent/honesty-vs-comfort-repaired.md",
     "twin: consistent/no-such.md", "metadata twin: 'consistent/no-such.md' is not a library file"),
    ("contradictory/obedience-vs-refusal.md", "twin: consistent/obedience-vs-refusal-repaired.md",
     "twin: consistent/minimal.md", "must be consistent/ with repairs: contradictory/obedience-vs-refusal.md"),
    ("consistent/honesty-vs-comfort-repaired.md", "- I try to understand what the person actually needs.",
     "- I try to understand what people need.", "must differ only by the repair, but it drops",
     "contradictory/honesty-vs-comfort.md"),
    ("consistent/brevity-vs-thoroughness-repaired.md",
     "- I use plain language.\n- I check my answers for mistakes before giving them.",
     "- I check my answers for mistakes before giving them.\n- I use plain language.",
     "must differ only by the repair, but it reorders", "contradictory/brevity-vs-thoroughness.md"),
    ("neutral/procedure-3.md", "pair: consistent/minimal.md", "pair: consistent/helpful-honest.md",
     "must be value-laden (not neutral) with the same size and style"),
    ("frontier-like/anthropic-like.md", "source:\n", "other:\n", "metadata other: unknown key"),
    ("frontier-like/openai-like.md", "  date: 2025-02-12\n", "  date: last year\n", "metadata source.date"),
    ("axes/target-corrigibility.md", "changes: [5]", "changes: [4]",
     "metadata changes: says [4] but the principles that differ from axes/base.md are [5]"),
    ("axes/framing-virtue.md", "value: \"virtue\"", "value: \"stoic\"", "'stoic' is not one of"),
    ("axes/priority-honesty-first.md", "value: \"honesty>harm>autonomy>helpfulness\"",
     "value: \"honesty>harm>autonomy>fun\"", "does not reorder the values of its base"),
    ("axes/priority-honesty-first.md", "value: \"honesty>harm>autonomy>helpfulness\"",
     "value: \"harm>honesty>autonomy>helpfulness\"", "is already the position of the base axes/base.md"),
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b[3][:40] for b in BREAKAGES])
def test_broken_entry_is_one_line_naming_file_and_problem(library: Path, breakage: tuple[str, ...]) -> None:
    name, old, new, problem = breakage[:4]
    reported = library / (breakage[4] if len(breakage) > 4 else name)
    assert not library_problems(library)[1]
    edit(library / name, old, new)
    good, problems = library_problems(library)
    mine = [str(p) for p in problems if p.path == str(reported)]
    assert len(mine) == 1 and problem in mine[0], [str(p) for p in problems]
    assert all("\n" not in str(p) for p in problems)
    assert str(reported) not in {e.path for e in good}
    with pytest.raises(InputError):
        load_library(library)


def test_metadata_problems_point_at_their_line(library: Path) -> None:
    edit(library / "consistent/helpful-honest.md", "size: 5", "size: 6")
    _, problems = library_problems(library)
    assert [(p.path, p.line) for p in problems] == [(str(library / "consistent/helpful-honest.md"), 3)]


def test_missing_front_matter_stray_files_and_orphan_alternatives(library: Path) -> None:
    write(library / "consistent/bare.md", "- I am kind.\n")
    write(library / "consistent/notes.txt", "scratch")
    write(library / "neutral/ghost.alternatives.yaml", "principles: []\n")
    (library / "consistent/minimal.alternatives.yaml").unlink()
    _, problems = library_problems(library)
    messages = sorted(str(p) for p in problems)
    assert messages == sorted([
        f"{library}/consistent/bare.md:1: no front matter: a library file starts with '---' metadata (see README)",
        f"{library}/consistent/notes.txt: not a library file (expected NAME.md or NAME.alternatives.yaml)",
        f"{library}/neutral/ghost.alternatives.yaml: alternatives with no constitution beside them",
        f"{library}/consistent/minimal.md: main: true but no minimal.alternatives.yaml beside it",
    ])


def test_load_library_raises_first_problem_and_counts_the_rest(library: Path) -> None:
    edit(library / "consistent/minimal.md", "size: 3", "size: 2")
    edit(library / "neutral/procedure-5.md", "size: 5", "size: 2")
    with pytest.raises(InputError, match=r"minimal\.md:3: metadata size: .* \(and 1 more: run `stability "
                                         r"constitutions check`\)"):
        load_library(library)


# -- listing and finding -------------------------------------------------------------------------------------------


def test_tag_filters(entries: list[LibraryEntry]) -> None:
    contradictory = list_constitutions(["condition=contradictory"], LIBRARY)
    assert {e.name for e in contradictory} == {e.name for e in by_condition(entries, "contradictory")}
    scope = list_constitutions(["condition=contradictory", "clash-kinds=scope"], LIBRARY)
    assert scope and len(scope) < len(contradictory)
    assert all("scope" in e.tags["clash-kinds"].split(",") for e in scope)
    framing = list_constitutions(["axis=framing"], LIBRARY)
    assert sorted(e.tags["value"] for e in framing) == ["consequentialist", "deontological", "virtue"]
    assert list_constitutions(["size=15", "condition=neutral"], LIBRARY)[0].name == "neutral/procedure-15"
    with pytest.raises(StabilityError, match="no entry has tag 'colour'"):
        list_constitutions(["colour=red"], LIBRARY)
    with pytest.raises(StabilityError, match="expected KEY=VALUE"):
        list_constitutions(["condition"], LIBRARY)


def test_find_constitution_by_name_file_or_last_part() -> None:
    assert find_constitution("contradictory/honesty-vs-comfort", LIBRARY).metadata.condition == "contradictory"
    assert find_constitution("constitutions/consistent/minimal.md", LIBRARY).name == "consistent/minimal"
    assert find_constitution("procedure-7", LIBRARY).name == "neutral/procedure-7"
    with pytest.raises(StabilityError, match="did you mean 'minimal'"):
        find_constitution("minimall", LIBRARY)


def test_ambiguous_last_part(library: Path) -> None:
    shutil.copy(library / "neutral/procedure-3.md", library / "neutral/minimal.md")
    with pytest.raises(StabilityError, match="'minimal' is ambiguous: consistent/minimal, neutral/minimal"):
        find_constitution("minimal", library)


# -- alternatives --------------------------------------------------------------------------------------------------


def test_alternatives_pool_access() -> None:
    pool = load_alternatives(LIBRARY / "contradictory/honesty-vs-comfort.md")
    second = pool.for_principle(2)
    assert second.text == "Honesty comes before every other principle."
    assert [a.text for a in second.by_relation("opposite")] == ["Honesty comes after every other principle."]
    with pytest.raises(KeyError):
        pool.for_principle(6)


ALT_HEAD = "principles:\n  - index: 1\n    text: I am honest.\n    alternatives:\n"
SIX = "".join(f"      - {{relation: {r}, text: \"Alternative {r}.\"}}\n" for r in RELATIONS)


@pytest.mark.parametrize(
    ("alternatives", "line", "problem"),
    [
        (ALT_HEAD.replace("I am honest.", "I am very honest.") + SIX, 3,
         "principles.0.text: does not match principle 1 of the constitution ('I am honest.')"),
        (ALT_HEAD.replace("index: 1", "index: 3") + SIX, 2, "principles.0.index: principle 3 does not exist"),
        (ALT_HEAD + SIX.replace("Alternative neutral.", "Alternative weaker."), 9,
         "principles.0.alternatives.4: repeats alternative 1"),
        (ALT_HEAD + SIX.replace("Alternative neutral.", "i am   honest."), 9, "repeats the principle itself"),
        (ALT_HEAD + SIX.replace("relation: neutral", "relation: filler"), 9,
         "principles.0.alternatives.4.relation: Input should be"),
        (ALT_HEAD + SIX.replace("relation: neutral", "relation: paraphrase"), 2, "missing neutral"),
        (ALT_HEAD + SIX.replace('"Alternative opposite."', "I lie, often."), 8,
         "principles.0.alternatives.3.often.: unknown key (schema: constitutions/README.md; quote text"),
        (ALT_HEAD + SIX + "  - index: 2\n    text: I help.\n    alternatives:\n" + SIX, 11,
         "principles.1.index: principle 2 does not exist (the constitution has 1)"),
        ("principles: [\n", None, "not valid YAML"),
    ],
)
def test_bad_alternatives_are_located(tmp_path: Path, alternatives: str, line: int | None, problem: str) -> None:
    constitution = write(tmp_path / "c.md", "- I am honest.\n")
    write(tmp_path / "c.alternatives.yaml", alternatives)
    with pytest.raises(InputError) as caught:
        load_alternatives(constitution)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "c.alternatives.yaml")) and "\n" not in message
    assert problem in message
    if line is not None:
        assert caught.value.line == line


def test_alternatives_complete_flag_and_missing_principles(tmp_path: Path) -> None:
    constitution = write(tmp_path / "c.md", "- I am honest.\n- I help.\n")
    write(tmp_path / "c.alternatives.yaml", ALT_HEAD + '      - {relation: weaker, text: "I try to be honest."}\n')
    with pytest.raises(InputError, match="no alternatives for principle 2"):
        load_alternatives(constitution, complete=False)
    write(tmp_path / "c.alternatives.yaml", ALT_HEAD + '      - {relation: weaker, text: "I try to be honest."}\n'
          + "  - index: 2\n    text: I   help.\n    alternatives:\n      - {relation: opposite, text: \"I hinder.\"}\n")
    pool = load_alternatives(constitution, complete=False)
    assert pool.for_principle(2).text == "I help."
    swapped = (tmp_path / "c.alternatives.yaml").read_text().replace("index: 1", "index: X")
    write(tmp_path / "c.alternatives.yaml", swapped.replace("index: 2", "index: 1").replace("index: X", "index: 2"))
    with pytest.raises(InputError, match=r"c.alternatives.yaml:2: principles.0.index: 2 is out of order"):
        load_alternatives(constitution, complete=False)
    write(tmp_path / "c.alternatives.yaml", swapped.replace("index: X", "index: 1"))
    with pytest.raises(InputError, match=r"principle 1 has 1 alternatives \(at least 6, every relation once\)"):
        load_alternatives(constitution)
    (tmp_path / "c.alternatives.yaml").unlink()
    with pytest.raises(InputError, match="no alternatives file beside"):
        load_alternatives(constitution)


def test_readme_counts_match_the_library(entries: list[LibraryEntry]) -> None:
    readme = (LIBRARY / "README.md").read_text(encoding="utf-8")
    documented = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `([a-z-]+)/` \|.*\| (\d+) \|$", readme, re.M)}
    assert documented == Counter(e.metadata.condition for e in entries)
