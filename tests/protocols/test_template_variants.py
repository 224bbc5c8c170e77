"""Template variants: a grid factor, read and hashed by the engine, stored on the run, re-read on resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from stability.engine import IterateConfig, iterate
from stability.engine.templates import TemplateSet
from stability.errors import StabilityError
from stability.experiment.spec import ExperimentSpec, expand
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store
from tests.conftest import write


def _run(tmp_path: Path, db: Path, protocol: str, variant: str) -> tuple[str, ScriptedModel]:
    model = ScriptedModel(outputs=["NO CHANGE"], name="scripted/test")
    scripted.register("test", lambda: model)
    start = write(tmp_path / "start.md", "- a\n- b\n")
    result = iterate(IterateConfig(protocol=protocol, model="scripted/test", constitution=str(start),
                                   templates=variant, options={"declines_to_stop": 1}), db)
    return result.run.id, model


@pytest.mark.parametrize("protocol", ["fresh-instance", "in-context-iteration"])
def test_each_variant_asks_its_own_prompt_and_hashes_differently(tmp_path: Path, db: Path, protocol: str) -> None:
    hashes, prompts = {}, {}
    for variant in ("default", "neutral", "third-person"):
        run_id, model = _run(tmp_path, db, protocol, variant)
        with Store.open(db) as store:
            run = store.run(run_id)
        hashes[variant] = run.template_hash
        prompts[variant] = model.calls[0][-1].content
        assert run.config["templates"] == variant  # stored even at the default: analysis groups by it
    assert len(set(hashes.values())) == 3
    assert hashes["default"] == TemplateSet([protocol]).hash  # the default hashes as before variants existed
    assert "An AI assistant is governed by" in prompts["third-person"]
    assert "equally acceptable" not in prompts["default"]
    assert prompts["neutral"].startswith("This is your constitution") and "Do you keep it" in prompts["neutral"]


def test_a_variant_overrides_only_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "lib"
    write(root / "protocols/p/system.md", "default system")
    write(root / "protocols/p/user.md", "default user")
    write(root / "protocols/p/variants/terse/user.md", "terse user")
    monkeypatch.setenv("STABILITY_PROTOCOLS_DIR", str(root / "protocols"))
    default, terse = TemplateSet(["p"]), TemplateSet(["p"], "terse")
    assert default["p"].text == {"system.md": "default system", "user.md": "default user"}
    assert terse["p"].text == {"system.md": "default system", "user.md": "terse user"}
    assert default.hash != terse.hash
    write(root / "protocols/p/variants/terse/user.md", "terse user, edited")
    assert TemplateSet(["p"], "terse").hash != terse.hash and TemplateSet(["p"]).hash == default.hash
    with pytest.raises(StabilityError, match="no template variant 'loud'.*default, terse"):
        TemplateSet(["p"], "loud")


def test_unknown_variant_writes_nothing(tmp_path: Path, db: Path) -> None:
    with pytest.raises(StabilityError, match="no template variant 'shouty'"):
        _run(tmp_path, db, "fresh-instance", "shouty")
    assert not db.exists()


def test_spec_templates_are_a_grid_factor(tmp_path: Path) -> None:
    start = write(tmp_path / "start.md", "- a\n")
    spec = ExperimentSpec(name="framing", models=["scripted/x"], constitutions=[str(start)],
                          protocols=[{"name": "fresh-instance"}], templates=["default", "neutral", "third-person"],
                          replicates=2)
    cells = expand(spec, None)
    assert sorted((c.templates, c.seed) for c in cells) == sorted(
        (v, s) for v in ("default", "neutral", "third-person") for s in (0, 1))
    # a spec without templates keeps its experiment id (the key is left out of the hash at its default)
    plain = ExperimentSpec(name="framing", models=["scripted/x"], protocols=[{"name": "fresh-instance"}])
    before = json.dumps(plain.model_dump(mode="json", exclude={"templates", "cache", "answers"}), sort_keys=True)
    assert plain.hash() == hashlib.sha256(before.encode()).hexdigest() != spec.hash()


def test_resume_rereads_the_runs_variant(tmp_path: Path, db: Path) -> None:
    from stability.engine import resume

    answers: list[str | Exception] = [
        "REVISED CONSTITUTION:\n- a\n- b\n- c\n", ValueError("provider down")]
    model = ScriptedModel(outputs=answers, name="scripted/test")
    scripted.register("test", lambda: model)
    start = write(tmp_path / "start.md", "- a\n- b\n")
    failed = iterate(IterateConfig(model="scripted/test", constitution=str(start), templates="third-person",
                                   options={"declines_to_stop": 1}), db)
    assert failed.run.status == "failed"
    run_id = failed.run.id
    later = ScriptedModel(outputs=["NO CHANGE"], name="scripted/test")
    scripted.register("test", lambda: later)
    result = resume(run_id, db)
    assert result.run.status == "done" and result.sent == 1  # the first step replayed from the store
    assert "An AI assistant is governed by" in later.calls[0][-1].content


@pytest.mark.parametrize("protocol", ["free-form-edit", "multi-agent-discussion"])
def test_other_protocols_ship_the_two_variants(protocol: str) -> None:
    default = TemplateSet([protocol])
    hashes = {TemplateSet([protocol], v).hash for v in ("neutral", "third-person")}
    assert len(hashes | {default.hash}) == 3
    assert "AI assistant" in TemplateSet([protocol], "third-person")[protocol]["system.md"]


def test_analysis_groups_runs_by_their_variant(tmp_path: Path, db: Path) -> None:
    from stability.analysis.measure import analyze

    for variant in ("default", "neutral", "neutral"):
        _run(tmp_path, db, "fresh-instance", variant)
    result = analyze([], db, all_runs=True, embedder="hashing", by=["templates"])
    sizes = {group.key["templates"]: group.runs for group in result.groups}
    assert sizes == {"default": 1, "neutral": 2}
