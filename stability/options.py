"""Protocol options from the command line: a YAML file's ``options:`` mapping and ``KEY=VALUE`` overrides.

Values are read as YAML scalars (``3`` is an int, ``[a, b]`` a list, ``true`` a bool); a dotted key such as
``trainer.steps=3`` sets a nested option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from stability.errors import InputError, StabilityError
from stability.input_files import invalid, load_yaml, parse_yaml


def read_options(path: Path | str) -> dict[str, Any]:
    """The ``options:`` mapping of a spec file (or the whole file, when it is a plain mapping of options)."""
    data, _ = load_yaml(path, "a YAML file of protocol options")
    options = data.get("options", data) if isinstance(data, dict) else None
    if not isinstance(options, dict):
        raise InputError(str(path), None, "expected a mapping of protocol options (or an options: mapping)")
    return options


def check_options_file(path: Path | str, model: type[BaseModel], options: dict[str, Any],
                       overridden: set[str]) -> None:
    """Validate the final ``options`` against a protocol's options ``model``; a problem with a key that came from
    the file (and no flag overrode) is reported on the file's line, like any other bad file."""
    try:
        model(**options)
    except ValidationError as err:
        loc = err.errors()[0]["loc"]
        data, text = load_yaml(path, "a YAML file of protocol options")
        from_file = data.get("options", data) if isinstance(data, dict) else {}
        if loc and loc[0] in from_file and loc[0] not in overridden:
            nested = isinstance(data, dict) and isinstance(data.get("options"), dict)
            raise invalid(err, str(path), text, prefix=("options",) if nested else ()) from None


def merge_overrides(options: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``options`` with each ``KEY=VALUE`` applied in order (a copy; nested mappings are copied too)."""
    merged = _copy(options)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise StabilityError(f"--option {item!r}: expected KEY=VALUE")
        try:
            value = parse_yaml(raw, f"--option {key}") if raw.strip() else ""
        except InputError:  # not YAML: the text as it is
            value = raw
        *parents, last = key.strip().split(".")
        target = merged
        for part in parents:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise StabilityError(f"--option {item!r}: {part} is not a mapping")
            target = child
        target[last] = value
    return merged


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value
