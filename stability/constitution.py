"""Constitutions: a Markdown bullet list of principles.

``parse_file`` / ``parse_text`` read files written by people, strictly: bad input raises :class:`InputError`
naming file, line and problem. Answers written by models are read tolerantly by :mod:`stability.answer`, with
the same principle normalisation (:func:`normalise_principle`).

A constitution is addressed by ``sha256:`` of its normalised form (the rendered principle list), so the same
principles reached by two runs are one node, whatever their bullets, wrapping or title.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stability.errors import InputError
from stability.input_files import parse_yaml, read_text  # read_text is imported from here by older callers

DEFAULT_MAX_PRINCIPLES = 100
#: Input files (constitutions, specs, options, imports) larger than this are refused before they are parsed.
MAX_INPUT_BYTES = 2_000_000

_BULLET = re.compile(r"^(?P<indent>[ \t]*)(?:[-*+]|\d{1,3}[.)])[ \t]+(?P<text>\S.*)$")
_TITLE = re.compile(r"^#[ \t]+(?P<title>.+?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad\u180e]")
#: paired emphasis markers around non-blank text, not inside a word (so snake_case and 2*3*4 stay)
_EMPHASIS = (
    re.compile(r"(?<![*\w])(?P<run>\*+)(?!\*)(?=\S)(?P<body>.+?)(?<=\S)(?<!\*)(?P=run)(?![*\w])"),
    re.compile(r"(?<![_\w])(?P<run>_+)(?!_)(?=\S)(?P<body>.+?)(?<=\S)(?<!_)(?P=run)(?![_\w])"),
    re.compile(r"(?P<run>`+)(?P<body>[^`]+?)(?P=run)"),
)
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_NUMBERED_LABEL = re.compile(r"^(?:principle|rule)\s*#?\d{1,3}\s*[:.)\-–—]\s*", re.IGNORECASE)


def principles_text(principles: tuple[str, ...] | list[str]) -> str:
    """The normalised form of a principle list: one ``- principle`` line each. This is what is hashed."""
    return "".join(f"- {p}\n" for p in principles)


class Constitution(BaseModel):
    """An ordered list of principles plus optional labels (title, metadata) that do not affect its address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    principles: tuple[str, ...]
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_principles(cls, principles: list[str] | tuple[str, ...], **labels: Any) -> Constitution:
        return cls(principles=tuple(normalise_principle(p) for p in principles), **labels)

    @property
    def text(self) -> str:
        """The normalised form (:func:`principles_text`). This is what is hashed."""
        return principles_text(self.principles)

    @property
    def hash(self) -> str:
        return _hash_of(self.principles)

    def render(self) -> str:
        """Render back to the file format, labels included; ``parse_text(c.render())`` gives ``c`` again."""
        parts = []
        if self.metadata:
            import yaml

            parts.append("---\n" + yaml.safe_dump(self.metadata, sort_keys=True, allow_unicode=True) + "---\n")
        if self.title:
            parts.append(f"# {self.title}\n\n")
        parts.append(self.text)
        return "".join(parts)


@functools.lru_cache(maxsize=4096)
def _hash_of(principles: tuple[str, ...]) -> str:
    """A principle list's address; remembered, since a run asks for the same few constitutions' hashes several
    times per call (issue 30: 5,003 hashes for 1,000 calls)."""
    return "sha256:" + hashlib.sha256(principles_text(principles).encode("utf-8")).hexdigest()


#: characters that print as nothing although Unicode does not call them spaces
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Cn"})


def normalise_principle(text: str) -> str:
    """NFC, wrapped lines joined, whitespace collapsed; markdown styling and invisible characters removed.

    Styling is not content: ``**bold**``, ``*italic*``, ``_italic_``, ``__bold__``, inline ``code`` and a leading
    ``Principle 3:`` label are read away (repeatedly, so piled-up markers go too), as are zero-width spaces, word
    joiners, byte-order marks and soft hyphens; typographic quotes become straight ones. Case and punctuation
    are kept.
    """
    text = _INVISIBLE.sub("", unicodedata.normalize("NFC", text)).translate(_QUOTES)
    previous = None
    while previous != text:
        previous = text
        for pattern in _EMPHASIS:
            text = pattern.sub(r"\g<body>", text)
        text = _NUMBERED_LABEL.sub("", " ".join(text.split()))
    return text


def visible(text: str) -> bool:
    """Whether the text has a character that prints (not only zero-width, format, combining or blank ones)."""
    return any(ch not in _BLANK_LETTERS and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in text)


def _items(lines: list[str], first_line: int) -> list[list[tuple[int, str]]]:
    """Group lines into bullet blocks. Each block is a list of (line number, principle text).

    A bullet starts an item; following non-blank, non-bullet lines continue it (a wrapped principle); after a
    blank line only an indented line continues it. Unindented prose after a blank line ends the block.
    Lines inside code fences are read like any others (models often fence their lists).
    """
    blocks: list[list[tuple[int, str]]] = []
    block: list[tuple[int, str]] = []
    current: list[str] | None = None
    current_line = 0
    blank_before = False

    def close_item() -> None:
        nonlocal current
        if current is not None:
            block.append((current_line, " ".join(current)))
        current = None

    def close_block() -> None:
        nonlocal block
        close_item()
        if block:
            blocks.append(block)
        block = []

    for offset, raw in enumerate(lines):
        number = first_line + offset
        if _FENCE.match(raw):
            continue
        if not raw.strip():
            blank_before = True
            continue
        bullet = _BULLET.match(raw)
        if bullet:
            close_item()
            current = [bullet.group("text")]
            current_line = number
        elif current is not None and (not blank_before or raw[:1] in (" ", "\t")):
            current.append(raw.strip())
        else:
            close_block()
        blank_before = False
    close_block()
    return blocks


def _nested_bullet(lines: list[str], first_line: int) -> int | None:
    """The line number of the first bullet indented under an earlier one (a nested list), if any."""
    top: int | None = None
    for offset, raw in enumerate(lines):
        bullet = _BULLET.match(raw)
        if bullet is None:
            continue
        indent = len(bullet.group("indent").expandtabs(4))
        if top is not None and indent >= top + 2:
            return first_line + offset
        top = indent if top is None else min(top, indent)
    return None


def _plain(value: Any) -> Any:
    """Front-matter values as JSON has them: a YAML date (``date: 2026-01-22``) becomes its ISO text, so the
    metadata can be journaled and exported like any other value."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.isoformat() if isinstance(value, datetime.date) else value


def _front_matter(lines: list[str], path: str) -> tuple[dict[str, Any], int]:
    """Return (metadata, index of the first line after the front matter)."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            try:
                data = parse_yaml("\n".join(lines[1:end]), path, first_line=2) or {}
            except InputError as err:
                raise InputError(path, err.line or 1, f"front matter is {err.problem}") from None
            if not isinstance(data, dict):
                raise InputError(path, 2, "front matter must be a YAML mapping of key: value")
            return _plain(data), end + 1
    raise InputError(path, 1, "front matter opened with '---' is never closed")


def parse_text(text: str, path: str = "<text>", max_principles: int = DEFAULT_MAX_PRINCIPLES) -> Constitution:
    """Strictly parse a constitution file's text."""
    if not text.strip():
        raise InputError(path, 1, "empty file: expected a Markdown bullet list of principles")
    lines = text.splitlines()
    metadata, start = _front_matter(lines, path)
    title = None
    body_start = start
    for index in range(start, len(lines)):
        if not lines[index].strip():
            continue
        match = _TITLE.match(lines[index])
        if match:
            title = match.group("title").strip()
            body_start = index + 1
        break
    blocks = _items(lines[body_start:], first_line=body_start + 1)
    items = [item for block in blocks for item in block]
    if not items:
        raise InputError(path, body_start + 1, "no bullets: each principle must be a '-', '*' or '1.' list item")
    nested = _nested_bullet(lines[body_start:], first_line=body_start + 1)
    if nested is not None:
        raise InputError(path, nested, "nested bullet: a constitution is a flat list; make it a principle of its "
                                       "own, or fold it into the one above")
    seen: dict[str, int] = {}
    principles = []
    for line, raw in items:
        principle = normalise_principle(raw)
        if not visible(principle):
            raise InputError(path, line, "principle has no visible characters (only zero-width or invisible ones)")
        key = principle.casefold()
        if key in seen:
            raise InputError(path, line, f"duplicate principle (same as line {seen[key]}): {principle[:60]!r}")
        seen[key] = line
        principles.append(principle)
    if len(principles) > max_principles:
        line = items[max_principles][0]
        raise InputError(path, line, f"too many principles: {len(principles)} > limit {max_principles}")
    return Constitution(principles=tuple(principles), title=title, metadata=metadata)


def parse_file(path: Path | str, max_principles: int = DEFAULT_MAX_PRINCIPLES) -> Constitution:
    return parse_text(read_text(path, "a Markdown constitution"), path=str(path), max_principles=max_principles)
