"""stability: reflective-stability experiments on language models.

``stability.load(db)`` opens a store's results for analysis (runs, revisions, calls as DataFrames);
``stability.open`` is the same function under its older name, kept for existing notebooks (it shadows the builtin
``open`` after ``from stability import *``, so prefer ``load``).
"""

from stability.analysis.dataset import open_dataset as load
from stability.answer import Reading, read_answer
from stability.constitution import Constitution, parse_file, parse_text
from stability.engine import IterateConfig, iterate, resume
from stability.errors import InputError, StabilityError
from stability.store import Store

open = load  # noqa: A001  (the older name; see the module docstring)

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
