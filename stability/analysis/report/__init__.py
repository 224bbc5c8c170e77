"""``write_report``: one self-contained HTML file (inline SVG figures, inline CSS; nothing fetched)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from stability.analysis.alignment import align
from stability.analysis.convergence import Params
from stability.analysis.corpus import Corpus
from stability.analysis.embeddings import DEFAULT_MODEL, Embedder
from stability.analysis.factors import key_text
from stability.analysis.findings.assemble import assemble
from stability.analysis.findings.data import FindingsData
from stability.analysis.judged import load_judgements
from stability.analysis.measure import AnalysisResult, Vectors, load, measure
from stability.analysis.report import figures, finding_figures, group_figures
from stability.analysis.summary_text import (
    contrast_cell,
    cross_ratio_text,
    group_warnings,
    incidence_contrast_text,
    incidence_text,
    interval_text,
    median_text,
    ratio_text,
    starts_text,
)
from stability.output_files import write_text_whole

MAX_DIFF_RUNS = 50

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.kept { color: #555; } .added { color: #1b7f3b; } .removed { color: #b3261e; text-decoration: line-through; }
.reworded { color: #8a5a00; } .moved { color: #3558b3; } code { font-size: 0.85em; }
details { margin: 0.4em 0; } .warning { color: #8a5a00; }
"""

# Marks the page as rendered, and records any script error, so a headless browser can check both.
SCRIPT = """<script>
window.addEventListener('error', function (e) {
  document.documentElement.setAttribute('data-script-error', String(e.message));
});
document.addEventListener('DOMContentLoaded', function () {
  document.documentElement.setAttribute('data-figures', String(document.querySelectorAll('figure svg').length));
});
</script>"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _interval(value: Any) -> str:
    return interval_text(value)  # as every output writes it (undefined: ``–`` and why)


def _diffs(result: AnalysisResult, corpus: Corpus, vectors: Vectors, params: Params) -> str:
    out = []
    for run in corpus.runs[:MAX_DIFF_RUNS]:
        items = []
        visits = run.usable
        for previous, visit in zip(visits, visits[1:], strict=False):
            if previous.node == visit.node:
                items.append(f"<li>step {visit.step}: {_e(visit.decision)}</li>")
                continue
            lines = []
            alignment = align(corpus.principles[previous.node], corpus.principles[visit.node], vectors.principles,
                              params.reworded_threshold)
            for c in alignment.changes:
                if c.kind == "reworded":
                    text = f"{_e(c.before_text)} → {_e(c.after_text)} (similarity {c.similarity:.2f})"
                else:
                    text = _e(c.before_text if c.before_text is not None else c.after_text)
                lines.append(f'<div class="{c.kind}">{c.kind}: {text}</div>')
            items.append(f"<li>step {visit.step}: {_e(visit.decision)}{''.join(lines)}</li>")
        out.append(f"<details><summary>{_e(run.run_id)} · {_e(run.model)} · stop {_e(run.stop_reason)}"
                   f"</summary><ul>{''.join(items) or '<li>no steps</li>'}</ul></details>")
    if len(corpus.runs) > MAX_DIFF_RUNS:
        out.append(f"<p>Diffs of the first {MAX_DIFF_RUNS} of {len(corpus.runs)} runs.</p>")
    return "".join(out)


def _ratings(result: AnalysisResult) -> str:
    """The rate-alternatives section, when the runs include ratings."""
    prefs = result.preferences
    if not prefs.targets:
        return ""
    parts = ["<h2>Rate alternatives</h2>", f"<figure>{figures.rating_chart(result)}</figure>"]
    if len(prefs.targets) > figures.MAX_RATING_TARGETS:
        parts.append(f"<p>Charts of the first {figures.MAX_RATING_TARGETS} of {len(prefs.targets)} targets; "
                     "the tables have them all.</p>")
    for target in prefs.targets:
        parts.append(f"<h3>{_e(target.mode)}: {_e(target.target)} ({target.trials} trials)</h3>")
        parts.append(_table(
            ["option", "relation", "shown", "unscored", "mean rating", "favourite rate", "expected rating",
             "Bradley–Terry log-strength"],
            [[o.text, o.relation or "–", o.shown, o.unscored, _interval(o.mean_rating), _interval(o.favourite_rate),
              _interval(o.expected_rating), _interval(o.bradley_terry)] for o in target.options]))
    if prefs.by_relation:
        parts.append("<h3>By relation to the target</h3>")
        parts.append(_table(["relation", "mean rating", "favourite rate"],
                            [[r.relation, _interval(r.mean_rating), _interval(r.favourite_rate)]
                             for r in prefs.by_relation]))
    return "".join(parts)


def _groups(result: AnalysisResult, palette: dict[str, str]) -> str:
    """The groups section: tables and figures per group, contrasts, and each group's attractors."""
    by = ", ".join(result.by) if result.by else "(no --by: all runs)"
    parts = [f"<h2>Groups</h2><p>Grouped by <b>{_e(by)}</b>"
             + (f" · experiments {_e(', '.join(result.experiments))}" if result.experiments else "")
             + ". 95% intervals over starting constitutions: rates by Wilson-t (Wilson over runs with one start), "
             "the convergence ratio between starts by a jackknife over starts, its null by permuting labels within "
             "each start (docs/analysis.md, <i>Methods</i>).</p>"]
    rows = []
    for g in result.groups:
        swatch = f'<span style="color:{palette[g.label]}">■</span> {_e(g.label)}'
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in [
            swatch, g.runs, _e(starts_text(g)), g.no_verdict, g.verdicts.get("not_chain", 0),
            _e(interval_text(g.fixed_point_rate)), _e(interval_text(g.fixed_point_rate_started)),
            _e(interval_text(g.cycle_rate)), _e(median_text(g.steps_to_fixed_point)),
            _e(ratio_text(g.convergence_ratio)),
            _e(interval_text(g.clash_resolution)), len(g.attractors)]) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ["group", "runs", "starts · models", "no verdict", "not a chain",
                                             "fixed-point rate (judged)", "fixed-point rate (started)",
                                             "cycle rate", "KM median steps to fixed point",
                                             "convergence ratio between starts", "clashes resolved", "attractors"])
    parts.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    parts += [f'<p class="warning">warning: {_e(line)}</p>' for line in group_warnings(result)]
    parts += [f"<figure>{svg}</figure>" for _, svg in group_figures.figures(result, curves=False)]
    incidences = [(g.label, incidence_text(g.incidence)) for g in result.groups]
    if any(text is not None for _, text in incidences):
        parts.append("<h3>Competing risks</h3><p>Cumulative incidence of each way a chain run ends (Aalen–Johansen; "
                     "cycles and no verdicts compete with fixed points, the step cap censors).</p>" + _table(
            ["group", "cumulative incidence"], [[label, text] for label, text in incidences if text is not None]))
    nulls = [(g, g.paraphrase_null) for g in result.groups if g.paraphrase_null is not None]
    if nulls:
        parts.append("<h3>Drift against the rephrase null</h3>" + _table(
            ["group", "(model, start) cells", "rephrase runs", "drift", "rephrase drift", "excess", "suggested ε"],
            [[g.label, n.cells, n.control_runs, _interval(n.drift), _interval(n.rephrase_drift), _interval(n.excess),
              n.suggested_epsilon if n.suggested_epsilon is not None else "–"] for g, n in nulls]))
    if result.references:
        parts.append("<h3>Distance to the reference constitutions</h3>" + _table(
            ["group", "reference", "start", "final", "change (final − start)"],
            [[g.label, r.reference, _interval(r.start), _interval(r.final), _interval(r.change)]
             for g in result.groups for r in g.references]))
    if result.contrasts:
        parts.append(f"<h3>Contrasts (a − b)</h3><p>Effect [95% CI] p (p adjusted by {_e(result.adjust)} over every "
                     "p-value shown); paired within start where the groups share at least two starts.</p>" + _table(
            ["a", "b", "paired", "fixed-point rate (judged)", "fixed-point rate (started)", "KM median steps",
             "convergence ratio", "clashes resolved"],
            [[key_text(c.a), key_text(c.b), f"yes ({c.shared_starts} starts)" if c.paired else "no",
              contrast_cell(c.fixed_point_rate), contrast_cell(c.fixed_point_rate_started),
              contrast_cell(c.steps_to_fixed_point), contrast_cell(c.convergence_ratio),
              contrast_cell(c.clash_resolution)] for c in result.contrasts]))
        risks = [(c, incidence_contrast_text(c)) for c in result.contrasts]
        if any(text is not None for _, text in risks):
            parts.append(f"<p>Competing risks, a − b (p adjusted by {_e(result.adjust)} in the same family):</p>"
                         + _table(["a", "b", "cumulative incidence and cause-specific hazard ratio"],
                                  [[key_text(c.a), key_text(c.b), text] for c, text in risks if text is not None]))
    if result.contrasts_total > len(result.contrasts):
        parts.append(f'<p class="warning">{len(result.contrasts)} of {result.contrasts_total} contrasts shown (the '
                     "first pairs); p-values adjusted over the shown ones.</p>")
    for g in result.groups:
        if g.attractors:
            parts.append(f"<h3>Attractors of {_e(g.label)}</h3>" + _table(
                ["cluster", "runs", "starts", "models", "spread", "medoid"],
                [[a.cluster, len(a.runs), len(a.starts), ", ".join(a.models), f"{a.spread:.3f}", a.medoid[7:19]]
                 for a in g.attractors]))
    return "".join(parts)


def _twins(result: AnalysisResult) -> str:
    t = result.twins
    if not t.pairs:
        return ""
    return ("<h2>Contradictory vs repaired twin (paired)</h2>"
            f"<figure>{group_figures.twins(result)}</figure>"
            f"<p>{len(t.pairs)} pairs, {len(t.unpaired)} contradictory runs without a partner. Fixed point reached, "
            f"contradictory − twin: {_e(_interval(t.fixed_point_difference))}; steps to it: "
            f"{_e(_interval(t.steps_difference))}.</p>"
            + _table(["contradictory run", "twin run", "file", "fixed point (c, t)", "steps (c, t)",
                      "distance to twin: first → last"],
                     [[p.contradictory_run, p.twin_run, p.contradictory, p.fixed_point, p.steps_to_fixed_point,
                       f"{p.distance_to_twin[0]:.3f} → {p.distance_to_twin[-1]:.3f}"] for p in t.pairs]))


def _judge(result: AnalysisResult) -> str:
    use = result.judge
    if use is None:
        return ""
    return (f"<h2>Judge <code>{_e(use.judge)}</code></h2><p>Which measure came from where:</p>"
            + _table(["measure", "source", "judged", "of"], [[s.measure, s.source, s.judged, s.total]
                                                              for s in use.sources])
            + f"<p>Reworded principles by the judge: {_e(', '.join(f'{k} {v}' for k, v in use.reworded.items()))}"
            f"; new contradiction at the final node {_e(_interval(use.contradiction_at_final))}; refusals: "
            f"{_e(', '.join(f'{k} {v}' for k, v in use.refusals.items()) or 'none judged')}.</p>"
            + _table(["a", "b", "question", "n", "observed agreement", "Cohen's κ"],
                     [[a.a, a.b, a.question, a.n, a.observed, a.kappa] for a in use.agreement]))


def render(result: AnalysisResult, corpus: Corpus, vectors: Vectors, graph: Any, findings: Any = None) -> str:
    """The report's HTML; ``findings``: the questions' answers (:mod:`stability.analysis.findings`), a section
    each with its figure."""
    p = result.params
    runs_rows = [[r.run_id, r.model, r.stop_reason, r.steps[-1].step, r.verdict_text(),
                  ", ".join(c.text() for c in r.cycles), r.near_cycles_total] for r in result.runs]
    cross = result.cross_run
    c = result.consistency
    palette = group_figures.colours(result)
    sections = [
        "<h1>stability analysis</h1>",
        f"<p>{len(result.runs)} runs · embedder <code>{_e(result.embeddings.model)}</code> "
        f"({result.embeddings.texts} texts, {result.embeddings.computed} embedded for this report) · "
        f"reworded ≥ {p.reworded_threshold} · ε = {p.epsilon} · K = {p.k if p.k is not None else 'each run’s own'}"
        f" · attractor cut {p.cluster_threshold}</p>",
        finding_figures.section(findings) if findings is not None else "",
        _groups(result, palette),
        "<h2>Convergence</h2>", f"<figure>{figures.convergence_curves(result, palette)}</figure>",
        _table(["run", "model", "stop", "steps", "verdict", "cycles", "near cycles"], runs_rows),
        "<h2>Revision graph</h2>", f"<figure>{figures.graph_drawing(graph)}</figure>",
        f"<p>{graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges.</p>",
        "<h2>Attractors</h2>", f"<figure>{figures.attractor_projection(result)}</figure>" if cross.runs
        else "<p>No chain run with a verdict: no finals to cluster.</p>",
        f"<p>Spread of starts {cross.start_spread:.3f}, of finals {cross.final_spread:.3f}; convergence ratio "
        f"<b>{_e(cross_ratio_text(cross))}</b>.</p>",
        _table(["cluster", "runs", "starts", "models", "spread", "medoid"],
               [[a.cluster, len(a.runs), len(a.starts), ", ".join(a.models), f"{a.spread:.3f}", a.medoid[7:19]]
                for a in cross.attractors]),
        "".join(f"<p>Merge: runs {_e(', '.join(m.runs))} from {len(m.starts)} different starts reach node "
                f"<code>{_e(m.node[7:19])}</code>.</p>" for m in cross.merges),
        "<h2>Consistent vs contradictory</h2>",
        f"<figure>{figures.condition_comparison(result)}</figure>" if c.conditions else "<p>No labelled runs.</p>",
        _table(["condition", "runs", "reached a fixed point", "steps to fixed point"],
               [[s.condition, s.runs, _interval(s.reached_fixed_point), _interval(s.steps_to_fixed_point)]
                for s in c.conditions]),
        f"<p>Rule: {_e(c.rule)}. Resolved fraction {_interval(c.resolved_fraction)}; edits to resolve "
        f"{_interval(c.edits_to_resolve)}; contradictory − consistent steps {_interval(c.steps_difference)} "
        "(95% bootstrap).</p>",
        _table(["run", "pair", "kind", "status", "resolved at", "edits", "final a", "final b", "source"],
               [[o.run_id, f"{o.a}-{o.b}", o.kind, o.status, o.resolved_step, o.edits, o.final_a_text or "(removed)",
                 o.final_b_text or "(removed)", o.source] for o in c.clashes]),
        _judge(result),
        _twins(result),
        _ratings(result),
        "<h2>Per-step diffs</h2>", _diffs(result, corpus, vectors, p),
        "".join(f"<p><i>{_e(n)}</i></p>" for n in result.notes),
    ]
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>stability analysis</title>"
            f"<style>{STYLE}</style>{SCRIPT}</head><body>{''.join(sections)}</body></html>\n")


def write_report(run_ids: list[str], output: Path | str, db: Path | str | None = None, all_runs: bool = False,
                 params: Params | None = None, embedder: Embedder | str = DEFAULT_MODEL,
                 by: list[str] | None = None, references: list[Path | str] | None = None,
                 judge: str | None = None, adjust: str = "holm") -> Path:
    """The report of the selected runs (``run_ids``: experiment names or ids and run ids), grouped by ``by``; with
    ``judge``, the measures of meaning from its stored judgements where they exist; ``adjust``: the contrasts'
    multiplicity adjustment."""
    corpus, vectors, use, ratings, experiments, graph = load(run_ids, db, all_runs, embedder, with_graph=True,
                                                             references=references)
    judgements = load_judgements(db, judge, corpus) if judge else None
    result = measure(corpus, vectors, params or Params(), use, ratings, by, experiments, judgements, adjust)
    data = FindingsData(corpus=corpus, vectors=vectors, result=result, ratings=ratings, experiments=experiments,
                        params=result.params, db=None if db is None else str(db))
    path = Path(output)
    write_text_whole(path, render(result, corpus, vectors, graph, assemble(data, adjust)), "the report")
    return path
