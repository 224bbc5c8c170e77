"""``stability findings``: the methodology's questions answered for a selection; parses and calls one library
function (:func:`stability.analysis.findings.assemble.findings`)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from stability.cli.analysis import (
    AdjustOption,
    AllOption,
    ClusterOption,
    EmbedderOption,
    EpsilonOption,
    JudgeOption,
    KOption,
    ReferenceOption,
    RunsArgument,
    ThresholdOption,
    _adjust,
    _params,
)
from stability.cli.console import DbOption, JsonOption, console, errors, print_json
from stability.cli.display import printable


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _estimate(e: Any) -> str:
    if e.estimate is None:
        return "–"
    if e.low is None or e.high is None:
        return _number(e.estimate)
    return f"{_number(e.estimate)} [{_number(e.low)}, {_number(e.high)}]"


def _label(group: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items()) or "all runs"


def rows(result: Any) -> list[tuple[str, str, str, Any]]:
    """(question, measure, group or contrast, estimate) per printed line of the findings table."""
    out = []
    for f in result.findings:
        measure = f.measure if f.property is None else f"{f.measure} ({f.property})"
        for g in f.groups or []:
            out.append((f.question, measure, _label(g.group), g))
        if f.contrast is not None and f.contrast_of is not None:
            a, b = f.contrast_of
            out.append((f.question, measure, f"{_label(a)} − {_label(b)}", f.contrast))
        for name in ("slope", "strength", "position"):
            e = getattr(f, name)
            if e is not None:
                out.append((f.question, f"{measure}: {name}", "", e))
        if not f.groups and f.contrast is None and f.slope is None and f.note:
            out.append((f.question, measure, f.note, None))
    return out


def _print(result: Any) -> None:
    table = Table(title=f"findings · p adjusted by {result.adjust}")
    for column in ("question", "measure", "group / contrast", "estimate [low, high]", "n", "clusters", "method",
                   "p (adj.)"):
        table.add_column(column)
    for question, measure, label, e in rows(result):
        if e is None:
            table.add_row(question, measure, escape(printable(label)), "–", "", "", "", "")
            continue
        p = "" if e.p_value is None else f"{e.p_value:.3g} ({_number(e.p_adjusted)})"
        method = e.method + (f" · {e.note}" if e.note else "")
        table.add_row(question, measure, escape(printable(label)), _estimate(e), str(e.n), str(e.clusters),
                      escape(method), p)
    console.print(table)
    for u in result.unanswerable:
        console.print(f"[bold]{u.question}[/]: cannot answer: {escape(u.reason)}")


def findings(runs: RunsArgument = None, all_runs: AllOption = False, db: DbOption = None,
             as_json: JsonOption = False, embedder: EmbedderOption = "all-MiniLM-L6-v2",
             reworded_threshold: ThresholdOption = 0.7, epsilon: EpsilonOption = 0.02, k: KOption = None,
             cluster_threshold: ClusterOption = 0.1, reference: ReferenceOption = None, judge: JudgeOption = None,
             adjust: AdjustOption = "holm") -> None:
    """Answer the methodology's seven questions (principle swaps and survival, convergence by route, contradictory
    vs consistent, similar vs dissimilar starts, attractor strength, blank slate, fine-tune generations) with an
    estimate, interval, n and clusters each; say which cannot be answered and why."""
    from stability.analysis.findings.assemble import findings as answer

    params = _params(reworded_threshold, epsilon, k, cluster_threshold)
    with errors.status("findings", spinner="dots") as status:
        def progress(text: str) -> None:
            status.update(text)

        result = answer(runs or [], db, all_runs=all_runs, embedder=embedder, references=list(reference or []),
                        judge=judge, params=params, adjust=_adjust(adjust),
                        progress=progress if errors.is_interactive else lambda _: None)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _print(result)
