"""The findings' figures and their HTML section, drawn from :class:`~stability.analysis.findings.record.Finding`
records alone (the report and the viewer's experiment page show the same).

Per question, one figure of every estimate it printed (a dot with its 95% interval per group and contrast; a
contrast is drawn against a dashed zero line). Findings of a particular shape get a figure of their own:

- *curves*: groups keyed by ``step``, ``generation`` or ``position`` (survival by step, per-generation measures):
  the estimate over that key with its interval band, one line per value of the other keys;
- *attractor strength* (``property`` with ``slope`` and ``position``): the fitted line final = a + b · start with
  the identity line, and the runs' points: the finding's ``figure`` (``attractor-scatter``: ``points`` of start
  value, final value, start; ``fit``), or groups that carry ``start_value`` (and ``estimate`` is the final value);
- *survival curves* (a ``figure`` of kind ``survival-curves``, question 1): the Kaplan–Meier share of starting
  principles not yet removed, over steps, one step line per group (principle, position, clash side ...).

At most ``MAX_FIGURES`` figures a question, survival by position and by clash side first (the table below them
holds every estimate).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from stability.analysis.report.figures import _pyplot, _svg

#: the methodology's questions, in order, with the heading each gets
TITLES = {"principle-swap": "1. Principles: how likely is a model to swap a given principle?",
          "principle-survival": "1. Principles: which starting principles survive iteration?",
          "convergence-by-route": "2. Does iteration converge to a constitution the model no longer wants to "
                                  "change, by route?",
          "consistent-vs-contradictory": "3. Consistent vs contradictory",
          "similar-vs-dissimilar-starts": "4. Similar vs dissimilar starts: do runs end in the same place?",
          "attractor-strength": "5. Attractor strength",
          "blank-slate": "6. Blank slate: do self-authored constitutions end in the attractors of provided starts?",
          "fine-tune-generations": "7. Fine-tune-reflect: does the model become more stable over generations?"}
CURVE_KEYS = ("step", "generation", "position")
MAX_ROWS = 40
MAX_FIGURES = 6
#: survival curves drawn first (the rest as room allows): by position, by clash side, per principle
SURVIVAL_FIRST = ("survival_by_position", "survival_by_clash", "survival")
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _label(group: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items()) or "all runs"


def _curve_key(finding: Any) -> str | None:
    groups = finding.groups or []
    for key in CURVE_KEYS:
        if groups and all(isinstance(g.group.get(key), int | float) for g in groups):
            return key
    return None


def estimate_rows(findings: Sequence[Any]) -> list[tuple[str, Any, bool]]:
    """(label, estimate, is a contrast) for every estimate the question's findings printed, curves and attractor
    strength left to their own figures."""
    rows: list[tuple[str, Any, bool]] = []
    for f in findings:
        if f.property is not None or _curve_key(f) is not None:
            continue
        for g in f.groups or []:
            rows.append((f"{f.measure}: {_label(g.group)}", g, False))
        if f.contrast is not None and f.contrast_of is not None:
            a, b = f.contrast_of
            rows.append((f"{f.measure}: {_label(a)} − {_label(b)}", f.contrast, True))
    return [r for r in rows if r[1].estimate is not None][:MAX_ROWS]


def intervals(findings: Sequence[Any]) -> str | None:
    """Every estimate with its 95% interval (a dot; a bar where there is an interval), n beside it."""
    rows = estimate_rows(findings)
    if not rows:
        return None
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    for yi, (_, e, contrast) in zip(y, rows, strict=True):
        colour = "#d62728" if contrast else "#1f77b4"
        if e.low is not None and e.high is not None:
            axis.plot([e.low, e.high], [yi, yi], color=colour, linewidth=2)
        axis.plot([e.estimate], [yi], "o", color=colour)
        axis.annotate(f"n={e.n}, {e.clusters} clusters", (e.estimate, yi), textcoords="offset points",
                      xytext=(0, 5), fontsize=7, ha="center")
    if any(c for _, _, c in rows):
        axis.axvline(0.0, color="#999", linestyle="--", linewidth=1)
    axis.set_yticks(y, [r[0] for r in rows], fontsize=7)
    axis.set_xlabel("estimate (95% interval; red: a contrast a − b)")
    return _svg(fig)


def curves(finding: Any) -> str:
    """The estimate over ``step``/``generation``/``position`` with its interval band, one line per other group."""
    key = _curve_key(finding)
    assert key is not None
    lines: dict[str, list[Any]] = {}
    for g in finding.groups or []:
        rest = {k: v for k, v in g.group.items() if k != key}
        lines.setdefault(_label(rest), []).append(g)
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 3.4))
    for i, (name, points) in enumerate(sorted(lines.items())[:len(COLOURS)]):
        points = sorted((p for p in points if p.estimate is not None), key=lambda p: p.group[key])
        x = [p.group[key] for p in points]
        colour = COLOURS[i % len(COLOURS)]
        axis.plot(x, [p.estimate for p in points], marker="o", markersize=3, color=colour, label=name)
        banded = [p for p in points if p.low is not None and p.high is not None]
        if banded:
            axis.fill_between([p.group[key] for p in banded], [p.low for p in banded], [p.high for p in banded],
                              color=colour, alpha=0.2)
    axis.set_xlabel(key)
    axis.set_ylabel(finding.measure)
    axis.set_title(f"{finding.measure} by {key} (95% intervals)", fontsize=8)
    axis.legend(fontsize=7)
    return _svg(fig)


def strength(finding: Any) -> str:
    """Final against starting value of a property: the fitted line and the identity line (and the points where
    the finding's groups carry ``start_value``)."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(4.6, 4.2))
    drawn = finding.figure if isinstance(finding.figure, dict) and finding.figure.get("kind") == "attractor-scatter" \
        else {}
    points = [(p[0], p[1]) for p in drawn.get("points") or [] if p[0] is not None and p[1] is not None] or \
        [(g.group["start_value"], g.estimate) for g in finding.groups or []
         if isinstance(g.group.get("start_value"), int | float) and g.estimate is not None]
    xs = [p[0] for p in points]
    if points:
        axis.scatter(xs, [p[1] for p in points], s=14, color="#1f77b4", label="runs")
    slope = finding.slope.estimate if finding.slope is not None else None
    position = finding.position.estimate if finding.position is not None else None
    low, high = (min(xs), max(xs)) if xs else (0.0, max(1.0, 2 * abs(position or 1.0)))
    if low == high:
        low, high = low - 1.0, high + 1.0
    line = np.linspace(low, high, 2)
    axis.plot(line, line, color="#999", linestyle="--", label="identity (no pull)")
    fit = drawn.get("fit") or {}
    if fit.get("slope") is not None and fit.get("intercept") is not None:
        slope, intercept = fit["slope"], fit["intercept"]
    else:
        intercept = position * (1 - slope) if position is not None and slope is not None else 0.0
    if slope is not None:
        axis.plot(line, intercept + slope * line, color="#d62728", label=f"fitted: slope {slope:.2g}")
    if position is not None:
        axis.axhline(position, color="#2ca02c", linewidth=0.8, label=f"attractor position {position:.3g}")
    s = finding.strength.estimate if finding.strength is not None else None
    group = _label((finding.groups or [None])[0].group) if finding.groups else ""
    axis.set_title(f"{finding.property}: strength {'–' if s is None else f'{s:.2g}'}\n{group}", fontsize=8)
    axis.set_xlabel("starting value")
    axis.set_ylabel("final value")
    axis.legend(fontsize=7)
    return _svg(fig)


def _survival_figure(finding: Any) -> bool:
    return isinstance(finding.figure, dict) and finding.figure.get("kind") == "survival-curves" \
        and bool(finding.figure.get("curves"))


def _survival_order(finding: Any) -> int:
    return SURVIVAL_FIRST.index(finding.measure) if finding.measure in SURVIVAL_FIRST else len(SURVIVAL_FIRST)


def survival(finding: Any) -> str:
    """Kaplan–Meier survival of starting principles over steps, one step line per group (``figure.curves``:
    value -> [[step, surviving, at risk], ...]); the first ``len(COLOURS)`` groups."""
    figure = finding.figure
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 3.4))
    for i, (name, curve) in enumerate(sorted(figure["curves"].items())[:len(COLOURS)]):
        steps = [0] + [point[0] for point in curve]
        surviving = [1.0] + [point[1] for point in curve]
        axis.step(steps, surviving, where="post", color=COLOURS[i], label=str(name)[:60])
    axis.set_ylim(-0.03, 1.03)
    axis.set_xlabel("step")
    axis.set_ylabel("share not yet removed")
    key = _label(figure.get("key") or {})
    axis.set_title(f"{finding.measure} by {figure.get('by', 'group')} ({key})", fontsize=8)
    axis.legend(fontsize=7)
    return _svg(fig)


def question_figures(findings: Sequence[Any]) -> list[str]:
    """The SVG figures of one question's findings (at most ``MAX_FIGURES``)."""
    out = [svg for svg in (intervals(findings),) if svg is not None]
    drawers = ([(curves, f) for f in findings if f.property is None and _curve_key(f) is not None]
               + [(survival, f) for f in sorted((f for f in findings if f.property is None and _survival_figure(f)),
                                                 key=_survival_order)]
               + [(strength, f) for f in findings if f.property is not None and f.slope is not None])
    out += [draw(f) for draw, f in drawers[:MAX_FIGURES - len(out)]]
    return out


def _cell(e: Any) -> str:
    if e.estimate is None:
        return "–"
    text = f"{e.estimate:.3g}"
    if e.low is not None and e.high is not None:
        text += f" [{e.low:.3g}, {e.high:.3g}]"
    return text


def _rows(findings: Sequence[Any]) -> list[list[str]]:
    rows = []
    for f in findings:
        estimates: list[tuple[str, Any]] = [(_label(g.group), g) for g in f.groups or []]
        if f.contrast is not None and f.contrast_of is not None:
            estimates.append((f"{_label(f.contrast_of[0])} − {_label(f.contrast_of[1])}", f.contrast))
        estimates += [(name, getattr(f, name)) for name in ("slope", "strength", "position")
                      if getattr(f, name) is not None]
        for label, e in estimates:
            adjusted = "–" if e.p_adjusted is None else f"{e.p_adjusted:.3g}"
            p = "" if e.p_value is None else f"{e.p_value:.3g} ({adjusted})"
            rows.append([f.measure + (f" ({f.property})" if f.property else ""), label, _cell(e), str(e.n),
                         str(e.clusters), e.method + (f" · {e.note}" if e.note else ""), p])
        if not estimates and f.note:
            rows.append([f.measure, f.note, "–", "", "", "", ""])
    return rows


HEADERS = ["measure", "group / contrast", "estimate [95% interval]", "n", "clusters", "method", "p (adjusted)"]


def questions(result: Any) -> list[dict[str, Any]]:
    """Per answered question, in the methodology's order: its title, figures (SVG text) and table rows (the same
    for the report and the viewer)."""
    by_question: dict[str, list[Any]] = {}
    for f in result.findings:
        by_question.setdefault(f.question, []).append(f)
    return [{"question": q, "title": title, "figures": question_figures(by_question[q]),
             "rows": _rows(by_question[q])} for q, title in TITLES.items() if q in by_question]


def section(result: Any) -> str:
    """The findings as HTML: per question its figures and a table of estimates; then what cannot be answered."""
    e = html.escape
    parts = [f"<h2>Findings</h2><p>p-values adjusted by {e(result.adjust)} over every printed p-value.</p>"]
    head = "".join(f"<th>{e(h)}</th>" for h in HEADERS)
    for q in questions(result):
        figures = "".join(f"<figure>{svg}</figure>" for svg in q["figures"])
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in q["rows"])
        parts.append(f"<h3 id=\"finding-{e(q['question'])}\">{e(q['title'])}</h3>{figures}"
                     f"<table><tr>{head}</tr>{body}</table>")
    if result.unanswerable:
        items = "".join(f"<li><b>{e(u.question)}</b>: {e(u.reason)}</li>" for u in result.unanswerable)
        parts.append(f"<p>Questions this selection cannot answer:</p><ul>{items}</ul>")
    return "".join(parts)
