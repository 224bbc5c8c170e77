"""CLI command ``view``: serve the local web viewer over a store."""

from __future__ import annotations

from typing import Annotated

import typer

from stability.cli.console import DbOption, errors


def view(db: DbOption = None,
         port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                           help="port on 127.0.0.1 (0: any free port)")] = 7788,
         embedder: Annotated[str, typer.Option("--embedder", help="embedder of the analysis groups "
                                                                  "(hashing needs no model)")] = "all-MiniLM-L6-v2",
         ) -> None:
    """Browse experiments, runs, calls and the revision graph in a local browser (127.0.0.1 only; read-only)."""
    from stability.view import serve

    serve(db, port, embedder, ready=lambda url: errors.print(f"stability view: {url} (Ctrl-C stops it)"))
