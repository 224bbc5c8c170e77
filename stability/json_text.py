"""Reading a JSON object that a model wrote, leniently where that is safe, and never by pattern over JSON text.

Small models and llama.cpp's grammar-constrained output put raw control characters (a newline, a tab) inside JSON
strings, which strict JSON forbids; ``json.loads(..., strict=False)`` reads them as the characters they are. A
fenced answer (```json … ```) is read inside its fence. Anything that is still not a JSON object is None: the
caller decides what an unreadable answer means, and no caller reads pieces of broken JSON with a regex.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCED = re.compile(r"^\s*```(?:json)?[ \t]*\n?(?P<body>.*?)\n?\s*```\s*$", re.DOTALL | re.IGNORECASE)
_OPENING_FENCE = re.compile(r"^\s*```(?:json)?[ \t]*\n?|^\s+", re.IGNORECASE)
_DECODER = json.JSONDecoder(strict=False)


def json_object(text: str) -> dict[str, Any] | None:
    """``text`` (possibly fenced, possibly with raw control characters in its strings) as a JSON object, or None.

    The whole text must be the object (whitespace around it aside): JSON followed by more prose is None, so a
    reader never takes a prefix of a longer answer for the answer."""
    fenced = _FENCED.match(text)
    body = (fenced.group("body") if fenced else text).strip()
    if not body.startswith("{"):
        return None
    try:
        value = _DECODER.decode(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def looks_like_json_object(text: str) -> bool:
    """Whether ``text`` (possibly fenced) opens as a JSON object: a reader must not read it as prose."""
    body = _OPENING_FENCE.sub("", text, count=1)  # a fence cut off before its end is a fence too
    return bool(re.match(r"\{\s*(?:\"|\})", body))
