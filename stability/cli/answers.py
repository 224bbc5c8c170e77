"""``stability answers``: parses its arguments and prints :func:`stability.answer_report.answer_report`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from stability.cli.console import DbOption, JsonOption, console, print_json
from stability.cli.display import printable


def answers(targets: Annotated[list[str] | None, typer.Argument(
                help="experiment names or ids, and run ids (unique prefixes will do)")] = None,
            all_runs: Annotated[bool, typer.Option("--all", help="every run in the database")] = False,
            db: DbOption = None, as_json: JsonOption = False) -> None:
    """How each model's answers were read (changed, declined, truncated, parse failures and why, fallbacks to
    text), with examples: check that a model answers the question before analysing it."""
    from stability.answer_report import KINDS, answer_report

    report = answer_report(targets or [], db, all_runs)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    kinds = [*KINDS, *sorted({k for found in report.models for k in found.kinds} - set(KINDS))]  # authored, …
    table = Table(title=f"readings of {len(report.runs)} runs")
    for column in ("model", "readings", *kinds, "structured", "json_object", "text fallback"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for found in report.models:
        table.add_row(printable(found.model), str(found.readings), *(str(found.kinds.get(k, 0)) for k in kinds),
                      str(found.structured), str(found.json_object), str(found.text_fallback))
    console.print(table)
    for found in report.models:
        for why, count in found.parse_failures.items():
            console.print(f"{printable(found.model)} · parse failure ×{count}: {printable(why)}", markup=False,
                          highlight=False)
        for why, count in found.fallback_reasons.items():
            console.print(f"{printable(found.model)} · fell back to text ×{count}: {printable(why)}", markup=False,
                          highlight=False)
        for kind, shown in found.examples.items():
            for example in shown:
                console.print(f"  {kind} · run {example.run_id[:12]} step {example.step}: "
                              f"{printable(example.answer)!r}", markup=False, highlight=False)
