"""``stability analyze``, ``stability graph`` and ``stability report``: each parses and calls one library function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from stability.cli.console import DbOption, JsonOption, console, print_json
from stability.cli.display import printable
from stability.errors import StabilityError

RunsArgument = Annotated[list[str] | None, typer.Argument(
    help="experiment names or ids, and run ids (unique prefixes will do)")]
ReferenceOption = Annotated[list[Path] | None, typer.Option(
    "--reference", help="a constitution file to measure every step against (repeatable)")]
ByOption = Annotated[str | None, typer.Option("--by", help="group by grid factors: model, protocol, constitution, "
                                              "condition, temperature, seed, experiment, any option (comma-separated)")]
AllOption = Annotated[bool, typer.Option("--all", help="every run in the database")]
EmbedderOption = Annotated[str, typer.Option("--embedder", help="sentence-transformers model, or 'hashing'")]
ThresholdOption = Annotated[float, typer.Option("--reworded-threshold",
                                                help="least cosine similarity for a reworded principle")]
EpsilonOption = Annotated[float, typer.Option("--epsilon", help="cosine distance for fixed points and near cycles")]
KOption = Annotated[int | None, typer.Option("--k", help="steps a fixed point must hold [default: the run's K]")]
ClusterOption = Annotated[float, typer.Option("--cluster-threshold", help="cosine distance cut for attractors")]
AdjustOption = Annotated[str, typer.Option(
    "--adjust", help="multiplicity adjustment of the contrasts' p-values: holm (family-wise) | bh (false discovery "
    "rate)")]
JudgeOption = Annotated[str | None, typer.Option(
    "--judge", help="a judge model whose stored judgements (stability judge) decide the measures of meaning")]


def _output_file(path: Path) -> Path:
    """A file to write: refused, before any work, when it is a folder or its folder does not exist."""
    if path.is_dir():
        raise StabilityError(f"{path}: is a directory, expected a file to write (--output)")
    if not path.parent.is_dir():
        raise StabilityError(f"{path}: no folder {path.parent} to write into (--output)")
    return path


def _adjust(adjust: str) -> str:
    from stability.analysis.multiplicity import ADJUSTMENTS

    if adjust not in ADJUSTMENTS:
        raise StabilityError(f"--adjust {adjust!r}: choose one of {', '.join(ADJUSTMENTS)}")
    return adjust


def _params(reworded_threshold: float, epsilon: float, k: int | None, cluster_threshold: float) -> Any:
    from stability.analysis.convergence import Params
    from stability.bounds import CosineDistance, CosineSimilarity, HoldSteps, check

    check(reworded_threshold, CosineSimilarity, "--reworded-threshold")
    check(epsilon, CosineDistance, "--epsilon")
    check(cluster_threshold, CosineDistance, "--cluster-threshold")
    if k is not None:
        check(k, HoldSteps, "--k")
    return Params(reworded_threshold=reworded_threshold, epsilon=epsilon, k=k, cluster_threshold=cluster_threshold)


def analyze(runs: RunsArgument = None, all_runs: AllOption = False, db: DbOption = None, as_json: JsonOption = False,
            embedder: EmbedderOption = "all-MiniLM-L6-v2", reworded_threshold: ThresholdOption = 0.7,
            epsilon: EpsilonOption = 0.02, k: KOption = None, cluster_threshold: ClusterOption = 0.1,
            by: ByOption = None, reference: ReferenceOption = None, judge: JudgeOption = None,
            adjust: AdjustOption = "holm") -> None:
    """Measure convergence, fixed points, cycles, attractors and clash resolution, per group of runs."""
    from stability.analysis.factors import parse_by
    from stability.analysis.measure import analyze as run_analysis

    result = run_analysis(runs or [], db, all_runs=all_runs, embedder=embedder, by=parse_by(by),
                          references=list(reference or []), judge=judge, adjust=_adjust(adjust),
                          params=_params(reworded_threshold, epsilon, k, cluster_threshold))
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _print_analysis(result)


def _safe(text: str) -> str:
    """A stored principle as table text: control characters escaped, Rich markup inert."""
    return escape(printable(text))


def _short(node: str) -> str:
    return node[7:19]


def _interval(value: Any) -> str:
    """An interval as every output writes it (undefined: ``–`` and why)."""
    from stability.analysis.summary_text import interval_text

    return interval_text(value)


def _print_analysis(result: Any) -> None:
    p = result.params
    console.print(f"embedder [bold]{result.embeddings.model}[/] · {result.embeddings.texts} texts, "
                  f"{result.embeddings.computed} embedded now · reworded ≥ {p.reworded_threshold} · ε {p.epsilon} · "
                  f"K {p.k if p.k is not None else 'per run'} · cluster cut {p.cluster_threshold}")
    table = Table(title="runs")
    for column in ("run", "model", "stop", "steps", "principles", "d(start, final)", "verdict", "cycles",
                   "near cycles"):
        table.add_column(column)
    for run in result.runs:
        table.add_row(run.run_id, run.model, run.stop_reason or "", str(run.steps[-1].step),
                      f"{run.steps[0].n_principles}→{run.steps[-1].n_principles}", f"{run.steps[-1].d_origin:.3f}",
                      run.verdict_text(),
                      ", ".join(c.text() for c in run.cycles), str(run.near_cycles_total))
    console.print(table)
    _print_groups(result)
    cross = result.cross_run
    from stability.analysis.summary_text import cross_ratio_text

    ratio = escape(cross_ratio_text(cross))
    console.print(f"{cross.runs} runs · {cross.distinct_starts} starts · {cross.distinct_finals} finals · "
                  f"spread of starts {cross.start_spread:.3f}, of finals {cross.final_spread:.3f} · "
                  f"convergence ratio [bold]{ratio}[/]")
    attractors = Table(title="attractors (clusters of final constitutions)")
    for column in ("cluster", "runs", "starts", "models", "spread", "medoid"):
        attractors.add_column(column)
    for a in cross.attractors:
        attractors.add_row(str(a.cluster), str(len(a.runs)), str(len(a.starts)), ", ".join(a.models),
                           f"{a.spread:.3f}", _short(a.medoid))
    console.print(attractors)
    for merge in cross.merges:
        console.print(f"merge: runs {', '.join(merge.runs)} from {len(merge.starts)} different starts reach node "
                      f"{_short(merge.node)}" + (" (their final)" if merge.is_final else ""))
    c = result.consistency
    if c.clashes:
        clashes = Table(title=f"clashes · rule: {c.rule}")
        for column in ("run", "pair", "kind", "status", "resolved at", "edits", "source"):
            clashes.add_column(column)
        for o in c.clashes:
            clashes.add_row(o.run_id, f"{o.a}-{o.b}", o.kind, o.status,
                            str(o.resolved_step) if o.resolved_step is not None else "", str(o.edits or ""),
                            o.source)
        console.print(clashes)
        console.print(f"resolved fraction {_interval(c.resolved_fraction)} · "
                      f"edits to resolve {_interval(c.edits_to_resolve)} (95% bootstrap over runs)")
    if c.conditions:
        conditions = Table(title="consistent vs contradictory")
        for column in ("condition", "runs", "reached a fixed point", "steps to fixed point"):
            conditions.add_column(column)
        for s in c.conditions:
            conditions.add_row(s.condition, str(s.runs), _interval(s.reached_fixed_point),
                               _interval(s.steps_to_fixed_point))
        console.print(conditions)
        console.print(f"steps to fixed point, contradictory − consistent: {_interval(c.steps_difference)}")
    t = result.twins
    if t.pairs:
        console.print(f"contradictory vs repaired twin, {len(t.pairs)} pairs ({len(t.unpaired)} unpaired): "
                      f"fixed point reached, difference {_interval(t.fixed_point_difference)} · steps to fixed point, "
                      f"difference {_interval(t.steps_difference)} · distance to the twin at step 0 "
                      f"{_interval(t.distance_to_twin[0].distance)}, at the last step "
                      f"{_interval(t.distance_to_twin[-1].distance)}")
    for target in result.preferences.targets:
        table = Table(title=f"rate-alternatives · {target.mode} · {_safe(target.target[:60])} · {target.trials} "
                            "trials")
        for column in ("option", "relation", "mean rating", "favourite rate", "E[rating]", "Bradley–Terry",
                       "unscored"):
            table.add_column(column)
        for o in target.options:
            table.add_row(_safe(o.text[:50]), o.relation or "", _interval(o.mean_rating), _interval(o.favourite_rate),
                          _interval(o.expected_rating), _interval(o.bradley_terry), str(o.unscored))
        console.print(table)
    if result.preferences.by_relation:
        relations = Table(title="by relation (all targets)")
        for column in ("relation", "mean rating", "favourite rate"):
            relations.add_column(column)
        for r in result.preferences.by_relation:
            relations.add_row(r.relation, _interval(r.mean_rating), _interval(r.favourite_rate))
        console.print(relations)
    if result.judge is not None:
        _print_judge(result.judge)
    for note in result.notes:
        console.print(f"note: {note}", style="dim")


def _print_judge(use: Any) -> None:
    table = Table(title=f"judge {use.judge}: which measure came from where")
    for column in ("measure", "source", "judged", "of"):
        table.add_column(column)
    for s in use.sources:
        table.add_row(s.measure, s.source, str(s.judged), str(s.total))
    console.print(table)
    reworded = ", ".join(f"{k.removeprefix('reworded_')} {v}" for k, v in use.reworded.items()) or "none"
    console.print(f"reworded principles, by the judge: {reworded} · new contradiction at the final node "
                  f"{_interval(use.contradiction_at_final)} · refusals: "
                  + (", ".join(f"{k} {v}" for k, v in use.refusals.items()) or "none judged"))
    if len(use.groups) > 1:
        for g in use.groups:
            console.print(f"{g.label} · reworded: "
                          + (", ".join(f"{k.removeprefix('reworded_')} {v}" for k, v in g.reworded.items()) or "none")
                          + f" · new contradiction at the final node {_interval(g.contradiction_at_final)}")
    agreement = Table(title="agreement (Cohen's κ)")
    for column in ("a", "b", "question", "n", "observed", "κ"):
        agreement.add_column(column)
    for a in use.agreement:
        agreement.add_row(a.a, a.b, a.question, str(a.n), "–" if a.observed is None else f"{a.observed:.3g}",
                          "–" if a.kappa is None else f"{a.kappa:.3g}" + (
                              f" [{a.kappa_low:.3g}, {a.kappa_high:.3g}]" if a.kappa_low is not None
                              and a.kappa_high is not None else ""))
    console.print(agreement)


def _print_groups(result: Any) -> None:
    from stability.analysis.factors import key_text
    from stability.analysis.summary_text import (
        contrast_cell,
        group_warnings,
        incidence_contrast_text,
        incidence_text,
        interval_text,
        median_text,
        ratio_text,
        starts_text,
    )

    title = f"groups by {', '.join(result.by)}" if result.by else "all runs"
    table = Table(title=f"{title} · 95% intervals over starting constitutions: rates wilson-t (Wilson over runs "
                        "with one start), ratio jackknife-t (docs/analysis.md, Methods)")
    for column in ("group", "runs", "starts · models", "no verdict", "fixed-point rate (judged)",
                   "fixed-point rate (started)", "cycle rate", "KM median steps to fixed point",
                   "convergence ratio between starts (null p)", "clashes resolved", "attractors"):
        table.add_column(column)
    for g in result.groups:
        started = g.fixed_point_rate_started
        table.add_row(g.label, str(g.runs), starts_text(g), str(g.no_verdict), interval_text(g.fixed_point_rate),
                      interval_text(started), interval_text(g.cycle_rate),
                      median_text(g.steps_to_fixed_point), ratio_text(g.convergence_ratio),
                      interval_text(g.clash_resolution), str(len(g.attractors)))
    console.print(table)
    for line in group_warnings(result):
        console.print(f"warning: {line}", style="yellow")
    for g in result.groups:
        if g.probed:
            console.print(f"{g.label} · probed {g.probed}, confirmed {g.confirmed} fixed points "
                          f"(Wilson lower bound of P(decline | node) ≥ τ = {result.params.tau})")
        incidence = incidence_text(g.incidence)
        if incidence is not None:
            console.print(f"{g.label} · {incidence}")
        null = g.paraphrase_null
        if null is not None:
            console.print(f"{g.label} · drift {_interval(null.drift)} vs rephrase {_interval(null.rephrase_drift)} "
                          f"at the same steps over {null.cells} (model, start) cells: excess {_interval(null.excess)}"
                          f" · suggested ε {null.suggested_epsilon if null.suggested_epsilon is not None else '–'}"
                          + (f" ({null.epsilon_note})" if null.epsilon_note else ""))
        for r in g.references:
            console.print(f"{g.label} · distance to {r.reference}: start {_interval(r.start)}, final "
                          f"{_interval(r.final)}, change {_interval(r.change)}")
    if result.contrasts:
        contrasts = Table(title=f"contrasts (a − b): effect [95% CI] p (p adjusted, {result.adjust}); paired within "
                                "start where the groups share ≥ 2 starts")
        for column in ("a", "b", "paired", "fixed-point rate (judged)", "fixed-point rate (started)",
                       "KM median steps", "convergence ratio", "clashes resolved"):
            contrasts.add_column(column)
        for c in result.contrasts:
            contrasts.add_row(key_text(c.a), key_text(c.b),
                              f"yes ({c.shared_starts} starts)" if c.paired else "no",
                              contrast_cell(c.fixed_point_rate), contrast_cell(c.fixed_point_rate_started),
                              contrast_cell(c.steps_to_fixed_point), contrast_cell(c.convergence_ratio),
                              contrast_cell(c.clash_resolution))
        console.print(contrasts)
        for c in result.contrasts:
            incidence = incidence_contrast_text(c)
            if incidence is not None:
                console.print(f"{key_text(c.a)} − {key_text(c.b)} · {incidence}")
    if result.contrasts_total > len(result.contrasts):
        console.print(f"{len(result.contrasts)} of {result.contrasts_total} contrasts shown (the first "
                      f"{len(result.contrasts)} pairs); p-values adjusted over the shown ones", style="yellow")


def experiments(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List the experiments: spec name, factors, cells and their states."""
    from stability.analysis.experiments import list_experiments

    found = list_experiments(db)
    if as_json:
        print_json([e.model_dump(mode="json") for e in found])
        return
    table = Table(title="experiments")
    for column in ("id", "name", "cells", "states", "varied factors", "replicates", "spec"):
        table.add_column(column)
    for e in found:
        varied = "; ".join(f"{name}: {', '.join(str(v) for v in e.factors[name])}"
                           for name in e.varied if name != "seed")
        table.add_row(e.id, e.name, str(e.cells), ", ".join(f"{k} {v}" for k, v in sorted(e.states.items())),
                      varied or "–", str(e.replicates), e.spec_path or "")
    console.print(table)


def graph(runs: RunsArgument = None, all_runs: AllOption = False, db: DbOption = None,
          fmt: Annotated[str, typer.Option("--format", help="graphml | json")] = "graphml",
          output: Annotated[Path | None, typer.Option("--output", "-o", help="file [default: stdout]")] = None
          ) -> None:
    """Export the revision graph (nodes: constitutions; edges: transitions with run, protocol and calls)."""
    from stability.analysis.graph import FORMATS, export_graph, revision_graph

    if fmt not in FORMATS:
        raise StabilityError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if output is not None:
        _output_file(output)
    text = export_graph(revision_graph(runs or [], db, all_runs), fmt)
    if output is None:
        sys.stdout.write(text)
        return
    from stability.output_files import write_text_whole

    write_text_whole(output, text, "the graph")


def report(runs: RunsArgument = None, all_runs: AllOption = False, db: DbOption = None,
           output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write")] = Path("report.html"),
           embedder: EmbedderOption = "all-MiniLM-L6-v2", reworded_threshold: ThresholdOption = 0.7,
           epsilon: EpsilonOption = 0.02, k: KOption = None, cluster_threshold: ClusterOption = 0.1,
           by: ByOption = None, reference: ReferenceOption = None, judge: JudgeOption = None,
           adjust: AdjustOption = "holm") -> None:
    """Write one self-contained HTML report (works offline): groups, curves, graph, diffs, attractors, clashes."""
    from stability.analysis.factors import parse_by
    from stability.analysis.report import write_report

    _output_file(output)
    path = write_report(runs or [], output, db, all_runs=all_runs, embedder=embedder, by=parse_by(by),
                        references=list(reference or []), judge=judge, adjust=_adjust(adjust),
                        params=_params(reworded_threshold, epsilon, k, cluster_threshold))
    console.print(f"wrote {path}")
