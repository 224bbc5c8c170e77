"""Experiment specs (YAML) and their expansion into cells: one run configuration each.

A spec names models x constitutions x protocols (each with option grids) x sampling parameters x replicates, plus
model roles. Paths in a spec are read relative to the working directory, or failing that to the spec's folder;
a path into ``constitutions/`` that neither holds is read from the library (:func:`stability.resources.library_root`,
so the ready specs run from any folder with an installed package).
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stability.constitution import read_text
from stability.engine import IterateConfig
from stability.errors import InputError
from stability.prices import Price
from stability.resources import in_library


class ProtocolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict, description="fixed options for every run")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="options to vary: each value is a run")


#: the run-configuration fields a spec's ``parameters:`` grid may vary
SAMPLING_PARAMETERS = ("temperature", "max_tokens", "top_p", "reasoning_effort", "thinking_budget", "answer_format")


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
    replicates: int = Field(1, ge=1, description="seeds 0..replicates-1 (unless seeds is given)")
    seeds: list[int] | None = None
    concurrency: dict[str, int] = Field(default_factory=lambda: {"default": 4},
                                        description="concurrent calls per provider prefix ('default' for others)")
    rate_limits: dict[str, float] = Field(default_factory=dict, description="requests per minute per provider")
    max_parallel_runs: int = Field(8, ge=1)
    prices: dict[str, Price] = Field(default_factory=dict, description="overrides of the built-in price table")
    use_cache: bool = True

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
        return value

    def hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def experiment_id(self) -> str:
        return f"{self.name}-{self.hash()[:10]}"


def load_spec(path: Path | str) -> ExperimentSpec:
    name = str(path)
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise InputError(name, mark.line + 1 if mark else None, f"not valid YAML ({getattr(err, 'problem', err)})") \
            from None
    if not isinstance(data, dict):
        raise InputError(name, None, "an experiment spec must be a YAML mapping")
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "spec"
        raise InputError(name, None, f"{where}: {first['msg']}") from None


def constitution_files(spec: ExperimentSpec, spec_path: Path | None) -> list[str]:
    files: list[str] = []
    for pattern in spec.constitutions:
        matches = sorted(glob.glob(pattern))
        if not matches and spec_path is not None:
            matches = sorted(glob.glob(str(spec_path.parent / pattern)))
        if not matches and (inside := in_library(pattern)) is not None:  # constitutions/... of an installed package
            matches = sorted(glob.glob(inside))
        if not matches:
            raise InputError(str(spec_path or "<spec>"), None, f"constitutions: {pattern!r} matches no file")
        files += [m for m in matches if Path(m).name != "README.md"]
    return list(dict.fromkeys(files))


def expand(spec: ExperimentSpec, spec_path: Path | None = None) -> list[IterateConfig]:
    """Every cell of the grid, in a stable order."""
    files: list[str | None] = list(constitution_files(spec, spec_path)) or [None]
    seeds = spec.seeds if spec.seeds is not None else list(range(spec.replicates))
    sampling = [dict(zip(spec.parameters, combo, strict=True))
                for combo in itertools.product(*spec.parameters.values())]
    cells = []
    for model, protocol in itertools.product(spec.models, spec.protocols):
        option_sets = [{**protocol.options, **dict(zip(protocol.grid, combo, strict=True))}
                       for combo in itertools.product(*protocol.grid.values())]
        for constitution, options, params, seed in itertools.product(files, option_sets, sampling, seeds):
            cells.append(IterateConfig(protocol=protocol.name, model=model, constitution=constitution,
                                       roles=spec.roles, seed=seed, options=options, use_cache=spec.use_cache,
                                       **params))
    return cells


def cell_key(config: IterateConfig) -> str:
    return hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]
