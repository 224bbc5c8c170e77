"""Files a command writes for the user (``report -o``, ``graph -o``, ``export -o``): whole, or not at all.

The text goes into a temporary file beside the target and is renamed over it once complete, so a full disk or a
kill never leaves a truncated report, and an earlier file at the path stays as it was. A path that is a link is
written where it points; a device or FIFO (``/dev/stdout``) is written directly, never replaced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from stability.errors import StabilityError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_whole(path: Path, text: str, what: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all; a failure is one line naming ``path`` and ``what``."""
    target = Path(os.path.realpath(path))
    partial: str | None = None
    try:
        if target.exists() and not stat.S_ISREG(target.stat().st_mode):
            target.write_text(text, encoding="utf-8")
            return
        descriptor, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(partial, 0o666 & ~_umask())
        os.replace(partial, target)
        partial = None
    except OSError as err:
        raise StabilityError(f"{path}: cannot write {what} ({err.strerror or err})") from None
    finally:
        if partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(partial)


@contextlib.contextmanager
def folder_whole(target: Path) -> Iterator[Path]:
    """A folder written whole or not at all: the caller fills the staging folder this yields (beside ``target``),
    which then replaces ``target`` (absent or empty); anything raised removes it and leaves ``target`` as it was.
    The folder gets the permissions the umask gives a new folder (a temporary folder's are the owner's alone)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent if target.parent.exists() else None))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
