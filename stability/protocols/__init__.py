"""The built-in protocols, registered by importing them; :func:`protocol_class` finds one by name."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
