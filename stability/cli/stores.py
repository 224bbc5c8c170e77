"""CLI commands for stores that travel: ``merge``, ``export``, ``import-store``, ``import-chain``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from stability.cli.console import DbOption, console


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


def export(
    selection: Annotated[list[str] | None, typer.Argument(
        help="an experiment id (see `stability experiments`); with --format inspect also experiment names and "
             "run ids")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every table of the store, whole (inspect: every run)")] = False,
    fmt: Annotated[str, typer.Option("--format", help="parquet (tables and a dataset card) or inspect (Inspect AI "
                                                      "eval logs, needs stability[inspect])")] = "parquet",
    out: Annotated[Path | None, typer.Option("-o", "--out", help="a new folder")] = None,
    embedder: Annotated[str, typer.Option("--embedder", help="inspect: the embedder of the measures scored "
                                                             "(sentence-transformers model, or 'hashing')")]
    = "all-MiniLM-L6-v2",
    db: DbOption = None,
) -> None:
    """Write an experiment (or the whole store) as one Parquet file per table, with a dataset card README.md; or,
    with --format inspect, runs as Inspect AI eval logs: one log per (model, protocol), one sample per run."""
    from stability.errors import StabilityError

    if fmt not in ("parquet", "inspect"):
        raise StabilityError(f"--format {fmt!r}: expected parquet or inspect")
    if out is None:
        raise StabilityError("export: give -o DIR, a new folder")
    if all_ == bool(selection):
        raise StabilityError("export: give an experiment id or --all (one of them)")
    if fmt == "inspect":
        from stability.inspect_log import export_inspect

        written = export_inspect(db, selection or [], all_, out, embedder)
        console.print(f"exported {written.samples} runs as {len(written.logs)} Inspect logs to {out}",
                      markup=False, highlight=False)
        return
    if selection and len(selection) > 1:
        raise StabilityError("export: --format parquet takes one experiment id (or --all)")
    from stability.exports import export as run_export

    manifest = run_export(db, selection[0] if selection else None, out)
    rows = sum(t.rows for t in manifest.tables)
    console.print(f"exported {len(manifest.tables)} tables ({rows} rows) to {out}", markup=False, highlight=False)


def import_store(
    folder: Annotated[Path, typer.Argument(help="a folder written by `stability export` (Parquet, or Inspect logs)")],
    db: DbOption = None,
) -> None:
    """Merge an export folder (Parquet, or the Inspect logs of `export --format inspect`) into the store (created
    when missing); a conflict is refused, nothing written."""
    from stability.exports import import_store as run_import

    report = run_import(folder, db)
    written = ", ".join(f"{table} {n}" for table, n in report.written.items()) or "nothing new"
    console.print(f"imported {folder}: {written}", markup=False, highlight=False)


def import_chain(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="the versions in order: files, a folder (natural sort order) or a .jsonl file of "
             "{constitution, model?, prompt?, answer?} lines")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="the model that wrote the versions [default: the JSON lines' model, else external]")] = None,
    label: Annotated[str | None, typer.Option("--label", help="a label kept with the run's provenance")] = None,
    git: Annotated[Path | None, typer.Option("--git", help="a file whose git history is the chain (oldest first)")]
    = None,
    db: DbOption = None,
) -> None:
    """Store a chain of versions written elsewhere as one run of protocol `external` (headings, nested bullets and
    paragraphs are read into principles); one line per version says what was read."""
    from stability.chain_import import import_chain as run_import

    imported = run_import(paths or [], db, model=model, label=label, git=git)
    for line in imported.lines:
        console.print(line, markup=False, highlight=False)
    console.print(f"imported run {imported.run_id}: {imported.versions} versions, {imported.nodes} nodes "
                  f"({imported.changed} changed, {imported.declined} declined)", markup=False, highlight=False)


#: this module's commands by name (``stability.cli.app`` registers every command one way)
COMMANDS: dict[str, Callable[..., None]] = {"merge": merge, "export": export, "import-store": import_store,
                                           "import-chain": import_chain}
