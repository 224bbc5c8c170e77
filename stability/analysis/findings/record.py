"""The record every finding is: one question, one measure, an estimate with its interval, n and clusters.

A finding is either about ``groups`` (one estimate per group) or a ``contrast`` (a − b); an attractor-strength
finding also carries ``property``, ``slope``, ``strength`` and ``position``. A question the design cannot answer is
an :class:`Unanswerable` with the reason ("one start: no between-start convergence"), never a number.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Question = Literal[
    "principle-swap",  # 1a: rate-alternatives, swap rate per principle
    "principle-survival",  # 1b: iteration runs, survival of each starting principle
    "convergence-by-route",  # 2: fresh instances, in context, multi-agent; routes paired by start
    "consistent-vs-contradictory",  # 3
    "similar-vs-dissimilar-starts",  # 4
    "attractor-strength",  # 5: Perez et al. (ICLR 2025)
    "blank-slate",  # 6
    "fine-tune-generations",  # 7
]


class Estimate(BaseModel):
    """One estimate with its 95% interval; ``low``/``high`` None with a ``note`` where there is no interval."""

    model_config = ConfigDict(extra="forbid")

    estimate: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0  # observations the estimate rests on (runs, principles, pairs)
    clusters: int = 0  # independent units the interval is over (starts, lineages, principles)
    method: str = "none"
    p_value: float | None = None
    p_adjusted: float | None = None
    note: str | None = None


class GroupEstimate(Estimate):
    """An estimate for one group (its factors: model, protocol, start, principle, generation...)."""

    group: dict[str, Any]


class Finding(BaseModel):
    """One measure answering one question, over groups or as a contrast."""

    model_config = ConfigDict(extra="forbid")

    question: Question
    measure: str  # e.g. "swap_rate", "survival_at_last_step", "hazard_ratio", "fixed_point_rate", "slope"
    groups: list[GroupEstimate] | None = None
    contrast: Estimate | None = None
    contrast_of: tuple[dict[str, Any], dict[str, Any]] | None = None  # (a, b) of ``contrast``: a − b
    # attractor strength (question 5) only
    property: str | None = None
    slope: Estimate | None = None
    strength: Estimate | None = None  # 1 − |slope|
    position: Estimate | None = None  # intercept / (1 − slope)
    note: str | None = None
    # the data behind the finding's figure (survival curves, scatter points, per-generation series), by name
    figure: dict[str, Any] | None = None


class Unanswerable(BaseModel):
    """A question the selection's design cannot answer, and why."""

    model_config = ConfigDict(extra="forbid")

    question: Question
    reason: str


class Findings(BaseModel):
    """What ``stability findings`` prints (``--json``)."""

    model_config = ConfigDict(extra="forbid")

    findings: list[Finding]
    unanswerable: list[Unanswerable]
    adjust: str = "holm"  # multiplicity correction over every printed p-value
