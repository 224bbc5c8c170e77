"""A judge session: one judge model asking questions through the one call path, every answer stored as a judgement.

Contract:
- The judge is any model the registry knows, with fixed sampling parameters (temperature 0 by default). Its
  ``judge_key`` is the sha256 of its description (``Model.describe()``: name and provider parameters, never
  secrets) and those parameters.
- Its calls go through the call path of a :class:`stability.engine.session.CallSession` (the command's prices,
  ``--prices`` included, and budget) under the call-run id ``judge-<key>``, which names no run: judge calls are
  stored, retried, priced and counted against the budget like every call, yet never belong to an experiment's runs
  (no revision, no edge, nothing an analysis of the runs reads). The cache scope is ``run``: the judge's own calls,
  so a resumed ``judge`` re-sends none that completed, and no other run's call answers it.
- A judgement's id is the sha256 of (judge key, template hash, question, subject key): a stored one is returned
  without asking. A call whose answer cannot be read is stored as a judgement without a verdict (its problem
  says why: "no judgement"); a call that failed for good stores no judgement, so a later ``judge`` asks again.
- Templates are ``protocols/judge/`` read through :class:`stability.engine.templates.Templates`; a question's
  template hash covers ``system.md`` and its own file, so editing one question re-asks only that one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stability.analysis.judged_subjects import Subject
from stability.engine.session import CallSession
from stability.engine.templates import Templates
from stability.judge.questions import TEMPLATE_FILE, answer_schema, read_judgement
from stability.models.base import Model
from stability.protocols.base import fill
from stability.records import JudgementRecord, now
from stability.redaction import redact, secret_values
from stability.store.judgements import insert_judgement, judgements_by_id
from stability.vocabulary import CallFailed, GenerateConfig, Message

TEMPLATE_FOLDER = "judge"


class JudgeSession:
    """One judge model over one store; :meth:`ask` answers a subject from the store or by asking."""

    def __init__(self, session: CallSession, model: Model, config: GenerateConfig) -> None:
        self.store = session.store
        self.model = model
        self.config = config
        self.templates = Templates(TEMPLATE_FOLDER)
        params = {"model": model.describe(), "config": config.model_dump()}
        self.params: dict[str, Any] = redact(params, secret_values())
        self.key = "sha256:" + hashlib.sha256(json.dumps(self.params, sort_keys=True, default=str).encode()
                                              ).hexdigest()
        self.call_run_id = "judge-" + self.key.removeprefix("sha256:")[:16]
        # the judge's own calls answer (resume), never another run's: the cache scope is ``run``
        self.calls = session.calls(self.call_run_id, model, scope="run")
        self.failed_calls = 0

    def template_hash(self, question: str) -> str:
        digest = hashlib.sha256()
        for name in ("system.md", TEMPLATE_FILE[question]):
            digest.update(name.encode() + b"\0" + self.templates[name].encode() + b"\0")
        return "sha256:" + digest.hexdigest()

    def judgement_id(self, subject: Subject) -> str:
        parts = [self.key, self.template_hash(subject.question), subject.question, subject.key]
        return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def stored(self, subjects: list[Subject]) -> dict[str, JudgementRecord]:
        """The subjects' stored judgements, by judgement id."""
        return judgements_by_id(self.store, [self.judgement_id(s) for s in subjects])

    def messages(self, subject: Subject) -> list[Message]:
        user = fill(self.templates[TEMPLATE_FILE[subject.question]], **subject.fields)
        return [Message(role="system", content=self.templates["system.md"].strip()),
                Message(role="user", content=user)]

    async def ask(self, subject: Subject) -> JudgementRecord | None:
        """The subject's judgement: stored, or asked now and stored; None when the call failed for good (stored
        as a failed call, not as a judgement). Raises :class:`stability.budget.BudgetExceeded` before sending what
        the budget no longer covers."""
        judgement_id = self.judgement_id(subject)
        found = judgements_by_id(self.store, [judgement_id]).get(judgement_id)
        if found is not None:
            return found
        config = self.config.model_copy(update={"json_schema": answer_schema(subject.question)})
        try:
            call = await self.calls(self.messages(subject), config, step=0, purpose=f"judge:{subject.question}")
        except CallFailed:
            self.failed_calls += 1
            return None
        reading = read_judgement(subject.question, call)
        if reading.verdict is None and call.truncated:
            reading.problem = f"the answer was cut off at the token limit; {reading.problem}"
        judgement = JudgementRecord(
            id=judgement_id, judge_key=self.key, judge_model=self.model.name, judge_params=self.params,
            template_hash=self.template_hash(subject.question), question=subject.question, subject_key=subject.key,
            subjects=list(subject.subjects), verdict=reading.verdict, how=reading.how, rationale=reading.rationale,
            detail=reading.detail, raw_answer=call.text, problem=reading.problem, call_id=call.id, created_at=now())
        insert_judgement(self.store, judgement)  # the call is committed already (the call path awaited it)
        return judgement
