"""Locating a problem in a YAML document: the line of a node, and pydantic's first error in words."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError


def loader() -> Any:
    """PyYAML's safe loader, the C one where it is built (YAML is imported when a file is first read: a command
    that reads no YAML, such as ``runs``, does not pay for it)."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_line(text: str, loc: tuple[int | str, ...], first_line: int = 1) -> int | None:
    """The line of the YAML node at ``loc`` (mapping keys and sequence indices), or of its nearest parent."""
    import yaml

    try:
        node = yaml.compose(text, Loader=loader())
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == key), None)
            if match is None:
                break
            line, node = match[0].start_mark.line, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line
        else:
            break
    return line + first_line


def first_problem(err: ValidationError, drop: Iterable[str] = ()) -> tuple[tuple[int | str, ...], str]:
    """The first pydantic error as (location, message), with ``drop`` (e.g. discriminator tags) left out."""
    first = err.errors()[0]
    dropped = set(drop)
    loc = tuple(part for part in first["loc"] if part not in dropped)
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key (schema: constitutions/README.md; quote text holding ', ' or ': ')"
    elif first["type"] == "missing":
        message = "missing"
    return loc, message


def where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)

