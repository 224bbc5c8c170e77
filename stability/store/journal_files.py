"""Where a store's write journals lie (``DB.journal.<token>`` beside the resolved database file): a module of its
own so that a read-only open can see that there are none without importing the journal's reader."""

from __future__ import annotations

import glob
import os


def resolved(db: str) -> str:
    """The database file the journals and locks are named after: ``db`` with every symbolic link resolved."""
    return os.path.realpath(db)


def paths(db: str) -> list[str]:
    """Every file or folder beside the resolved ``db`` named like one of its journals (``DB.journal.*``)."""
    return sorted(glob.glob(glob.escape(resolved(db)) + ".journal.*"))
