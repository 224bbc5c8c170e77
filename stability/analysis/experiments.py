"""Experiments as the unit of analysis: list them, and turn a selection (experiment names or ids, run ids) into runs.

An experiment is a spec expanded into cells (``experiments`` and ``experiment_runs`` tables); a cell holds one run
configuration and, once started, the run that fills it. Its *factors* are the values its cells vary over.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from stability.analysis.factors import CONFIG_DEFAULTS, constitution_name
from stability.errors import StabilityError
from stability.records import CellRecord, ExperimentRecord
from stability.store.store import Store


class CellSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cell: str
    position: int
    status: str  # not_started | running | done | failed
    run_id: str | None
    stop_reason: str | None  # of its run, once started
    factors: dict[str, Any]


class ExperimentSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    spec_path: str | None
    created_at: str
    factors: dict[str, list[Any]]  # every factor and its distinct values over the cells, in grid order
    varied: list[str]  # the factors that take more than one value
    replicates: int  # cells per combination of the other factors (seeds)
    cells: int
    states: dict[str, int]  # cells per state
    cell_list: list[CellSummary]


def cell_factors(config: dict[str, Any]) -> dict[str, Any]:
    """The factor values of one cell configuration (the run's IterateConfig): its model, protocol and starting file,
    every run setting (:data:`~stability.analysis.factors.CONFIG_DEFAULTS`), and its protocol options."""
    out: dict[str, Any] = {"model": config.get("model"), "protocol": config.get("protocol"),
                           "constitution": constitution_name(config.get("constitution"))}
    out.update({name: config.get(name, default) for name, default in CONFIG_DEFAULTS.items()})
    out.update({f"options.{k}": v for k, v in sorted((config.get("options") or {}).items())})
    return out


def _value_key(value: Any) -> tuple[str, Any]:
    """A factor value as a set member: a scalar as itself with its type (1, 1.0 and True differ, as in JSON), anything
    else as its JSON text."""
    if value is None or isinstance(value, str | int | float | bool):
        return type(value).__name__, value
    return "json", json.dumps(value, sort_keys=True, default=str)


def factor_summary(cells: Iterable[dict[str, Any]]) -> tuple[dict[str, list[Any]], list[str], int]:
    """Over the cells' factor values (:func:`cell_factors`, in grid order): every factor's distinct values in order,
    the factors that take more than one, and the replicates (most cells sharing every factor but the seed)."""
    factors: dict[str, list[Any]] = {}
    seen: set[tuple[str, tuple[str, Any]]] = set()  # a set, so a grid of many seeds stays linear
    combos: Counter[tuple[Any, ...]] = Counter()
    for row in cells:
        keys = []
        for name, value in row.items():
            key = (name, _value_key(value))
            if key not in seen:
                seen.add(key)
                factors.setdefault(name, []).append(value)
            if name != "seed":
                keys.append(key)
        combos[tuple(sorted(keys))] += 1
    varied = [name for name, values in factors.items() if len(values) > 1]
    return factors, varied, max(combos.values(), default=0)


def _summary(store: Store, record: ExperimentRecord, cells: list[CellRecord]) -> ExperimentSummary:
    stops = {r.id: r.stop_reason for r in store.runs()}
    rows = [CellSummary(cell=c.cell, position=c.position, status=c.status, run_id=c.run_id,
                        stop_reason=stops.get(c.run_id) if c.run_id else None, factors=cell_factors(c.config))
            for c in cells]
    factors, varied, replicates = factor_summary(r.factors for r in rows)
    return ExperimentSummary(
        id=record.id, name=record.name, spec_path=record.spec_path, created_at=record.created_at.isoformat(),
        factors=factors, varied=varied, replicates=replicates, cells=len(rows),
        states=dict(Counter(r.status for r in rows)), cell_list=rows)


def experiment_summary(store: Store, record: ExperimentRecord) -> ExperimentSummary:
    """One experiment's factors, cells and their states."""
    return _summary(store, record, store.cells(record.id))


def list_experiments(db: Path | str | None = None) -> list[ExperimentSummary]:
    """Every experiment in the store, oldest first."""
    with Store.open(db, read_only=True) as store:
        return [_summary(store, record, store.cells(record.id)) for record in store.experiments()]


def find_experiment(store: Store, name: str) -> ExperimentRecord | None:
    """The experiment with this id, or this name, or a unique id prefix; None when nothing matches."""
    records = store.experiments()
    for match in ([r for r in records if r.id == name], [r for r in records if r.name == name],
                  [r for r in records if r.id.startswith(name)]):
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            raise StabilityError(f"{store.path}: {name!r} names {len(match)} experiments "
                                 f"({', '.join(r.id for r in match)}); give an id")
    return None


def resolve_selection(store: Store, selection: list[str], all_runs: bool) -> tuple[list[str], dict[str, str]]:
    """Run ids for experiment names/ids and run ids (unique prefixes will do), or every run with ``all_runs``.

    Also returns the experiment of each run that was selected through (or belongs to) an experiment."""
    belongs = {c.run_id: record.id for record in store.experiments() for c in store.cells(record.id) if c.run_id}
    if all_runs:
        ids = store.run_ids()
        if not ids:
            raise StabilityError(f"{store.path}: no runs to analyse")
        return ids, belongs
    if not selection:
        raise StabilityError("give an experiment (name or id), run ids, or --all")
    ids = []
    for item in selection:
        record = find_experiment(store, item)
        if record is not None:
            started = [c.run_id for c in store.cells(record.id) if c.run_id]
            if not started:
                raise StabilityError(f"{store.path}: experiment {record.id} has no runs yet")
            ids += started
        else:
            try:
                ids.append(store.run(item).id)
            except StabilityError as err:
                raise StabilityError(f"{err}, and no experiment {item!r} (see `stability experiments`)") from None
    return list(dict.fromkeys(ids)), belongs
