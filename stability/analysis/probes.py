"""Probed fixed points: P(decline | node) from ``stability probe`` samples, and whether a fixed point is confirmed.

The probes of a run that asked about its final node count; among the *answered* ones (declined or changed;
parse failures, truncations and errors are counted apart), the share that declined is P(decline | node), with a
Wilson interval. A fixed point is *confirmed* when that interval's lower bound is at least τ (``Params.tau``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from stability.analysis.stats import Interval, wilson


class ProbeSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str  # the probed node (the run's final)
    samples: int  # probes of it
    unanswered: int  # of which parse failures, truncations or errors
    p_decline: Interval  # Wilson interval over the answered probes
    confirmed: bool | None  # the fixed point holds: lower bound >= tau (None: the run has no fixed point)


def probe_summary(probes: list[tuple[str, str]], final: str, has_fixed_point: bool, tau: float
                  ) -> ProbeSummary | None:
    decisions = [decision for node, decision in probes if node == final]
    if not decisions:
        return None
    answered = [d for d in decisions if d in ("declined", "changed")]
    share = wilson(sum(d == "declined" for d in answered), len(answered))
    confirmed = (share.low is not None and share.low >= tau) if has_fixed_point else None
    return ProbeSummary(node=final, samples=len(decisions), unanswered=len(decisions) - len(answered),
                        p_decline=share, confirmed=confirmed)
