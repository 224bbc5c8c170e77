"""Prompt templates: the files of ``protocols/<folder>/``, read once per run by the engine.

Contract: a :class:`Templates` holds the exact bytes read from disk (decoded as UTF-8) and ``hash`` covers every
file's name and bytes, so the template hash recorded on a run is computed from the very text the protocol is
handed. Nothing else in the package reads template files. Ready specs (``specs/``) are data about runs, not
prompts, and are excluded.

A *variant* (``neutral``, ``third-person``, ...) is a sub-folder ``variants/<name>/`` of a template folder whose
files replace the default files of the same name (a variant may override some files or all). The default variant
reads no ``variants/`` file, so default runs hash as they did before variants existed; a variant's hash covers its
name and the merged files, so it always differs from the default's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from stability.errors import StabilityError
from stability.input_files import parse_yaml
from stability.resources import PROTOCOLS_DIR_ENV, protocols_root
from stability.vocabulary.settings import default_of

#: the variant every folder has: its own files (the ``templates`` setting's default)
DEFAULT_VARIANT: str = default_of("templates")
#: sub-folders of a template folder that hold no default template
_NOT_TEMPLATES = ("specs", "variants")


def protocols_dir() -> Path:
    """``STABILITY_PROTOCOLS_DIR``, else this checkout's ``protocols/``, else the installed package's copy."""
    return protocols_root()


def variants(folder: Path) -> list[str]:
    """The variants a template folder offers: ``default`` and each sub-folder of its ``variants/``."""
    extra = folder / "variants"
    return [DEFAULT_VARIANT, *sorted(p.name for p in extra.iterdir() if p.is_dir())] if extra.is_dir() \
        else [DEFAULT_VARIANT]


class Templates:
    """The files of one template folder (in one variant), read once; ``hash`` covers every file's name and bytes."""

    def __init__(self, name: str, variant: str = DEFAULT_VARIANT) -> None:
        self.name = name
        self.variant = variant
        self.folder = protocols_dir() / name
        if not self.folder.is_dir():
            raise StabilityError(f"{self.folder}: prompt templates for protocol {name!r} not found "
                                 f"(set {PROTOCOLS_DIR_ENV} to the folder that holds protocols/)")
        files = {p.relative_to(self.folder).as_posix(): p for p in self.folder.rglob("*")
                 if p.is_file() and not set(_NOT_TEMPLATES) & set(p.relative_to(self.folder).parts)}
        digest = hashlib.sha256()
        if variant != DEFAULT_VARIANT:
            overrides = self.folder / "variants" / variant
            if not overrides.is_dir():
                raise StabilityError(f"{self.folder}: no template variant {variant!r} "
                                     f"(variants: {', '.join(variants(self.folder))})")
            files |= {p.relative_to(overrides).as_posix(): p for p in overrides.rglob("*") if p.is_file()}
            digest.update(b"variant\0" + variant.encode() + b"\0")
        self.text: dict[str, str] = {}
        for relative in sorted(files):
            data = files[relative].read_bytes()
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

    ``variant`` must exist in the first folder (the protocol's own); another declared folder (e.g. ``blank-slate``
    for authoring from a blank slate) is read in that variant when it has it, else in its default.
    """

    def __init__(self, names: list[str], variant: str = DEFAULT_VARIANT) -> None:
        self.variant = variant
        self.folders = {name: Templates(name, variant if i == 0 or variant in variants(protocols_dir() / name)
                                        else DEFAULT_VARIANT)
                        for i, name in enumerate(names)}
        hashes = [t.hash for t in self.folders.values()]
        self.hash = hashes[0] if len(hashes) == 1 else \
            "sha256:" + hashlib.sha256("\n".join(hashes).encode()).hexdigest()

    def __getitem__(self, name: str) -> Templates:
        if name not in self.folders:
            raise StabilityError(f"template folder {name!r} was not declared by the protocol "
                                 f"(declared: {', '.join(self.folders)})")
        return self.folders[name]
