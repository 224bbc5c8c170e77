"""The documentation site: the command reference is the commands' own, every command's ``--help`` agrees with it,
and the site builds with warnings as errors (``mkdocs build --strict``, the API reference from the docstrings)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

sys.path.insert(0, str(ROOT / "docs"))
import cli_reference  # noqa: E402  (docs/cli_reference.py: the page's writer)

FLAG = re.compile(r"(?<![\w-])--?[a-z][a-z0-9-]*")


def _sections() -> dict[str, str]:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parts = re.split(r"^## `(stability[^`]*)`$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_command_reference_is_what_the_commands_declare() -> None:
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == cli_reference.page(), \
        "docs/cli.md is stale: run python docs/cli_reference.py"


def test_every_commands_help_and_the_docs_agree(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    sections = _sections()
    commands = cli_reference.commands()
    assert [name for name, _ in commands] == list(sections), "a command without a section, or a section too many"
    monkeypatch.setenv("COLUMNS", "240")
    monkeypatch.setenv("TERMINAL_WIDTH", "240")
    for name, command in commands:
        code, out, err = run_cli([*name.split()[1:], "--help"], capsys, monkeypatch)
        assert code == 0, (name, err)
        shown = set(FLAG.findall(out)) - {"--help"}
        documented = set(FLAG.findall(sections[name]))
        declared = set(cli_reference.flags(command))
        assert declared <= shown, (name, "flags the commands declare but --help does not show", declared - shown)
        assert declared <= documented, (name, "flags missing from docs/cli.md", declared - documented)
        assert shown <= documented, (name, "--help names flags docs/cli.md does not", shown - documented)
        first = " ".join((command.help or "").split("\n\n")[0].split())
        assert first in " ".join(out.replace("│", " ").split()) or not first, name


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed "
                    "(pip install -e '.[docs]')")
def test_the_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "read_document" in api and "import_chain" in api  # the docstrings made it into the reference
    assert (tmp_path / "site" / "cli" / "index.html").exists()
    for api_page, name in API_PAGES.items():  # the main public modules, each from its docstrings
        html = (tmp_path / "site" / api_page / "index.html").read_text(encoding="utf-8")
        assert f'id="{name}"' in html, (api_page, name)
    for page in (ROOT / "docs" / "benchmarks").glob("*.md"):
        built = tmp_path / "site" / "benchmarks" / ("" if page.stem == "index" else page.stem) / "index.html"
        assert built.exists(), page.name


#: an API page and one object its docstrings must document
API_PAGES = {"api-vocabulary": "stability.vocabulary.generation.GenerateConfig",
             "api-engine": "stability.engine.execute.start_or_resume",
             "api-store": "stability.store.store.Store.find_calls",
             "api-findings": "stability.analysis.findings.record.Finding",
             "api-protocols": "stability.protocols.base.ReflectionProtocol"}


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_opens_with_the_two_commands_ci_runs() -> None:
    first = re.search(r"```bash\n(.*?)```", _readme(), re.S)
    assert first is not None
    lines = first.group(1).splitlines()
    assert [line[:3] for line in lines[0::2]] == ["# 1", "# 2"], lines  # .ci/run reads the line after '# 2.'
    assert lines[1].startswith("python3 -m venv .venv") and lines[3].endswith("ruff check . && mypy && pytest")


def test_the_readme_tour_runs_real_commands_and_its_links_resolve() -> None:
    readme = _readme()
    assert len(readme.splitlines()) <= 80, "the README is a newcomer's one screen: the rest belongs in docs/"
    tour = readme.split("## A five-minute tour", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    known = {name for name, _ in cli_reference.commands()}
    used = {" ".join(line.split("&& ")[-1].split()[:2]) for line in tour.splitlines() if "stability " in line}
    assert {"stability iterate", "stability show", "stability run", "stability analyze", "stability findings",
            "stability report", "stability view"} <= used <= known, used - known
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert links and all((ROOT / link).is_file() for link in links), [x for x in links if not (ROOT / x).is_file()]
    linked = {Path(link).name for link in links if link.startswith("docs/") and "/" not in link[5:]}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages - {p for p in pages if p.startswith("api-")} <= linked | {"api.md"}, pages - linked


def test_every_benchmark_page_is_on_the_benchmarks_index() -> None:
    index = (ROOT / "docs" / "benchmarks" / "index.md").read_text(encoding="utf-8")
    assert index.index("## Current figures") < index.index("## A page per benchmark")  # current figures first
    pages = {p.name for p in (ROOT / "docs" / "benchmarks").glob("*.md")} - {"index.md"}
    assert pages and pages <= set(re.findall(r"\]\(([a-z-]+\.md)\)", index)), pages
