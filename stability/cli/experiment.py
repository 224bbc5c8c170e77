"""CLI commands for protocols, experiments, batches and importers: ``protocols``, ``run``, ``batches``, ``import``."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from stability.cli.console import DbOption, console, errors, print_json
from stability.cli.display import printable


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
    cache_from: Annotated[Path | None, typer.Option("--cache-from", help="another store (a DuckDB file or an "
                                                    "export folder) whose calls may answer, read-only")] = None,
    ray: Annotated[str | None, typer.Option("--ray", metavar="[ADDRESS]",
                                            help="run the cells on Ray workers: a cluster's address (auto, "
                                            "HOST:PORT, ray://...), or none for a local Ray started here")] = None,
    shards: Annotated[Path | None, typer.Option("--shards", help="(--ray) folder of the workers' shards, seen "
                                                "by every machine [default: DB.shards/EXPERIMENT]")] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    batch: Annotated[bool, typer.Option("--batch", help="send OpenAI and Anthropic calls in provider batches (half "
                                        "the price; answers within 24 h); other providers as usual")] = False,
) -> None:
    """Expand an experiment spec into runs and run them (or, with --dry-run, estimate them)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from stability.experiment import run_experiment
    from stability.resources import ready_spec

    spec = ready_spec(str(spec)) or spec
    if ray is not None and batch:
        from stability.errors import StabilityError

        raise StabilityError("--batch and --ray cannot be combined: provider batches are waited on by one process")

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=errors, transient=True, disable=dry_run or not errors.is_interactive) as progress:
        task = progress.add_task("cells", total=None)  # its bound comes with on_start: the grid's cells

        def on_start(done: int, cells: int) -> None:
            progress.update(task, completed=done, total=cells)

        def on_cell(cell: object) -> None:
            progress.advance(task)

        if ray is not None and not dry_run:
            from stability.experiment.distributed import run_experiment_ray

            result = run_experiment_ray(spec, db, address=ray, max_cost=max_cost, prices_file=prices,
                                        on_cell=on_cell, shards=shards, cache_from=cache_from,
                                        on_start=on_start)
        else:
            result = run_experiment(spec, db, dry_run=dry_run, max_cost=max_cost, resume=resume,
                                    prices_file=prices, on_cell=on_cell, cache_from=cache_from, batch=batch,
                                    on_batch=BatchProgress(progress), on_start=on_start)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    figures = result.estimate
    table = Table(title=f"experiment {result.experiment_id}" + (" (dry run)" if dry_run else "")
                  + (" · openai/ and anthropic/ at batch prices" if batch else ""))
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
    if batch and not dry_run:
        console.print(f"batches: {result.waves} waves, {result.batched_requests} requests submitted (priced at the "
                      "batch rate)")
    if not dry_run:
        console.print(f"done {result.done} · failed {result.failed} · not started {result.not_started} · "
                      f"spent ${result.spent_usd:.4f}" + (" · budget reached" if result.budget_reached else ""))
        if result.not_started or result.failed:
            console.print("resume with: stability run SPEC --resume" + (" --batch" if batch else "")
                          + (" --max-cost HIGHER" if result.budget_reached else ""))
            raise typer.Exit(1)


class BatchProgress:
    """One progress line per provider batch: its wave, model, state, counts, and the time since submission."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, event: Any) -> None:
        counts = " ".join(f"{k} {v}" for k, v in sorted(event.counts.items()) if v)
        text = (f"wave {event.wave} · {event.model} · {event.provider_id or event.local_key} · "
                f"{event.raw_status or event.state}" + (f" · {counts}" if counts else ""))
        if event.local_key not in self.tasks:
            self.tasks[event.local_key] = self.progress.add_task(printable(text), total=event.n_requests)
        done = event.state in ("imported", "ended", "failed", "cancelled")
        self.progress.update(self.tasks[event.local_key], description=printable(text),
                             completed=event.n_requests if done else 0)


def batches(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="cancel the live batches (orphans of killed runs)")]
    = False,
    prices: Annotated[Path | None, typer.Option("--prices", help="YAML price overrides (USD per Mtok)")] = None,
    db: DbOption = None,
) -> None:
    """Re-attach the provider batches of --batch runs: import finished ones as calls, show the live ones, and
    with --cancel cancel them. Resume the runs afterwards (stability run SPEC --resume --batch)."""
    from stability.engine.batcher import sync_batches

    report = sync_batches(db, cancel=cancel, prices_file=prices)
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    table = Table(title="batches")
    for column in ("wave", "model", "batch", "state", "requests", "counts", "submitted", "finished"):
        table.add_column(column)
    for b in report.batches:
        counts = " ".join(f"{k} {v}" for k, v in sorted((b.counts or {}).items()) if v)
        table.add_row(str(b.wave), b.model, b.provider_id or b.local_key, b.state + (f" ({b.raw_status})"
                      if b.raw_status else ""), str(b.n_requests), counts,
                      f"{b.submitted_at:%Y-%m-%d %H:%M:%S}" if b.submitted_at else "",
                      f"{b.finished_at:%Y-%m-%d %H:%M:%S}" if b.finished_at else "")
    console.print(table)
    console.print(f"imported {report.imported} · cancelled {report.cancelled} · abandoned {report.abandoned} · "
                  f"live {report.live}")


_SCOPES = {"run": "each run answers only from its own calls: replicates and arms are independent samples",
           "experiment": "a run may reuse an identical call of another run of this experiment",
           "global": "a run may reuse an identical call of any run in the database"}


def ray_address_optional(args: list[str]) -> list[str]:
    """``--ray`` takes an optional address: a bare ``--ray`` (last, or before another option or the spec) is
    given the value ``local`` before the arguments are parsed."""
    out = list(args)
    if "--ray" in out:
        at = out.index("--ray") + 1
        following = out[at] if at < len(out) else None
        if following is None or not (following in ("auto", "local") or "://" in following
                                     or re.fullmatch(r"[\w.-]+:\d+", following)):
            out.insert(at, "local")
    return out


def import_(
    file: Annotated[Path, typer.Argument(help="a peer project's file")],
    fmt: Annotated[str, typer.Option("--format", help="oct | identities | identity-variants")],
    out: Annotated[Path, typer.Option("-o", "--out", help="folder to write constitutions into")],
    placeholders: Annotated[Path | None, typer.Option("--placeholders", help="(identities) YAML of placeholder "
                                                      "values")] = None,
    variants: Annotated[Path | None, typer.Option("--variants", help="(identity-variants) the study's dimension "
                                                  "variants JSON: agency and uncertainty levels")] = None,
    base: Annotated[list[str] | None, typer.Option("--base", help="(identity-variants) identity to vary, "
                                                   "repeatable [default: every one with the placeholders]")] = None,
) -> None:
    """Write a peer project's constitutions in our Markdown format, and print their paths."""
    from stability.errors import StabilityError
    from stability.importers import import_file

    if fmt not in ("oct", "identities", "identity-variants"):
        raise StabilityError(f"--format {fmt!r}: expected oct, identities or identity-variants")
    for path in import_file(file, fmt, out, placeholders, variants, base):  # type: ignore[arg-type]
        sys.stdout.write(f"{path}\n")


#: this module's commands by name (``stability.cli.app`` registers every command one way)
COMMANDS: dict[str, Callable[..., None]] = {"protocols": protocols, "run": run, "batches": batches, "import": import_}
