"""The ``stability`` command. Each command parses its arguments and calls one library function."""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, cast, get_args, get_origin

import typer
import typer.main
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand

from stability.cli import analysis as analysis_commands
from stability.cli import answers as answers_command
from stability.cli import boundary
from stability.cli import experiment as experiment_commands
from stability.cli import findings as findings_command
from stability.cli import judge as judge_command
from stability.cli import probe as probe_command
from stability.cli import stores as store_commands
from stability.cli import view as view_command
from stability.cli.console import DbOption, JsonOption, console, errors, print_json
from stability.cli.display import printable
from stability.cli.library import library_app
from stability.errors import StabilityError

app = typer.Typer(
    help="Reflective-stability experiments: let models revise constitutions, store every revision as a graph.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
    # click's plain help: typer's rich panels import rich.markdown, markdown_it and rich.traceback and took a third
    # of ``--help``'s start-up (issue 30); they also read ``[default: ...]`` in a flag's help as markup and hid it
    rich_markup_mode=None,
)
def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """``KEY=VALUE`` flags as a dict; a malformed one is a one-line error."""
    pairs = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise StabilityError(f"{flag} {value!r}: expected KEY=VALUE")
        pairs[key.strip()] = rest
    return pairs


def _choice(flag: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise StabilityError(f"{flag} {value!r}: choose one of {', '.join(choices)}")


def iterate(
    model: Annotated[str | None, typer.Option("--model", "-m", help="e.g. local/gemma-3-270m")] = None,
    constitution: Annotated[Path | None, typer.Option("--constitution", "-c", help="Markdown bullet list")] = None,
    protocol: Annotated[str, typer.Option("--protocol", "-p", help="see `stability protocols`")] = "fresh-instance",
    options_file: Annotated[Path | None, typer.Option("--options", help="YAML file of protocol options (or a "
                                                      "file with an options: mapping)")] = None,
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
    **derived: Any,
) -> None:
    """Run one protocol over a constitution, storing every revision and call. A flag marked with protocols in
    parentheses applies to those protocols only."""
    from stability.models.preload import preload

    preload(model)  # the provider's SDK imports on a thread while the engine loads and the store is made
    from stability.engine import IterateConfig
    from stability.engine import iterate as run_iterate
    from stability.engine import resume as run_resume
    from stability.options import check_options_file, merge_overrides, read_options
    from stability.protocols import protocol_class, protocol_flags
    from stability.vocabulary.settings import check_setting
    from stability.vocabulary.settings import declared as run_settings

    settings = {name: derived[name] for name in run_settings()}  # the flags of _iterate_parameters
    for name, value in settings.items():
        check_setting(name, value)
    flags = {name: derived[name] or None if flag.kind is bool else derived[name]  # a switch left off: not given
             for name, flag in protocol_flags().items()}
    progress = StepProgress()
    try:
        if resume:
            result = run_resume(resume, db, on_step=progress.update, batch=batch, on_batch=_batch_line)
        else:
            if not model:
                raise StabilityError("iterate: give --model (and --constitution), or --resume RUN_ID")
            options = read_options(options_file) if options_file else {}
            from_flags = protocol_class(protocol).options_from_flags(flags)
            options = merge_overrides({**options, **from_flags}, option or [])
            if options_file:
                overridden = set(from_flags) | {o.partition("=")[0].strip().split(".")[0] for o in option or []}
                check_options_file(options_file, protocol_class(protocol).Options, options, overridden)
            _choice("--cache", cache, ("run", "experiment", "global"))
            config = IterateConfig(protocol=protocol, model=model,
                                   constitution=str(constitution) if constitution else None,
                                   roles=_pairs(role, "--role"), options=options, use_cache=not no_cache,
                                   cache=cast(Any, cache), **settings)
            result = run_iterate(config, db, on_step=progress.update, batch=batch, on_batch=_batch_line)
    finally:
        progress.stop()
    _print_chain(result.run.id, db)
    _hint_truncation(result.run.id, db)
    if result.run.status != "done":
        raise typer.Exit(1)


def _flag_kind(annotation: Any) -> type:
    """The type a flag parses its value as: the setting's, unwrapped of None, bounds and fixed choices."""
    kinds = [k for k in (get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,))
             if k is not type(None)]
    kind = kinds[0]
    if get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    return kind if kind in (int, float, str) else str


def _iterate_parameters() -> list[inspect.Parameter]:
    """``iterate``'s explicit parameters, then a flag for every run setting (declared once in
    :mod:`stability.vocabulary.settings`) and every protocol flag (each protocol's ``cli_flags``)."""
    from stability.protocols import protocol_flags
    from stability.vocabulary import RunSettings
    from stability.vocabulary.settings import choices, declared

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [p for p in inspect.signature(iterate, eval_str=True).parameters.values()
              if p.kind != inspect.Parameter.VAR_KEYWORD]
    for name, mark in declared().items():
        field = RunSettings.model_fields[name]
        allowed = choices(name)
        kind: Any = _flag_kind(field.annotation)
        help_text = mark.help + (f": {'|'.join(allowed)}" if allowed else "")
        params.append(inspect.Parameter(name, keyword, default=field.default, annotation=Annotated[
            kind | None if field.default is None else kind, typer.Option(mark.flag, help=help_text)]))
    for flag in protocol_flags().values():
        option = typer.Option(f"--{flag.name.replace('_', '-')}", help=f"({', '.join(flag.protocols)}) {flag.help}")
        if flag.kind is bool:
            params.append(inspect.Parameter(flag.name, keyword, default=False, annotation=Annotated[bool, option]))
        else:
            params.append(inspect.Parameter(flag.name, keyword, default=None,
                                            annotation=Annotated[flag.kind | None, option]))
    return params


def _iterate_command(**values: Any) -> None:
    iterate(**values)


_iterate_command.__doc__ = iterate.__doc__


def _with_flags(command: Callable[..., None]) -> Callable[..., None]:
    """The command as typer reads its flags: its own signature, or for ``iterate`` its explicit parameters and a
    flag for every run setting and protocol flag (:func:`_iterate_parameters`, which imports the settings' models
    and every protocol)."""
    if command is _iterate_command:
        command.__signature__ = inspect.Signature(_iterate_parameters())  # type: ignore[attr-defined]
    return command


class _LazyCommand(TyperCommand):
    """A command whose flags typer builds the first time click asks for them (parsing its arguments, its
    ``--help``, the command reference): each start builds only the invoked command's flags, and ``iterate``'s,
    derived from the run settings and the protocols, only when it runs (issue 30). Registered with a stand-in
    that takes no flags and carries the command's name and help; the real callback comes with the flags."""

    _built: list[Any] | None = None

    @property
    def params(self) -> list[Any]:
        if self._built is None:
            one = typer.Typer(add_completion=False, rich_markup_mode=None)
            one.command(self.name)(_with_flags(COMMANDS[str(self.name)]))
            built = typer.main.get_command(one)
            self._built, self.callback = list(built.params), built.callback  # typer's callback knows every flag
        return self._built

    @params.setter
    def params(self, value: list[Any]) -> None:  # the stand-in's (none): the real flags replace them
        self._built = None


def _stand_in(command: Callable[..., None]) -> Callable[[], None]:
    def stand_in() -> None:
        raise AssertionError("a lazy command's stand-in is replaced before click invokes it")

    stand_in.__doc__, stand_in.__name__ = command.__doc__, command.__name__
    return stand_in


def _batch_line(event: Any) -> None:
    """``iterate --batch``: one line on stderr per batch submitted and per change a poll sees."""
    from stability.records import now

    since = f" · {(now() - event.submitted_at).total_seconds():.0f} s since submission" if event.submitted_at else ""
    errors.print(printable(f"batch wave {event.wave} · {event.model} · {event.provider_id or event.local_key} · "
                           f"{event.raw_status or event.state} · {event.n_requests} requests{since}"),
                 markup=False, highlight=False, soft_wrap=True)


def _hint_truncation(run_id: str, db: Path | None) -> None:
    """The one warning, on stderr, when answers of the run were cut at the token limit: a larger --max-tokens."""
    from stability.store import Store
    from stability.vocabulary.settings import default_of

    with Store.open(db, read_only=True) as store:
        calls = store.calls(run_id)
        limit = int(store.run(run_id).config.get("max_tokens") or default_of("max_tokens"))
    cut = sum(call.truncated for call in calls)
    if cut:
        errors.print(f"{cut} of {len(calls)} answers {'was' if cut == 1 else 'were'} cut at the token limit "
                     f"(--max-tokens {limit}); a cut-off answer is never read as a revision: rerun with a larger "
                     f"--max-tokens, e.g. --max-tokens {limit * 2}", markup=False, highlight=False, soft_wrap=True)


class StepProgress:
    """A progress bar on stderr that appears with the first step, so input errors print alone. It counts what the
    protocol's steps are (``generations 1/2``, ``trials``, ``steps``) up to the run's own bound, both from the
    engine's step events."""

    def __init__(self) -> None:
        self.progress: Any = None  # a rich Progress, imported with the first step (only iterate shows one)

    def update(self, event: Any) -> None:
        if self.progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            # on a terminal only, and gone when it stops: a failure mid-run is then one line on stderr
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=errors,
                                     transient=True, disable=not errors.is_interactive)
            self.progress.start()
            self.progress.add_task(event.unit, total=event.total, last="")
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
    console.print("final constitution:")
    console.print(printable(view.final_constitution), markup=False, highlight=False)


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
    for item in view.inputs:
        console.print(f"input {item.option}: {printable(item.path)} · {item.sha256[:19]}", markup=False)
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


#: every command by name, registered one way (the ``constitutions`` group is a sub-app of its own commands)
COMMANDS: dict[str, Callable[..., None]] = {
    "iterate": _iterate_command, "runs": runs, "show": show, "models": models, **experiment_commands.COMMANDS,
    **store_commands.COMMANDS, "experiments": analysis_commands.experiments, "probe": probe_command.probe,
    "answers": answers_command.answers, "judge": judge_command.judge, "analyze": analysis_commands.analyze,
    "findings": findings_command.findings,
    "graph": analysis_commands.graph, "report": analysis_commands.report, "view": view_command.view,
}
for _name, _command in COMMANDS.items():
    app.command(_name, cls=_LazyCommand)(_stand_in(_command))
app.add_typer(library_app, name="constitutions")


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
