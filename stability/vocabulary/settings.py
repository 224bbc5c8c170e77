"""A run's settings, each declared once: its type and bounds, its default, whether it enters every call's cache key,
how an experiment spec varies it, its ``iterate`` flag and help.

Contract: :class:`SamplingSettings` holds the settings a provider sees (they enter :class:`GenerateConfig`, hence
every call's cache key); :class:`RunSettings` adds the run's seed and template variant. Every other declaration is
derived from :func:`declared` (the generate config, the engine's ``IterateConfig``, the spec grid, the analysis
factors, ``stability experiments``, ``iterate``'s flags): a setting added here reaches all of them. A setting marked
``later`` was added after dumps were first hashed, and is left out of dumps at its default, so old cache keys,
stored run configs and experiment ids stay as they were.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stability.bounds import MaxTokens, Seed, Temperature, TopP
from stability.errors import StabilityError

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
AnswerFormat = Literal["auto", "structured", "text"]
#: a template variant: ``default``, or a sub-folder ``variants/NAME/`` of each template folder
VARIANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


@dataclass(frozen=True)
class Declared:
    """What the other layers know of one setting (attached to the field with ``Annotated``)."""

    #: ``stability iterate``'s flag
    flag: str
    help: str
    #: how an experiment spec varies it: a list under ``parameters:``, the spec's own ``templates:`` list, or its
    #: seeds (``replicates`` / ``seeds``); every setting is a grid factor, so analysis can group by it
    spec: Literal["parameters", "templates", "seeds"] = "parameters"
    #: added after dumps were first hashed: left out of a dump while at its default
    later: bool = False


class SamplingSettings(BaseModel):
    """The settings a provider sees: part of every call's :class:`GenerateConfig`, so of its cache key."""

    model_config = ConfigDict(extra="forbid")

    temperature: Annotated[Temperature, Declared("--temperature", "sampling temperature, 0 to 2")] = 1.0
    max_tokens: Annotated[MaxTokens, Declared("--max-tokens", "tokens an answer may have")] = 1024
    top_p: Annotated[TopP | None, Declared("--top-p", "nucleus sampling mass, above 0, at most 1")] = None
    reasoning_effort: Annotated[ReasoningEffort | None, Declared(
        "--reasoning-effort", "(OpenAI o-series, gpt-5) how much to reason before answering", later=True)] = None
    thinking_budget: Annotated[int | None, Declared(
        "--thinking-budget", "(Anthropic) extended thinking tokens: 1024 or more, below --max-tokens",
        later=True)] = None
    answer_format: Annotated[AnswerFormat, Declared(
        "--answer-format", "structured (JSON schema, tool use) | text | auto (structured; text where the server "
        "refuses it)", later=True)] = "auto"


class RunSettings(SamplingSettings):
    """Every setting of a run: the sampling settings, its template variant and its seed."""

    templates: Annotated[str, Field(pattern=VARIANT_PATTERN), Declared(
        "--templates", "template variant: default | neutral | third-person | ... (a sub-folder of the protocol's "
        "variants/)", spec="templates", later=True)] = "default"
    #: the replicate, declared last: a grid's cells are counted as replicates of the other settings
    seed: Annotated[Seed, Declared("--seed", "run seed; each call's seed derives from it", spec="seeds")] = 0


def omit_later_defaults(model: BaseModel, data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``data`` without the fields ``names`` that hold their default.

    For fields added after dumps of ``model`` were first hashed (cache keys, experiment cells): a config that
    does not use them dumps, and so hashes, exactly as it did before they existed.
    """
    defaults = _defaults(type(model))
    kept = dict(data)
    for name in names:  # a few names: cheaper than a pass over every field (every call's cache key dumps one)
        if name in kept and getattr(model, name) == defaults[name]:
            del kept[name]
    return kept


@functools.cache
def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Each field's default, by name, once per model class (``model_fields`` is a class property: read per call it
    cost more than the comparisons)."""
    return {name: field.default for name, field in model.model_fields.items()}


def declared(model: type[BaseModel] = RunSettings) -> dict[str, Declared]:
    """Each setting of ``model`` by name, with its declaration, in declaration order."""
    return dict(_declared(model))


@functools.cache
def _declared(model: type[BaseModel]) -> dict[str, Declared]:
    # once per model class: the fields of a class never change, and every call's config dump asks (issue 30)
    found = {}
    for name, field in model.model_fields.items():
        marks = [m for m in field.metadata if isinstance(m, Declared)]
        if marks:
            found[name] = marks[0]
    return found


def default_of(name: str) -> Any:
    """A setting's default (``max_tokens``: 1024)."""
    return RunSettings.model_fields[name].default


def defaults() -> dict[str, Any]:
    """Every setting's default, by name."""
    return {name: default_of(name) for name in declared()}


@functools.cache
def sampling_names() -> tuple[str, ...]:
    """The settings that enter the generate config (and so every call's cache key); a spec varies them under
    ``parameters:``. Computed once: every prepared call asks (39 µs a time uncached)."""
    return tuple(declared(SamplingSettings))


@functools.cache
def later_names(model: type[BaseModel] = RunSettings) -> tuple[str, ...]:
    """The settings left out of a dump while at their default (added after dumps were first hashed)."""
    return tuple(name for name, mark in _declared(model).items() if mark.later)


def choices(name: str) -> tuple[str, ...] | None:
    """The values a setting with a fixed set of them may take (``answer_format``: auto, structured, text)."""
    kinds = [RunSettings.model_fields[name].annotation]
    while kinds:
        kind = kinds.pop()
        if getattr(kind, "__origin__", None) is Literal:
            return tuple(get_args(kind))
        kinds += [k for k in get_args(kind) if k is not type(None)]
    return None


def check_setting(name: str, value: Any) -> None:
    """A setting's value as a flag gave it: out of its range or its choices is a one-line error naming the flag."""
    flag = declared()[name].flag
    allowed = choices(name)
    if allowed is not None and value is not None and value not in allowed:
        raise StabilityError(f"{flag} {value!r}: choose one of {', '.join(allowed)}")
    try:
        RunSettings.model_validate({name: value})
    except ValidationError as err:
        message = err.errors()[0]["msg"]
        if isinstance(value, float) and not math.isfinite(value):
            message = "expected a finite number"
        raise StabilityError(f"{flag} {value}: {message}") from None
