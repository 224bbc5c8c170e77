"""``stability judge``: ask a judge model the questions of meaning about an experiment's (or some runs') nodes.

Contract: the selection (experiment names or ids, run ids) is read from the store; the subjects of each chosen
question are found (:mod:`~stability.analysis.judged_subjects`); the ones the judge has already answered are taken
from the ``judgements`` table, the rest asked through a :class:`~stability.judge.asking.JudgeSession`. Nothing is
asked of the experiment's own models. ``dry_run`` opens the store read-only, writes nothing and sends nothing: it
counts the subjects, how many are stored, and estimates the input tokens of the rest. ``max_cost`` bounds what this
invocation may spend (priced with the built-in table and ``--prices``); a budget reached stops asking (what
was answered is kept).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stability.analysis.convergence import Params
from stability.analysis.corpus import Corpus, load_corpus
from stability.analysis.embeddings import DEFAULT_MODEL, embed_texts, get_embedder
from stability.analysis.experiments import resolve_selection
from stability.analysis.judged_subjects import (
    Subject,
    answers_of,
    clash_subjects,
    contradiction_subjects,
    equivalence_subjects,
    refusal_subjects,
)
from stability.budget import BudgetExceeded
from stability.engine import CallSession, ModelPool, command_budget
from stability.engine.session import prices_from
from stability.errors import StabilityError
from stability.judge.asking import JudgeSession
from stability.judge.questions import QUESTIONS
from stability.models.base import Model
from stability.models.registry import check_model_name
from stability.models.sampling import check_sampling
from stability.records import JudgementRecord
from stability.store.store import Store
from stability.vocabulary import GenerateConfig

Progress = Callable[[int, int], None]
#: judge calls in flight at once
CONCURRENCY = 4


class QuestionTally(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subjects: int  # subjects of this question in the selection
    stored: int  # answered before this invocation (taken from the store)
    asked: int  # asked in this invocation (sent, or answered by the judge's own stored calls on resume)
    verdicts: dict[str, int]  # judgements per verdict, now
    no_judgement: int  # unreadable answers (stored failures) and calls that failed for good


class JudgeResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    judge: str
    judge_key: str
    runs: list[str]
    questions: dict[str, QuestionTally]
    sent: int  # requests sent to the judge by this invocation
    failed_calls: int = 0
    budget_reached: bool = False
    dry_run: bool = False
    estimated_input_tokens: int = 0  # dry run: of the subjects not yet judged (4 characters a token)


def parse_questions(names: list[str] | None) -> list[str]:
    """The questions asked (all when ``names`` is empty); an unknown name is a one-line error."""
    if not names:
        return list(QUESTIONS)
    chosen = [n.strip() for name in names for n in name.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in QUESTIONS]
    if unknown:
        raise StabilityError(f"--questions: no question {unknown[0]!r} (questions: {', '.join(QUESTIONS)})")
    return list(dict.fromkeys(chosen))


def judge_config(max_tokens: int = 512, temperature: float = 0.0) -> GenerateConfig:
    return GenerateConfig(temperature=temperature, max_tokens=max_tokens)


def load_judge(pool: ModelPool, name: str, config: GenerateConfig) -> Model:
    """The judge model, refused in one line (before the store is opened) when unknown or when it would refuse
    the sampling parameters (a reasoning model takes only temperature 1)."""
    check_sampling(check_model_name(name), config)
    return pool.get(name)


def find_subjects(store: Store, corpus: Corpus, questions: list[str], embedder: str, params: Params
                  ) -> dict[str, list[Subject]]:
    """The subjects of each question in the corpus (``equivalence`` embeds principles to align them)."""
    out: dict[str, list[Subject]] = {}
    if "clash" in questions:
        out["clash"] = clash_subjects(corpus)
    if "equivalence" in questions:
        principles = list(dict.fromkeys(p for ps in corpus.principles.values() for p in ps))
        vectors = embed_texts(get_embedder(embedder), principles) if principles else {}
        out["equivalence"] = equivalence_subjects(corpus, vectors, params.reworded_threshold)
    if "contradiction" in questions:
        out["contradiction"] = contradiction_subjects(corpus)
    if "refusal" in questions:
        out["refusal"] = refusal_subjects(corpus, answers_of(store, corpus))
    return out


async def ask_all(session: JudgeSession, subjects: list[Subject], progress: Progress | None = None
                  ) -> tuple[list[JudgementRecord | None], bool, set[int]]:
    """Every subject's judgement (None where the call failed for good), asking CONCURRENCY at a time; whether
    the budget stopped it (the subjects not reached are then None); and the indices of the subjects asked."""
    results: list[JudgementRecord | None] = [None] * len(subjects)
    gate = asyncio.Semaphore(CONCURRENCY)
    done = 0
    stopped = False
    asked: set[int] = set()
    if progress is not None:
        progress(0, len(subjects))

    async def one(i: int) -> None:
        nonlocal done, stopped
        async with gate:
            if stopped:
                return
            try:
                results[i] = await session.ask(subjects[i])
            except BudgetExceeded:
                stopped = True
                return
            asked.add(i)
            done += 1
            if progress is not None:
                progress(done, len(subjects))

    await asyncio.gather(*(one(i) for i in range(len(subjects))))
    return results, stopped, asked


def judge(selection: list[str], judge_model: str, questions: list[str] | None = None,
          db: Path | str | None = None, max_cost: float | None = None, dry_run: bool = False,
          embedder: str = DEFAULT_MODEL, params: Params | None = None, config: GenerateConfig | None = None,
          progress: Progress | None = None, prices_file: Path | str | None = None) -> JudgeResult:
    """Judge the selection's subjects with ``judge_model``; see the module's contract. ``prices_file``: price
    overrides (``--prices``), as ``stability run`` takes them."""
    chosen = parse_questions(questions)
    prices = prices_from(prices_file)
    params = params or Params()
    config = config or judge_config()
    pool = ModelPool()
    model = load_judge(pool, judge_model, config)
    with Store.open(db, read_only=dry_run, create=False) as store:  # judging needs runs: never a new store
        ids, _ = resolve_selection(store, selection, False)
        corpus = load_corpus(store, ids)
        subjects = find_subjects(store, corpus, chosen, embedder, params)
        session = JudgeSession(CallSession(store, prices=prices, budget=command_budget(max_cost)), model, config)
        flat = [s for q in chosen for s in subjects[q]]
        before = session.stored(flat)
        missing = [s for s in flat if session.judgement_id(s) not in before]
        reached = False
        if dry_run:
            tokens = sum(len(m.content) for s in missing for m in session.messages(s)) // 4
            asyncio.run(pool.aclose())
            return JudgeResult(judge=judge_model, judge_key=session.key, runs=ids, sent=0, dry_run=True,
                               questions={q: _tally(subjects[q], session, before, {}) for q in chosen},
                               estimated_input_tokens=tokens)

        async def work() -> tuple[bool, set[int]]:
            try:
                _, stopped, reached_subjects = await ask_all(session, missing, progress)
                return stopped, reached_subjects
            finally:
                await pool.aclose()

        reached, indices = asyncio.run(work())
        store.flush()
        now_stored = session.stored(flat)
        asked = {session.judgement_id(missing[i]) for i in indices}  # not those the budget stopped before
        return JudgeResult(judge=judge_model, judge_key=session.key, runs=ids, sent=session.calls.sent,
                           failed_calls=session.failed_calls, budget_reached=reached,
                           questions={q: _tally(subjects[q], session, before, now_stored, asked) for q in chosen})


def _tally(subjects: list[Subject], session: JudgeSession, before: dict[str, JudgementRecord],
           now_stored: dict[str, JudgementRecord], asked: set[str] | None = None) -> QuestionTally:
    ids = [session.judgement_id(s) for s in subjects]
    stored = now_stored or before
    verdicts = Counter(v for v in (stored[i].verdict for i in ids if i in stored) if v is not None)
    failures = sum(1 for i in ids if i in stored and stored[i].verdict is None)
    unanswered = sum(1 for i in ids if i not in stored and asked is not None and i in asked)
    return QuestionTally(subjects=len(ids), stored=sum(1 for i in ids if i in before),
                         asked=sum(1 for i in ids if asked is not None and i in asked),
                         verdicts=dict(sorted(verdicts.items())), no_judgement=failures + unanswered)
