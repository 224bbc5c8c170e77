"""CLI commands for stores that travel: ``merge``, ``export``, ``import-store``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stability.cli.console import console


def merge(
    sources: Annotated[list[Path], typer.Argument(help="stores (DuckDB files) to merge")],
    out: Annotated[Path, typer.Option("-o", "--out", help="the merged store; an existing one is merged too")],
) -> None:
    """Merge stores: the same node or call becomes one row, runs and experiments keep their ids. A conflict (the
    same id with different content) is refused and nothing is written."""
    from stability.store.merge import merge_files

    report = merge_files(sources, out)
    written = ", ".join(f"{table} {n}" for table, n in report.written.items()) or "nothing new"
    console.print(f"merged {len(report.sources)} stores into {out}: {written}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("merge")(merge)
