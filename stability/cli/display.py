"""Text from a file or a model, made safe to print on a terminal.

Control characters (ANSI escapes among them) and bidirectional overrides in a principle would otherwise reach
the terminal raw and could recolour, move or hide what is printed. They are shown as escapes (``\\x1b``);
newlines and tabs are kept. JSON output needs none of this: JSON escapes control characters itself.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters and bidi overrides written as ``\\xNN`` / ``\\uNNNN`` escapes."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                       else f"\\u{ord(m.group()):04x}", text)
