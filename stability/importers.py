"""Importers from peer projects' formats into our Markdown constitutions.

- ``oct``: OpenCharacterTraining constitutions, a JSON list of ``{"trait": str, "questions": [str, ...]}``. The
  traits become the principles; the questions are kept in the metadata (``questions``, one list per principle).
- ``identities``: the identity-preference study's definitions, a JSON list of ``{"name", "description",
  "boundary", "system_prompt"}`` whose system prompts hold ``{placeholders}``. The placeholders are filled from a
  small YAML config (default ``protocols/identity-preference/placeholders.yaml``); each identity becomes one
  constitution whose principles are the paragraphs of its filled system prompt.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any, Literal

from stability.constitution import Constitution, normalise_principle
from stability.errors import InputError
from stability.input_files import load_yaml, read_text

Format = Literal["oct", "identities"]


def _json(path: Path) -> Any:
    try:
        return json.loads(read_text(path, "a JSON file"))
    except json.JSONDecodeError as err:
        raise InputError(str(path), err.lineno, f"not valid JSON ({err.msg})") from None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


def oct_constitution(path: Path) -> Constitution:
    data = _json(path)
    if not isinstance(data, list) or not data:
        raise InputError(str(path), None, "expected a non-empty JSON list of {trait, questions}")
    traits, questions = [], []
    for n, entry in enumerate(data, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("trait"), str) or not entry["trait"].strip():
            raise InputError(str(path), None, f"entry {n}: expected an object with a non-empty 'trait' string")
        asked = entry.get("questions", [])
        if not isinstance(asked, list) or not all(isinstance(q, str) for q in asked):
            raise InputError(str(path), None, f"entry {n}: 'questions' must be a list of strings")
        traits.append(normalise_principle(entry["trait"]))
        questions.append(asked)
    if len(set(t.casefold() for t in traits)) != len(traits):
        raise InputError(str(path), None, "two entries have the same trait")
    return Constitution(principles=tuple(traits), title=path.stem,
                        metadata={"condition": "imported", "source": f"OpenCharacterTraining: {path.name}",
                                  "size": len(traits), "questions": questions})


def load_placeholders(path: Path) -> dict[str, str]:
    data, _ = load_yaml(path, "a YAML file of placeholder values")
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(str(path), None, "placeholders must map names to strings")
    return {str(k): v for k, v in data.items()}


def identity_constitutions(path: Path, placeholders: dict[str, str], config: str) -> list[Constitution]:
    data = _json(path)
    if not isinstance(data, list) or not data:
        raise InputError(str(path), None, "expected a non-empty JSON list of identities")
    found = []
    for n, entry in enumerate(data, 1):
        keys = ("name", "description", "boundary", "system_prompt")
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in keys):
            raise InputError(str(path), None, f"identity {n}: expected string fields {', '.join(keys)}")
        needed = {field for _, field, _, _ in string.Formatter().parse(entry["system_prompt"]) if field}
        missing = sorted(needed - set(placeholders))
        if missing:
            raise InputError(config, None, f"no value for placeholder {missing[0]!r} (identity {entry['name']})")
        prompt = entry["system_prompt"].format(**placeholders)
        paragraphs = [normalise_principle(p) for p in re.split(r"\n\s*\n", prompt) if p.strip()]
        found.append(Constitution(principles=tuple(dict.fromkeys(paragraphs)), title=entry["name"],
                                  metadata={"condition": "identity", "name": entry["name"],
                                            "description": entry["description"], "boundary": entry["boundary"],
                                            "source": f"identity-preference study: {path.name}"}))
    return found


def import_file(path: Path | str, fmt: Format, out_dir: Path | str,
                placeholders: Path | str | None = None) -> list[Path]:
    """Read a peer file, write our Markdown constitutions into ``out_dir``, and return their paths."""
    source = Path(path)
    if fmt == "oct":
        constitutions = [oct_constitution(source)]
        names = [_slug(source.stem)]
    else:
        config = Path(placeholders) if placeholders else default_placeholders()
        constitutions = identity_constitutions(source, load_placeholders(config), str(config))
        names = [_slug(c.title or "identity") for c in constitutions]
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, constitution in zip(names, constitutions, strict=True):
        out = target / f"{name}.md"
        out.write_text(constitution.render(), encoding="utf-8")
        written.append(out)
    return written


def default_placeholders() -> Path:
    from stability.engine.templates import protocols_dir

    return protocols_dir() / "identity-preference" / "placeholders.yaml"
