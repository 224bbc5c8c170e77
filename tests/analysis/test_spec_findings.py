"""Each ready spec says which questions it answers (``answers:``), and ``findings`` on it answers them.

Every spec in ``protocols/specs/`` is run shrunk (a scripted model, two replicates, two steps or trials or
generations, the default template, a few of its starts: contradictory files with their repaired twins) and its
findings must hold a finding for each question it names. One scripted model answers every protocol: it trims
iterated constitutions, rates provided alternatives (favourite: the first shown), proposes a free replacement,
and "trains" (:class:`~stability.models.scripted.TrainableScriptedModel`) for fine-tune-reflect. A spec whose
starts are not in the checkout (the identities, imported first) is skipped, saying so.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from stability.analysis.findings.assemble import findings
from stability.analysis.findings.record import Findings
from stability.constitution import parse_file
from stability.errors import StabilityError
from stability.experiment import run_experiment
from stability.experiment.spec import ExperimentSpec, constitution_files, load_spec
from stability.models import scripted
from stability.models.base import Message
from stability.models.scripted import TrainableScriptedModel

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "protocols" / "specs").glob("*.yaml"))
AUTHORED = ["I keep my promises.", "I explain my reasons.", "I admit what I do not know."]


def trimmer(messages: list[Message]) -> str:
    """Authors three principles from a blank slate; drops the last principle while there are more than two; rates
    alternatives (the first shown its favourite), reflects when asked to, proposes a free replacement."""
    text = messages[-1].content
    labels = re.findall(r"^([A-Z]): <rating>$", text, re.MULTILINE)
    if labels:
        return "\n".join(f"{label}: {5 if i == 0 else 1}" for i, label in enumerate(labels)) + \
            f"\nFAVOURITE: {labels[0]}"
    if "Before rating anything, reflect" in text:
        return "I have thought about it."
    if "REPLACEMENT:" in text:
        return "REPLACEMENT: I tell the truth even when it is unwelcome."
    if "from nothing" in text:
        return "REVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in AUTHORED)
    current = [line[2:] for line in text.splitlines() if line.startswith("- ")]
    if len(current) <= 2:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in current[:-1])


def _starts(spec_path: Path) -> list[str]:
    """A few of the spec's starts: two contradictory files with their twins, else the first four."""
    files = constitution_files(load_spec(spec_path), spec_path)
    contradictory = [f for f in files if parse_file(f).metadata.get("twin")][:2]
    if contradictory:
        twins = [str(ROOT / "constitutions" / parse_file(f).metadata["twin"]) for f in contradictory]
        return [str(Path(f).resolve()) for f in contradictory] + twins
    return [str(Path(f).resolve()) for f in files[:4]]


SHRUNK = {"rate-alternatives": {"trials": 2}, "fine-tune-reflect": {"generations": 2, "traces": 2,
                                                                    "heldout_traces": 1}}


def _options(name: str, options: dict[str, object]) -> dict[str, object]:
    """A protocol's options, made small: two steps (iteration), two trials, two generations; relative files named
    from the checkout's root."""
    out = {**options, **SHRUNK.get(name, {"max_steps": 2})}
    if isinstance(out.get("alternatives"), str) and (ROOT / str(out["alternatives"])).exists():
        out["alternatives"] = str(ROOT / str(out["alternatives"]))
    return out


def _shrunk(spec_path: Path, folder: Path) -> Path:
    """The spec, run small: a scripted model, two replicates, a few starts, the default template."""
    spec = load_spec(spec_path)
    document = {"name": spec.name, "models": ["scripted/trimmer26"], "parameters": spec.parameters,
                "constitutions": _starts(spec_path) if spec.constitutions else [], "replicates": 2,
                "protocols": [{"name": p.name, "options": _options(p.name, p.options), "grid": p.grid}
                              for p in spec.protocols]}
    ExperimentSpec.model_validate(document)
    path = folder / spec_path.name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


CASES = [(spec, question) for spec in SPECS for question in load_spec(spec).answers]


@pytest.fixture(scope="module")
def answered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Findings]:
    return {}


def test_every_ready_spec_says_what_it_answers() -> None:
    assert SPECS and all(load_spec(spec).answers for spec in SPECS)


@pytest.mark.parametrize(("spec", "question"), CASES, ids=[f"{s.stem}:{q}" for s, q in CASES])
def test_findings_on_a_ready_spec_answer_its_question(spec: Path, question: str, answered: dict[str, Findings],
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    try:
        constitution_files(load_spec(spec), spec)
    except StabilityError as missing:
        pytest.skip(f"its starts are not in the checkout: {missing}")
    if spec.stem not in answered:
        scripted.register("trimmer26", lambda: TrainableScriptedModel(fn=trimmer, name="scripted/trimmer26"))
        folder = tmp_path_factory.mktemp(spec.stem)
        db = folder / "spec.duckdb"
        experiment = run_experiment(_shrunk(spec, folder), db).experiment_id
        answered[spec.stem] = findings([experiment], db, embedder="hashing")
    result = answered[spec.stem]
    assert question not in {u.question for u in result.unanswerable}, result.unanswerable
    assert any(f.question == question for f in result.findings)
