"""Errors a user can cause and fix. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations


class StabilityError(Exception):
    """An expected failure: bad input, a missing optional package, a locked database.

    ``str(err)`` is a single line meant for the user; no traceback is shown for it.
    """

    exit_code = 2


class InputError(StabilityError):
    """A file the user handed us is malformed. The message names the file, the line and the problem."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")


class NetworkRefused(StabilityError):
    """A network provider was asked to run under pytest without the test opting in."""


class ModelNotFound(StabilityError):
    """An unknown model name; the message carries a "did you mean" suggestion."""


class MissingDependency(StabilityError):
    """An optional package a provider needs is not installed; the message says how to install it."""
