"""The answer-reading report (``stability answers``): how each model's answers were read, before anyone analyses
them.

For the runs selected (experiment names or ids, run ids), every recorded reading (each revision after the origin)
is counted per model: changed, declined, truncated, parse failure (grouped by why), error; and, of the calls behind
them, how many came back structured, how many were sent as ``json_object`` after a refused ``json_schema``, and how
many fell back to text. A model that mostly fails to parse, or is mostly cut off, is not answering the question:
this shows it at a glance. Each kind comes with a few examples (the call, the start of its answer, the reason).

The reads are the store's (:mod:`stability.store.answer_reads`); this module only tabulates.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stability.analysis.experiments import resolve_selection
from stability.store.answer_reads import reading_rows
from stability.store.store import Store

#: readings in the order they are shown
KINDS = ("changed", "declined", "truncated", "parse_failure", "error")
EXAMPLES_PER_KIND = 2
SNIPPET = 160


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    step: int
    call_id: str | None
    answer: str
    detail: str | None


class ModelReadings(BaseModel):
    """How one model's answers were read."""

    model_config = ConfigDict(extra="forbid")

    model: str
    readings: int
    kinds: dict[str, int]
    #: why answers failed to parse, by reason (the detail up to its first quoted example), most common first
    parse_failures: dict[str, int]
    structured: int
    json_object: int
    text_fallback: int
    #: the servers' refusals behind the text fallbacks, by reason
    fallback_reasons: dict[str, int]
    examples: dict[str, list[Example]] = Field(default_factory=dict)


class AnswerReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runs: list[str]
    models: list[ModelReadings]


def answer_report(selection: list[str], db: Path | str | None = None, all_runs: bool = False) -> AnswerReport:
    """The report for the runs of ``selection`` (or every run with ``all_runs``)."""
    with Store.open(db, read_only=True) as store:
        run_ids, _ = resolve_selection(store, selection, all_runs)
        rows = reading_rows(store, run_ids)
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row["call_model"] or row["run_model"], []).append(row)
    return AnswerReport(runs=run_ids, models=[_tabulate(model, found) for model, found in sorted(by_model.items())])


def _tabulate(model: str, rows: list[dict[str, Any]]) -> ModelReadings:
    kinds = Counter(row["decision"] for row in rows)
    failures = Counter(reason(row["detail"]) for row in rows if row["decision"] == "parse_failure")
    fallbacks = Counter(" ".join(row["fallback_reason"].split())[:240] for row in rows
                        if row["answer_format"] == "text" and row["fallback_reason"])
    examples: dict[str, list[Example]] = {}
    for row in rows:
        shown = examples.setdefault(row["decision"], [])
        if len(shown) < EXAMPLES_PER_KIND:
            shown.append(Example(run_id=row["run_id"], step=row["step"], call_id=row["call_id"],
                                 answer=" ".join((row["text"] or "").split())[:SNIPPET], detail=row["detail"]))
    return ModelReadings(
        model=model, readings=len(rows),
        kinds={kind: kinds.get(kind, 0) for kind in (*KINDS, *sorted(set(kinds) - set(KINDS)))},
        parse_failures=dict(failures.most_common()),
        structured=sum(row["answer_format"] == "structured" for row in rows),
        json_object=sum(row["response_format"] == "json_object" for row in rows),
        text_fallback=sum(row["answer_format"] == "text" and bool(row["fallback_reason"]) for row in rows),
        fallback_reasons=dict(fallbacks.most_common()), examples=examples)


def reason(detail: str | None) -> str:
    """A failure's reason without the example it quotes: ``no bullet list … in answer: 'I think…'`` is
    ``no bullet list … in answer``."""
    text = (detail or "(no reason recorded)").strip()
    text = re.split(r":\s*['\"{]", text, maxsplit=1)[0]
    return text[:120]
