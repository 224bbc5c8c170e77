"""stability: reflective-stability experiments on language models.

``stability.load(db)`` opens a store's results for analysis (runs, revisions, calls as DataFrames);
``stability.open`` is the same function under its older name, kept for existing notebooks (it shadows the builtin
``open`` after ``from stability import *``, so prefer ``load``).

The names below are imported on first use (PEP 562), so ``import stability.cli.app`` or ``import stability.store``
does not pull in the analysis stack (SciPy, pandas) or the engine.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stability.analysis.dataset import open_dataset as load
    from stability.answer import Reading, read_answer
    from stability.constitution import Constitution, parse_file, parse_text
    from stability.engine import IterateConfig, iterate, resume
    from stability.errors import InputError, StabilityError
    from stability.store import Store

    open = load  # noqa: A001

# public name -> (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "load": ("stability.analysis.dataset", "open_dataset"),
    "open": ("stability.analysis.dataset", "open_dataset"),  # the older name; see the module docstring
    "Reading": ("stability.answer", "Reading"),
    "read_answer": ("stability.answer", "read_answer"),
    "Constitution": ("stability.constitution", "Constitution"),
    "parse_file": ("stability.constitution", "parse_file"),
    "parse_text": ("stability.constitution", "parse_text"),
    "IterateConfig": ("stability.engine", "IterateConfig"),
    "iterate": ("stability.engine", "iterate"),
    "resume": ("stability.engine", "resume"),
    "InputError": ("stability.errors", "InputError"),
    "StabilityError": ("stability.errors", "StabilityError"),
    "Store": ("stability.store", "Store"),
}

__all__ = [
    "Constitution",
    "InputError",
    "IterateConfig",
    "Reading",
    "StabilityError",
    "Store",
    "iterate",
    "load",
    "parse_file",
    "parse_text",
    "read_answer",
    "resume",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'stability' has no attribute {name!r}")
    value = getattr(import_module(target[0]), target[1])
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
