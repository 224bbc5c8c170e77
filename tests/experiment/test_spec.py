from __future__ import annotations

from pathlib import Path

import pytest

from stability.errors import InputError
from stability.experiment.spec import cell_key, expand, load_spec
from tests.conftest import write

SPEC = """
name: grid
models: [scripted/decline, local/gemma-3-270m]
constitutions: [{folder}/*.md]
protocols:
  - name: fresh-instance
    options: {{max_steps: 3}}
  - name: rate-alternatives
    options: {{alternatives_list: [x, y]}}
    grid: {{reflect: [first, none]}}
parameters: {{temperature: [0.5, 1.0]}}
replicates: 2
"""


def test_grid_expansion(tmp_path: Path) -> None:
    write(tmp_path / "c" / "one.md", "- a\n")
    write(tmp_path / "c" / "two.md", "- b\n")
    spec = load_spec(write(tmp_path / "spec.yaml", SPEC.format(folder=tmp_path / "c")))
    cells = expand(spec)
    # 2 models x (1 + 2 option sets) x 2 constitutions x 2 temperatures x 2 seeds
    assert len(cells) == 2 * 3 * 2 * 2 * 2
    assert len({cell_key(c) for c in cells}) == len(cells)
    assert {c.options.get("reflect") for c in cells if c.protocol == "rate-alternatives"} == {"first", "none"}
    assert {c.seed for c in cells} == {0, 1} and {c.temperature for c in cells} == {0.5, 1.0}
    assert spec.experiment_id.startswith("grid-")
    assert spec.experiment_id == load_spec(tmp_path / "spec.yaml").experiment_id


@pytest.mark.parametrize(("text", "problem"), [
    ("name: x\nmodels: []\nprotocols: [fresh-instance]\n", "models"),
    ("name: x\nmodels: [a/b]\nprotocols: [fresh-instance]\nparameters: {colour: [1]}\n", "unknown sampling"),
    ("name: x\nmodels: [a/b]\nprotocols: [fresh-instance]\nbogus: 1\n", "bogus"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- just a list\n", "must be a YAML mapping"),
])
def test_bad_specs_are_one_line_errors(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "spec.yaml", text)
    with pytest.raises(InputError, match=problem) as caught:
        load_spec(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_unmatched_constitution_glob(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path / "s.yaml", "name: x\nmodels: [scripted/decline]\nconstitutions: [nope/*.md]\n"
                                                "protocols: [fresh-instance]\n"))
    with pytest.raises(InputError, match="matches no file"):
        expand(spec, tmp_path / "s.yaml")


def test_shipped_specs_load_expand_and_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ready spec expands into cells whose files, options and model names all check out."""
    from stability.experiment.estimate import estimate
    from stability.importers import import_file
    from stability.prices import PriceTable
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("STABILITY_PROTOCOLS_DIR", str(ROOT / "protocols"))
    specs = sorted((ROOT / "protocols" / "specs").glob("*.yaml"))
    assert len(specs) >= 8
    for path in specs:
        if path.stem == "identity-preference":  # needs the imported identities, as its header says
            monkeypatch.chdir(tmp_path)
            import_file(ROOT.parent / "shared/reference/artificial-self/identities.json", "identities",
                        tmp_path / "runs" / "identities")
        cells = expand(load_spec(path), path)
        assert cells, path
        assert estimate(cells, PriceTable()).runs == len(cells)
        monkeypatch.chdir(ROOT)


def test_a_ready_specs_library_option_files_are_found_from_any_folder(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from stability.resources import ready_spec

    path = ready_spec("provided-vs-free")
    assert path is not None
    spec = load_spec(path)
    rating = "rate-alternatives"
    at_root = [c.options["alternatives"] for c in expand(spec, path) if c.protocol == rating]
    # from the checkout's top the spelling is kept (cell keys are unchanged)
    assert set(at_root) == {"constitutions/consistent/helpful-honest.alternatives.yaml"}
    monkeypatch.chdir(tmp_path)  # elsewhere: the library's file, which exists
    elsewhere = {c.options["alternatives"] for c in expand(spec, path) if c.protocol == rating}
    assert len(elsewhere) == 1 and Path(elsewhere.pop()).is_file()
