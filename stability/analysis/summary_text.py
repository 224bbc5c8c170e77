"""Groups and contrasts as short text, one way for every reader: the terminal (``analyze``), the HTML report and
the viewer's cells show the same strings for the same numbers.

One rule for a measure that is undefined (no runs to count, one start for a between-start ratio, a median never
reached): it is shown as ``–`` (or "not reached") followed by the reason in brackets, never as a number; ``--json``
carries ``null`` with the same reason beside it (``note``, ``convergence_ratio_note``)."""

from __future__ import annotations

from typing import Any


def _g(value: float) -> str:
    return f"{value:.3g}"


def interval_text(value: Any) -> str:
    """``mean [low, high] (n=…, k starts)``; ∞ for an unbounded side, – for no estimate (with why, when known)."""
    if value is None:
        return "–"
    if value.mean is None:
        return "– (nothing to count: n=0)" if value.n == 0 else "– (no estimate)"
    clusters = getattr(value, "clusters", None)
    count = f"n={value.n}" + (f", {clusters} starts" if clusters else "")
    if value.low is None:
        return f"{_g(value.mean)} ({count})"
    high = "∞" if value.high is None else _g(value.high)
    return f"{_g(value.mean)} [{_g(value.low)}, {high}] ({count})"


def p_text(p: float | None) -> str:
    """``=0.0123``, ``<0.001`` or ``=–``: to follow ``p`` or ``adj``."""
    if p is None:
        return "=–"
    return "<0.001" if p < 0.001 else f"={p:.3g}"


def contrast_cell(estimate: Any) -> str:
    """``effect [low, high] p=… (adj …)``, or the effect and why there is no interval."""
    if estimate is None or estimate.mean is None:
        return "–" if estimate is None or estimate.note is None else f"– ({estimate.note})"
    low = "−∞" if estimate.low is None and estimate.high is not None else None
    if estimate.low is None and estimate.high is None:
        body = f"{_g(estimate.mean)} (no interval: {estimate.note})" if estimate.note else _g(estimate.mean)
    else:
        lo = low or _g(estimate.low)
        hi = "∞" if estimate.high is None else _g(estimate.high)
        body = f"{_g(estimate.mean)} [{lo}, {hi}]"
    if estimate.p_value is not None:
        body += f" p{p_text(estimate.p_value)} (adj{p_text(estimate.p_adjusted)})"
    return body


def starts_text(group: Any) -> str:
    return f"{group.starts} · {group.models}"


def ratio_text(ratio: Any, null_range: bool = False) -> str:
    """The convergence ratio with its interval (or why none) and its null p-value (``null_range``: and the 95%
    range of its within-start null). Undefined (one start): ``– (why)``, with no interval and no null."""
    if ratio.mean is None:
        return f"– ({ratio.note})" if ratio.note else "– (undefined)"
    text = _g(ratio.mean)
    if ratio.low is not None and ratio.high is not None:
        text += f" [{_g(ratio.low)}, {_g(ratio.high)}]"
    text += f" (n={ratio.n}, {ratio.starts} starts)"
    if ratio.p_value is not None:
        text += f" p{p_text(ratio.p_value)}"
    if null_range:
        text += (f" · null {_g(ratio.null_low)}–{_g(ratio.null_high)}"
                 if ratio.null_low is not None and ratio.null_high is not None else " · no null (no runs to permute)")
    return text


def cross_ratio_text(cross: Any) -> str:
    """The cross-run convergence ratio (spread of finals / spread of starts), or ``– (why)``."""
    if cross.convergence_ratio is None:
        return f"– ({cross.convergence_ratio_note or 'undefined'})"
    return f"{cross.convergence_ratio:.3f}"


def median_text(survival: Any) -> str:
    """A Kaplan–Meier median of steps to a fixed point with its interval, and how many runs reached or were
    censored; "not reached" (undefined: fewer than half reached one) when it is not."""
    s = survival
    if s.median is None:
        median = "not reached"
    else:
        median = f"{s.median:g}" + (f" [{s.low:g}, {'∞' if s.high is None else f'{s.high:g}'}]"
                                    if s.low is not None else "")
    return f"{median} ({s.events} reached, {s.censored} censored)"


def group_warnings(result: Any) -> list[str]:
    """One line per group whose intervals carry a warning (two starts, ...) or whose ratio has no interval."""
    lines = []
    for g in result.groups:
        warned = {i.warning for i in (g.fixed_point_rate, g.fixed_point_rate_started, g.cycle_rate)
                  if i is not None and i.warning}
        lines += [f"{g.label or 'all runs'}: {w}" for w in sorted(warned)]
        if g.steps_to_fixed_point.warning:
            lines.append(f"{g.label or 'all runs'}: {g.steps_to_fixed_point.warning}")
        if g.convergence_ratio.mean is not None and g.convergence_ratio.note:
            lines.append(f"{g.label or 'all runs'}: convergence ratio: {g.convergence_ratio.note}")
    return lines


def cause_text(cause: Any) -> str:
    """A cumulative incidence (or a difference of two) at one step with its interval: ``F [low, high]``."""
    if cause is None or cause.estimate is None:
        return "–"
    if cause.low is None or cause.high is None:
        return _g(cause.estimate)
    return f"{_g(cause.estimate)} [{_g(cause.low)}, {_g(cause.high)}]"


def _tested(p: float | None, adjusted: float | None) -> str:
    return "" if p is None else f" p{p_text(p)} (adj{p_text(adjusted)})"


def hazard_text(ratio: Any) -> str:
    """A cause-specific hazard ratio a / b with its interval and raw and adjusted p-values."""
    if ratio is None or ratio.estimate is None:
        return "–"
    text = _g(ratio.estimate)
    if ratio.low is not None and ratio.high is not None:
        text += f" [{_g(ratio.low)}, {_g(ratio.high)}]"
    return text + _tested(ratio.p_value, ratio.p_adjusted)


def incidence_text(incidence: Any) -> str | None:
    """A group's competing risks at its horizon: P(fixed point), P(cycle), P(no verdict) by step t; None: no
    chain run."""
    if incidence is None or not incidence.n:
        return None
    median = incidence.median_fixed_point if incidence.median_fixed_point is not None else "not reached"
    text = (f"by step {incidence.horizon}: P(fixed point) {cause_text(incidence.fixed_point)}, "
            f"P(cycle) {cause_text(incidence.cycle)}, P(no verdict) {cause_text(incidence.no_verdict)} · "
            f"median steps to a fixed point {median} (Aalen–Johansen over {incidence.n} started runs, "
            f"{incidence.clusters} starts; {incidence.fixed_point.method})")
    return text + (f" · {incidence.warning}" if incidence.warning else "")


def incidence_contrast_text(contrast: Any) -> str | None:
    """A contrast's competing risks (a − b at a common step) with raw and adjusted p-values; None: none."""
    i = contrast.incidence
    if i is None or i.step is None:
        return None
    return (f"by step {i.step}: P(fixed point) {cause_text(i.fixed_point)}"
            f"{_tested(i.p_fixed_point, i.p_fixed_point_adjusted)}, P(cycle) {cause_text(i.cycle)}"
            f"{_tested(i.p_cycle, i.p_cycle_adjusted)}; cause-specific hazard ratio a / b, fixed point "
            f"{hazard_text(i.hazard_ratio_fixed_point)}, cycle {hazard_text(i.hazard_ratio_cycle)} "
            f"({'paired' if i.paired else 'unpaired'}, {i.clusters} starts)")
