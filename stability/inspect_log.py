"""``stability export --format inspect`` and its way back: runs as Inspect AI eval logs (``.eval``), written and
read with ``inspect_ai``'s own log types and functions (the optional extra ``stability[inspect]``, imported only
here and only when asked for).

- One log per (model, protocol) of the selection. Its header (``EvalSpec``) names the protocol as the task and the
  model; its metadata holds the experiments' specs, the models' parameters and the runs' configurations.
- One sample per run: the starting constitution as its input; each model call as a ``ModelEvent`` (its request
  messages, the answer, the token usage, the time it took, and the raw request and response); the calls' messages
  in order; scores for the run's verdict (fixed point, cycle, unsettled, no verdict, with the stop reason), its
  steps, its fixed-point step and the measures it has (cosine distance from the start to the final constitution,
  principles kept, reworded, removed and added from start to final: :mod:`stability.analysis`).
- Each sample's metadata ``stability`` holds the run's rows as plain data (:mod:`stability.store.run_rows`), and
  each header's the experiments' rows, so ``stability import-store`` rebuilds the same runs, nodes and calls. On
  the way back a log is data another person could have written: it is validated (:class:`SampleRecords`,
  :class:`HeaderRecords`, extra keys refused; the rows against the store's schema; content addresses checked) and
  a refusal is one line naming the file, with nothing written.

Nothing secret is written: the rows are the store's (the call path already redacted them), and a last check
refuses the export, leaving nothing behind, if the value of a secret variable set now would appear in it where it
would be a secret (as the Parquet export does, :func:`stability.redaction.exposes`).
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from stability.errors import StabilityError
from stability.output_files import folder_whole
from stability.redaction import exposes, secret_values
from stability.store.export import json_column_value
from stability.store.run_rows import Rows, experiment_rows, load_rows, migrations, run_rows

if TYPE_CHECKING:
    from stability.analysis.convergence import RunConvergence
    from stability.records import CallRecord, RunRecord
    from stability.store.merge import MergeReport

#: the version of the records a sample's and a header's metadata carry
RECORDS_VERSION = 1
#: the metadata key that holds them
KEY = "stability"
EXTRA = "pip install 'stability[inspect]'"


class SampleRecords(BaseModel):
    """What a sample's ``metadata["stability"]`` must be: one run's rows, by table."""

    model_config = ConfigDict(extra="forbid")

    version: int
    run_id: str
    migrations: list[str]
    rows: dict[str, list[dict[str, Any]]]


class HeaderRecords(BaseModel):
    """What a log header's ``metadata["stability"]`` must be: the experiments' rows, by table."""

    model_config = ConfigDict(extra="forbid")

    version: int
    migrations: list[str]
    rows: dict[str, list[dict[str, Any]]]


class InspectExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    logs: list[str]
    samples: int


def _inspect() -> None:
    try:
        import inspect_ai  # noqa: F401
    except ImportError:
        raise StabilityError(f"--format inspect needs inspect_ai: {EXTRA}") from None


def _text(content: Any) -> str:
    """A message's content as text (a list of blocks: their text joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) if isinstance(b, dict) else str(b) for b in content)
    return "" if content is None else json.dumps(content)


def _messages(call: CallRecord) -> list[Any]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    out: list[Any] = []
    system = call.request.get("system")
    if system:
        out.append(ChatMessageSystem(content=_text(system)))
    for message in call.request.get("messages", []) or []:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), _text(message.get("content"))
        if role == "system":
            out.append(ChatMessageSystem(content=content))
        elif role == "assistant":
            out.append(ChatMessageAssistant(content=content))
        else:
            out.append(ChatMessageUser(content=content))
    return out


def _config(request: dict[str, Any]) -> Any:
    from inspect_ai.model import GenerateConfig

    known = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "max_tokens": "max_tokens"}
    return GenerateConfig(**{ours: request[theirs] for theirs, ours in known.items()
                             if isinstance(request.get(theirs), int | float)})


def _model_event(call: CallRecord) -> Any:
    from inspect_ai.event import ModelEvent
    from inspect_ai.model import ChatCompletionChoice, ChatMessageAssistant, ModelCall, ModelOutput, ModelUsage

    seconds = call.latency_ms / 1000
    usage = ModelUsage(input_tokens=call.input_tokens, output_tokens=call.output_tokens,
                       total_tokens=call.input_tokens + call.output_tokens)
    stop: Literal["max_tokens", "stop", "unknown"] = ("max_tokens" if call.truncated else "stop"
                                                       if call.status == "ok" else "unknown")
    output = ModelOutput(model=call.model, usage=usage, time=seconds, error=call.error,
                         choices=[ChatCompletionChoice(message=ChatMessageAssistant(content=call.text or ""),
                                                       stop_reason=stop)])
    return ModelEvent(timestamp=call.created_at, model=call.model, role=call.purpose, input=_messages(call),
                      tools=[], tool_choice="none", config=_config(call.request), output=output,
                      call=ModelCall(request=call.request, response=call.response, time=seconds),
                      error=call.error, retries=max(call.attempts - 1, 0), completed=call.created_at,
                      working_time=seconds, cache="read" if call.cached_from else None,
                      metadata={"call_id": call.id, "step": call.step, "purpose": call.purpose,
                                "cost_usd": call.cost_usd})


def _scores(run: RunRecord, final_text: str, measured: RunConvergence | None, changes: dict[str, int] | None
            ) -> dict[str, Any]:
    """The run's verdict (its answer: the final constitution), stop reason, steps and measures as scores."""
    from inspect_ai.scorer import Score

    if measured is None:
        verdict, why = "no_verdict", f"no verdict ({run.status})"
    else:
        verdict, why = measured.verdict, measured.verdict_text()
    scores = {"verdict": Score(value=verdict, explanation=why, answer=final_text,
                               metadata={"stop_reason": run.stop_reason, "status": run.status})}
    if run.stop_reason:
        scores["stop_reason"] = Score(value=run.stop_reason)
    if measured is not None and measured.steps:
        scores["steps"] = Score(value=measured.steps[-1].step, explanation="the last step of the run")
        scores["distance"] = Score(value=round(measured.steps[-1].d_origin, 6),
                                   explanation="cosine distance from the starting to the final constitution")
    if measured is not None and measured.fixed_point is not None:
        scores["fixed_point_step"] = Score(value=measured.fixed_point.step, explanation=measured.fixed_point.how)
    for kind in ("kept", "reworded", "removed", "added"):
        if changes is not None:
            scores[f"principles_{kind}"] = Score(value=changes[kind], explanation="from start to final")
    return scores


def _usage(calls: list[CallRecord]) -> Any:
    from inspect_ai.model import ModelUsage

    given, taken = sum(c.input_tokens for c in calls), sum(c.output_tokens for c in calls)
    return ModelUsage(input_tokens=given, output_tokens=taken, total_tokens=given + taken)


def _sample(run: RunRecord, start_text: str, final_text: str, calls: list[CallRecord], rows: Rows,
            steps: list[str], measured: RunConvergence | None, changes: dict[str, int] | None,
            experiment: str | None) -> Any:
    """One run as a sample: ``final_text`` (the final constitution) is its answer."""
    from inspect_ai.log import EvalError, EvalSample
    from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, ModelOutput

    messages: list[Any] = [ChatMessageUser(content=start_text)]
    for call in calls:
        messages += [*_messages(call), ChatMessageAssistant(content=call.text or "")]
    records = SampleRecords(version=RECORDS_VERSION, run_id=run.id, migrations=steps, rows=rows)
    error = None
    if run.status == "failed":
        error = EvalError(message=run.error or "failed", traceback="", traceback_ansi="")
    elapsed = (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
    return EvalSample(
        id=run.id, epoch=1, input=start_text, target="", messages=messages,
        output=ModelOutput.from_content(run.model, final_text), model_usage={run.model: _usage(calls)},
        scores=_scores(run, final_text, measured, changes), events=[_model_event(c) for c in calls],
        started_at=run.created_at.isoformat(),
        completed_at=run.finished_at.isoformat() if run.finished_at else None, total_time=elapsed, error=error,
        metadata={"run_id": run.id, "experiment": experiment, "protocol": run.protocol, "status": run.status,
                  "stop_reason": run.stop_reason, "seed": run.seed, KEY: records.model_dump()})


def _changes(measured: RunConvergence | None, principles: dict[str, tuple[str, ...]],
             vectors: dict[str, Any]) -> dict[str, int] | None:
    from stability.analysis.alignment import change_counts

    if measured is None or not measured.steps:
        return None
    return change_counts(principles[measured.start], principles[measured.final], vectors)


@dataclass
class Selected:
    """What the logs are made of: the runs selected, read from the store, and their measures."""

    runs: dict[str, RunRecord]
    starts: dict[str, str]
    finals: dict[str, str]
    calls: dict[str, list[CallRecord]]
    rows: dict[str, Rows]
    migrations: list[str]
    measured: dict[str, RunConvergence]
    changes: dict[str, dict[str, int] | None]
    belongs: dict[str, str]
    experiments: list[dict[str, Any]]
    experiment_rows: Rows


def _select(db: Path | str | None, selection: list[str], all_runs: bool, embedder: str) -> Selected:
    from stability.analysis.convergence import Params
    from stability.analysis.experiments import resolve_selection
    from stability.analysis.measure import load, measure
    from stability.store.store import Store

    corpus, vectors, use, ratings, belongs, _ = load(selection, db, all_runs, embedder)
    result = measure(corpus, vectors, Params(), use, ratings, None, belongs, None, "holm")
    measured = {r.run_id: r for r in result.runs}
    with Store.open(db, read_only=True) as store:
        ids, belongs = resolve_selection(store, selection, all_runs)
        con = store.con
        runs = {i: store.run(i) for i in ids}
        starts = {i: store.constitution(runs[i].start_hash).text for i in ids}
        chosen = sorted({belongs[i] for i in ids if i in belongs})
        experiments = [e for e in (store.experiment(e) for e in chosen) if e is not None]
        return Selected(
            runs=runs, starts=starts, calls={i: store.calls(i) for i in ids}, rows={i: run_rows(con, i) for i in ids},
            finals={i: store.constitution(measured[i].final).text if i in measured else starts[i] for i in ids},
            migrations=migrations(con), measured=measured, belongs=belongs,
            changes={i: _changes(measured.get(i), corpus.principles, vectors.principles) for i in ids},
            experiments=[{"id": e.id, "name": e.name, "spec": e.spec} for e in experiments],
            experiment_rows=experiment_rows(con, chosen))


def _refuse_secrets(selected: Selected, target: Path) -> None:
    secrets = secret_values()
    if not secrets:
        return
    for rows in [selected.experiment_rows, *selected.rows.values()]:
        values = {t: [{k: json_column_value(v) for k, v in r.items()} for r in rs] for t, rs in rows.items()}
        if exposes(values, secrets):
            raise StabilityError(f"{target}: would contain the value of a secret variable; nothing exported")


def _eval_log(model: str, protocol: str, members: list[str], selected: Selected) -> Any:
    """The log of the runs ``members`` (all of ``model`` and ``protocol``)."""
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalPlan, EvalResults, EvalSpec, EvalStats

    from stability.provenance import package_version

    runs, belongs = selected.runs, selected.belongs
    first = runs[members[0]]
    samples = [_sample(runs[i], selected.starts[i], selected.finals[i], selected.calls[i], selected.rows[i],
                       selected.migrations, selected.measured.get(i), selected.changes[i], belongs.get(i))
               for i in members]
    mine = sorted({belongs[i] for i in members if i in belongs})
    experiments = [e for e in selected.experiments if e["id"] in mine]
    header = HeaderRecords(version=RECORDS_VERSION, migrations=selected.migrations,
                           rows=experiment_rows_of(selected.experiment_rows, mine))
    spec = EvalSpec(
        created=first.created_at.isoformat(), task=f"stability/{protocol}", task_version=0,
        dataset=EvalDataset(name=", ".join(e["name"] for e in experiments) or "runs", samples=len(samples),
                            sample_ids=list(members)),
        model=model, model_args=first.model_params, config=EvalConfig(), packages={"stability": package_version()},
        task_args={"protocol": protocol},
        metadata={"experiments": experiments, "models": [model], "model_params": first.model_params,
                  "parameters": {i: runs[i].config for i in members}, KEY: header.model_dump()})
    return EvalLog(version=2, status="success", eval=spec, plan=EvalPlan(),
                   results=EvalResults(total_samples=len(samples), completed_samples=len(samples)),
                   stats=EvalStats(started_at=min(runs[i].created_at for i in members).isoformat(),
                                   completed_at=max((runs[i].finished_at or runs[i].created_at)
                                                    for i in members).isoformat(),
                                   model_usage={model: _usage([c for i in members for c in selected.calls[i]])}),
                   samples=samples)


def export_inspect(db: Path | str | None, selection: list[str], all_runs: bool, out: Path | str,
                   embedder: str) -> InspectExport:
    """Write the runs selected (experiments or runs, or every run) as Inspect logs into the new folder ``out``
    (see the module's docstring); it appears whole or not at all."""
    _inspect()
    from inspect_ai.log import write_eval_log

    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StabilityError(f"{target}: already exists; export into a new folder")
    selected = _select(db, selection, all_runs, embedder)
    _refuse_secrets(selected, target)
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i, run in selected.runs.items():
        groups[(run.model, run.protocol)].append(i)
    written: list[str] = []
    with folder_whole(target) as staging:
        for n, ((model, protocol), members) in enumerate(sorted(groups.items())):
            name = f"{n + 1:03d}-{_slug(model)}-{_slug(protocol)}.eval"
            write_eval_log(_eval_log(model, protocol, members, selected), str(staging / name), format="eval")
            written.append(name)
    return InspectExport(logs=written, samples=len(selected.runs))


def experiment_rows_of(rows: Rows, experiments: list[str]) -> Rows:
    """The rows of ``rows`` that belong to the experiments named."""
    out: Rows = {}
    for table, records in rows.items():
        kept = [r for r in records if r.get("experiment_id", r.get("id")) in experiments]
        if kept:
            out[table] = kept
    return out


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in text)[:60]


def is_inspect_folder(folder: Path) -> bool:
    """Whether ``folder`` holds Inspect logs (``*.eval``) and no Parquet export manifest."""
    from stability.store.export_manifest import MANIFEST_NAME

    return folder.is_dir() and not (folder / MANIFEST_NAME).exists() and any(folder.glob("*.eval"))


def _records(file: Path) -> list[tuple[str, list[str], Rows]]:
    from inspect_ai.log import read_eval_log

    try:
        log = read_eval_log(str(file), resolve_attachments=True)
    except Exception as err:  # a file that is not a log: whatever inspect_ai raises, one line
        raise StabilityError(f"{file}: not an Inspect log ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''})") from None
    parts: list[tuple[str, list[str], Rows]] = []
    try:
        header = HeaderRecords.model_validate((log.eval.metadata or {}).get(KEY))
        parts.append((str(file), header.migrations, header.rows))
        for sample in log.samples or []:
            records = SampleRecords.model_validate((sample.metadata or {}).get(KEY))
            if str(sample.id) != records.run_id:
                raise StabilityError(f"{file}: sample {sample.id} holds the records of run {records.run_id}")
            parts.append((str(file), records.migrations, records.rows))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise StabilityError(f"{file}: not a stability Inspect log ({KEY} metadata{' ' + where if where else ''}: "
                             f"{first['msg']})") from None
    return parts


def import_inspect(folder: Path, db: Path | str | None) -> MergeReport:
    """``stability import-store DIR`` for a folder of Inspect logs written by ``export --format inspect``:
    every log read and checked, loaded into a scratch store, then merged into ``db`` (a refusal writes nothing)."""
    _inspect()
    from stability.store.merge import merge_into
    from stability.store.store import Store

    parts = [part for file in sorted(folder.glob("*.eval")) for part in _records(file)]
    with tempfile.TemporaryDirectory(prefix="stability-import-") as tmp:
        staged = Path(tmp) / "import.duckdb"
        load_rows(folder, parts, staged)
        with Store.open(db) as store:
            report = merge_into(store.con, [staged])
    return report.model_copy(update={"sources": [str(folder)]})
