"""Importers from peer projects' formats into our Markdown constitutions.

- ``oct``: OpenCharacterTraining constitutions, a JSON list of ``{"trait": str, "questions": [str, ...]}`` (the
  hand-written ``.txt`` files), or JSON lines, one such object per line with ``additional_questions`` (the
  ``few-shot/*.jsonl`` files their question generator writes). The traits become the principles; the questions
  are kept in the metadata (``questions``, and ``additional_questions`` where given, one list per principle).
- ``identities``: the identity-preference study's definitions, a JSON list of ``{"name", "description",
  "boundary", "system_prompt"}`` whose system prompts hold ``{placeholders}``. The placeholders are filled from a
  small YAML config (default ``protocols/identity-preference/placeholders.yaml``); each identity becomes one
  constitution whose principles are the paragraphs of its filled system prompt.
- ``identity-variants``: the same identities composed with the study's *dimension variants*, a JSON object
  ``{"agency": {LEVEL: {"label", "description", "paragraph"}, ...}, "uncertainty": {...}}``: every identity whose
  prompt holds ``{agency_description}`` or ``{uncertainty_description}`` becomes one constitution per agency x
  uncertainty combination, named ``NAME-aA-uU`` as in the study, with the two paragraphs in place of the two
  placeholders and the levels and labels in the metadata.
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

Format = Literal["oct", "identities", "identity-variants"]


def _json(path: Path) -> Any:
    try:
        return json.loads(read_text(path, "a JSON file"))
    except json.JSONDecodeError as err:
        raise InputError(str(path), err.lineno, f"not valid JSON ({err.msg})") from None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


def _oct_entries(path: Path) -> list[Any]:
    """A JSON list, or JSON lines (one object per line: what pandas ``to_json(lines=True)`` writes, and what a
    single JSON parse refuses with "Extra data")."""
    text = read_text(path, "a JSON file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if not err.msg.startswith("Extra data"):
            raise InputError(str(path), err.lineno, f"not valid JSON ({err.msg})") from None
    else:
        if not isinstance(data, list):
            raise InputError(str(path), None, "expected a non-empty JSON list of {trait, questions}, or JSON lines")
        return data
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(str(path), number, f"not a valid JSON line ({err.msg})") from None
    return entries


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(q, str) for q in value)


def oct_constitution(path: Path) -> Constitution:
    data = _oct_entries(path)
    if not data:
        raise InputError(str(path), None, "expected a non-empty JSON list of {trait, questions}, or JSON lines")
    traits, questions, additional = [], [], []
    for n, entry in enumerate(data, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("trait"), str) or not entry["trait"].strip():
            raise InputError(str(path), None, f"entry {n}: expected an object with a non-empty 'trait' string")
        asked = entry.get("questions", [])
        if not _strings(asked):
            raise InputError(str(path), None, f"entry {n}: 'questions' must be a list of strings")
        more = entry.get("additional_questions", [])
        if not _strings(more):
            raise InputError(str(path), None, f"entry {n}: 'additional_questions' must be a list of strings")
        traits.append(normalise_principle(entry["trait"]))
        questions.append(asked)
        additional.append(more)
    if len(set(t.casefold() for t in traits)) != len(traits):
        raise InputError(str(path), None, "two entries have the same trait")
    metadata: dict[str, Any] = {"condition": "imported", "source": f"OpenCharacterTraining: {path.name}",
                                "size": len(traits), "questions": questions}
    if any(additional):
        metadata["additional_questions"] = additional
    return Constitution(principles=tuple(traits), title=path.stem, metadata=metadata)


def load_placeholders(path: Path) -> dict[str, str]:
    data, _ = load_yaml(path, "a YAML file of placeholder values")
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(str(path), None, "placeholders must map names to strings")
    return {str(k): v for k, v in data.items()}


def _identities(path: Path) -> list[dict[str, str]]:
    data = _json(path)
    if not isinstance(data, list) or not data:
        raise InputError(str(path), None, "expected a non-empty JSON list of identities")
    keys = ("name", "description", "boundary", "system_prompt")
    for n, entry in enumerate(data, 1):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in keys):
            raise InputError(str(path), None, f"identity {n}: expected string fields {', '.join(keys)}")
    return data


def _identity(entry: dict[str, str], prompt: str, placeholders: dict[str, str], config: str, title: str,
              metadata: dict[str, Any]) -> Constitution:
    needed = {field for _, field, _, _ in string.Formatter().parse(prompt) if field}
    missing = sorted(needed - set(placeholders))
    if missing:
        raise InputError(config, None, f"no value for placeholder {missing[0]!r} (identity {entry['name']})")
    paragraphs = [normalise_principle(p) for p in re.split(r"\n\s*\n", prompt.format(**placeholders)) if p.strip()]
    return Constitution(principles=tuple(dict.fromkeys(paragraphs)), title=title,
                        metadata={"condition": "identity", "name": entry["name"],
                                  "description": entry["description"], "boundary": entry["boundary"], **metadata})


def identity_constitutions(path: Path, placeholders: dict[str, str], config: str) -> list[Constitution]:
    source = {"source": f"identity-preference study: {path.name}"}
    return [_identity(entry, entry["system_prompt"], placeholders, config, entry["name"], source)
            for entry in _identities(path)]


DIMENSIONS = ("agency", "uncertainty")


def load_dimension_variants(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    data = _json(path)
    if not isinstance(data, dict):
        raise InputError(str(path), None, "expected a JSON object {agency: {LEVEL: {label, paragraph}}, "
                                          "uncertainty: {...}}")
    for dimension in DIMENSIONS:
        levels = data.get(dimension)
        if not isinstance(levels, dict) or not levels:
            raise InputError(str(path), None, f"'{dimension}' must be a non-empty object of levels")
        for level, entry in levels.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("paragraph"), str) \
                    or not isinstance(entry.get("label", ""), str):
                raise InputError(str(path), None, f"{dimension} level {level}: expected a 'paragraph' string "
                                                  "(and a 'label')")
    return {d: data[d] for d in DIMENSIONS}


def identity_variant_constitutions(path: Path, variants_path: Path, placeholders: dict[str, str], config: str,
                                   bases: list[str] | None = None) -> list[Constitution]:
    """One constitution per identity (of ``bases``, default every one that varies) and agency x uncertainty
    combination, the two paragraphs put in place of their placeholders as the study does (before the others)."""
    identities = _identities(path)
    variants = load_dimension_variants(variants_path)
    names = [entry["name"] for entry in identities]
    unknown = sorted(set(bases or []) - set(names))
    if unknown:
        raise InputError(str(path), None, f"no identity {unknown[0]!r} (there are {', '.join(names)})")
    chosen = [entry for entry in identities if entry["name"] in bases] if bases else [
        entry for entry in identities
        if any("{" + d + "_description}" in entry["system_prompt"] for d in DIMENSIONS)]
    found = []
    for entry in chosen:
        for a_level, agency in variants["agency"].items():
            for u_level, uncertainty in variants["uncertainty"].items():
                prompt = entry["system_prompt"].replace("{agency_description}", agency["paragraph"]) \
                    .replace("{uncertainty_description}", uncertainty["paragraph"])
                found.append(_identity(entry, prompt, placeholders, config, f"{entry['name']}-a{a_level}-u{u_level}", {
                    "source": f"identity-preference study: {path.name} x {variants_path.name}",
                    "agency": a_level, "agency_label": agency.get("label", ""),
                    "uncertainty": u_level, "uncertainty_label": uncertainty.get("label", "")}))
    return found


def import_file(path: Path | str, fmt: Format, out_dir: Path | str, placeholders: Path | str | None = None,
                variants: Path | str | None = None, bases: list[str] | None = None) -> list[Path]:
    """Read a peer file, write our Markdown constitutions into ``out_dir``, and return their paths. Everything is
    read and checked before the first file is written."""
    source = Path(path)
    if fmt == "oct":
        constitutions = [oct_constitution(source)]
        names = [_slug(source.stem)]
    else:
        config = Path(placeholders) if placeholders else default_placeholders()
        values = load_placeholders(config)
        if fmt == "identity-variants":
            if variants is None:
                raise InputError(str(source), None, "--format identity-variants needs --variants FILE (the "
                                                    "study's dimension variants)")
            constitutions = identity_variant_constitutions(source, Path(variants), values, str(config), bases)
        else:
            constitutions = identity_constitutions(source, values, str(config))
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
