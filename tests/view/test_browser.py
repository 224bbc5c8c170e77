"""``stability view`` in a real headless Chromium (Debian's ``chromium``, driven by Playwright with
``executable_path``; Playwright's own browsers are never installed): every page loads with no script error, a
click goes from an experiment to a run to a call, the graph draws, the key of the run appears nowhere, and two
viewers and a writer share one store without a hang.

One store, one viewer and one browser serve the whole module. The graph page's screenshot is ``docs/view.png``
(docs/viewer.md shows it): it is written there when missing or with ``STABILITY_UPDATE_SCREENSHOT=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.conftest import ROOT
from tests.gates import Gate
from tests.view.store_builder import KEY, answer, build, environment, spec

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("no chromium on this machine (Debian: apt-get install chromium); the viewer's browser tests need it",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
pytest.importorskip("starlette", reason="starlette is not installed (pip install -e '.[view]')")

from stability.view import Viewer  # noqa: E402  (after the skips: it needs starlette)

SCREENSHOT = ROOT / "docs" / "view.png"
#: a folder to save the pages' pictures in (the experiment page with its figures, the small graph), when set
SHOTS = os.environ.get("STABILITY_SCREENSHOT_DIR")


class Site:
    def __init__(self, db: Path, experiment: str, viewer: Viewer, page: Any) -> None:
        self.db, self.experiment, self.viewer, self.page = db, experiment, viewer, page
        self.problems: list[str] = []  # console errors and uncaught exceptions of the page
        self.api: set[str] = set()  # every endpoint the page asked for
        self.html: list[str] = []  # the page as shown, after each visit
        page.on("console", lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("request", lambda r: self.api.add(r.url) if "/api/" in r.url else None)

    def visit(self, route: str, ready: str) -> Any:
        self.page.goto("about:blank")  # a fresh load each time, even of the page already shown
        self.page.goto(f"{self.viewer.url}/{route}")
        return self.wait(ready)

    def wait(self, ready: str) -> Any:
        self.page.wait_for_selector(f'body[data-ready="{ready}"]', timeout=30_000)
        errors = self.page.locator("main .error").all_inner_texts()
        assert errors == [], errors
        self.html.append(self.page.content())
        return self.page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("view")
    db = folder / "store.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STABILITY_RETRY_INITIAL", "0")
        patch.setenv("STABILITY_EMBEDDING_CACHE", str(folder / "embeddings.duckdb"))
        experiment = build(folder, db)  # the run sent KEY with every request
        with Viewer(db, embedder="hashing") as viewer, sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            try:
                yield Site(db, experiment, viewer, page)
            finally:
                browser.close()


@pytest.fixture(autouse=True)
def _no_script_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "site" in request.fixturenames:
        site: Site = request.getfixturevalue("site")
        problems, site.problems[:] = list(site.problems), []
        assert problems == []


def first_run_and_call(db: Path, experiment: str) -> tuple[str, str]:
    with Store.open(db, read_only=True) as store:
        run = next(c.run_id for c in store.cells(experiment) if c.run_id)
        call = store.calls(run)[0].id
    return run, call


def test_every_page_loads_and_no_page_shows_the_key(site: Site) -> None:
    run, call = first_run_and_call(site.db, site.experiment)
    for route, ready in [("", "experiments"), (f"#/experiment/{site.experiment}", "experiment"),
                         (f"#/live/{site.experiment}", "live"), ("#/runs", "runs"), (f"#/run/{run}", "run"),
                         (f"#/step/{run}/1", "step"), (f"#/call/{call}", "call"),
                         (f"#/graph?experiment={site.experiment}", "graph"), ("#/search?q=kind", "search")]:
        page = site.visit(route, ready)
        assert page.locator("main h1").count() == 1, route
    site.visit(f"#/experiment/{site.experiment}", "experiment").wait_for_selector("#group-table", timeout=60_000)
    site.html.append(site.page.content())
    assert len(site.api) >= 9
    bodies = [urllib.request.urlopen(url, timeout=30).read().decode() for url in sorted(site.api)]
    assert all(KEY not in text for text in site.html + bodies)
    assert any("REVISED CONSTITUTION" in text for text in bodies)  # the calls' answers were on the pages


def test_click_from_an_experiment_to_a_run_to_a_call(site: Site) -> None:
    page = site.visit("#/experiments", "experiments")
    page.click("a.experiment-link")
    site.wait("experiment")
    assert "constitution" in page.inner_text("main")  # the varied factor
    page.wait_for_selector("#group-table", timeout=60_000)  # the analysis groups with their key figures
    groups = page.locator("#group-table tbody tr")
    assert groups.count() == 3 and "constitution=swing.md" in page.inner_text("#group-table")
    # the findings, with the report's figures as images
    page.wait_for_selector("#finding-convergence-by-route img.finding-figure", timeout=60_000)
    assert "cannot answer" in page.inner_text("#unanswerable")
    page.locator("#cells a.run-link").first.click()
    site.wait("run")
    assert page.locator("#chain tbody tr").count() >= 2
    page.locator("#chain a.call-link").first.click()
    site.wait("call")
    meta = page.inner_text("#call-meta")
    assert "revise" in meta and "openai/fake" in meta
    assert page.locator("pre.message").count() >= 2  # the request's messages
    assert "REVISED CONSTITUTION" in page.inner_text("#answer")


def test_a_call_shows_its_failed_attempt_and_its_thinking(site: Site) -> None:
    with Store.open(site.db) as store:
        [retried] = [c for r in store.run_ids() for c in store.calls(r) if c.attempts > 1]
        # the wire server's OpenAI answers carry no reasoning: give this call some, as a reasoning model's would
        store.con.execute("UPDATE calls SET thinking = 'First, weigh honesty.' WHERE id = ?", [retried.id])
    page = site.visit(f"#/call/{retried.id}", "call")
    assert "Failed attempts" in page.inner_text("main") and "500" in page.inner_text("main")
    assert page.inner_text("#thinking") == "First, weigh honesty."


def test_the_graph_draws_and_a_node_opens_its_text_and_runs(site: Site) -> None:
    page = site.visit(f"#/graph?experiment={site.experiment}", "graph")
    assert page.evaluate("window.cy.nodes().length") == 5
    # five nodes would fit the canvas at a zoom that draws their 8 px labels several times larger: capped
    assert page.evaluate("window.cy.zoom()") <= 1.25
    assert 8 * page.evaluate("window.cy.zoom()") <= 10  # a label's height on screen, in px
    painted = page.evaluate("""() => [...document.querySelectorAll('#cy canvas')].map((c) => {
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < data.length; i += 4) if (data[i]) n++; return n; })""")
    assert sum(painted) > 500, painted  # not blank
    assert page.evaluate("window.cy.nodes('.merge').length") == 1
    assert page.evaluate("window.cy.nodes('.fixed').length") == 1
    assert page.evaluate("window.cy.nodes('.cycle').length") >= 1
    # a real click on the merge node (the shared text every non-swinging run reached)
    x, y = page.evaluate("""() => { const p = window.cy.nodes('.merge')[0].renderedPosition();
        const box = document.getElementById('cy').getBoundingClientRect(); return [box.x + p.x, box.y + p.y]; }""")
    page.mouse.click(x, y)
    page.wait_for_selector("#node-text li")
    assert "be honest about uncertainty" in page.inner_text("#node-panel")
    assert page.locator("#node-panel a").count() == 4  # the four runs through it
    page.click("button[data-highlight=cycle]")
    assert page.evaluate("window.cy.elements('.faded').length") > 0
    page.click("button[data-highlight=cycle]")  # off again, for the picture
    page.evaluate("document.activeElement.blur()")
    shot = page.screenshot(full_page=True)
    if SHOTS:
        Path(SHOTS, "small-graph.png").write_bytes(shot)
    if os.environ.get("STABILITY_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        SCREENSHOT.write_bytes(shot)


def test_a_cut_graph_draws_plus_n_nodes_that_lead_to_every_node(site: Site) -> None:
    page = site.visit(f"#/graph?experiment={site.experiment}&max_nodes=2", "graph")
    assert "“+N” nodes lead to the rest" in page.inner_text("#graph-cut")
    drawn = "window.cy.nodes().not('.more').length"
    assert page.evaluate(drawn) == 2 and page.evaluate("window.cy.nodes('.more').length") >= 2
    # a real click on a "+N" node draws what it stands for beside it
    x, y = page.evaluate("""() => { const p = window.cy.nodes('.more')[0].renderedPosition();
        const box = document.getElementById('cy').getBoundingClientRect(); return [box.x + p.x, box.y + p.y]; }""")
    page.evaluate("delete document.body.dataset.drawn")
    page.mouse.click(x, y)
    page.wait_for_selector("body[data-drawn]")
    assert page.evaluate(drawn) > 2
    for _ in range(20):  # then every "+N" in turn, until none is left: all five constitutions are drawn
        if not page.evaluate("window.cy.nodes('.more').length"):
            break
        page.evaluate("() => { delete document.body.dataset.drawn; window.cy.nodes('.more')[0].emit('tap'); }")
        page.wait_for_selector("body[data-drawn]")
    assert page.evaluate("window.cy.nodes('.more').length") == 0 and page.evaluate(drawn) == 5
    assert page.evaluate("window.cy.nodes('.merge').length") == 1


def test_the_experiment_page_shows_the_reports_figures_for_its_groups(site: Site) -> None:
    page = site.visit(f"#/experiment/{site.experiment}", "experiment")
    page.wait_for_selector("#group-figures figure img", timeout=120_000)
    page.wait_for_function("[...document.querySelectorAll('#group-figures img')].every((i) => i.complete "
                           "&& i.naturalWidth > 0)", timeout=30_000)
    names = page.evaluate("[...document.querySelectorAll('#group-figures figure')].map((f) => f.dataset.name)")
    # the report's figures: rates with intervals, survival curves, curves per step (no ratio: one start a group)
    assert names == ["rates", "survival", "curves"], names
    widths = page.evaluate("[...document.querySelectorAll('#group-figures img')].map((i) => i.naturalWidth)")
    assert all(width > 200 for width in widths), widths
    svg = urllib.request.urlopen(f"{site.viewer.url}/api/experiments/{site.experiment}/figures",
                                 timeout=60).read().decode()
    for label in json.loads(urllib.request.urlopen(f"{site.viewer.url}/api/experiments/{site.experiment}/groups",
                                                   timeout=60).read())["groups"]:
        assert label["label"] in svg  # each group the page lists is in the figures' legends
    cells = page.inner_text("#group-table")
    # one start a group: each ratio is written as undefined with its reason, never a number or a range of dashes
    assert "–––" not in cells and cells.count("– (fewer than 2 starts: no pairs of runs from different starts)") == 3
    if SHOTS:
        page.locator("#group-figures").scroll_into_view_if_needed()
        Path(SHOTS, "experiment-figures.png").write_bytes(page.screenshot(full_page=True))


def test_search_finds_a_principle_and_goes_where_it_appears(site: Site) -> None:
    page = site.visit("#/search", "search")
    page.fill("#q", "HONEST about")
    page.press("#q", "Enter")
    site.wait("search")
    assert "be honest about uncertainty" in page.inner_text("#results")
    page.locator("#results a").first.click()
    site.wait("run")
    assert "be honest about uncertainty" in page.inner_text("#chain")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=20) as response:  # a hang fails the test here
        return dict(json.loads(response.read()))


def test_two_viewers_and_a_writer_share_one_store(site: Site, tmp_path: Path) -> None:
    """Viewer one (in this process, with the browser on its Live page) and viewer two (``stability view``, a
    process of its own) read a store while ``stability run`` writes a second experiment into it."""
    db = tmp_path / "shared.duckdb"
    shutil.copyfile(site.db, db)
    second = spec(tmp_path, name="second-grid", replicates=4)  # 12 runs
    port = _free_port()
    gate = Gate(answer)  # the run gets one answer at a time until both viewers have seen it writing
    other = subprocess.Popen([sys.executable, "-m", "stability", "view", "--db", str(db), "--port", str(port),
                              "--embedder", "hashing"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        with WireServer(reply=gate) as wire, Viewer(db, embedder="hashing") as mine:
            other_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:  # viewer two is up, and holds no lock that would stop the writer
                try:
                    _get(other_url + "/api/experiments")
                    break
                except OSError:
                    assert time.monotonic() < deadline and other.poll() is None, "viewer two did not start"
                    time.sleep(0.1)
            env = {**os.environ, **environment(wire), "STABILITY_SNAPSHOT_SECONDS": "0.3"}
            writer = subprocess.Popen([sys.executable, "-m", "stability", "run", str(second), "--db", str(db)],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            seen: list[tuple[bool, int]] = []
            live: list[int] = []  # cells finished, as the Live page showed them while the run wrote
            while writer.poll() is None:
                if not gate.opened and wire.count > gate.allowed:  # the run waits on a held request
                    gate.allow()
                for url in (mine.url, other_url):
                    found = _get(url + "/api/experiments")["experiments"]
                    status = _get(url + "/api/status")
                    seen.append((status["writing"], sum(e["cells"] for e in found)))
                    second = [e["id"] for e in found if e["name"] == "second-grid"]
                    if url == mine.url and second and not live:
                        site.page.goto(f"{mine.url}/#/live/{second[0]}")
                        site.wait("live")
                    if url == mine.url and second:
                        live.append(int(site.page.evaluate("document.body.dataset.live")))
                if any(writing for writing, _ in seen) and live and min(live) < 12:
                    gate.open()  # seen mid-run: the run may finish at its own pace
                time.sleep(0.2)
            assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
            assert any(writing for writing, _ in seen)  # the viewers read on while the run wrote
            [experiment] = [e["id"] for e in _get(mine.url + "/api/experiments")["experiments"]
                            if e["name"] == "second-grid"]
            assert site.page.url.endswith(f"#/live/{experiment}")  # the same page, never reloaded ...
            site.page.wait_for_selector('body[data-live="12"]', timeout=30_000)  # ... shows the end
            assert live and min(live) < 12, live  # and showed the experiment before it ended
            for url in (mine.url, other_url):
                progress = _get(f"{url}/api/experiments/{experiment}/progress")
                assert (progress["finished"], progress["states"]) == (12, {"done": 12})
                assert progress["source"]["writing"] is False
    finally:
        gate.open()
        other.terminate()
        stopped = other.wait(timeout=30)
    assert stopped == 128 + 15  # SIGTERM ends `stability view` through its clean-up (its copies removed)
