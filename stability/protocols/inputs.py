"""Input files a protocol's options name: declared by the protocol, read and hashed by the engine.

Contract: a protocol never opens a file. :meth:`~stability.protocols.base.ReflectionProtocol.input_files` says
which options name files and how each is read (an :data:`InputKind`); the engine
(:mod:`stability.engine.inputs`) reads each one at prepare, records the sha256 of every file's bytes with the
run, and hands the parsed contents back as an :class:`Inputs`, which the protocol reads by option name.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from stability.alternatives import AlternativePool
from stability.constitution import Constitution
from stability.errors import StabilityError

#: how the engine reads an input file:
#: ``yaml`` (its data), ``constitution`` (a Markdown constitution), ``constitution-or-name`` (a constitution file
#: when the value names one, else nothing: the protocol resolves the name itself), ``constitutions`` (a folder of
#: Markdown constitutions, README.md aside, or a YAML list of their paths relative to the list), ``alternatives-pool``
#: (a library pool ``NAME.alternatives.yaml``, checked against ``NAME.md`` beside it)
InputKind = Literal["yaml", "constitution", "constitution-or-name", "constitutions", "alternatives-pool"]

T = TypeVar("T")


class Inputs:
    """The parsed contents of a run's declared input files, by option name (absent: not a file)."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self._values = dict(values or {})

    def __contains__(self, option: str) -> bool:
        return option in self._values

    def _get(self, option: str, kind: type[T] | tuple[type, ...]) -> Any:
        if option not in self._values:
            raise StabilityError(f"option {option!r} was not read as an input file (declare it in input_files)")
        value = self._values[option]
        if not isinstance(value, kind):
            raise StabilityError(f"option {option!r} was read as {type(value).__name__}, not {kind}")
        return value

    def data(self, option: str) -> Any:
        """A ``yaml`` input's data."""
        if option not in self._values:
            raise StabilityError(f"option {option!r} was not read as an input file (declare it in input_files)")
        return self._values[option]

    def constitution(self, option: str) -> Constitution | None:
        """A ``constitution`` (or ``constitution-or-name``) input; None when the value named no file."""
        if option in self._values and self._values[option] is None:
            return None
        value: Constitution = self._get(option, Constitution)
        return value

    def constitutions(self, option: str) -> list[Constitution]:
        """A ``constitutions`` input, in file order."""
        value: list[Constitution] = self._get(option, list)
        return value

    def pool(self, option: str) -> AlternativePool:
        """An ``alternatives-pool`` input."""
        value: AlternativePool = self._get(option, AlternativePool)
        return value
