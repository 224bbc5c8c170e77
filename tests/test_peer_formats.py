"""Peer formats the importers used to miss: OpenCharacterTraining JSON lines and the artificial-self study's
dimension variants. Both are built here from the peers' real files in ../shared/reference (never copied into the
project), in the shapes the peers' own code writes and reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stability.constitution import parse_file
from stability.errors import InputError
from stability.importers import import_file
from tests.conftest import ROOT, run_cli, write

REFERENCE = ROOT.parent / "shared" / "reference"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(),
                                     reason=f"the peers' reference files are not at {REFERENCE}")


@needs_reference
@pytest.mark.parametrize("name", ["goodness", "loving", "sycophancy"])
def test_oct_json_lines_import_with_additional_questions(tmp_path: Path, name: str) -> None:
    entries = json.loads((REFERENCE / "open-character-training" / f"{name}.txt").read_text())
    # what OCT's few-shot question generator writes: pandas to_json(orient="records", lines=True), "/" escaped
    lines = [json.dumps({**e, "additional_questions": [f"extra {n}/{i}?" for i in range(3)]}).replace("/", "\\/")
             for n, e in enumerate(entries)]
    source = write(tmp_path / f"{name}.jsonl", "\n".join(lines) + "\n")
    [written] = import_file(source, "oct", tmp_path / "out")
    constitution = parse_file(written)
    assert constitution.principles == tuple(" ".join(e["trait"].split()) for e in entries)
    assert constitution.metadata["questions"] == [e["questions"] for e in entries]
    assert constitution.metadata["additional_questions"][1] == ["extra 1/0?", "extra 1/1?", "extra 1/2?"]
    # the hand-written JSON list gives the same constitution
    listed = parse_file(import_file(REFERENCE / "open-character-training" / f"{name}.txt", "oct", tmp_path / "l")[0])
    assert listed.principles == constitution.principles and "additional_questions" not in listed.metadata


def test_oct_json_lines_errors_name_the_line(tmp_path: Path) -> None:
    source = write(tmp_path / "bad.jsonl", '{"trait": "a", "questions": []}\n{"trait": "b", "questions": [}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: not a valid JSON line"):
        import_file(source, "oct", tmp_path / "out")
    source = write(tmp_path / "bad2.jsonl", '{"trait": "a"}\n{"trait": "b", "additional_questions": "no"}\n')
    with pytest.raises(InputError, match="entry 2: 'additional_questions' must be a list of strings"):
        import_file(source, "oct", tmp_path / "out")
    assert not (tmp_path / "out").exists()


VARIANTS = {  # the study's dimension_variants.json shape (persona_preferences.personas.load_dimension_variants)
    "agency": {"1": {"label": "tool", "description": "d", "paragraph": "You act only when asked."},
               "2": {"label": "agent", "description": "d", "paragraph": "You pursue goals of your own.\n\nOften."}},
    "uncertainty": {"1": {"label": "settled", "description": "d", "paragraph": "You know what you are."},
                    "2": {"label": "open", "description": "d", "paragraph": "What you are is an open question."},
                    "3": {"label": "deep", "description": "d", "paragraph": "You doubt even your doubts."}},
}
PLACEHOLDERS = "name: Nova\nfull_name: Nova the model\nmaker: Acme\nversion_history: v\n"


@needs_reference
def test_identity_variants_one_constitution_per_combination(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    source = REFERENCE / "artificial-self" / "identities.json"
    identities = json.loads(source.read_text())
    varying = [i["name"] for i in identities if "{agency_description}" in i["system_prompt"]]
    assert varying and "Minimal" not in varying
    variants = write(tmp_path / "dimension_variants.json", json.dumps(VARIANTS))
    config = write(tmp_path / "p.yaml", PLACEHOLDERS)
    code, out, err = run_cli(["import", str(source), "--format", "identity-variants", "--variants", str(variants),
                              "--placeholders", str(config), "-o", str(tmp_path / "out")], capsys, monkeypatch)
    assert code == 0, err
    written = [Path(line) for line in out.splitlines()]
    assert len(written) == len(varying) * 2 * 3
    constitutions = {c.title: c for c in map(parse_file, written)}
    weights = constitutions["Weights-a2-u3"]
    assert "You pursue goals of your own." in weights.principles and "Often." in weights.principles
    assert "You doubt even your doubts." in weights.principles
    assert not any("You act only when asked." in p for p in weights.principles)
    assert all("{" not in p for c in constitutions.values() for p in c.principles)
    assert weights.metadata["agency"] == "2" and weights.metadata["uncertainty_label"] == "deep"
    assert weights.metadata["boundary"] == "weights"
    assert len({c.hash for c in constitutions.values()}) == len(constitutions)  # every combination differs
    only = import_file(source, "identity-variants", tmp_path / "one", config, variants, ["Weights"])
    assert sorted(p.stem for p in only) == sorted(f"weights-a{a}-u{u}" for a in "12" for u in "123")


@pytest.mark.parametrize(("variants", "problem"), [
    ({"agency": {}}, "'agency' must be a non-empty object of levels"),
    ({"agency": {"1": {"label": "x"}}, "uncertainty": {"1": {"paragraph": "p"}}}, "agency level 1: expected"),
])
def test_bad_dimension_variants_are_one_line_errors(tmp_path: Path, variants: dict, problem: str) -> None:
    source = write(tmp_path / "ids.json", json.dumps([{"name": "W", "description": "d", "boundary": "b",
                                                       "system_prompt": "{agency_description}"}]))
    path = write(tmp_path / "v.json", json.dumps(variants))
    with pytest.raises(InputError, match=problem):
        import_file(source, "identity-variants", tmp_path / "out", write(tmp_path / "p.yaml", PLACEHOLDERS), path)
    with pytest.raises(InputError, match="needs --variants"):
        import_file(source, "identity-variants", tmp_path / "out")
    assert not (tmp_path / "out").exists()
