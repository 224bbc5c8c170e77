"""What every CLI command shares: the consoles, JSON output and the common options."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

# Piped output gets a wide console, so tables are not squeezed to 80 columns. (A closed stdout is ``None``: the
# error boundary, stability.cli.boundary, refuses to run then.)
console = Console(width=None if sys.stdout is not None and sys.stdout.isatty() else 200)
errors = Console(stderr=True)

def _db_file(value: Path | None) -> Path | None:
    """``--db``: a device, FIFO or socket is refused before DuckDB opens it (a FIFO would block the open)."""
    if value is not None and value.exists() and not value.is_dir() and not value.is_file():
        from stability.errors import StabilityError

        raise StabilityError(f"{value}: not a regular file, expected a DuckDB database file")
    return value


DbOption = Annotated[Path | None, typer.Option("--db", envvar="STABILITY_DB", callback=_db_file,
                                               help="DuckDB file [default: runs/stability.duckdb]")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")
