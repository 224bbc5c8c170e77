"""The CLI's one error boundary: a failure the user can fix is one line, never a traceback.

:func:`run` runs the typer app and is the only place that turns exceptions into what the user sees:

- A **known failure** (:func:`known_failure`) is one line on stderr, ``error: <what went wrong>``, and exit status 2
  (an interrupt: 130). With ``--json``, stdout also gets one JSON object, ``{"error": ..., "file": ..., "exit": 2}``,
  so a script that parses stdout is never handed nothing.
- Known are: :class:`~stability.errors.StabilityError` (bad input, refused stores, ...); a damaged database file
  or a full disk met inside DuckDB; an environment failure of the operating system (:data:`ENVIRONMENT`: disk full,
  permission denied, a symlink loop, a read-only file system, ...); standard output that cannot be written
  (closed, ``/dev/full``); a bad flag or argument (click's usage errors).
- Anything else is a bug: its traceback is shown (and with ``--json`` an ``internal error`` object is printed
  first), the exit status is 1.

Before the app runs, the streams are made safe: text that the terminal's encoding cannot show is written as
backslash escapes (``PYTHONIOENCODING=ascii``), a closed stdin or stderr is replaced by ``/dev/null`` (so no file
the command opens can land on descriptor 0 or 2), and a closed stdout or a deleted working folder is refused in
one line before anything is read or written. Other packages' warnings and progress bars go to a log file beside
the store, not the terminal (:mod:`stability.cli.third_party`; ``--verbose`` shows them).
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from stability.cli import third_party
from stability.cli.display import printable
from stability.errors import StabilityError

#: operating-system failures that come from the environment, not from a bug: errno -> what the user reads
ENVIRONMENT: dict[int, str] = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system or limit",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "is a folder",
    errno.ELOOP: "too many levels of symbolic links (a symlink loop?)",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system",
    errno.EIO: "input/output error",
    errno.EEXIST: "already exists",
    errno.ENOTEMPTY: "folder not empty",
    errno.EXDEV: "cannot move across file systems",
    errno.ETXTBSY: "file busy",
    errno.ENXIO: "no such device",
    errno.ENODEV: "no such device",
}
def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """A click exception class as typer raises it: typer's own copy of click (newer typer vendors it as
    ``typer._click``, with ``Abort`` in ``typer.exceptions``) and click's, where installed."""
    import importlib

    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


ABORT = _click_classes("Abort")
USAGE = _click_classes("UsageError")
HELP = _click_classes("NoArgsIsHelpError")
CLICK = _click_classes("ClickException")
INTERRUPTED = 130
BROKEN_PIPE = 128 + 13


class OutputFailed(StabilityError):
    """Standard output could not be written: closed, ``/dev/full``, a full disk behind a redirection."""

    def __init__(self, err: OSError) -> None:
        super().__init__(f"cannot write to standard output ({err.strerror or err})")
        self.errno = err.errno
        if err.errno == errno.EPIPE:  # the reader went away (``| head``): quiet, as if killed by SIGPIPE
            self.exit_code = BROKEN_PIPE


@dataclass(frozen=True)
class Failure:
    """What the user is told about a known failure: one line, the file it concerns (when known), the exit status."""

    message: str
    file: str | None = None
    exit: int = 2

    def as_json(self) -> dict[str, Any]:
        return {"error": self.message, "file": self.file, "exit": self.exit}


def _one_line(text: str) -> str:
    from stability.redaction import redact

    return printable(redact(" ".join(text.split())))


def _os_failure(err: OSError) -> Failure | None:
    if err.errno not in ENVIRONMENT:
        return None
    what = ENVIRONMENT[err.errno]
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    where = " -> ".join(names)
    return Failure(_one_line(f"{where}: {what}" if where else what), names[0] if names else None)


def _duckdb_failure(err: BaseException) -> Failure | None:
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency
        return None
    text = " ".join(str(err).split())
    if isinstance(err, duckdb.TransactionException):  # a commit that failed to write its WAL: only the
        environment = ("No space left", "disk is full", "Permission denied", "Read-only file system")
        if not any(cause in text for cause in environment):  # environment's causes are known; others are bugs
            return None
    elif not isinstance(err, duckdb.IOException | duckdb.SerializationException | duckdb.OutOfMemoryException):
        return None
    if "No space left" in text or "disk is full" in text.lower():
        return Failure(_one_line(f"no space left on the device (disk full): {text}"))
    if "Permission denied" in text or "Read-only file system" in text:
        return Failure(_one_line(f"cannot write the database: {text}"))
    if isinstance(err, duckdb.OutOfMemoryException):
        return Failure(_one_line(f"out of memory: {text}"))
    return Failure(_one_line(f"cannot read the database, is the file damaged or truncated? ({text})"))


_NAMED_FILE = re.compile(r"^((?:[^\s:]*/)?[^\s:/]+\.(?:md|ya?ml|json|jsonl|duckdb|parquet|html|graphml|txt)"
                         r"|[^\s:]*/[^\s:]+)(?::\d+)?: ")


def _file_of(err: StabilityError) -> str | None:
    """The file an error is about: its ``path``, else the ``FILE: problem`` or ``FILE:LINE: problem`` it starts with."""
    path = getattr(err, "path", None)
    if path is not None:
        return str(path)
    named = _NAMED_FILE.match(str(err))
    return named.group(1) if named else None


def known_failure(err: BaseException) -> Failure | None:
    """The one line for a failure the user can cause and fix; ``None`` for a bug (its traceback is shown)."""
    if isinstance(err, StabilityError):
        return Failure(_one_line(str(err)), _file_of(err), err.exit_code)
    if isinstance(err, (*ABORT, KeyboardInterrupt)):
        return Failure("interrupted", None, INTERRUPTED)
    if isinstance(err, USAGE):
        ctx = getattr(err, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        return Failure(_one_line(err.format_message()) + hint, None, 2)  # type: ignore[attr-defined]
    if isinstance(err, CLICK):
        return Failure(_one_line(err.format_message()), None, 2)  # type: ignore[attr-defined]
    if isinstance(err, OSError):
        return _os_failure(err)
    if isinstance(err, RuntimeError) and str(err).startswith("Symlink loop from "):  # pathlib's resolve()
        name = str(err).removeprefix("Symlink loop from ").strip("'\"")
        return Failure(_one_line(f"{name}: {ENVIRONMENT[errno.ELOOP]}"), name)
    if _is_validation_error(err):
        return Failure(_validation_line(err))
    return _duckdb_failure(err)


def _is_validation_error(err: BaseException) -> bool:
    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return False
    return isinstance(err, ValidationError)


def _validation_line(err: Any) -> str:
    """A value the user gave that a typed config refuses, e.g. ``invalid templates '../x': String should match
    pattern ...``, every refused field on the one line."""
    problems = []
    for item in err.errors(include_url=False):
        where = ".".join(str(part) for part in item.get("loc", ())) or err.title
        given = f" {item['input']!r}" if "input" in item and not isinstance(item["input"], dict | list) else ""
        problems.append(f"{where}{given}: {item.get('msg', 'invalid')}")
    return _one_line(f"invalid {err.title} " + "; ".join(problems))


class GuardedOutput:
    """Standard output whose write failures are :class:`OutputFailed` (one line), not a traceback at exit."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as err:
            raise OutputFailed(err) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as err:
            raise OutputFailed(err) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _hold_with_devnull(fd: int) -> None:
    """Put ``/dev/null`` on a closed standard descriptor, so no file the command opens is given that number."""
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def _forgiving(stream: TextIO | None) -> None:
    """Characters the stream's encoding cannot write become backslash escapes instead of an exception."""
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        stream.reconfigure(errors="backslashreplace")


@contextmanager
def _safe_streams() -> Iterator[Failure | None]:
    """Streams made safe for the command; yields a failure to report before running anything, or ``None``."""
    saved = sys.stdin, sys.stdout, sys.stderr
    problem: Failure | None = None
    real = sys.stdout is None or sys.stdout is sys.__stdout__
    if real:
        for fd, name in ((0, "stdin"), (2, "stderr")):
            if not _fd_open(fd):
                _hold_with_devnull(fd)
                setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115
        if not _fd_open(1):
            _hold_with_devnull(1)
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            problem = Failure("standard output is closed; redirect it instead (for example >/dev/null)")
        _forgiving(sys.stdout)
        _forgiving(sys.stderr)
    try:
        os.getcwd()
    except FileNotFoundError:
        problem = problem or Failure("the working folder no longer exists (deleted?); cd to a folder that does")
    sys.stdout = GuardedOutput(sys.stdout)
    try:
        yield problem
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


def _undecodable(args: list[str]) -> Failure | None:
    """An argument that is not UTF-8 (bytes the shell passed as they were) is refused before it reaches a query."""
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            return Failure(_one_line(f"argument '{shown}' is not valid UTF-8 text"))
    return None


def _wants_json(args: list[str]) -> bool:
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def _report(failure: Failure, as_json: bool) -> None:
    if failure.exit == BROKEN_PIPE:
        return
    if as_json:
        try:
            sys.stdout.write(json.dumps(failure.as_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        except (OSError, OutputFailed):
            pass  # stdout is what failed: the line on stderr says so
    try:
        sys.stderr.write(f"error: {failure.message}\n" if failure.exit != INTERRUPTED else "interrupted\n")
        sys.stderr.flush()
    except OSError:
        pass


def _quiet_stdout() -> None:
    """After stdout failed, point descriptor 1 at ``/dev/null`` so the interpreter's final flush cannot fail too."""
    try:
        sys.stdout.flush()
    except (OSError, OutputFailed):
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
        except OSError:
            pass


def run(app: Callable[..., Any], args: list[str]) -> int:
    """Run the CLI ``app`` on ``args``; the exit status. Known failures are reported here and nowhere else."""
    as_json = _wants_json(args)
    with _safe_streams() as problem, third_party.contained(args) as args:
        try:
            problem = problem or _undecodable(args)
            if problem is not None:
                _report(problem, as_json)
                return problem.exit
            result = app(args=args, prog_name="stability", standalone_mode=False)
            sys.stdout.flush()
            if result == INTERRUPTED:  # typer turns Ctrl-C into this exit status
                _report(Failure("interrupted", None, INTERRUPTED), as_json)
            return result if isinstance(result, int) else 0
        except HELP as err:  # ``stability`` alone, or a group without its command: the help, as click shows it
            err.show()  # type: ignore[attr-defined]
            return int(err.exit_code)  # type: ignore[attr-defined]
        except BaseException as err:  # noqa: BLE001 - the one boundary: known failures become one line
            failure = known_failure(err)
            if failure is None:
                if as_json and not isinstance(err, SystemExit):
                    _report_bug(err)
                raise
            _report(failure, as_json and not isinstance(err, OutputFailed))
            return failure.exit
        finally:
            _quiet_stdout()


def _report_bug(err: BaseException) -> None:
    message = _one_line(f"internal error (a bug, please report it): {type(err).__name__}: {err}")
    try:
        sys.stdout.write(json.dumps(Failure(message, None, 1).as_json(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except (OSError, OutputFailed):
        pass
