"""Preparing a run: everything that can be wrong with its input is found before anything is written.

Contract: :func:`validate` checks the protocol, its options, the files they name, the model names and the
templates, loading no model (``--dry-run`` uses it); :func:`prepare` also loads the models, through a
:class:`ModelPool` so an experiment's cells share them. Neither opens the store. :func:`prepare_resume` does the
same for a stored run and refuses one whose templates or input files (:mod:`stability.engine.inputs`) changed
since it started; its models learn what the run's stored calls showed of their servers' answer formats (a refused
``json_schema`` or structured output), so a resumed run does not send a refused request again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError, model_serializer

from stability.calls import CacheScope
from stability.constitution import Constitution, parse_file
from stability.engine.inputs import changed_input, read_inputs
from stability.engine.templates import TemplateSet
from stability.errors import InputError, StabilityError
from stability.input_files import invalid, load_yaml
from stability.models.base import Model, close_models
from stability.models.registry import check_model_name, get_model
from stability.models.sampling import check_sampling
from stability.models.structured import remember_formats
from stability.protocols.base import ReflectionProtocol
from stability.records import RunInputRecord, RunRecord
from stability.store.answer_reads import learned_formats
from stability.store.store import Store
from stability.vocabulary import GenerateConfig, RunSettings, omit_later_defaults
from stability.vocabulary.settings import later_names, sampling_names
from stability.yaml_location import first_problem, where

SUBJECT = "subject"


def protocol_class(name: str) -> type[ReflectionProtocol[Any]]:
    """:func:`stability.protocols.protocol_class`, imported when first called: the protocols import
    :mod:`stability.engine.run`, so importing them at the top would make ``import stability.protocols`` (with
    nothing imported before it) meet this module half-initialised."""
    from stability.protocols import protocol_class as find

    return find(name)


class IterateConfig(RunSettings):
    """Everything needed to re-run a run; stored whole on the run. Its settings (sampling, seed, template variant)
    are the declared :class:`~stability.vocabulary.RunSettings`; the fields here say what runs and where answers
    may come from."""

    model_config = ConfigDict(extra="forbid")

    protocol: str = "fresh-instance"
    model: str
    constitution: str | None = Field(None, description="starting file; not needed from a blank slate")
    roles: dict[str, str] = Field(default_factory=dict, description="model ids by role: editor, judge, agents")
    options: dict[str, Any] = Field(default_factory=dict)
    use_cache: bool = True
    cache: CacheScope = Field("global", description="which other runs' calls may answer this run's requests: "
                              "run (none) | experiment (its experiment's) | global (any); its own always do")

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # left out at their default, so stored configs and experiment cells hash as before they existed
        return omit_later_defaults(self, handler(self), (*later_names(), "cache"))

    def generate(self) -> GenerateConfig:
        """The run's sampling settings as a generate config (each call adds its own seed)."""
        return GenerateConfig(**{name: getattr(self, name) for name in sampling_names()})


class ModelPool:
    """Every model of a session, loaded once by id (an experiment's cells share them) and closed together."""

    def __init__(self) -> None:
        self.models: dict[str, Model] = {}

    def get(self, name: str) -> Model:
        if name not in self.models:
            self.models[name] = get_model(name)
        return self.models[name]

    def add(self, model: Model) -> None:
        self.models.setdefault(model.name, model)

    async def aclose(self) -> None:
        """Close every model's SDK client inside the loop that made it."""
        await close_models(self.models.values())


class ReadOnce:
    """The template sets and starting files of one experiment's cells, each read (and hashed) once: the cells of a
    grid differ in seeds, options and models far more often than in their files. Lives for one preparation (the
    estimate and the preparation of every cell), so a file edited later is read again by the next experiment."""

    def __init__(self) -> None:
        self._templates: dict[tuple[tuple[str, ...], str], TemplateSet] = {}
        self._starts: dict[tuple[str, int], Constitution] = {}

    def templates(self, names: list[str], variant: str) -> TemplateSet:
        key = (tuple(names), variant)
        if key not in self._templates:
            self._templates[key] = TemplateSet(names, variant)
        return self._templates[key]

    def start(self, path: str, max_principles: int) -> Constitution:
        key = (path, max_principles)
        if key not in self._starts:
            self._starts[key] = parse_file(path, max_principles=max_principles)
        return self._starts[key]


@dataclass
class Prepared:
    """A validated run, ready to execute: nothing has been written yet."""

    config: IterateConfig
    protocol: ReflectionProtocol[Any]
    start: Constitution
    models: dict[str, Model]  # by role; "subject" is the run's model
    templates: TemplateSet
    #: the input files its options name, as read (run_id empty until the run is stored)
    inputs: list[RunInputRecord]

    @property
    def model(self) -> Model:
        return self.models[SUBJECT]


def validate(config: IterateConfig, files: ReadOnce | None = None) -> tuple[ReflectionProtocol[Any], Constitution,
                                                                           TemplateSet]:
    """Check the protocol, its options, the files they name, the model names and the templates; load no model.
    ``files``: the experiment's files read so far (see :class:`ReadOnce`)."""
    protocol, start, templates, _ = _validate(config, files)
    return protocol, start, templates


def _validate(config: IterateConfig, files: ReadOnce | None = None
              ) -> tuple[ReflectionProtocol[Any], Constitution, TemplateSet, list[RunInputRecord]]:
    """:func:`validate`, and the input files read (the engine reads them and hands them to the protocol)."""
    files = files or ReadOnce()
    protocol = protocol_class(config.protocol).configure(config.options)
    inputs = read_inputs(protocol)
    if config.constitution:
        start = files.start(config.constitution, protocol.principle_limit())
    elif protocol.starts_blank():
        start = Constitution(principles=())
    else:
        raise StabilityError(f"protocol {protocol.name}: give a constitution (or start from a blank slate)")
    protocol.check(start)
    generate = config.generate()
    for name in [config.model, *protocol.role_models().values(), *config.roles.values()]:
        check_sampling(check_model_name(name), generate)
    return protocol, start, files.templates(protocol.template_folders(), config.templates), inputs


def prepare(config: IterateConfig, pool: ModelPool | None = None, files: ReadOnce | None = None) -> Prepared:
    """Validate a configuration completely and load its models, without writing anything."""
    protocol, start, templates, inputs = _validate(config, files)
    models = _models(config, protocol, pool or ModelPool())
    return Prepared(config.model_copy(update={"model": models[SUBJECT].name}), protocol, start, models, templates,
                    inputs)


def prepare_resume(store: Store, run: RunRecord, pool: ModelPool | None = None) -> Prepared:
    """Re-validate a stored run for resuming from its stored start; refuse if its templates or the input files
    its options name changed (a run stored before inputs were recorded resumes, and records them)."""
    try:
        config = IterateConfig(**run.config)
    except ValidationError as err:  # stored before its values were range-checked (a temperature of nan)
        loc, message = first_problem(err)
        raise StabilityError(f"run {run.id} cannot be resumed: its {where(loc)} is invalid ({message}); "
                             "start a new run") from None
    protocol = protocol_class(run.protocol).configure(config.options)
    templates = TemplateSet(protocol.template_folders(), config.templates)
    if templates.hash != run.template_hash:
        raise StabilityError(
            f"run {run.id}: the prompt templates of {protocol.name} changed since the run started; "
            "resuming would ask different questions (restore them, or start a new run)")
    inputs = read_inputs(protocol)
    recorded = store.run_inputs(run.id)
    changed = changed_input(recorded, inputs) if recorded else None
    if changed is not None:
        raise StabilityError(f"run {run.id}: input file {changed} changed since the run started; resuming would "
                             "ask different questions (restore it, or start a new run)")
    start = store.constitution(run.start_hash)
    protocol.check(start)
    models = _models(config, protocol, pool or ModelPool())
    for model in {id(m): m for m in models.values()}.values():  # what the run learned of each server's formats
        remember_formats(model, *learned_formats(store, run.id, model.name))
    return Prepared(config, protocol, start, models, templates, inputs)


def _models(config: IterateConfig, protocol: ReflectionProtocol[Any], pool: ModelPool) -> dict[str, Model]:
    """The subject and the role models by role, each loaded once through ``pool``."""
    roles = {role: pool.get(name) for role, name in {**protocol.role_models(), **config.roles}.items()}
    subject = pool.get(config.model)
    protocol.check_model(subject.traits())
    return {**roles, SUBJECT: subject}


def load_run_spec(path: Path | str, protocol: str) -> dict[str, Any]:
    """A ready run spec (e.g. ``protocols/fine-tune-reflect/specs/*.yaml``) as ``IterateConfig`` fields, validated.

    A spec is a mapping of iterate settings (model, constitution, sampling) with an ``options:`` mapping;
    ``protocol`` is the default protocol. A problem is reported on its line.
    """
    data, text = load_yaml(path, "a YAML spec of iterate settings")
    if not isinstance(data, dict):
        raise InputError(str(path), None, "a spec is a mapping of iterate settings with an options: mapping")
    try:
        config = IterateConfig(**{"protocol": protocol, **data})
    except ValidationError as err:
        raise invalid(err, str(path), text) from None
    try:
        protocol_class(config.protocol).Options(**config.options)
    except ValidationError as err:
        raise invalid(err, str(path), text, prefix=("options",)) from None
    return config.model_dump()
