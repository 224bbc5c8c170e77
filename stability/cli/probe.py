"""``stability probe``: parses its arguments and calls :func:`stability.engine.probe.probe`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stability.cli.console import DbOption, JsonOption, console, print_json


def probe(targets: Annotated[list[str], typer.Argument(help="experiment names or ids, and run ids")],
          samples: Annotated[int, typer.Option("--samples", help="fresh samples of each final node")] = 10,
          max_cost: Annotated[float | None, typer.Option("--max-cost", help="budget in USD for this probe")] = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="count the requests it would send; send none")]
          = False,
          prices: Annotated[Path | None, typer.Option("--prices", help="YAML price overrides (USD per Mtok)")] = None,
          db: DbOption = None, as_json: JsonOption = False) -> None:
    """Re-ask each run's final node as fresh samples (stored, resumable); analysis reports P(decline | node)."""
    from stability.engine.probe import probe as run_probe

    result = run_probe(targets, samples, db, max_cost, dry_run=dry_run, prices_file=prices)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    if dry_run:
        console.print(f"would probe {len(result.runs)} runs · {result.probes} probes stored · at most "
                      f"{result.to_send} requests to send (dry run: nothing sent)")
        return
    console.print(f"probed {len(result.runs)} runs · {result.probes} probes stored · {result.sent} requests sent"
                  + (" · budget reached" if result.budget_reached else ""))
    if result.budget_reached:
        raise typer.Exit(1)
