"""``stability judge``: parses its arguments and calls :func:`stability.judge.judging.judge` (or, with ``--validate``,
:func:`stability.judge.validation.validate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stability.cli.console import DbOption, JsonOption, console, errors, print_json
from stability.errors import StabilityError


def judge(targets: Annotated[list[str] | None, typer.Argument(help="experiment names or ids, and run ids")] = None,
          judge_model: Annotated[str, typer.Option("--judge", help="the judge: any model id the registry knows")] = "",
          questions: Annotated[list[str] | None, typer.Option(
              "--questions", help="clash,equivalence,contradiction,refusal (default: all)")] = None,
          max_cost: Annotated[float | None, typer.Option("--max-cost", help="budget in USD for this command")] = None,
          max_tokens: Annotated[int, typer.Option("--max-tokens", help="tokens per judge answer")] = 512,
          temperature: Annotated[float, typer.Option("--temperature", help="the judge's temperature")] = 0.0,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be asked; send nothing")] = False,
          validate: Annotated[bool, typer.Option("--validate", help="score the judge on the library's labels")] = False,
          embedder: Annotated[str, typer.Option("--embedder", help="aligns principles for equivalence")] =
          "all-MiniLM-L6-v2",
          prices: Annotated[Path | None, typer.Option("--prices", help="YAML price overrides (USD per Mtok)")] = None,
          db: DbOption = None, as_json: JsonOption = False) -> None:
    """Ask a judge model the questions of meaning about runs' nodes (stored as judgements; asked once per judge)."""
    from stability.bounds import Budget, MaxTokens, Temperature, check
    from stability.judge.judging import judge as run_judge
    from stability.judge.judging import judge_config
    from stability.judge.validation import validate as run_validate

    if not judge_model:
        raise StabilityError("judge: give --judge MODEL")
    check(temperature, Temperature, "--temperature")
    check(max_tokens, MaxTokens, "--max-tokens")
    if max_cost is not None:
        check(max_cost, Budget, "--max-cost")
    config = judge_config(max_tokens=max_tokens, temperature=temperature)
    if validate:
        if targets:
            raise StabilityError(f"judge --validate scores the judge on the library's labels; it takes no "
                                 f"experiment or runs (got {targets[0]!r})")
        scored = run_validate(judge_model, questions, db, max_cost, config=config, dry_run=dry_run,
                              prices_file=prices)
        if as_json:
            print_json(scored.model_dump(mode="json"))
            return
        if dry_run:
            console.print(f"would ask {sum(scored.would_ask.values())} questions ("
                          + ", ".join(f"{q} {n}" for q, n in scored.would_ask.items())
                          + f"; about {scored.estimated_input_tokens} input tokens); nothing sent")
            if scored.not_validated:
                console.print(f"not validated (the library labels none): {', '.join(scored.not_validated)}")
            return
        for q in scored.questions:
            _print_score(q)
        if scored.not_validated:
            console.print(f"not validated (the library labels none): {', '.join(scored.not_validated)}")
        console.print(f"{scored.sent} requests sent" + (" · budget reached" if scored.budget_reached else ""))
        if scored.budget_reached:
            raise typer.Exit(1)
        return
    if not targets:
        raise StabilityError("judge: name an experiment or runs to judge (or --validate)")
    # counts the judge's questions this session asks (one call each): its bound comes with the first report
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("[bold]judge questions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=errors, transient=True, disable=dry_run or as_json or not errors.is_interactive)
    task = progress.add_task("judge", total=None)

    shown: list[bool] = []

    def advance(done: int, total: int) -> None:  # shown from the first question on: an input error is one line
        if not shown:
            progress.start()
            shown.append(True)
        progress.update(task, completed=done, total=total)

    try:
        result = run_judge(targets, judge_model, questions, db, max_cost, dry_run, embedder, config=config,
                           progress=advance, prices_file=prices)
    finally:
        if shown:
            progress.stop()
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    table = Table(title=f"judge {result.judge} over {len(result.runs)} runs" + (" (dry run)" if dry_run else ""))
    for column in ("question", "subjects", "stored before", "asked now", "verdicts", "no judgement"):
        table.add_column(column)
    for name, tally in result.questions.items():
        table.add_row(name, str(tally.subjects), str(tally.stored), str(tally.asked),
                      ", ".join(f"{k} {v}" for k, v in tally.verdicts.items()), str(tally.no_judgement))
    console.print(table)
    if dry_run:
        console.print(f"would ask {sum(t.subjects - t.stored for t in result.questions.values())} questions "
                      f"(about {result.estimated_input_tokens} input tokens); nothing sent")
        return
    console.print(f"{result.sent} requests sent" + (f" · {result.failed_calls} calls failed" if result.failed_calls
                                                    else "") + (" · budget reached" if result.budget_reached else ""))
    if result.budget_reached:
        raise typer.Exit(1)


def _print_score(score: object) -> None:
    from stability.judge.validation import QuestionScore

    assert isinstance(score, QuestionScore)
    headline = (f"precision {_f(score.precision)} · recall {_f(score.recall)} ({score.positive})"
                if score.positive else "")
    table = Table(title=f"{score.question}: n {score.n} · accuracy {_f(score.accuracy)}"
                        + (f" · {headline}" if headline else "") + f" · no judgement {score.no_judgement}")
    table.add_column("label \\ judge")
    for column in score.labels:
        table.add_column(column)
    table.add_column("precision")
    table.add_column("recall")
    for label, row in zip(score.labels, score.confusion, strict=False):
        verdict = score.per_verdict[label]
        table.add_row(label, *map(str, row), _f(verdict.precision), _f(verdict.recall))
    console.print(table)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
