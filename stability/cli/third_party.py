"""Other packages' output kept off the terminal: one place, around every command.

During a command, what a package other than ours writes on standard output or standard error (transformers'
"Loading weights" bars, a ``FutureWarning`` or a peft ``UserWarning`` with its source line, tqdm bars, another
library's log lines) goes to a log file beside the store (``DB.log``, appended to, one header line per command)
instead, and the command ends with one line naming that file when anything went there. With ``--verbose`` (in
any position) or ``STABILITY_VERBOSE=1`` it reaches the terminal as it would without us.

How a write is told apart: :class:`Router` replaces ``sys.stdout`` and ``sys.stderr`` for the command and looks
at the module whose code called ``write``. Our own output is written by our modules, by rich (tables, our
progress bars) or by click/typer (usage errors, help); everything else (``warnings``, ``logging``'s handlers,
tqdm, a package's own ``print``) is another package's. A stream a package captured before the command began, and
text written straight to a file descriptor by C code, are beyond it.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

VERBOSE_FLAG = "--verbose"
VERBOSE_ENV = "STABILITY_VERBOSE"
#: modules whose writes are ours: the package, the terminal library it prints with, the CLI framework
OURS = ("stability", "rich", "typer", "click")
#: modules a write passes through on its way (text encoders, this module): the writer is the frame above them
_PASSING = ("stability.cli.third_party", "codecs", "encodings")


def verbose_requested(args: list[str]) -> tuple[bool, list[str]]:
    """Whether ``--verbose`` (before any ``--``) or ``STABILITY_VERBOSE=1`` asks for other packages' output on the
    terminal, and ``args`` without the flag."""
    end = args.index("--") if "--" in args else len(args)
    flagged = VERBOSE_FLAG in args[:end]
    kept = [a for i, a in enumerate(args) if not (i < end and a == VERBOSE_FLAG)]
    return flagged or os.environ.get(VERBOSE_ENV, "") not in ("", "0"), kept


def log_path(args: list[str]) -> Path:
    """The log file beside the command's store: ``--db PATH`` (or ``--db=PATH``), else ``STABILITY_DB``, else the
    default store, with ``.log`` appended."""
    db: str | None = None
    for i, arg in enumerate(args):
        if arg == "--db" and i + 1 < len(args):
            db = args[i + 1]
        elif arg.startswith("--db="):
            db = arg.removeprefix("--db=")
    if db is None:
        from stability.store.store import default_db_path  # only once another package has written something

        db = str(default_db_path())
    return Path(db + ".log")


def _writer_module() -> str:
    """The module of the code that called ``write`` (frames of encoders and this module skipped)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if not name.startswith(_PASSING):
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return ""


def is_ours(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in OURS)


class Log:
    """The log file, opened at the first write that goes there (a command that hears nothing leaves no file)."""

    def __init__(self, command: list[str]) -> None:
        self._path: Path | None = None  # resolved at the first write: a quiet command never imports the store
        self.command = command
        self.written = False
        self._file: TextIO | None = None

    @property
    def path(self) -> Path:
        """The log file (once something was written to it)."""
        return self._path if self._path is not None else log_path(self.command)

    def write(self, text: str) -> None:
        from stability.redaction import redact

        if self._file is None:
            self._path = log_path(self.command)
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self._path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
            except OSError:
                import tempfile

                handle, name = tempfile.mkstemp(prefix="stability-", suffix=".log")
                self._path = Path(name)
                self._file = os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace")
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            self._file.write(f"\n== {stamp} stability {redact(' '.join(self.command))}\n")
        self._file.write(redact(text).replace("\r", "\n"))
        self._file.flush()
        self.written = True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Router:
    """A standard stream that passes our writes on to ``stream`` and sends other packages' writes to ``log``."""

    def __init__(self, stream: Any, log: Log) -> None:
        self._stream = stream
        self._log = log

    def write(self, text: str) -> int:
        if is_ours(_writer_module()):
            return int(self._stream.write(text))
        self._log.write(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def contained(args: list[str]) -> Iterator[list[str]]:
    """Run a command inside this: other packages' output goes to the log file (see the module's contract). Yields
    the arguments for the command (``--verbose`` removed)."""
    verbose, kept = verbose_requested(args)
    if verbose:
        yield kept
        return
    log = Log(kept)
    saved_out, saved_err, saved_show = sys.stdout, sys.stderr, warnings.showwarning
    sys.stdout, sys.stderr = Router(saved_out, log), Router(saved_err, log)

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        log.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show  # a warning names its category and source line wherever it came from
    try:
        yield kept
    finally:
        sys.stdout, sys.stderr, warnings.showwarning = saved_out, saved_err, saved_show
        log.close()
        if log.written:
            with suppress(OSError):
                sys.stderr.write(f"other packages' warnings and progress: {log.path} (--verbose shows them here)\n")
