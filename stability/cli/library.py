"""``stability constitutions``: list, show and check the constitution library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stability.cli.console import JsonOption, console, print_json
from stability.cli.display import printable
from stability.errors import StabilityError

library_app = typer.Typer(help="The constitution library: labelled conditions, controls and axes.",
                          invoke_without_command=True, pretty_exceptions_enable=False, add_completion=False,
                          rich_markup_mode=None)  # plain help, as the app's (stability.cli.app)

LibraryOption = Annotated[Path | None, typer.Option("--library", envvar="STABILITY_LIBRARY_DIR",
                                                    help="library folder [default: this checkout's "
                                                         "constitutions/, else the installed package's]")]


@library_app.callback()
def constitutions(
    ctx: typer.Context,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="K=V, e.g. condition=axes (repeat to narrow)")]
    = None,
    as_json: JsonOption = False,
    library: LibraryOption = None,
) -> None:
    """List the library with its tags; `show NAME` prints one, `check` validates every file."""
    if ctx.invoked_subcommand:
        return
    from stability.library import list_constitutions

    entries = list_constitutions(tag or [], library)
    if as_json:
        print_json([{"name": e.name, "title": e.title, "hash": e.hash, "tags": e.tags} for e in entries])
        return
    table = Table()
    for column in ("name", "condition", "size", "style", "tags", "title"):
        table.add_column(column)
    for e in entries:
        tags = e.tags
        rest = " ".join(f"{k}={v}" for k, v in tags.items() if k not in ("condition", "size", "style"))
        table.add_row(e.name, tags["condition"], tags["size"], tags["style"], escape(printable(rest)),
                      escape(printable(e.title or "")))
    console.print(table)
    console.print(f"{len(entries)} constitutions")


@library_app.command()
def show(name: Annotated[str, typer.Argument(help="e.g. contradictory/honesty-vs-comfort, or a unique last part")],
         as_json: JsonOption = False, library: LibraryOption = None) -> None:
    """Print one library constitution with its metadata."""
    from stability.library import find_constitution

    entry = find_constitution(name, library)
    if as_json:
        print_json({**entry.model_dump(mode="json"), "tags": entry.tags})
        return
    console.print(f"[bold]{entry.name}[/] · {entry.hash[:19]} · {entry.path}", highlight=False)
    if entry.alternatives:
        console.print(f"alternatives: {entry.alternatives}", highlight=False)
    console.print(printable(Path(entry.path).read_text(encoding="utf-8")), markup=False, highlight=False, end="")


@library_app.command()
def check(library: LibraryOption = None) -> None:
    """Validate every library file and link; print each problem on its own line."""
    from stability.library import library_problems

    entries, problems = library_problems(library)
    for problem in problems:
        sys.stderr.write(f"error: {problem}\n")
    if problems:
        raise StabilityError(f"{len(problems)} problem(s) in the constitution library ({len(entries)} files fine)")
    console.print(f"{len(entries)} library files fine")
