"""Where templates, ready specs and the library are found: a researcher's folder, else the checkout (an installed
package's own copy is tested in tests/test_packaging.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stability.engine.templates import Templates, protocols_dir
from stability.experiment.spec import ExperimentSpec, constitution_files
from stability.library import list_constitutions
from stability.resources import checkout_root, in_library, library_root, protocols_root, ready_spec
from tests.conftest import ROOT, write


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STABILITY_PROTOCOLS_DIR", raising=False)
    monkeypatch.delenv("STABILITY_LIBRARY_DIR", raising=False)


def test_a_checkout_reads_its_own_folders() -> None:
    assert checkout_root() == ROOT
    assert protocols_root() == protocols_dir() == ROOT / "protocols"
    assert library_root() == ROOT / "constitutions"


def test_variables_name_a_researchers_own_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "protocols" / "fresh-instance" / "system.md", "mine\n")
    monkeypatch.setenv("STABILITY_PROTOCOLS_DIR", str(tmp_path / "protocols"))
    assert Templates("fresh-instance").text == {"system.md": "mine\n"}
    library = tmp_path / "library"
    for name in ("minimal.md", "minimal.alternatives.yaml"):
        write(library / "consistent" / name, (ROOT / "constitutions" / "consistent" / name).read_text())
    monkeypatch.setenv("STABILITY_LIBRARY_DIR", str(library))
    assert [entry.name for entry in list_constitutions([])] == ["consistent/minimal"]


def test_ready_specs_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ROOT / "protocols" / "specs" / "axis-sweep.yaml"
    assert ready_spec("axis-sweep") == ready_spec("axis-sweep.yaml") == spec
    assert ready_spec("no-such-spec") is None
    assert ready_spec("protocols/specs/axis-sweep.yaml") is None  # a path is a path
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "axis-sweep", "a file of that name wins\n")
    assert ready_spec("axis-sweep") is None


def test_spec_paths_into_constitutions_fall_back_to_the_library(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert in_library("constitutions/consistent/*.md") == str(ROOT / "constitutions" / "consistent" / "*.md")
    assert in_library("elsewhere/x.md") is None and in_library("constitutions") is None
    monkeypatch.chdir(tmp_path)  # no constitutions/ here, nor beside the spec
    spec = ExperimentSpec(name="x", models=["scripted/decline"], constitutions=["constitutions/neutral/*.md"],
                          protocols=[{"name": "fresh-instance"}])
    files = constitution_files(spec, tmp_path / "spec.yaml")
    assert files == sorted(str(p) for p in (ROOT / "constitutions" / "neutral").glob("*.md"))
    write(tmp_path / "constitutions" / "neutral" / "mine.md", "- a\n")  # the working directory still comes first
    assert constitution_files(spec, tmp_path / "spec.yaml") == ["constitutions/neutral/mine.md"]
