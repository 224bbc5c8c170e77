"""Reading the files a user hands us: text, YAML, and their errors, all in one format (``path:line: problem``).

- :func:`read_text` reads a regular file as UTF-8 (:func:`read_bytes`: its bytes), refusing folders, devices,
  binary data, other encodings and files over :data:`MAX_INPUT_BYTES` before anything is parsed.
- :func:`load_yaml` / :func:`parse_yaml` are the one YAML reader: a syntax error is an :class:`InputError` on
  the line of the problem.
- :func:`invalid` turns a pydantic error about a YAML document into an :class:`InputError` on the line of the
  offending key.

``what`` names the kind of file expected (``a YAML experiment spec``), so a wrong file says what was wanted.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stability.errors import InputError
from stability.yaml_location import first_problem, loader, where, yaml_line

#: Input files (constitutions, specs, options, imports) larger than this are refused before they are parsed.
MAX_INPUT_BYTES = 2_000_000


def read_text(path: Path | str, what: str = "a Markdown file", limit: int = MAX_INPUT_BYTES) -> str:
    """A file's text as UTF-8 (a BOM dropped), at most ``limit`` bytes; anything else is a located
    :class:`InputError`."""
    return decode_text(read_bytes(path, what, limit), str(path), what)


def read_bytes(path: Path | str, what: str = "a Markdown file", limit: int = MAX_INPUT_BYTES) -> bytes:
    """A regular file's bytes, at most ``limit``; a folder, a device, a missing or too large file is a located
    :class:`InputError`."""
    name = str(path)
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        raise InputError(name, None, "no such file") from None
    except OSError as err:
        raise InputError(name, None, f"cannot read: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise InputError(name, None, f"is a directory, expected {what}")
    if not stat.S_ISREG(mode):  # /dev/zero, a FIFO, a socket: reading could never end
        raise InputError(name, None, f"not a regular file, expected {what}")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise InputError(name, None, f"cannot read: {err.strerror or err}") from None
    if len(data) > limit:
        size = Path(path).stat().st_size
        raise InputError(name, None, f"file too large ({max(size, len(data)) / 1e6:.1f} MB; the limit is "
                                     f"{limit / 1e6:.0f} MB)")
    return data


def decode_text(data: bytes, name: str, what: str = "a Markdown file") -> str:
    """Bytes read from ``name`` as UTF-8 text (a BOM dropped); NUL bytes or other encodings are a located
    :class:`InputError`."""
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise InputError(name, line, f"binary file (contains NUL bytes), expected {what} in UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(name, line, f"not UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start})") from None
    return text.removeprefix("\ufeff")


def parse_yaml(text: str, source: str, first_line: int = 1) -> Any:
    """Safely load YAML text. ``first_line`` is the file line of the text's first line (front matter: 2)."""
    import yaml

    try:
        return yaml.load(text, Loader=loader())  # noqa: S506 (a safe loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + first_line if mark is not None else None
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise InputError(source, line, f"not valid YAML ({problem})") from None
    except RecursionError:
        raise InputError(source, None, "not valid YAML (nested too deeply)") from None


def load_yaml(path: Path | str, what: str = "a YAML file") -> tuple[Any, str]:
    """A YAML file's data and its text (for locating later problems with :func:`invalid`)."""
    text = read_text(path, what)
    return parse_yaml(text, str(path)), text


def invalid(err: ValidationError, source: str, text: str | None = None, first_line: int = 1,
            drop: Iterable[str] = (), prefix: tuple[int | str, ...] = ()) -> InputError:
    """A pydantic error about a YAML document, on the line of the offending key when ``text`` is given.

    ``prefix`` is where the validated mapping sits in the document (``("options",)`` for an options file whose
    options are under ``options:``).
    """
    loc, message = first_problem(err, drop)
    if err.errors()[0]["type"] == "extra_forbidden":
        message = "unknown key"
    full = (*prefix, *loc)
    line = yaml_line(text, full, first_line) if text is not None else None
    return InputError(source, line, f"{where(full) or 'document'}: {message}")
