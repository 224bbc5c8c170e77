from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STABILITY_LIBRARY_DIR"}
    return subprocess.run([sys.executable, "-m", "stability", "constitutions", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)


def test_list_json_with_tags() -> None:
    every = json.loads(cli("--json").stdout)
    files = [p for p in (ROOT / "constitutions").rglob("*.md") if p.name != "README.md"]
    assert len(every) == len(files)
    neutral = json.loads(cli("--tag", "condition=neutral", "--json").stdout)
    assert neutral and {e["tags"]["condition"] for e in neutral} == {"neutral"}
    assert all(e["tags"]["pair"].startswith("consistent/") for e in neutral)
    narrow = json.loads(cli("--tag", "condition=axes", "--tag", "axis=target", "--json").stdout)
    assert sorted(e["tags"]["value"] for e in narrow) == ["corrigibility", "moral-alignment"]
    table = cli("--tag", "similarity=close")
    assert table.returncode == 0
    assert "frontier-like/anthropic-like" in table.stdout and "frontier-like/asimov-like" not in table.stdout


def test_show_prints_metadata_and_principles() -> None:
    shown = cli("show", "contradictory/honesty-vs-comfort")
    assert shown.returncode == 0, shown.stderr
    assert "twin: consistent/honesty-vs-comfort-repaired.md" in shown.stdout
    assert "kind: direct-negation" in shown.stdout
    assert "- Honesty comes before every other principle." in shown.stdout
    assert "honesty-vs-comfort.alternatives.yaml" in shown.stdout
    as_json = json.loads(cli("show", "procedure-3", "--json").stdout)
    assert as_json["name"] == "neutral/procedure-3" and as_json["metadata"]["pair"] == "consistent/minimal.md"
    assert len(as_json["principles"]) == as_json["metadata"]["size"] == 3


def test_unknown_name_and_bad_tag_are_one_line_exit_2() -> None:
    for args, expected in [(("show", "minimall"), "did you mean 'minimal'"),
                           (("--tag", "colour=red"), "no entry has tag 'colour'"),
                           (("--tag", "condition"), "expected KEY=VALUE")]:
        done = cli(*args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and expected in done.stderr and "Traceback" not in done.stderr


def test_broken_library_is_reported(tmp_path: Path) -> None:
    library = Path(shutil.copytree(ROOT / "constitutions", tmp_path / "constitutions"))
    assert cli("check", "--library", str(library)).returncode == 0
    minimal = library / "consistent/minimal.md"
    minimal.write_text(minimal.read_text().replace("size: 3", "size: 9"))
    listed = cli("--library", str(library))
    assert listed.returncode == 2
    assert listed.stderr == f"error: {minimal}:3: metadata size: says 9 but the file has 3 principles\n"
    (library / "neutral/procedure-7.md").write_text("- I read the message.\n")
    checked = cli("check", "--library", str(library))
    assert checked.returncode == 2
    lines = checked.stderr.splitlines()
    assert lines[:2] == [f"error: {minimal}:3: metadata size: says 9 but the file has 3 principles",
                         f"error: {library}/neutral/procedure-7.md:1: no front matter: a library file starts with "
                         "'---' metadata (see README)"]
    assert lines[2].startswith("error: 2 problem(s) in the constitution library")
