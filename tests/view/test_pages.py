"""The viewer without a browser: where it reads (never the store's lock), and what its endpoints answer (pages,
the graph's merges, cycles and fixed points, search, judgements at the steps that reached their node, errors)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stability.records import ExperimentRecord, JudgementRecord
from stability.store import Store
from stability.store.judgements import insert_judgement
from tests.conftest import run_cli
from tests.view.store_builder import KEY, build

pytest.importorskip("starlette", reason="starlette is not installed (pip install -e '.[view]')")

from stability.view import Viewer  # noqa: E402
from stability.view.source import StoreSource  # noqa: E402


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("grid")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STABILITY_RETRY_INITIAL", "0")
        return folder / "grid.duckdb", build(folder, folder / "grid.duckdb")


@pytest.fixture
def viewer(grid: tuple[Path, str], tmp_path: Path) -> Iterator[tuple[Viewer, str, Path]]:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(grid[0].read_bytes())
    with Viewer(db) as running:
        yield running, grid[1], db


def get(viewer: Viewer, path: str) -> Any:
    with urllib.request.urlopen(viewer.url + path, timeout=60) as response:
        return json.loads(response.read())


def test_the_viewer_never_locks_the_store_and_sees_what_a_writer_wrote(grid: tuple[Path, str],
                                                                      tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    db.write_bytes(grid[0].read_bytes())
    source = StoreSource(str(db))
    try:
        with source.reading() as store:
            assert len(store.experiments()) == 1
        assert (source.kind, source.refreshes) == ("copy", 1)
        with source.reading():
            pass
        assert source.refreshes == 1  # an unchanged file is not copied again
        with Store.open(db) as writer:  # the viewer holds no lock: a run can open the store for writing
            writer.put_experiment(ExperimentRecord(id="second-1", name="second", spec={},
                                                   created_at=datetime.now(UTC)), [])
            with source.reading() as store:  # a writer without a snapshot yet: what was read before
                assert len(store.experiments()) == 1
            assert source.state()["writing"] is True
        with source.reading() as store:  # written and closed: copied again
            assert [e.name for e in store.experiments()] == ["viewer-grid", "second"]
        assert source.refreshes == 2 and source.state()["writing"] is False
    finally:
        source.close()
    assert not source.folder.exists()


def test_a_run_writing_is_read_through_its_snapshot(grid: tuple[Path, str], tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    db.write_bytes(grid[0].read_bytes())
    source = StoreSource(str(db))
    try:
        with Store.open(db) as writer:
            writer.put_experiment(ExperimentRecord(id="second-1", name="second", spec={},
                                                   created_at=datetime.now(UTC)), [])
            publisher = writer._publisher
            assert publisher is not None
            publisher.publish(writer.con)  # what the writer's snapshot thread does once one is due
            with source.reading() as store:
                assert len(store.experiments()) == 2
            assert source.kind == "snapshot"
    finally:
        source.close()


def test_pages_are_paginated_and_the_graph_marks_merges_cycles_and_fixed_points(
        viewer: tuple[Viewer, str, Path]) -> None:
    running, experiment, _ = viewer
    detail = get(running, f"/api/experiments/{experiment}?limit=2&offset=1")
    assert detail["cells"] == 6 and detail["varied"] == ["constitution", "seed"]
    assert detail["group_by"] == ["constitution"]
    assert [c["position"] for c in detail["cell_page"]["rows"]] == [1, 2] and detail["cell_page"]["total"] == 6
    assert detail["totals"]["calls"] == 16 and detail["totals"]["paid"] == 16
    graph = get(running, f"/api/graph?experiment={experiment}")
    assert (graph["total_nodes"], graph["truncated"]) == (5, False)
    assert graph["counts"] == {"merges": 1, "fixed_points": 1, "cycles": 1, "starts": 3}
    [merge] = [n for n in graph["nodes"] if n["merge"]]
    assert merge["fixed"] == 4 and merge["first"] == "be honest about uncertainty"
    assert any(e["cycle"] for e in graph["edges"])
    small = get(running, f"/api/graph?experiment={experiment}&max_nodes=2")
    assert small["truncated"] and len(small["nodes"]) == 2 and small["total_nodes"] == 5
    assert all(e["source"] in {n["node"] for n in small["nodes"]} for e in small["edges"])
    node = get(running, f"/api/nodes/{merge['node']}?limit=3")
    assert node["principles"] == ["be honest about uncertainty", "be kind"]
    assert node["runs"]["total"] == 4 and len(node["runs"]["rows"]) == 3
    groups = get(running, f"/api/experiments/{experiment}/groups")
    assert [g["label"] for g in groups["groups"]] == ["constitution=alpha.md", "constitution=beta.md",
                                                      "constitution=swing.md"]
    assert groups["groups"][2]["verdicts"]["cycle"] == 2 and groups["groups"][0]["fixed_point_rate"]["mean"] == 1.0
    # the contrasts, with the strings `analyze` and the report print for the same numbers
    from stability.analysis.contrasts import Contrast, ContrastEstimate
    from stability.analysis.summary_text import contrast_cell, incidence_contrast_text

    assert groups["contrasts_total"] == 3 and groups["adjust"] == "holm" and len(groups["contrasts"]) == 3
    for contrast in groups["contrasts"]:
        assert contrast["text"]["fixed_point_rate"] == contrast_cell(ContrastEstimate(**contrast["fixed_point_rate"]))
        assert contrast["text"]["paired"].startswith("yes" if contrast["paired"] else "no")
        model = Contrast(**{k: v for k, v in contrast.items() if k != "text"})
        assert contrast["text"]["incidence"] == incidence_contrast_text(model) is not None
    assert all((g["text"]["incidence"] or "").startswith("by step ") for g in groups["groups"])
    swing = get(running, f"/api/graph?experiment={experiment}&group=2")
    assert swing["runs"] == 2 and swing["total_nodes"] == 2


def test_search_matches_text_literally_and_says_where(viewer: tuple[Viewer, str, Path]) -> None:
    running, _, _ = viewer
    found = get(running, "/api/search?q=BE%20KIND")
    assert [r["text"] for r in found["rows"]] == ["be kind"] and found["rows"][0]["runs"] == 4
    appears = found["rows"][0]["appears"]
    assert len(appears) == 3 and {"run_id", "step", "position"} <= set(appears[0])
    assert get(running, "/api/search?q=%25")["total"] == 0  # % is a character, not a wildcard
    assert get(running, "/api/search?q=")["rows"] == []


def test_judgements_show_at_the_step_that_reached_their_node(viewer: tuple[Viewer, str, Path]) -> None:
    running, experiment, db = viewer
    run_id = get(running, f"/api/experiments/{experiment}")["cell_page"]["rows"][0]["run_id"]
    run = get(running, f"/api/runs/{run_id}")
    assert run["has_judgements"] is False
    node = [s for s in run["steps"]["rows"] if s["step"] == 1][0]["constitution_hash"]
    with Store.open(db) as store:
        insert_judgement(store, JudgementRecord(
            id="j1", judge_key="k", judge_model="scripted/judge", template_hash="t", question="contradiction",
            subject_key="s", subjects=[node], verdict="none", rationale="consistent", call_id="c-j",
            created_at=datetime.now(UTC).replace(tzinfo=None)))
    run = get(running, f"/api/runs/{run_id}")
    assert run["has_judgements"] is True
    reached = [s for s in run["steps"]["rows"] if s["constitution_hash"] == node]
    assert reached and all(s["judgements"][0]["verdict"] == "none" for s in reached)
    assert all(not s["judgements"] for s in run["steps"]["rows"] if s["constitution_hash"] != node)
    assert get(running, f"/api/runs/{run_id}/steps/1")["judgements"][0]["id"] == "j1"


def test_missing_things_are_404_with_one_line_and_no_key_anywhere(viewer: tuple[Viewer, str, Path]) -> None:
    running, experiment, _ = viewer
    for path in ("/api/runs/r-nope", "/api/calls/c-nope", "/api/experiments/nope", "/api/nodes/sha256:nope"):
        with pytest.raises(urllib.error.HTTPError) as failed:
            get(running, path)
        assert failed.value.code == 404
        assert "\n" not in json.loads(failed.value.read())["error"]
    run_id = get(running, f"/api/experiments/{experiment}")["cell_page"]["rows"][0]["run_id"]
    pages = [get(running, p) for p in ("/api/experiments", f"/api/runs/{run_id}", f"/api/experiments/{experiment}")]
    assert KEY not in json.dumps(pages)
    with urllib.request.urlopen(running.url + "/", timeout=30) as response:
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert running.url.startswith("http://127.0.0.1:")


def test_bad_input_is_one_line_and_exit_2(viewer: tuple[Viewer, str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    running, _, db = viewer
    code, _, err = run_cli(["view", "--db", str(tmp_path / "missing.duckdb")], capsys, monkeypatch)
    assert code == 2 and err.strip() == f"error: {tmp_path / 'missing.duckdb'}: no such database (check --db, or run " \
                                        "`stability iterate` first)"
    port = running.url.rsplit(":", 1)[1]
    code, _, err = run_cli(["view", "--db", str(db), "--port", port], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def test_the_experiment_page_gets_the_findings_with_the_reports_figures(viewer: tuple[Viewer, str, Path]) -> None:
    import base64

    running, experiment, _ = viewer
    found = get(running, f"/api/experiments/{experiment}/findings")
    answered = {q["question"]: q for q in found["questions"]}
    assert {"convergence-by-route", "similar-vs-dissimilar-starts"} <= set(answered)
    route = answered["convergence-by-route"]
    assert route["title"].startswith("2. ") and route["rows"][0][:2] == ["fixed_point_rate", "route=fresh-instances"]
    figure = route["figures"][0]
    assert figure.startswith("data:image/svg+xml;base64,")
    assert b"<svg" in base64.b64decode(figure.split(",", 1)[1])
    assert "blank-slate" in {u["question"] for u in found["unanswerable"]} and found["adjust"] == "holm"
    survival = answered["principle-survival"]  # question 1 too, with its survival curves
    assert survival["title"].startswith("1. ") and len(survival["figures"]) >= 2
    assert b"share not yet removed" in b"".join(base64.b64decode(f.split(",", 1)[1]) for f in survival["figures"])
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(running, "/api/experiments/no-such-experiment/findings")
    assert missing.value.code == 404
