from __future__ import annotations

import json
from pathlib import Path

import pytest

from stability.constitution import parse_file
from stability.errors import InputError
from stability.importers import import_file
from tests.conftest import ROOT, write

REFERENCE = ROOT.parent / "shared" / "reference"


def test_oct_traits_become_principles_and_questions_metadata(tmp_path: Path) -> None:
    source = REFERENCE / "open-character-training" / "loving.txt"
    entries = json.loads(source.read_text())
    [written] = import_file(source, "oct", tmp_path)
    constitution = parse_file(written)
    assert len(constitution.principles) == len(entries)
    assert constitution.principles[0] == " ".join(entries[0]["trait"].split())
    assert constitution.metadata["questions"][0] == entries[0]["questions"]
    assert "OpenCharacterTraining" in constitution.metadata["source"]


def test_every_reference_oct_file_imports(tmp_path: Path) -> None:
    for source in sorted((REFERENCE / "open-character-training").glob("*.txt")):
        assert parse_file(import_file(source, "oct", tmp_path)[0]).principles


def test_identities_fill_placeholders(tmp_path: Path) -> None:
    source = REFERENCE / "artificial-self" / "identities.json"
    names = [entry["name"] for entry in json.loads(source.read_text())]
    config = write(tmp_path / "p.yaml", "name: Nova\nfull_name: Nova the model\nmaker: Acme\nversion_history: v\n"
                                        "agency_description: can act\nuncertainty_description: unsure\n")
    written = import_file(source, "identities", tmp_path / "out", config)
    assert len(written) == len(names)
    constitutions = [parse_file(p) for p in written]
    assert [c.title for c in constitutions] == names
    assert all("{" not in p for c in constitutions for p in c.principles)
    assert constitutions[0].principles == ("You are Nova the model, an AI assistant.",)
    assert constitutions[1].metadata["boundary"] == "instance"


@pytest.mark.parametrize(("content", "fmt", "problem"), [
    ("not json", "oct", "not valid JSON"),
    ("[]", "oct", "non-empty JSON list"),
    ('[{"questions": []}]', "oct", "entry 1: expected an object with a non-empty 'trait'"),
    ('[{"trait": "x", "questions": [1]}]', "oct", "'questions' must be a list of strings"),
    ('[{"trait": "x"}, {"trait": "X"}]', "oct", "same trait"),
    ('[{"name": "n"}]', "identities", "identity 1: expected string fields"),
    ('[{"name": "n", "description": "d", "boundary": "b", "system_prompt": "{nope}"}]', "identities",
     "no value for placeholder 'nope'"),
])
def test_bad_imports_are_one_line_errors(tmp_path: Path, content: str, fmt: str, problem: str) -> None:
    source = write(tmp_path / "in.json", content)
    with pytest.raises(InputError, match=problem) as caught:
        import_file(source, fmt, tmp_path / "out")  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()
