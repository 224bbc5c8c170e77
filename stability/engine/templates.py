"""Prompt templates: the files of ``protocols/<folder>/``, read once per run by the engine.

Contract: a :class:`Templates` holds the exact bytes read from disk (decoded as UTF-8) and ``hash`` covers every
file's name and bytes, so the template hash recorded on a run is computed from the very text the protocol is
handed. Nothing else in the package reads template files. Ready specs (``specs/``) are data about runs, not
prompts, and are excluded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from stability.errors import StabilityError
from stability.input_files import parse_yaml
from stability.resources import PROTOCOLS_DIR_ENV, protocols_root


def protocols_dir() -> Path:
    """``STABILITY_PROTOCOLS_DIR``, else this checkout's ``protocols/``, else the installed package's copy."""
    return protocols_root()


class Templates:
    """The files of one template folder, read once; ``hash`` covers every file's name and bytes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.folder = protocols_dir() / name
        if not self.folder.is_dir():
            raise StabilityError(f"{self.folder}: prompt templates for protocol {name!r} not found "
                                 f"(set {PROTOCOLS_DIR_ENV} to the folder that holds protocols/)")
        files = sorted(p for p in self.folder.rglob("*")
                       if p.is_file() and "specs" not in p.relative_to(self.folder).parts)
        digest = hashlib.sha256()
        self.text: dict[str, str] = {}
        for path in files:
            relative = path.relative_to(self.folder).as_posix()
            data = path.read_bytes()
            digest.update(relative.encode() + b"\0" + data + b"\0")
            self.text[relative] = data.decode("utf-8")
        self.hash = "sha256:" + digest.hexdigest()

    def __getitem__(self, name: str) -> str:
        if name not in self.text:
            raise StabilityError(f"{self.folder / name}: template missing")
        return self.text[name]

    def yaml(self, name: str) -> Any:
        """A YAML template's data (a malformed one is a ``path:line`` error, like every YAML file)."""
        return parse_yaml(self[name], str(self.folder / name))


class TemplateSet:
    """Every template folder one run uses, each read once; ``hash`` is what the run records.

    One folder's set hashes exactly as that folder (so runs of single-folder protocols keep their hashes); several
    folders hash as the sha256 of their hashes joined by newlines, in the protocol's order.
    """

    def __init__(self, names: list[str]) -> None:
        self.folders = {name: Templates(name) for name in names}
        hashes = [t.hash for t in self.folders.values()]
        self.hash = hashes[0] if len(hashes) == 1 else \
            "sha256:" + hashlib.sha256("\n".join(hashes).encode()).hexdigest()

    def __getitem__(self, name: str) -> Templates:
        if name not in self.folders:
            raise StabilityError(f"template folder {name!r} was not declared by the protocol "
                                 f"(declared: {', '.join(self.folders)})")
        return self.folders[name]
