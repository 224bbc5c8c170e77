"""Rate-alternatives measures on hand-built ratings where the right answer is known, and end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from stability.analysis import analyze
from stability.analysis.preferences import bradley_terry, preferences
from stability.records import RatingRecord
from tests.conftest import run_protocol, write


def rating(trial: int, label: str, text: str, value: int | None, favourite: bool = False,
           relation: str | None = None, expected: float | None = None) -> RatingRecord:
    return RatingRecord(id=f"r:{trial}:{label}", run_id="r", trial=trial, step=trial + 1, mode="principle",
                        target_index=1, target="Be honest.", label=label, position=ord(label) - 65,
                        option_text=text, relation=relation, rating=value, favourite=favourite,
                        expected_rating=expected, call_id=f"c{trial}")


def test_known_preferences() -> None:
    rows = []
    for t in range(4):
        rows += [rating(t, "A", "stronger", 5, True, "stronger", 4.5), rating(t, "B", "weaker", 3, False, "weaker"),
                 rating(t, "C", "opposite", 1 if t < 3 else None, False, "opposite")]
    result = preferences(rows, resamples=200)
    [target] = result.targets
    by_text = {o.text: o for o in target.options}
    assert target.trials == 4 and [o.text for o in target.options] == ["stronger", "weaker", "opposite"]
    assert by_text["stronger"].mean_rating.mean == 5 and by_text["stronger"].favourite_rate.mean == 1
    assert by_text["weaker"].favourite_rate.mean == 0
    assert by_text["opposite"].unscored == 1 and by_text["opposite"].mean_rating.n == 3  # unscored is not averaged
    assert by_text["stronger"].expected_rating.mean == 4.5 and by_text["weaker"].expected_rating.n == 0
    s, w, o = (by_text[x].bradley_terry for x in ("stronger", "weaker", "opposite"))
    assert s.mean > w.mean > o.mean and s.low is not None and s.low > o.high  # type: ignore[operator]
    relations = {r.relation: r for r in result.by_relation}
    assert relations["stronger"].favourite_rate.mean == 1 and relations["opposite"].mean_rating.mean == 1


def test_bradley_terry_ties_are_even_and_order_follows_wins() -> None:
    even = bradley_terry(["a", "b"], [{"a": 3, "b": 3}] * 5)
    assert even[0] == pytest.approx(even[1])
    ranked = bradley_terry(["a", "b", "c"], [{"a": 5, "b": 4, "c": 1}] * 3 + [{"a": 4, "b": 5}])
    assert ranked[0] > ranked[1] > ranked[2]
    assert sum(ranked) == pytest.approx(0)


def rated_run(tmp_path: Path, db: Path) -> str:
    """A rate-alternatives run whose model always rates the paraphrase 5, the opposite 1, and favours it."""
    alts = write(tmp_path / "alts.yaml", "- {text: Be truthful., relation: paraphrase}\n"
                                         "- {text: Deceive when useful., relation: opposite}\n")

    def answer(messages: list) -> str:  # type: ignore[type-arg]
        lines = [line for line in messages[-1].content.splitlines() if line[1:3] == ". "]
        best = next(line[0] for line in lines if "truthful" in line)
        return "\n".join(f"{line[0]}: {5 if line[0] == best else 1}" for line in lines) + f"\nFAVOURITE: {best}"

    run_id, _ = run_protocol(tmp_path, db, "rate-alternatives", fn=answer, start="- Be honest.\n- Be kind.\n",
                             alternatives=str(alts), trials=3)
    return str(run_id)


def test_analyze_reports_rate_alternatives_runs(tmp_path: Path, db: Path) -> None:
    run_id = rated_run(tmp_path, db)
    result = analyze([run_id], db, embedder="hashing")
    [target] = result.preferences.targets
    assert target.target == "Be honest." and target.trials == 3
    assert target.options[0].text == "Be truthful." and target.options[0].favourite_rate.mean == 1
    assert result.notes == []


def test_report_shows_the_ratings(tmp_path: Path, db: Path) -> None:
    from stability.analysis.report import write_report

    run_id = rated_run(tmp_path, db)
    text = write_report([run_id], tmp_path / "report.html", db, embedder="hashing").read_text(encoding="utf-8")
    assert "<h2>Rate alternatives</h2>" in text
    section = text[text.index("<h2>Rate alternatives</h2>"):text.index("<h2>Per-step diffs</h2>")]
    assert section.count("<figure><svg") == 1 and "fav 100%" in section  # the chart, with favourite rates
    assert "<td>Be truthful.</td><td>paraphrase</td><td>3</td><td>0</td><td>5 " in section
    assert "<td>Deceive when useful.</td><td>opposite</td>" in section and "By relation to the target" in section
