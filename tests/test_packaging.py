"""The built wheel is enough on its own: templates, ready specs and the library ship inside it.

The wheel is built from a copy of the source (offline, with the development environment's setuptools) and
installed into a fresh virtual environment whose dependencies come from the development environment through a
``.pth`` file. From an unrelated folder, with no checkout in sight, it runs a protocol on a scripted model, a
ready spec by name, and ``stability constitutions``.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, write

SOURCES = ("pyproject.toml", "setup.py", "README.md", "stability", "protocols", "constitutions")


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin/ folder."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(tmp / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp / "dist").glob("stability-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("protocols", "constitutions"):
        assert {f"stability/_data/{folder}/{f}" for f in files_under(ROOT / folder)} <= names, folder
    static = ROOT / "stability" / "view" / "static"  # the viewer's page and bundled cytoscape.js
    assert {f"stability/view/static/{f.name}" for f in static.iterdir()} <= names

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # --ignore-installed: a stability.egg-info that the target could see (a checkout on PYTHONPATH) is not an install
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                           "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)], capture_output=True,
                          text=True, timeout=300, cwd=tmp, env=clean_environment())
    assert done.returncode == 0, done.stderr
    assert (venv / "bin" / "stability").is_file()
    # Then the dependencies, from the development environment (after the install, so that pip never sees the
    # development environment's own stability; its .pth files, such as an editable checkout's, are not read).
    [packages] = (venv / "lib").glob("python3*/site-packages")
    write(packages / "development-dependencies.pth", "\n".join(site.getsitepackages()) + "\n")
    return venv / "bin"


def clean_environment() -> dict[str, str]:
    """This process's environment, less what would point at the checkout or at other data."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STABILITY_PROTOCOLS_DIR",
                                                             "STABILITY_LIBRARY_DIR", "STABILITY_DB")}


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An unrelated working folder, and an environment that cannot see the checkout."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder, clean_environment()


def test_the_installed_package_finds_its_data_inside_itself(installed: Path,
                                                            elsewhere: tuple[Path, dict[str, str]]) -> None:
    folder, env = elsewhere
    probe = ("import json, stability, stability.resources as r; print(json.dumps([stability.__file__, "
             "str(r.protocols_root()), str(r.library_root()), str(r.checkout_root())]))")
    shown = subprocess.run([str(installed / "python"), "-c", probe], capture_output=True, text=True, cwd=folder,
                           env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    module, protocols, library, checkout = json.loads(shown.stdout)
    package = Path(module).parent
    assert package.parent.name == "site-packages" and str(installed.parent) in module
    assert (Path(protocols), Path(library), checkout) == (package / "_data" / "protocols",
                                                          package / "_data" / "constitutions", "None")
    assert files_under(Path(protocols)) == files_under(ROOT / "protocols")
    assert files_under(Path(library)) == files_under(ROOT / "constitutions")


def test_the_installed_cli_runs_from_an_unrelated_folder(installed: Path,
                                                         elsewhere: tuple[Path, dict[str, str]]) -> None:
    folder, env = elsewhere

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(installed / "stability"), *args], capture_output=True, text=True, cwd=folder,
                              env={**env, **extra}, timeout=300)

    start = write(folder / "c.md", "# T\n- a\n- b\n")
    for protocol in ("fresh-instance", "in-context-iteration"):
        done = cli("iterate", "--protocol", protocol, "--model", "scripted/decline", "--constitution", str(start),
                   "--db", f"{protocol}.duckdb")
        assert done.returncode == 0, done.stderr
        assert "stop: declined" in done.stdout
    listed = cli("constitutions", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {entry["name"] for entry in json.loads(listed.stdout)}
    assert "contradictory/honesty-vs-comfort" in names
    assert len(names) == len([p for p in (ROOT / "constitutions").rglob("*.md") if p.name != "README.md"])
    ready = cli("run", "consistent-vs-contradictory", "--dry-run", "--json", "--db", "runs.duckdb")
    assert ready.returncode == 0, ready.stderr
    assert json.loads(ready.stdout)["estimate"]["runs"] == 90  # 5 contradictory + 5 repaired, 3 protocols, x3

    # A researcher's own folders override the packaged ones.
    own = folder / "own-protocols"
    shutil.copytree(ROOT / "protocols" / "fresh-instance", own / "fresh-instance")
    write(own / "fresh-instance" / "system.md", "My own system prompt.\n")
    mine = cli("iterate", "--model", "scripted/decline", "--constitution", str(start), "--db", "mine.duckdb",
               STABILITY_PROTOCOLS_DIR=str(own))
    assert mine.returncode == 0, mine.stderr

    def template_hash(db: str) -> str:
        [run] = json.loads(cli("runs", "--json", "--db", db).stdout)
        shown: dict[str, dict[str, str]] = json.loads(cli("show", run["id"], "--json", "--db", db).stdout)
        return shown["run"]["template_hash"]

    assert template_hash("mine.duckdb") != template_hash("fresh-instance.duckdb")
    library = folder / "own-library" / "consistent"
    library.mkdir(parents=True)
    for name in ("minimal.md", "minimal.alternatives.yaml"):
        shutil.copy2(ROOT / "constitutions" / "consistent" / name, library / name)
    theirs = cli("constitutions", "--json", STABILITY_LIBRARY_DIR=str(library.parent))
    assert theirs.returncode == 0, theirs.stderr
    assert [entry["name"] for entry in json.loads(theirs.stdout)] == ["consistent/minimal"]
