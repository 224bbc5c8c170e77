"""What every CLI command shares: the consoles, JSON output and the common options."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

# Piped output gets a wide console, so tables are not squeezed to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True)

DbOption = Annotated[Path | None, typer.Option("--db", envvar="STABILITY_DB",
                                               help="DuckDB file [default: runs/stability.duckdb]")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")
