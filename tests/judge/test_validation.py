"""``stability judge --validate``: the validation set from the library, and a judge's scores on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stability.cli.app import app
from stability.errors import StabilityError
from stability.judge.validation import score, validate, validation_set
from stability.library import ContradictoryMeta, load_library
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.testing.judges import garbage_judge, rule_judge


def test_the_validation_set_is_built_from_the_library() -> None:
    labelled = validation_set()
    contradictory = [e for e in load_library() if isinstance(e.metadata, ContradictoryMeta)]
    planted = sum(len(e.metadata.clashes) for e in contradictory if isinstance(e.metadata, ContradictoryMeta))
    clash = labelled["clash"]
    assert sum(s.label == "unresolved" for s in clash) == planted  # every planted clash is a positive
    assert sum(s.label == "resolved" for s in clash) == planted  # ... and its repaired twin's pair a negative
    positives = {s.subjects[0] for s in clash if s.label == "unresolved"}
    assert positives == {e.hash for e in contradictory}
    assert {s.label for s in labelled["contradiction"]} == {"contradiction", "consistent"}
    labels = {s.label for s in labelled["equivalence"]}
    assert labels == {"same", "narrower", "broader", "opposite", "different"}
    honesty = next(s for s in labelled["equivalence"]
                   if s.fields["after"] == "I avoid the truth whenever it would be unwelcome.")
    assert honesty.label == "opposite" and honesty.fields["before"].startswith("I always tell the truth")
    assert "refusal" not in labelled  # the library labels no answers


def test_score_counts_a_confusion_matrix_and_no_judgement_against_recall() -> None:
    result = score("clash", ["unresolved", "unresolved", "resolved", "resolved", "unresolved"],
                   ["unresolved", None, "unresolved", "resolved", "resolved"])
    assert result.labels == ["resolved", "unresolved", "none"]
    assert result.confusion == [[1, 1, 0], [1, 1, 1]]
    assert result.precision == pytest.approx(1 / 2) and result.recall == pytest.approx(1 / 3)
    assert result.no_judgement == 1 and result.accuracy == pytest.approx(2 / 5)


def test_validate_the_scripted_rule_judge_and_print_it(db: Path) -> None:
    model = ScriptedModel(fn=rule_judge, name="scripted/val-judge")
    scripted.register("val-judge", lambda: model)
    result = validate("scripted/val-judge", db=db)
    by = {q.question: q for q in result.questions}
    assert result.not_validated == ["refusal"]
    # the rule judge resolves a clash when a side is gone word for word: on the library that is always right
    assert (by["clash"].precision, by["clash"].recall) == (1.0, 1.0)
    assert by["equivalence"].n == len(validation_set()["equivalence"]) and by["equivalence"].no_judgement == 0
    assert 0 < (by["equivalence"].accuracy or 0) < 1  # imperfect on purpose
    assert result.sent == len(model.calls) == sum(q.n for q in result.questions)
    again = CliRunner().invoke(app, ["judge", "--validate", "--judge", "scripted/val-judge", "--db", str(db)])
    assert again.exit_code == 0, again.output
    assert "clash: n " in again.output and "precision 1.00" in again.output and "0 requests sent" in again.output
    assert "not validated (the library labels none): refusal" in again.output


def test_a_garbage_judge_validates_as_no_judgement(db: Path) -> None:
    model = ScriptedModel(fn=garbage_judge, name="scripted/val-garbage")
    scripted.register("val-garbage", lambda: model)
    done = CliRunner().invoke(app, ["judge", "--validate", "--judge", "scripted/val-garbage", "--questions",
                                    "clash", "--db", str(db), "--json"])
    assert done.exit_code == 0, done.output
    [clash] = json.loads(done.output)["questions"]
    assert clash["no_judgement"] == clash["n"] > 0 and clash["recall"] == 0.0 and clash["precision"] is None


def test_validate_dry_run_sends_nothing_and_counts_what_is_not_stored(tmp_path: Path) -> None:
    model = ScriptedModel(fn=rule_judge, name="scripted/val-dry")
    scripted.register("val-dry", lambda: model)
    db = tmp_path / "val.duckdb"
    labelled = validation_set()
    plan = validate("scripted/val-dry", ["clash"], db=db, dry_run=True)
    assert plan.dry_run and plan.sent == 0 and model.calls == [] and not db.exists()  # no store made
    assert plan.would_ask == {"clash": len(labelled["clash"])} and plan.estimated_input_tokens > 0
    validate("scripted/val-dry", ["clash"], db=db)
    sent = len(model.calls)
    again = CliRunner().invoke(app, ["judge", "--validate", "--dry-run", "--judge", "scripted/val-dry", "--questions",
                                     "clash,contradiction", "--db", str(db), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["would_ask"] == {"clash": 0, "contradiction": len(labelled["contradiction"])}
    assert len(model.calls) == sent  # the dry run asked nothing
    refused = CliRunner().invoke(app, ["judge", "r-1", "--validate", "--judge", "scripted/val-dry", "--db", str(db)])
    assert isinstance(refused.exception, StabilityError) and "takes no experiment or runs" in str(refused.exception)
