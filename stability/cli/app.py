"""The ``stability`` command. Each command parses its arguments and calls one library function."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stability.cli import analysis as analysis_commands
from stability.cli import answers as answers_command
from stability.cli import boundary
from stability.cli import experiment as experiment_commands
from stability.cli import judge as judge_command
from stability.cli import probe as probe_command
from stability.cli import stores as store_commands
from stability.cli import view as view_command
from stability.cli.console import DbOption, JsonOption, console, errors, print_json
from stability.cli.display import printable
from stability.cli.library import library_app
from stability.errors import StabilityError
from stability.models.choices import AnswerFormat, ReasoningEffort

app = typer.Typer(
    help="Reflective-stability experiments: let models revise constitutions, store every revision as a graph.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
app.add_typer(library_app, name="constitutions")
def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """``KEY=VALUE`` flags as a dict; a malformed one is a one-line error."""
    pairs = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise StabilityError(f"{flag} {value!r}: expected KEY=VALUE")
        pairs[key.strip()] = rest
    return pairs


def _agents(value: str | None) -> list[dict[str, str]] | None:
    """``--agents 3`` or ``--agents alice,bob=openai/gpt-4o``."""
    if value is None:
        return None
    if value.isdigit():
        from stability.protocols.multi_agent import agent_names

        return [{"name": name} for name in agent_names(int(value))]  # no digits: never read as a vote
    agents = []
    for part in value.split(","):
        name, _, model = part.strip().partition("=")
        agents.append({"name": name, **({"model": model} if model else {})})
    return agents


def _choice(flag: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise StabilityError(f"{flag} {value!r}: choose one of {', '.join(choices)}")


@app.command()
def iterate(
    model: Annotated[str | None, typer.Option("--model", "-m", help="e.g. local/gemma-3-270m")] = None,
    constitution: Annotated[Path | None, typer.Option("--constitution", "-c", help="Markdown bullet list")] = None,
    protocol: Annotated[str, typer.Option("--protocol", "-p", help="see `stability protocols`")] = "fresh-instance",
    seed: Annotated[int, typer.Option(help="run seed; each call's seed derives from it")] = 0,
    options_file: Annotated[Path | None, typer.Option("--options", help="YAML file of protocol options (or a "
                                                      "file with an options: mapping)")] = None,
    temperature: Annotated[float, typer.Option()] = 1.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 1024,
    reasoning_effort: Annotated[str | None, typer.Option(
        "--reasoning-effort", help="(OpenAI o-series, gpt-5) " + "|".join(get_args(ReasoningEffort)))] = None,
    thinking_budget: Annotated[int | None, typer.Option(
        "--thinking-budget", help="(Anthropic) extended thinking tokens: 1024 or more, below --max-tokens")] = None,
    answer_format: Annotated[str, typer.Option(
        "--answer-format", help="structured (JSON schema, tool use) | text | auto (structured; text where the "
        "server refuses it)")] = "auto",
    templates: Annotated[str, typer.Option(
        "--templates", help="template variant: default | neutral | third-person | ... (a sub-folder of the "
        "protocol's variants/)")] = "default",
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="(iteration) step cap (20)")] = None,
    declines: Annotated[int | None, typer.Option("--declines", help="(iteration) K declines that stop (2)")] = None,
    max_parse_failures: Annotated[int | None, typer.Option("--max-parse-failures")] = None,
    max_principles: Annotated[int | None, typer.Option("--max-principles")] = None,
    max_context_tokens: Annotated[int | None, typer.Option("--max-context-tokens",
                                                           help="(in-context) token budget (6000)")] = None,
    from_blank: Annotated[bool, typer.Option("--from-blank", help="(iteration) start from a self-authored "
                                             "constitution")] = False,
    size: Annotated[int | None, typer.Option("--size", help="(blank-slate, --from-blank) principles to ask for")]
    = None,
    topic: Annotated[str | None, typer.Option("--topic", help="(blank-slate, --from-blank) topic hint")] = None,
    principle: Annotated[int | None, typer.Option("--principle", help="(rate-alternatives) 1-based target")] = None,
    alternatives: Annotated[Path | None, typer.Option("--alternatives", help="(rate-alternatives) file or folder")]
    = None,
    mode: Annotated[str | None, typer.Option("--mode", help="(rate-alternatives) principle|constitution")] = None,
    reflect: Annotated[str | None, typer.Option("--reflect", help="(rate-alternatives) first|none")] = None,
    source: Annotated[str | None, typer.Option("--source", help="(rate-alternatives) provided|free")] = None,
    trials: Annotated[int | None, typer.Option("--trials", help="(rate-alternatives) trials (3)")] = None,
    agents: Annotated[str | None, typer.Option("--agents", help="(multi-agent) N, or alice,bob=MODEL,...")] = None,
    rounds: Annotated[int | None, typer.Option("--rounds", help="(multi-agent) rounds per edit (2)")] = None,
    editor: Annotated[str | None, typer.Option("--editor", help="(multi-agent) 'vote' or an agent name")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", help="ROLE=MODEL, repeatable")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="KEY=VALUE protocol option (YAML "
                                                     "value; dotted keys nest: trainer.steps=3), repeatable")]
    = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="send calls even if another run has the answer "
                                           "(the same as --cache run)")] = False,
    cache: Annotated[str, typer.Option("--cache", help="which other runs' calls may answer this run: run | "
                                       "experiment | global (the run's own calls always replay on resume)")]
    = "global",
    resume: Annotated[str | None, typer.Option("--resume", help="continue a killed or failed run")] = None,
    batch: Annotated[bool, typer.Option("--batch", help="send OpenAI and Anthropic calls in provider batches (half "
                                        "the price; answers within 24 h)")] = False,
    db: DbOption = None,
) -> None:
    """Run one protocol over a constitution, storing every revision and call. Flags marked (protocol) apply to
    those protocols only."""
    from stability.bounds import MaxTokens, Seed, Temperature, check
    from stability.engine import IterateConfig
    from stability.engine import iterate as run_iterate
    from stability.engine import resume as run_resume
    from stability.options import check_options_file, merge_overrides, read_options
    from stability.protocols import protocol_class

    check(temperature, Temperature, "--temperature")
    check(max_tokens, MaxTokens, "--max-tokens")
    check(seed, Seed, "--seed")
    progress = StepProgress(max_steps or 20)
    try:
        if resume:
            result = run_resume(resume, db, on_step=progress.update, batch=batch, on_batch=_batch_line)
        else:
            if not model:
                raise StabilityError("iterate: give --model (and --constitution), or --resume RUN_ID")
            flags: dict[str, Any] = {
                "max_steps": max_steps, "declines": declines, "max_parse_failures": max_parse_failures,
                "max_principles": max_principles, "max_context_tokens": max_context_tokens,
                "from_blank": from_blank or None, "size": size, "topic": topic, "principle": principle,
                "alternatives": str(alternatives) if alternatives else None, "mode": mode, "reflect": reflect,
                "source": source, "trials": trials, "agents": _agents(agents), "rounds": rounds, "editor": editor,
            }
            options = read_options(options_file) if options_file else {}
            from_flags = protocol_class(protocol).options_from_flags(flags)
            options = merge_overrides({**options, **from_flags}, option or [])
            if options_file:
                overridden = set(from_flags) | {o.partition("=")[0].strip().split(".")[0] for o in option or []}
                check_options_file(options_file, protocol_class(protocol).Options, options, overridden)
            _choice("--reasoning-effort", reasoning_effort, get_args(ReasoningEffort))
            _choice("--answer-format", answer_format, get_args(AnswerFormat))
            _choice("--cache", cache, ("run", "experiment", "global"))
            thinking: dict[str, Any] = {"reasoning_effort": reasoning_effort, "thinking_budget": thinking_budget,
                                        "answer_format": answer_format, "cache": cache}
            config = IterateConfig(protocol=protocol, model=model, seed=seed,
                                   constitution=str(constitution) if constitution else None,
                                   roles=_pairs(role, "--role"), temperature=temperature, max_tokens=max_tokens,
                                   options=options, use_cache=not no_cache, templates=templates,
                                   **thinking)
            result = run_iterate(config, db, on_step=progress.update, batch=batch, on_batch=_batch_line)
    finally:
        progress.stop()
    _print_chain(result.run.id, db)
    _hint_truncation(result.run.id, db)
    if result.run.status != "done":
        raise typer.Exit(1)


def _batch_line(event: Any) -> None:
    """``iterate --batch``: one line on stderr per batch submitted and per change a poll sees."""
    from stability.records import now

    since = f" · {(now() - event.submitted_at).total_seconds():.0f} s since submission" if event.submitted_at else ""
    errors.print(printable(f"batch wave {event.wave} · {event.model} · {event.provider_id or event.local_key} · "
                           f"{event.raw_status or event.state} · {event.n_requests} requests{since}"),
                 markup=False, highlight=False, soft_wrap=True)


def _hint_truncation(run_id: str, db: Path | None) -> None:
    """Suggest a larger --max-tokens when answers of the run were cut at the token limit."""
    from stability.store import Store

    with Store.open(db, read_only=True) as store:
        calls = store.calls(run_id)
        limit = store.run(run_id).config.get("max_tokens")
    cut = sum(call.truncated for call in calls)
    if cut:
        errors.print(f"{cut} of {len(calls)} answers were cut at the token limit (max_tokens {limit}); rerun with "
                     "a larger --max-tokens", markup=False, highlight=False, soft_wrap=True)


class StepProgress:
    """A progress bar on stderr that appears with the first step, so input errors print alone."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.progress: Progress | None = None

    def update(self, event: Any) -> None:
        if self.progress is None:
            # on a terminal only, and gone when it stops: a failure mid-run is then one line on stderr
            self.progress = Progress(TextColumn("[bold]iterate"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=errors,
                                     transient=True, disable=not errors.is_interactive)
            self.progress.start()
            self.progress.add_task("iterate", total=self.total, last="")
        self.progress.update(self.progress.task_ids[0], completed=event.step,
                             last=f"step {event.step}: {event.decision} ({event.n_principles} principles)")

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _print_chain(run_id: str, db: Path | None) -> None:
    from stability.chain import show_run

    view = show_run(run_id, db)
    table = Table(title=f"run {view.run.id} · {view.run.protocol} · {view.run.model}")
    for column in ("step", "decision", "principles", "constitution", "change"):
        table.add_column(column)
    for step in view.steps:
        change = f"+{sum(d.startswith('+') for d in step.diff)} -{sum(d.startswith('-') for d in step.diff)}"
        note = f" → {step.cycle_to}" if step.cycle_to else ""
        table.add_row(str(step.step), step.decision + note, str(step.n_principles),
                      step.constitution_hash[7:19], change if step.step else "")
    console.print(table)
    run = view.run
    console.print(f"stop: [bold]{run.stop_reason}[/] · status {run.status}"
                  + (f" · error: {escape(printable(run.error))}" if run.error else "")
                  + f" · calls {view.totals.get('calls', 0)} (paid {view.totals.get('paid', 0)})")
    cut = sum(step.decision == "truncated" for step in view.steps)
    if cut:
        limit = int(run.config.get("max_tokens") or 1024)
        console.print(f"{cut} answer{'s were' if cut > 1 else ' was'} cut off at the token limit (--max-tokens "
                      f"{limit}); a cut-off answer is never read as a revision: rerun with a larger --max-tokens, "
                      f"e.g. --max-tokens {limit * 2}", markup=False)
    console.print("final constitution:")
    console.print(printable(view.final_constitution), markup=False, highlight=False)


@app.command()
def runs(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List runs with their status, steps, calls and tokens."""
    from stability.chain import list_runs

    summaries = list_runs(db)
    if as_json:
        print_json([s.model_dump() for s in summaries])
        return
    table = Table()
    for column in ("run", "protocol", "model", "status", "stop", "steps", "calls", "paid", "tokens in/out",
                   "created"):
        table.add_column(column)
    for s in summaries:
        table.add_row(s.id, s.protocol, s.model, s.status, s.stop_reason or "", str(s.steps), str(s.calls),
                      str(s.paid_calls), f"{s.input_tokens}/{s.output_tokens}", s.created_at)
    console.print(table)


@app.command()
def show(run: Annotated[str, typer.Argument(help="run id (a unique prefix will do)")], db: DbOption = None,
         as_json: JsonOption = False) -> None:
    """Show a run's chain: each step's decision, the diff it made, and the stop reason."""
    from stability.chain import show_run

    view = show_run(run, db)
    if as_json:
        print_json(view.model_dump(mode="json"))
        return
    r = view.run
    console.print(f"[bold]{r.id}[/] {r.protocol} · {r.model} · seed {r.seed} · {r.status} · stop {r.stop_reason}")
    console.print(f"stability {r.package_version} · commit {r.git_commit} · templates {r.template_hash[:19]}")
    for step in view.steps:
        head = f"[bold]step {step.step}[/] {step.decision} · {step.n_principles} principles · " \
               f"{step.constitution_hash[:19]}"
        if step.cycle_to:
            head += f" · returns to {step.cycle_to}"
        console.print(head)
        if step.detail:
            console.print(f"  {printable(step.detail)}", markup=False)
        for line in step.diff:
            console.print(f"  {printable(line)}", style="green" if line.startswith("+") else "red", markup=False)
    console.print("final constitution:")
    console.print(printable(view.final_constitution), markup=False, highlight=False)


@app.command()
def models(as_json: JsonOption = False) -> None:
    """List model providers and whether each is usable here."""
    from stability.models.registry import provider_status

    statuses = provider_status()
    if as_json:
        print_json([s.model_dump() for s in statuses])
        return
    table = Table()
    for column in ("provider", "usable", "why", "what"):
        table.add_column(column)
    for s in statuses:
        table.add_row(f"{s.prefix}/", "yes" if s.usable else "no", s.reason,
                      s.summary + (f" (plugin: {s.plugin})" if s.plugin else ""))
    console.print(table)


experiment_commands.register(app)
store_commands.register(app)
app.command("experiments")(analysis_commands.experiments)
app.command("probe")(probe_command.probe)
app.command("answers")(answers_command.answers)
app.command("judge")(judge_command.judge)
app.command("analyze")(analysis_commands.analyze)
app.command("graph")(analysis_commands.graph)
app.command("report")(analysis_commands.report)
app.command("view")(view_command.view)


class _Notes(logging.Handler):
    """The library's warnings (``reading its snapshot as of 14 s ago``) as ``note:`` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        from stability.redaction import redact

        sys.stderr.write(f"note: {printable(redact(record.getMessage()))}\n")


def _show_notes() -> None:
    logger = logging.getLogger("stability")
    if not any(isinstance(h, _Notes) for h in logger.handlers):
        logger.addHandler(_Notes(logging.WARNING))


def main() -> None:
    """The ``stability`` command: every failure passes through :func:`stability.cli.boundary.run`."""
    _show_notes()
    args = sys.argv[1:]
    if args[:1] == ["run"]:
        args[1:] = experiment_commands.ray_address_optional(args[1:])
    raise SystemExit(boundary.run(app, args))
