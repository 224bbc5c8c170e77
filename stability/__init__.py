"""stability: reflective-stability experiments on language models."""

from stability.analysis.dataset import open_dataset as open
from stability.answer import Reading, read_answer
from stability.constitution import Constitution, parse_file, parse_text
from stability.errors import InputError, StabilityError
from stability.iteration import IterateConfig, iterate, resume
from stability.store import Store

__all__ = [
    "Constitution",
    "InputError",
    "IterateConfig",
    "Reading",
    "StabilityError",
    "Store",
    "iterate",
    "open",
    "parse_file",
    "parse_text",
    "read_answer",
    "resume",
]
