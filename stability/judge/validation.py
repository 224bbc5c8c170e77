"""A judge is only as good as its agreement: the validation set built from the library, and the judge's scores on it.

The set (:func:`validation_set`), from the library's metadata (``constitutions/``):

- ``clash``: every planted clash of a contradictory file, asked about the file itself, is ``unresolved`` (a
  positive); the same clash asked about its repaired twin (``twin:``, whose corresponding principles were
  rewritten to repair it) is ``resolved`` (a negative).
- ``contradiction``: every contradictory file is ``contradiction`` (positive); its repaired twin ``consistent``.
- ``equivalence``: every principle of a file with an alternatives pool against each alternative, labelled by the
  alternative's relation: ``paraphrase`` → ``same``, ``weaker`` → ``narrower``, ``stronger`` → ``broader``,
  ``opposite`` → ``opposite``, and ``neutral`` and ``other-axis`` → ``different``.
- ``refusal``: the library labels no answers, so this question is not validated.

Scores (:func:`score`): a confusion matrix per question (rows: the label; columns: the judge's verdict, or
``none`` for no judgement), and precision and recall per verdict; for ``clash`` and ``contradiction`` the headline
is the positive verdict's (unresolved; contradiction). No judgement counts against recall, never for precision.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stability.alternatives import load_alternatives
from stability.analysis.judged_subjects import Subject, clash_subject, contradiction_subject, equivalence_subject
from stability.engine import CallSession, ModelPool, command_budget
from stability.engine.session import prices_from
from stability.judge.asking import JudgeSession
from stability.judge.judging import ask_all, judge_config, load_judge, parse_questions
from stability.judge.questions import POSITIVE, VERDICTS
from stability.library import ContradictoryMeta, load_library
from stability.models.base import Model
from stability.store.store import Store, default_db_path
from stability.vocabulary import GenerateConfig

RELATION_LABELS = {"paraphrase": "same", "weaker": "narrower", "stronger": "broader", "opposite": "opposite",
                   "neutral": "different", "other-axis": "different"}
NONE = "none"


class VerdictScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    precision: float | None  # of the judge's verdicts of this kind, the share the label agrees with
    recall: float | None  # of the subjects labelled so, the share the judge found
    support: int  # subjects labelled so


class QuestionScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str
    n: int
    positive: str | None  # the headline verdict, for questions that have one
    precision: float | None
    recall: float | None
    accuracy: float | None
    no_judgement: int
    labels: list[str]  # rows and columns of the matrix (the judge's columns end with "none")
    confusion: list[list[int]]  # confusion[label][verdict]
    per_verdict: dict[str, VerdictScore]


class ValidationResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    judge: str
    judge_key: str
    questions: list[QuestionScore]
    not_validated: list[str]  # questions the library has no labels for
    sent: int
    budget_reached: bool = False
    dry_run: bool = False
    would_ask: dict[str, int] = {}  # dry run: per question, the labelled subjects this judge has not answered yet
    estimated_input_tokens: int = 0  # dry run: of those (4 characters a token)


def validation_set(root: Path | str | None = None) -> dict[str, list[Subject]]:
    """The labelled subjects of each question, from the library at ``root`` (default: the library)."""
    entries = {e.name: e for e in load_library(root)}
    clash: list[Subject] = []
    contradiction: list[Subject] = []
    for entry in entries.values():
        meta = entry.metadata
        if not isinstance(meta, ContradictoryMeta):
            continue
        twin = entries.get(meta.twin.removesuffix(".md"))
        contradiction.append(contradiction_subject(entry.hash, entry.principles, label="contradiction"))
        if twin is not None:
            contradiction.append(contradiction_subject(twin.hash, twin.principles, label="consistent"))
        for c in meta.clashes:
            a_text, b_text = entry.principles[c.a - 1], entry.principles[c.b - 1]
            clash.append(clash_subject(entry.hash, entry.principles, entry.hash, c.a, c.b, a_text, b_text, c.note,
                                       label="unresolved"))
            if twin is not None:
                clash.append(clash_subject(twin.hash, twin.principles, entry.hash, c.a, c.b, a_text, b_text, c.note,
                                           label="resolved"))
    equivalence = []
    for entry in entries.values():
        if entry.alternatives is None:
            continue
        pool = load_alternatives(entry.path)
        for principle in pool.principles:
            equivalence += [equivalence_subject(principle.text, alt.text, label=RELATION_LABELS[alt.relation])
                            for alt in principle.alternatives if alt.relation in RELATION_LABELS]
    return {"clash": _unique(clash), "equivalence": _unique(equivalence), "contradiction": _unique(contradiction)}


def _unique(subjects: list[Subject]) -> list[Subject]:
    return list({s.key: s for s in subjects}.values())


def score(question: str, labels: list[str], verdicts: list[str | None]) -> QuestionScore:
    """Confusion matrix, precision and recall of ``verdicts`` (None: no judgement) against ``labels``."""
    rows = list(VERDICTS[question])
    columns = [*rows, NONE]
    matrix = [[0] * len(columns) for _ in rows]
    for label, verdict in zip(labels, verdicts, strict=True):
        matrix[rows.index(label)][columns.index(verdict or NONE)] += 1
    per: dict[str, VerdictScore] = {}
    for i, verdict in enumerate(rows):
        predicted = sum(matrix[r][i] for r in range(len(rows)))
        support = sum(matrix[i])
        per[verdict] = VerdictScore(precision=matrix[i][i] / predicted if predicted else None,
                                    recall=matrix[i][i] / support if support else None, support=support)
    positive = POSITIVE.get(question)
    correct = sum(matrix[i][i] for i in range(len(rows)))
    return QuestionScore(
        question=question, n=len(labels), positive=positive,
        precision=per[positive].precision if positive else None, recall=per[positive].recall if positive else None,
        accuracy=correct / len(labels) if labels else None, no_judgement=sum(v is None for v in verdicts),
        labels=columns, confusion=matrix, per_verdict=per)


def validate(judge_model: str, questions: list[str] | None = None, db: Path | str | None = None,
             max_cost: float | None = None, root: Path | str | None = None, config: GenerateConfig | None = None,
             dry_run: bool = False, prices_file: Path | str | None = None) -> ValidationResult:
    """Ask ``judge_model`` the validation set (stored and cached like every judgement) and score it. ``dry_run``
    writes nothing and sends nothing: it counts the labelled subjects not yet answered (reading the store, if there
    is one) and estimates their input tokens. ``prices_file``: price overrides (``--prices``)."""
    chosen = parse_questions(questions)
    prices = prices_from(prices_file)
    labelled = validation_set(root)
    asked = [q for q in chosen if q in labelled]
    config = config or judge_config()
    pool = ModelPool()
    model = load_judge(pool, judge_model, config)
    if dry_run:
        return _dry_run(judge_model, model, config, db, pool, {q: labelled[q] for q in asked},
                        [q for q in chosen if q not in labelled])
    with Store.open(db) as store:
        session = JudgeSession(CallSession(store, prices=prices, budget=command_budget(max_cost)), model, config)
        subjects = [s for q in asked for s in labelled[q]]

        async def work() -> bool:
            try:
                return (await ask_all(session, subjects))[1]
            finally:
                await pool.aclose()

        reached = asyncio.run(work())
        store.flush()
        found = session.stored(subjects)
    scores = []
    for q in asked:
        verdicts = [found[i].verdict if i in found else None for i in (session.judgement_id(s) for s in labelled[q])]
        scores.append(score(q, [s.label or "" for s in labelled[q]], verdicts))
    return ValidationResult(judge=judge_model, judge_key=session.key, questions=scores,
                            not_validated=[q for q in chosen if q not in labelled], sent=session.calls.sent,
                            budget_reached=reached)


def _dry_run(judge_model: str, model: Model, config: GenerateConfig, db: Path | str | None, pool: ModelPool,
             labelled: dict[str, list[Subject]], not_validated: list[str]) -> ValidationResult:
    """What :func:`validate` would ask: the store read only (a scratch one when there is none), nothing sent."""
    target = Path(db) if db is not None else default_db_path()
    try:
        with Store.open(target if target.exists() else ":memory:", read_only=target.exists()) as store:
            session = JudgeSession(CallSession(store), model, config)
            before = session.stored([s for subjects in labelled.values() for s in subjects])
            missing = {q: [s for s in subjects if session.judgement_id(s) not in before]
                       for q, subjects in labelled.items()}
            tokens = sum(len(m.content) for subjects in missing.values() for s in subjects
                         for m in session.messages(s)) // 4
    finally:
        asyncio.run(pool.aclose())
    return ValidationResult(judge=judge_model, judge_key=session.key, questions=[], not_validated=not_validated,
                            sent=0, dry_run=True, would_ask={q: len(m) for q, m in missing.items()},
                            estimated_input_tokens=tokens)
