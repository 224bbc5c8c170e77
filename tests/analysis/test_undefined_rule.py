"""One rule for an undefined measure in all four outputs (the terminal's table, ``--json``, the HTML report, the
viewer): it is shown as undefined with its reason, never as a number.

The design of issue 32: scripted/decline, templates default and neutral, 2 replicates, ``--by templates``, one
group per template with one starting constitution. Two starts were compared (the library's helpful-honest.md and a
three-line file of our own): once, one got a convergence ratio of ``1 [1, 1]`` and the other none, because the
ratio summed pairs of runs from the *same* start, whose start distance is float32 noise (``1 − cos`` of a text with
itself) that rounds to 0 for one text and not for another. Pairs of one start are now left out, so one start has no
pairs: undefined, for every text.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stability.analysis.between_starts import StartDistances, group_ratio
from stability.experiment import run_experiment
from stability.testing.specs import write_spec
from tests.conftest import ROOT, run_cli, write

STARTS = {"library": str(ROOT / "constitutions" / "consistent" / "helpful-honest.md"), "own": "three.md"}
ONE_START = "fewer than 2 starts: no pairs of runs from different starts"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("undefined")
    write(folder / "three.md", "- I am honest.\n- I am kind.\n- I am brief.\n")
    db = folder / "store.duckdb"
    ids = {}
    for name, start in STARTS.items():
        spec = write_spec(folder / f"{name}.yaml", name=f"one-start-{name}", models=["scripted/decline"],
                          constitutions=[start if start.startswith("/") else str(folder / start)],
                          protocol="fresh-instance", templates=["default", "neutral"], replicates=2)
        ids[name] = run_experiment(spec, db).experiment_id
    return db, ids


def _analyze(db: Path, experiment: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
             *extra: str) -> str:
    code, out, err = run_cli(["analyze", experiment, "--by", "templates", "--embedder", "hashing", "--db", str(db),
                              *extra], capsys, monkeypatch)
    assert code == 0, err
    return out


@pytest.mark.parametrize("start", list(STARTS))
def test_one_start_has_no_convergence_ratio_in_any_output(store: tuple[Path, dict[str, str]], start: str,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    db, ids = store
    experiment = ids[start]
    # --json: null, with the reason beside it
    document = json.loads(_analyze(db, experiment, capsys, monkeypatch, "--json"))
    assert [g["label"] for g in document["groups"]] == ["templates=default", "templates=neutral"]
    for group in document["groups"]:
        ratio = group["convergence_ratio"]
        assert (ratio["mean"], ratio["low"], ratio["high"], ratio["note"]) == (None, None, None, ONE_START)
        assert (ratio["null_low"], ratio["null_high"], ratio["p_value"]) == (None, None, None)
    cross = document["cross_run"]
    assert cross["convergence_ratio"] is None
    assert cross["convergence_ratio_note"] == "one start: no spread of starts to compare"
    # the terminal's table and the line under it
    table = _analyze(db, experiment, capsys, monkeypatch)
    assert table.count("– (fewer than 2") == 2, table  # each group's cell (the table wraps the rest of it)
    assert "convergence ratio – (one start: no spread of starts to compare)" in table
    assert "1 [1, 1]" not in table and "n/a" not in table and not any(line.endswith(": –")
                                                                     for line in table.splitlines())
    # the HTML report: the same text, and no ratio figure (nothing to draw)
    report = tmp_path / "r.html"
    code, _, err = run_cli(["report", experiment, "--by", "templates", "--embedder", "hashing", "--db", str(db),
                            "-o", str(report)], capsys, monkeypatch)
    assert code == 0, err
    html = report.read_text(encoding="utf-8")
    assert html.count(f"– ({ONE_START})") == 2 and "– (one start: no spread of starts to compare)" in html
    assert "1 [1, 1]" not in html and "n/a" not in html and "convergence ratio (95% CI" not in html
    # the viewer: the same cells, no null range made of dashes, no number
    pytest.importorskip("starlette", reason="starlette is not installed (pip install -e '.[view]')")
    from stability.view.groups import GroupCache
    from stability.view.source import StoreSource

    source = StoreSource(str(db))
    try:
        cache = GroupCache(source, "hashing")
        shown = cache.groups(experiment, ["templates"])
        figures = cache.figures(experiment, ["templates"])
    finally:
        source.close()
    assert [g["text"]["convergence_ratio"] for g in shown["groups"]] == [f"– ({ONE_START})"] * 2
    assert all(g["text"]["steps_to_fixed_point"] == "0 [0, 0] (2 reached, 0 censored)" for g in shown["groups"])
    assert "–––" not in json.dumps(shown, ensure_ascii=False)
    assert [f["name"] for f in figures["figures"]] == ["rates", "survival", "curves"]  # no ratio to draw


def test_a_start_whose_self_distance_is_float_noise_still_has_no_ratio() -> None:
    """Two runs of one start whose start distance is 6e-8, not 0 (float32 rounding of 1 − cos): no ratio."""
    noise = np.array([[0.0, 6e-8], [6e-8, 0.0]], dtype=np.float32)
    distances = StartDistances(noise, noise.copy(), ["s", "s"])
    ratio = group_ratio(distances, {"s": [0, 1]}, {"s": [0, 1]}, n=2, permutations=50, seed=0)
    assert ratio.mean is None and ratio.note == ONE_START
