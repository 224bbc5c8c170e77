"""CLI commands for protocols, experiments and importers: ``protocols``, ``run``, ``import``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stability.cli.console import console, errors, print_json


def protocols(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the protocols, one line each."""
    from stability.protocols import describe_protocols

    found = describe_protocols()
    if as_json:
        print_json({p.name: p.model_dump() for p in found})
        return
    table = Table()
    for column in ("protocol", "what it does", "chain", "flags"):
        table.add_column(column)
    for p in found:
        table.add_row(p.name, p.summary, "yes" if p.chain else "no (sibling trials)", " ".join(p.flags))
    console.print(table)


def run(
    spec: Annotated[Path, typer.Argument(help="experiment spec (YAML), or a ready spec's name "
                                              "(consistent-vs-contradictory)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count runs, calls, tokens and cost; spend nothing")]
    = False,
    max_cost: Annotated[float | None, typer.Option("--max-cost", help="budget in USD; stops cleanly when reached")]
    = None,
    resume: Annotated[bool, typer.Option("--resume", help="finish what an earlier run of this spec left")] = False,
    prices: Annotated[Path | None, typer.Option("--prices", help="YAML price overrides (USD per Mtok)")] = None,
    db: Annotated[Path | None, typer.Option("--db", envvar="STABILITY_DB")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Expand an experiment spec into runs and run them (or, with --dry-run, estimate them)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from stability.experiment import run_experiment
    from stability.resources import ready_spec

    spec = ready_spec(str(spec)) or spec

    with Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=errors, transient=True, disable=dry_run) as progress:
        task = progress.add_task("runs", total=None)

        def on_cell(cell: object) -> None:
            progress.advance(task)

        result = run_experiment(spec, db, dry_run=dry_run, max_cost=max_cost, resume=resume, prices_file=prices,
                                on_cell=on_cell)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    figures = result.estimate
    table = Table(title=f"experiment {result.experiment_id}" + (" (dry run)" if dry_run else ""))
    for column in ("model", "runs", "calls (max)", "input tokens (est.)", "output tokens (est.)", "cost (est.)"):
        table.add_column(column)

    def usd(value: float | None) -> str:
        return "unknown" if value is None else f"${value:.4f}"

    for row in figures.by_model:
        table.add_row(row.model, str(row.runs), str(row.calls), str(row.input_tokens), str(row.output_tokens),
                      usd(row.cost_usd))
    table.add_row("total", str(figures.runs), str(figures.calls), str(figures.input_tokens),
                  str(figures.output_tokens), usd(figures.cost_usd))
    console.print(table)
    console.print(f"cache scope: {result.cache} ({_SCOPES[result.cache]})")
    console.print(f"parallel runs: {result.parallel_runs} · calls in flight at most: "
                  + ", ".join(f"{prefix} {slots}" for prefix, slots in result.concurrency.items()))
    for warning in figures.warnings:
        errors.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if not dry_run:
        console.print(f"done {result.done} · failed {result.failed} · not started {result.not_started} · "
                      f"spent ${result.spent_usd:.4f}" + (" · budget reached" if result.budget_reached else ""))
        if result.not_started or result.failed:
            console.print("resume with: stability run SPEC --resume"
                          + (" --max-cost HIGHER" if result.budget_reached else ""))
            raise typer.Exit(1)


_SCOPES = {"run": "each run answers only from its own calls: replicates and arms are independent samples",
           "experiment": "a run may reuse an identical call of another run of this experiment",
           "global": "a run may reuse an identical call of any run in the database"}


def import_(
    file: Annotated[Path, typer.Argument(help="a peer project's file")],
    fmt: Annotated[str, typer.Option("--format", help="oct | identities")],
    out: Annotated[Path, typer.Option("-o", "--out", help="folder to write constitutions into")],
    placeholders: Annotated[Path | None, typer.Option("--placeholders", help="(identities) YAML of placeholder "
                                                      "values")] = None,
) -> None:
    """Write a peer project's constitutions in our Markdown format, and print their paths."""
    from stability.errors import StabilityError
    from stability.importers import import_file

    if fmt not in ("oct", "identities"):
        raise StabilityError(f"--format {fmt!r}: expected oct or identities")
    for path in import_file(file, fmt, out, placeholders):  # type: ignore[arg-type]
        sys.stdout.write(f"{path}\n")


def register(app: typer.Typer) -> None:
    app.command("protocols")(protocols)
    app.command("run")(run)
    app.command("import")(import_)
