"""The built-in protocols, registered by importing them; :func:`protocol_class` finds one by name, and
:func:`protocol_flags` derives ``stability iterate``'s protocol flags from their ``cli_flags`` declarations."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticUndefined

from stability.errors import StabilityError
from stability.protocols import (
    blank_slate,
    external,
    fine_tune_reflect,
    free_form_edit,
    fresh_instance,
    in_context,
    multi_agent,
    rate_alternatives,
    rephrase,
)
from stability.protocols.base import _REGISTRY, ReflectionProtocol

__all__ = [
    "ProtocolFlag",
    "ProtocolInfo",
    "ReflectionProtocol",
    "all_protocols",
    "blank_slate",
    "describe_protocols",
    "external",
    "fine_tune_reflect",
    "free_form_edit",
    "fresh_instance",
    "in_context",
    "multi_agent",
    "protocol_class",
    "protocol_flags",
    "rate_alternatives",
    "rephrase",
]


def protocol_class(name: str) -> type[ReflectionProtocol[Any]]:
    """The protocol registered as ``name``; an unknown name is a one-line error with a suggestion."""
    if name not in _REGISTRY:
        guess = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise StabilityError(f"unknown protocol {name!r}: known are {', '.join(sorted(_REGISTRY))}{hint}")
    return _REGISTRY[name]


def all_protocols() -> dict[str, type[ReflectionProtocol[Any]]]:
    return dict(_REGISTRY)


class ProtocolInfo(BaseModel):
    """A protocol as ``stability protocols --json`` describes it: what it declares to the other layers."""

    model_config = ConfigDict(extra="forbid")

    name: str
    summary: str
    chain: bool = Field(description="its runs are chains: fixed points and cycles are looked for")
    flags: dict[str, str] = Field(description="`stability iterate` flag -> the option it sets")
    options: dict[str, Any] = Field(description="the options' JSON schema")


def describe_protocols() -> list[ProtocolInfo]:
    return [ProtocolInfo(name=name, summary=cls.summary, chain=cls.chain,
                         flags={f"--{flag.replace('_', '-')}": option for flag, option in cls.cli_flags.items()},
                         options=cls.Options.model_json_schema())
            for name, cls in sorted(_REGISTRY.items())]


@dataclass(frozen=True)
class ProtocolFlag:
    """One ``stability iterate`` flag some protocols declare (``cli_flags``): its value's kind and help come from
    the option it sets (of the first protocol declaring it)."""

    name: str  # the Python name: ``max_steps`` is ``--max-steps``
    kind: type  # bool (a switch), int or str
    help: str
    protocols: tuple[str, ...]


def _kind(annotation: Any) -> type:
    kinds = {k for k in (get_args(annotation) or (annotation,)) if k is not type(None)}
    return next((k for k in (bool, int) if kinds == {k}), str)


def protocol_flags() -> dict[str, ProtocolFlag]:
    """Every flag any protocol declares, by name, in the order the protocols (sorted by name) declare them."""
    found: dict[str, ProtocolFlag] = {}
    for name, cls in sorted(_REGISTRY.items()):
        for flag, option in cls.cli_flags.items():
            if flag in found:
                found[flag] = ProtocolFlag(flag, found[flag].kind, found[flag].help, (*found[flag].protocols, name))
                continue
            field = cls.Options.model_fields[option]
            kind = cls.flag_kind(flag) or _kind(field.annotation)
            literal = get_origin(field.annotation) is Literal
            shown = "|".join(map(str, get_args(field.annotation))) if literal else field.default
            default = "" if shown in (None, False, PydanticUndefined) or kind is not _kind(field.annotation) \
                else f" ({shown})"
            found[flag] = ProtocolFlag(flag, kind, (field.description or option.replace("_", " ")) + default,
                                       (name,))
    return found
