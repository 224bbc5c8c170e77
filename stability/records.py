"""Records the store writes and reads. Every one is a pydantic model with ``extra="forbid"``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stability.tokens import Tokens

#: ``truncated``: the answer was cut off at the token limit (never a revision; counted like a parse failure)
Decision = Literal["origin", "changed", "declined", "parse_failure", "truncated", "error", "authored"]
EdgeKind = Literal["edit", "decline", "parse_failure", "truncated", "error", "author"]
RunStatus = Literal["running", "done", "failed"]



def now() -> datetime:
    """The time records are stamped with: UTC, without a time zone (as DuckDB stores it)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Record(BaseModel):
    #: each record model is built when first used (a command that reads runs builds no call or rating model)
    model_config = ConfigDict(extra="forbid", defer_build=True)


class RunRecord(Record):
    id: str
    protocol: str
    model: str
    model_params: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any]
    seed: int
    start_hash: str
    template_hash: str
    package_version: str
    git_commit: str | None = None
    status: RunStatus = "running"
    stop_reason: str | None = None
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class RunInputRecord(Record):
    """One input file a run's protocol options named, as the engine read it (the provenance of its contents)."""

    run_id: str
    option: str = Field(description="the protocol option that names the file, e.g. alternatives")
    path: str = Field(description="the file as read (relative paths as given, or relative to a YAML list)")
    sha256: str = Field(description="sha256: of the file's bytes")


class RevisionRecord(Record):
    id: str
    run_id: str
    step: int
    constitution_hash: str
    parent_id: str | None = None
    decision: Decision
    cycle_to: str | None = None
    detail: str | None = None
    created_at: datetime


class EdgeRecord(Record):
    id: str
    run_id: str
    source_id: str
    target_id: str
    source_hash: str
    target_hash: str
    kind: EdgeKind
    protocol: str
    call_ids: list[str] = Field(default_factory=list)


class CallRecord(Record):
    id: str
    run_id: str
    step: int
    purpose: str
    model: str
    cache_key: str
    sample_index: int
    status: Literal["ok", "error"]
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    text: str | None = None
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    latency_ms: float = 0.0
    attempts: int = 1
    retries: list[dict[str, Any]] = Field(default_factory=list)
    cost_usd: float | None = None
    cached_from: str | None = None
    error: str | None = None
    created_at: datetime
    #: why the answer ended, as the provider said it (``stop``, ``length``, ``max_tokens``, ...)
    finish_reason: str | None = None
    thinking: str | None = None
    answer_format: Literal["structured", "text"] | None = None
    fallback_reason: str | None = None

    @property
    def truncated(self) -> bool:
        """The answer was cut at the token limit (``finish_reason`` length, max_tokens, ...)."""
        from stability.vocabulary.generation import is_truncated

        return is_truncated(self.finish_reason)

    @property
    def structured(self) -> dict[str, Any] | None:
        """The answer as a JSON object when it was asked for with a schema and is one, else None."""
        from stability.json_text import json_object

        return json_object(self.text or "") if self.answer_format == "structured" else None


class RatingRecord(Record):
    id: str
    run_id: str
    trial: int
    step: int
    mode: Literal["principle", "constitution"]
    target_index: int | None = None
    target: str
    label: str
    position: int
    option_text: str
    relation: str | None = None
    rating: int | None = None
    rating_probs: dict[str, float] | None = None
    expected_rating: float | None = None
    favourite: bool = False
    call_id: str
    reflection_call_id: str | None = None


CellStatus = Literal["not_started", "running", "done", "failed"]


class ExperimentRecord(Record):
    id: str
    name: str
    spec: dict[str, Any]
    spec_path: str | None = None
    created_at: datetime


class CellRecord(Record):
    experiment_id: str
    cell: str
    position: int
    config: dict[str, Any]
    run_id: str | None = None
    status: CellStatus = "not_started"


class AdapterRecord(Record):
    """A LoRA adapter a run trained: where it is, what it was trained on and how."""

    id: str
    run_id: str
    generation: int
    parent_id: str | None = None
    base_model: str
    base_params: dict[str, Any] = Field(default_factory=dict)
    path: str
    content_hash: str
    data_hash: str
    data: list[dict[str, Any]]
    trainer: dict[str, Any]
    losses: list[float]
    loss_before: float
    loss_after: float
    train_seconds: float
    created_at: datetime


class GenerationRecord(Record):
    """One generation of a fine-tune loop: the adapter, the revision it produced, and how much changed."""

    run_id: str
    generation: int
    adapter_id: str
    revision_id: str
    previous_hash: str
    constitution_hash: str
    n_traces: int
    n_parsed: int
    n_changed: int
    share_kept: float
    set_distance: float
    reflect_template_hash: str
    created_at: datetime


class ProbeRecord(Record):
    """One probe of a run's final node: the run's question re-asked as a fresh sample (``stability probe``).

    The row is the probe's edge: from the probed node (``source_hash``) to what the answer proposed
    (``target_hash``; the same node for a decline), through the stored call ``call_id``."""

    id: str
    run_id: str
    sample: int
    source_hash: str
    target_hash: str | None = None
    decision: str  # declined | changed | parse_failure | truncated | error
    call_id: str
    created_at: datetime


JudgeQuestion = Literal["clash", "equivalence", "contradiction", "refusal"]


class JudgementRecord(Record):
    """One judge model's answer to one question about one subject (``stability judge``).

    Keyed by the judge (model and parameters: ``judge_key``), the question's template hash, the question and the
    subject's content hashes; ``verdict`` is None when the answer could not be read (a stored failure: "no
    judgement")."""

    id: str
    judge_key: str
    judge_model: str
    judge_params: dict[str, Any] = Field(default_factory=dict)
    template_hash: str
    question: JudgeQuestion
    subject_key: str
    subjects: list[str]
    verdict: str | None = None
    how: str | None = None
    rationale: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    raw_answer: str | None = None
    problem: str | None = None
    call_id: str
    created_at: datetime
