"""Where the data files are: prompt templates and ready specs (``protocols/``), and the constitution library
(``constitutions/``).

The folders at the top of a checkout are the source of truth. A built wheel carries copies of them as package data
under ``stability/_data/`` (``setup.py`` maps them there), found through :mod:`importlib.resources`. Each root is
looked up in this order:

1. a researcher's own folder, named by a variable: ``STABILITY_PROTOCOLS_DIR`` (a folder holding one folder of
   templates per protocol, and ``specs/``) or ``STABILITY_LIBRARY_DIR`` (a library like ``constitutions/``);
   ``stability constitutions --library DIR`` is the option for the library;
2. the checkout this package sits in (a source tree, or an editable install), recognised by its
   ``pyproject.toml``;
3. the installed package's copy.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

PROTOCOLS_DIR_ENV = "STABILITY_PROTOCOLS_DIR"
LIBRARY_DIR_ENV = "STABILITY_LIBRARY_DIR"
#: the folder of the package that holds the data in a built wheel
PACKAGE_DATA = "_data"
#: the library folder's name, as specs and the README spell paths into it (``constitutions/consistent/...``)
LIBRARY_FOLDER = "constitutions"


def checkout_root() -> Path | None:
    """The source checkout this package is imported from, or None for an installed package."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "stability").is_dir() else None


def packaged(folder: str) -> Path:
    """The installed package's copy of a top-level folder (``protocols`` or ``constitutions``)."""
    return Path(str(importlib.resources.files("stability") / PACKAGE_DATA / folder))


def _root(folder: str, env: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env])
    checkout = checkout_root()
    if checkout is not None and (checkout / folder).is_dir():
        return checkout / folder
    return packaged(folder)


def protocols_root() -> Path:
    """The folder of prompt templates (one folder per protocol) and ready experiment specs (``specs/``)."""
    return _root("protocols", PROTOCOLS_DIR_ENV)


def library_root() -> Path:
    """The constitution library."""
    return _root(LIBRARY_FOLDER, LIBRARY_DIR_ENV)


def ready_spec(name: str) -> Path | None:
    """A ready experiment spec by name (``consistent-vs-contradictory``), when no file of that name exists."""
    if Path(name).exists() or "/" in name or os.sep in name:
        return None
    path = protocols_root() / "specs" / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return path if path.is_file() else None


def in_library(pattern: str) -> str | None:
    """A path or glob written from the top of a checkout (``constitutions/consistent/*.md``), in the library."""
    parts = Path(pattern).parts
    if Path(pattern).is_absolute() or len(parts) < 2 or parts[0] != LIBRARY_FOLDER:
        return None
    return str(library_root().joinpath(*parts[1:]))
