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
