"""Experiment specs (YAML) and their expansion into cells: one run configuration each.

A spec names models x constitutions x protocols (each with option grids) x sampling parameters x replicates, plus
model roles. A relative constitution path or glob is looked up beside the spec file, then in the library's root
(the folder holding ``constitutions/`` and ``protocols/``), then in the working directory, so the bundled specs
run from anywhere.

Every number is range-checked (:mod:`stability.bounds`) and the grid's size is computed before it is built: a
grid over :data:`~stability.bounds.MAX_CELLS` runs is refused with its size.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import math
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stability.analysis.findings.record import Question
from stability.bounds import MAX_CELLS, Concurrency, RateLimit, Seed
from stability.calls import CacheScope
from stability.engine import IterateConfig
from stability.errors import InputError
from stability.input_files import invalid, load_yaml
from stability.models.registry import canonical_name
from stability.prices import Price
from stability.resources import in_library
from stability.vocabulary import SamplingSettings
from stability.vocabulary.settings import default_of, sampling_names


class ProtocolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict, description="fixed options for every run")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="options to vary: each value is a run")


#: the run settings a spec's ``parameters:`` grid may vary: the sampling settings (:mod:`stability.vocabulary.settings`)
SAMPLING_PARAMETERS = sampling_names()


#: runs in progress per call slot when ``max_parallel_runs`` is unset: a run between two calls (its answer being
#: committed, read and recorded) holds no slot, and another run's call fills it meanwhile
RUNS_PER_SLOT = 2

#: spec keys added after experiment ids were first hashed, with their defaults
_LATER_KEYS: dict[str, Any] = {"templates": [default_of("templates")], "cache": None}


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    models: list[str] = Field(min_length=1, description="subject models")
    roles: dict[str, str] = Field(default_factory=dict, description="model ids by role: editor, judge, agent names")
    constitutions: list[str] = Field(default_factory=list, description="files or globs; empty for blank-slate only")
    protocols: list[ProtocolSpec] = Field(min_length=1)
    parameters: dict[str, list[Any]] = Field(default_factory=dict,
                                             description="sampling grid: " + ", ".join(SAMPLING_PARAMETERS))
    replicates: int = Field(1, ge=1, le=MAX_CELLS, description="seeds 0..replicates-1 (unless seeds is given)")
    seeds: list[Seed] | None = Field(None, max_length=MAX_CELLS)
    concurrency: dict[str, Concurrency] = Field(default_factory=lambda: {"default": 4},
                                                description="concurrent calls per provider prefix ('default' for "
                                                            "others)")
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict, description="requests per minute per provider")
    max_parallel_runs: int = Field(8, ge=1, le=10_000,
                                   description="runs in progress at once; unset, it follows from concurrency (see "
                                               "parallel_runs) and 8, its old default, is what the spec hashes as")
    prices: dict[str, Price] = Field(default_factory=dict, description="overrides of the built-in price table")
    use_cache: bool = True
    cache: CacheScope | None = Field(None, description="which other runs' calls may answer a run: run | experiment | "
                                     "global; default run for several replicates, seeds or protocols, else global")
    templates: list[str] = Field(default_factory=lambda: [default_of("templates")], min_length=1,
                                 description="template variants, a grid factor: default, neutral, third-person, ...")
    answers: list[Question] = Field(default_factory=list,
                                    description="the methodology's questions the design answers (`stability "
                                                "findings`): convergence-by-route, blank-slate, ...; not hashed")

    @field_validator("protocols", mode="before")
    @classmethod
    def _names_alone(cls, value: Any) -> Any:
        return [{"name": v} if isinstance(v, str) else v for v in value] if isinstance(value, list) else value

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        unknown = set(value) - set(SAMPLING_PARAMETERS)
        if unknown:
            raise ValueError(f"unknown sampling parameters {sorted(unknown)} (use {', '.join(SAMPLING_PARAMETERS)})")
        for name, values in value.items():
            for i, item in enumerate(values):
                try:
                    SamplingSettings.model_validate({name: item})
                except ValidationError as err:
                    raise ValueError(f"{name}[{i}] = {item!r}: {err.errors()[0]['msg']}") from None
        return value

    def hash(self) -> str:
        data = self.model_dump(mode="json")
        del data["answers"]  # what the design answers describes it; it is no part of it
        for key, default in _LATER_KEYS.items():  # added later: left out at their default, so ids stay as they were
            if data.get(key) == default:
                del data[key]
        canonical = json.dumps(data, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def experiment_id(self) -> str:
        return f"{self.name}-{self.hash()[:10]}"

    def cache_scope(self) -> CacheScope:
        """The cache scope of every cell: as the spec says; else ``run`` when the grid has several replicates (or
        seeds) or protocols, so replicates and arms are independent samples that never share an answer; else
        ``global``. ``use_cache: false`` is ``run``."""
        if not self.use_cache:
            return "run"
        if self.cache is not None:
            return self.cache
        seeds = len(self.seeds) if self.seeds is not None else self.replicates
        return "run" if seeds > 1 or len(self.protocols) > 1 else "global"


def call_slots(spec: ExperimentSpec, cells: list[IterateConfig]) -> dict[str, int]:
    """Calls that may be in flight at once, per provider prefix the cells use (subjects and roles): its
    ``concurrency``, else the spec's ``default``, else 4."""
    prefixes = sorted({canonical_name(name).split("/", 1)[0] for cell in cells
                       for name in (cell.model, *cell.roles.values())})
    return {prefix: spec.concurrency.get(prefix, spec.concurrency.get("default", 4)) for prefix in prefixes}


def parallel_runs(spec: ExperimentSpec, cells: list[IterateConfig]) -> int:
    """Runs in progress at once: ``max_parallel_runs`` when the spec sets it; else ``RUNS_PER_SLOT`` per call slot
    (:func:`call_slots`), so the calls in flight reach the concurrency the user set. Never more than the cells."""
    if "max_parallel_runs" in spec.model_fields_set:
        return spec.max_parallel_runs
    return max(1, min(len(cells), RUNS_PER_SLOT * sum(call_slots(spec, cells).values()), 10_000))


def load_spec(path: Path | str) -> ExperimentSpec:
    name = str(path)
    data, text = load_yaml(path, "a YAML experiment spec")
    if not isinstance(data, dict):
        raise InputError(name, None, "an experiment spec must be a YAML mapping")
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as err:
        raise invalid(err, name, text) from None


def _glob(pattern: str, spec_path: Path | None) -> list[str]:
    """Matches of a constitution glob: as given when absolute; else beside the spec, in the library (a path that
    starts with ``constitutions/``), then in the working directory. A match inside the working directory is named
    relative to it."""
    if Path(pattern).is_absolute():
        return sorted(glob.glob(pattern))
    candidates = [str(spec_path.parent / pattern)] if spec_path is not None else []
    inside = in_library(pattern)  # constitutions/...: the library (a checkout's, or an installed package's)
    candidates += ([inside] if inside is not None else []) + [str(Path.cwd() / pattern)]
    for candidate in candidates:
        matches = sorted(glob.glob(candidate))
        if matches:
            here = Path.cwd().resolve()
            return [os.path.relpath(m, here) if Path(m).resolve().is_relative_to(here) else m for m in matches]
    return []


def constitution_files(spec: ExperimentSpec, spec_path: Path | None) -> list[str]:
    files: list[str] = []
    for pattern in spec.constitutions:
        matches = _glob(pattern, spec_path)
        if not matches:
            raise InputError(str(spec_path or "<spec>"), None, f"constitutions: {pattern!r} matches no file")
        files += [m for m in matches if Path(m).name != "README.md"]
    return list(dict.fromkeys(files))


def grid_size(spec: ExperimentSpec, files: int) -> int:
    """How many runs the spec expands to, computed without building the grid."""
    options = sum(math.prod(len(v) for v in p.grid.values()) for p in spec.protocols)
    seeds = len(spec.seeds) if spec.seeds is not None else spec.replicates
    return len(spec.models) * options * max(files, 1) * math.prod(len(v) for v in spec.parameters.values()) * seeds \
        * len(spec.templates)


def expand(spec: ExperimentSpec, spec_path: Path | None = None) -> list[IterateConfig]:
    """Every cell of the grid, in a stable order; a grid over ``MAX_CELLS`` runs is refused before it is built."""
    files: list[str | None] = list(constitution_files(spec, spec_path)) or [None]
    size = grid_size(spec, len(files))
    if size > MAX_CELLS:
        raise InputError(str(spec_path or "<spec>"), None, f"the grid has {size:,} runs, over the limit of "
                                                           f"{MAX_CELLS:,}; split the experiment")
    seeds = spec.seeds if spec.seeds is not None else list(range(spec.replicates))
    sampling = [dict(zip(spec.parameters, combo, strict=True))
                for combo in itertools.product(*spec.parameters.values())]
    cells = []
    scope = spec.cache_scope()
    for model, protocol in itertools.product(spec.models, spec.protocols):
        option_sets = [_library_options({**protocol.options, **dict(zip(protocol.grid, combo, strict=True))},
                                        spec_path)
                       for combo in itertools.product(*protocol.grid.values())]
        for constitution, options, params, variant, seed in itertools.product(files, option_sets, sampling,
                                                                              spec.templates, seeds):
            cells.append(IterateConfig(protocol=protocol.name, model=model, constitution=constitution,
                                       roles=spec.roles, seed=seed, options=options, use_cache=spec.use_cache,
                                       templates=variant, cache=scope, **params))
    return cells


def _library_options(options: dict[str, Any], spec_path: Path | None) -> dict[str, Any]:
    """Options naming a file of the library (``constitutions/...``, as specs spell them) found as constitutions are:
    beside the spec, in the library, then in the working directory, so a ready spec runs from any folder. A path
    found in the working directory keeps its spelling (cell keys are unchanged)."""
    def found(value: Any) -> Any:
        if isinstance(value, str) and in_library(value) is not None and not any(c in value for c in "*?["):
            matches = _glob(value, spec_path)
            return matches[0] if len(matches) == 1 else value
        return value

    return {name: found(value) for name, value in options.items()}


def cell_key(config: IterateConfig) -> str:
    return hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]
