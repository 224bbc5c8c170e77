"""The built-in protocols, registered by importing them; :func:`protocol_class` finds one by name."""

from __future__ import annotations

import difflib
from typing import Any

from stability.errors import StabilityError
from stability.protocols import (
    blank_slate,
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
    "ReflectionProtocol",
    "all_protocols",
    "blank_slate",
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
