"""Documents people wrote, read into principles tolerantly: what ``stability import-chain`` reads a version with.

A constitution file for a run is strict (:func:`stability.constitution.parse_text`: a flat bullet list, no
duplicates). A revision history someone kept is not: it has headings, nested bullets, numbered lists, bold
lead-ins, paragraphs and lines repeated on purpose. :func:`read_document` reads such a text into a
:class:`~stability.constitution.Constitution` and never refuses one that has any visible text:

- a heading (``#`` to ``######``) opens a section; it is not a principle. A level-1 heading before any content is
  the title;
- each bullet (``-``, ``*``, ``+``) or numbered item (``1.``, ``1)``) is a principle; an indented one is nested
  under the item above it, and keeps its parents' texts as metadata;
- lines that follow an item without a blank line, or indented after one, continue it (a wrapped item);
- any other run of non-blank lines is a paragraph, and a paragraph is a principle;
- styling is read away by the one principle normalisation (:func:`~stability.constitution.normalise_principle`):
  ``**Honesty.** Say what you know`` becomes ``Honesty. Say what you know``;
- a line repeated is kept where it stands (a constitution's principles are a list: it counts twice);
- front matter (``---`` YAML ``---``) is the metadata when it reads as a mapping, else text; code fences and
  thematic breaks (``---``, ``***``) are not principles.

Each principle's reading (kind, section, parents, line) is returned beside the constitution, and
:meth:`DocumentReading.summary` says in one line what was read.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stability.constitution import (
    _BULLET,
    _FENCE,
    Constitution,
    _front_matter,
    normalise_principle,
    visible,
)
from stability.errors import InputError

_HEADING = re.compile(r"^[ ]{0,3}(?P<marks>#{1,6})[ \t]+(?P<text>.*?)[ \t#]*$")
_BREAK = re.compile(r"^[ ]{0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_NUMBERED = re.compile(r"^[ \t]*\d{1,3}[.)]")
#: parents kept per principle: their first characters only (a parent is a principle of its own, in full)
PARENT_CHARS = 120

Kind = Literal["bullet", "numbered", "paragraph"]


class PrincipleReading(BaseModel):
    """Where one principle of a document came from."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    line: int = Field(description="its first line in the file (1-based)")
    section: str | None = Field(None, description="the headings above it, outermost first, joined by ' > '")
    parents: list[str] = Field(default_factory=list, description="the items it is nested under, outermost first")


class DocumentReading(BaseModel):
    """A document read into principles, with what each one was."""

    model_config = ConfigDict(extra="forbid")

    constitution: Constitution
    principles: list[PrincipleReading]
    sections: int = Field(description="headings read (the title not counted)")
    repeated: int = Field(description="principles that repeat an earlier one of the same document (kept)")

    def count(self, kind: Kind) -> int:
        return sum(1 for p in self.principles if p.kind == kind)

    def summary(self, name: str) -> str:
        """One line: what was read from the file ``name``."""
        items = self.count("bullet") + self.count("numbered")
        nested = sum(1 for p in self.principles if p.parents)
        return (f"{name}: {len(self.principles)} principles ({items} list items, {nested} of them nested; "
                f"{self.count('paragraph')} paragraphs) in {self.sections} sections"
                + (f"; {self.repeated} repeated lines kept" if self.repeated else ""))


def read_document(text: str, path: str = "<text>") -> DocumentReading:
    """Read a document (see the module's docstring); only a file without visible text is refused."""
    lines = text.splitlines()
    try:
        metadata, start = _front_matter(lines, path)
    except InputError:
        metadata, start = {}, 0  # not front matter after all: its lines are text
    principles: list[str] = []
    readings: list[PrincipleReading] = []
    headings: list[tuple[int, str]] = []  # (level, text) of the sections open
    nesting: list[tuple[int, str]] = []  # (indent, principle) of the items open
    title: str | None = None
    sections = 0
    current: list[str] | None = None  # the lines of the item or paragraph being read
    current_reading: PrincipleReading | None = None
    blank_before = False

    def close() -> None:
        nonlocal current, current_reading
        if current is not None and current_reading is not None:
            principle = normalise_principle(" ".join(current))
            if visible(principle):
                principles.append(principle)
                readings.append(current_reading)
                if current_reading.kind != "paragraph":
                    nesting[-1] = (nesting[-1][0], principle)
        current, current_reading = None, None

    def section() -> str | None:
        return " > ".join(text for _, text in headings) or None

    for offset, raw in enumerate(lines[start:]):
        number = start + offset + 1
        if _FENCE.match(raw):
            continue
        if not raw.strip():
            blank_before = True
            if current_reading is not None and current_reading.kind == "paragraph":
                close()
            continue
        heading = _HEADING.match(raw)
        if heading and heading.group("text").strip():
            close()
            nesting.clear()
            level, name = len(heading.group("marks")), normalise_principle(heading.group("text"))
            if level == 1 and title is None and not principles and not headings:
                title = name
            else:
                while headings and headings[-1][0] >= level:
                    headings.pop()
                headings.append((level, name))
                sections += 1
            blank_before = False
            continue
        if _BREAK.match(raw):
            close()
            blank_before = False
            continue
        bullet = _BULLET.match(raw)
        if bullet:
            close()
            indent = len(bullet.group("indent").expandtabs(4))
            while nesting and nesting[-1][0] >= indent:
                nesting.pop()
            parents = [p[:PARENT_CHARS] for _, p in nesting if p]
            nesting.append((indent, ""))
            current = [bullet.group("text")]
            current_reading = PrincipleReading(kind="numbered" if _NUMBERED.match(raw) else "bullet", line=number,
                                               section=section(), parents=parents)
        elif current is not None and (not blank_before or raw[:1] in (" ", "\t")):
            current.append(raw.strip())
        else:
            close()
            nesting.clear()
            current = [raw.strip()]
            current_reading = PrincipleReading(kind="paragraph", line=number, section=section())
        blank_before = False
    close()
    if not principles:
        raise InputError(path, None, "no visible text to read principles from" if text.strip() else "empty file")
    seen: set[str] = set()
    repeated = 0
    for principle in principles:
        key = principle.casefold()
        repeated += key in seen
        seen.add(key)
    return DocumentReading(constitution=Constitution(principles=tuple(principles), title=title, metadata=metadata),
                           principles=readings, sections=sections, repeated=repeated)
