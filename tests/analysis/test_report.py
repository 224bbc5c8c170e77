from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pytest

from stability.analysis.embeddings import SentenceTransformerEmbedder
from stability.analysis.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _root_element(chromium: str, flags: list[str], url: str) -> str:
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r"<html[^>]*>", dom.stdout)
    assert match is not None
    return match.group(0)


def test_report_is_self_contained(experiment_copy: Path, tmp_path: Path) -> None:
    path = write_report([], tmp_path / "report.html", experiment_copy, all_runs=True, embedder="hashing")
    text = path.read_text(encoding="utf-8")
    # findings: principle survival (its estimates, then survival curves up to 6 figures), routes, consistent vs
    # contradictory, starts, attractor strength (n_principles, mean_principle_words); groups: rates,
    # Kaplan–Meier, convergence ratios; then curves, graph, attractors, conditions
    assert text.count("<figure><svg") == 6 + 3 + 2 + 7
    assert "share not yet removed" in text and "identity (no pull)" in text
    for question in ("principle-survival", "convergence-by-route", "consistent-vs-contradictory",
                     "similar-vs-dissimilar-starts", "attractor-strength"):
        assert f'<h3 id="finding-{question}">' in text
    assert "<b>blank-slate</b>: no self-authored start" in text  # and what it cannot answer, with why
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing to fetch
    assert "<img" not in text and "<link" not in text
    for heading in ("Findings", "Groups", "Convergence", "Revision graph", "Attractors", "Consistent vs contradictory",
                    "Per-step diffs"):
        assert f"<h2>{heading}</h2>" in text
    assert "reworded:" in text and "removed:" in text  # the diffs classify principles


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_headless_chromium(grid_db: Path, tmp_path: Path,
                                             minilm: SentenceTransformerEmbedder) -> None:
    """The report of two experiments grouped by model, with the real embedder, in a real browser."""
    from tests.analysis import grid

    assert CHROMIUM is not None
    grid.register()
    db = tmp_path / "grid.duckdb"
    shutil.copy(grid_db, db)
    path = write_report(["grid", "grid-twins"], tmp_path / "report.html", db, embedder=minilm, by=["model"])
    # findings: principle survival (6), routes, consistent vs contradictory, starts, attractor strength (two
    # properties x two protocols); groups: rates, Kaplan–Meier, ratios; curves, graph, attractors, paired twins,
    # conditions
    assert path.read_text(encoding="utf-8").count("<figure><svg") == 6 + 3 + 4 + 8 == 21
    flags = [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    url = path.resolve().as_uri()
    root = _root_element(CHROMIUM, flags, url)
    assert 'data-figures="21"' in root  # the inline script ran and found every figure
    assert "data-script-error" not in root
    # The check can fail: a page with a broken script is caught.
    broken = tmp_path / "broken.html"
    broken.write_text(path.read_text(encoding="utf-8").replace("</body>", "<script>undefinedThing();</script></body>"),
                      encoding="utf-8")
    assert "data-script-error" in _root_element(CHROMIUM, flags, broken.resolve().as_uri())
    shot = tmp_path / "shot.png"
    done = subprocess.run([CHROMIUM, *flags, "--window-size=1280,2600", f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    # Not a blank page: the figures and tables put many distinct colours on it.
    assert pixels[..., :3].std() > 0.05
    assert len({tuple(p) for p in (pixels[::20, ::20, :3] * 255).astype(int).reshape(-1, 3).tolist()}) > 20


def test_report_grouped_by_model(grid_db: Path, tmp_path: Path) -> None:
    from tests.analysis import grid

    grid.register()
    db = tmp_path / "grid.duckdb"
    shutil.copy(grid_db, db)
    path = write_report(["grid", "grid-twins"], tmp_path / "report.html", db, embedder="hashing", by=["model"])
    text = path.read_text(encoding="utf-8")
    groups = text[text.index("<h2>Groups</h2>"):text.index("<h2>Convergence</h2>")]
    assert groups.count("<figure><svg") == 3 and "<h3>Contrasts (a − b)</h3>" in groups
    for model in grid.MODELS:  # one legend entry per group in every group figure, with its n
        assert groups.count(f"model=scripted/{model} (") >= 2
    assert "Kaplan–Meier" in groups and "censored" in groups and "n=6" in groups and "n=10" in groups
    assert "permutation null" in groups and "no verdict" in groups
    assert "<h3>Attractors of model=scripted/grid-shrink</h3>" in groups
    assert "<h3>Attractors of model=scripted/grid-fail</h3>" not in groups  # no verdict: no attractor
    # the contrasts show the numbers `analyze` gives, in the strings it prints: paired, effect, p and adjusted p
    import html

    from stability.analysis import analyze
    from stability.analysis.summary_text import contrast_cell, incidence_contrast_text, incidence_text

    result = analyze(["grid", "grid-twins"], db, embedder="hashing", by=["model"])
    assert "<th>paired</th>" in groups and result.contrasts
    for contrast in result.contrasts:
        assert html.escape(contrast_cell(contrast.fixed_point_rate)) in groups
        assert html.escape(contrast_cell(contrast.convergence_ratio)) in groups
        risks = incidence_contrast_text(contrast)
        assert risks is None or html.escape(risks) in groups
    # the competing risks, in the strings `analyze` prints
    assert "<h3>Competing risks</h3>" in groups
    for group in result.groups:
        risks = incidence_text(group.incidence)
        assert risks is None or html.escape(risks) in groups
    assert any(incidence_contrast_text(c) for c in result.contrasts)
    twins = text[text.index("<h2>Contradictory vs repaired twin (paired)</h2>"):]
    assert "2 pairs" in twins and "<figure><svg" in twins
