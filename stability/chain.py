"""Read-side views of runs for the inspection commands: run summaries and a run's chain with per-step diffs."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stability.constitution import principles_text
from stability.records import RunInputRecord, RunRecord
from stability.store.store import Store


class RunSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    protocol: str
    model: str
    status: str
    stop_reason: str | None
    steps: int
    calls: int
    paid_calls: int
    input_tokens: int
    output_tokens: int
    created_at: str
    finished_at: str | None


class ChainStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    decision: str
    constitution_hash: str
    n_principles: int
    cycle_to: str | None
    detail: str | None
    diff: list[str]
    calls: list[str]


class RunView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: RunRecord
    inputs: list[RunInputRecord] = Field(default_factory=list, description="the input files its protocol options "
                                         "named, with the sha256 of each as read")
    steps: list[ChainStep]
    final_constitution: str
    totals: dict[str, Any]


def list_runs(db: Path | str | None = None) -> list[RunSummary]:
    with Store.open(db, read_only=True) as store:
        totals = store.call_totals()
        steps = store.revision_counts()
        return [_summary(run, totals.get(run.id, {}), steps.get(run.id, 0)) for run in store.runs()]


def _summary(run: RunRecord, totals: dict[str, Any], steps: int) -> RunSummary:
    return RunSummary(
        id=run.id, protocol=run.protocol, model=run.model, status=run.status, stop_reason=run.stop_reason,
        steps=max(steps - 1, 0), calls=totals.get("calls") or 0, paid_calls=totals.get("paid") or 0,
        input_tokens=totals.get("input_tokens") or 0, output_tokens=totals.get("output_tokens") or 0,
        created_at=run.created_at.isoformat(timespec="seconds"),
        finished_at=run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
    )


def step_diff(previous: list[str], current: list[str]) -> list[str]:
    """The principles a step removed (``-``) and added (``+``), in order."""
    return [line for line in difflib.unified_diff(previous, current, lineterm="", n=0)
            if not line.startswith(("---", "+++", "@@"))]


def show_run(run_id: str, db: Path | str | None = None) -> RunView:
    with Store.open(db, read_only=True) as store:
        run = store.run(run_id)
        revisions = store.revisions(run.id)
        edges = {edge.target_id: edge for edge in store.edges(run.id)}
        texts: dict[str, list[str]] = {}
        steps = []
        previous: list[str] = []
        for revision in revisions:
            if revision.constitution_hash not in texts:
                texts[revision.constitution_hash] = list(store.constitution(revision.constitution_hash).principles)
            current = texts[revision.constitution_hash]
            diff = step_diff(previous, current) if revision.step > 0 else []
            edge = edges.get(revision.id)
            steps.append(ChainStep(step=revision.step, decision=revision.decision,
                                   constitution_hash=revision.constitution_hash, n_principles=len(current),
                                   cycle_to=revision.cycle_to, detail=revision.detail, diff=diff,
                                   calls=edge.call_ids if edge else []))
            previous = current
        final = principles_text(previous)
        totals = store.call_totals().get(run.id, {})
        return RunView(run=run, inputs=store.run_inputs(run.id), steps=steps, final_constitution=final,
                       totals=totals)
