"""A provider's SDK imported on a thread of its own while a command gets ready (issue 30, start-up).

``import openai`` is most of ``iterate``'s time to its first request (0.7-1.0 s of CPU on a quiet machine: its
package ``__init__`` builds every response type). The command starts it here, on a daemon thread, as soon as it
knows the model, and goes on parsing the spec, importing the engine and creating the store meanwhile (DuckDB's
work there runs without the GIL); the provider's first ``import openai`` then finds the module loaded, or waits
for the thread to finish it (Python's import lock).

Two threads importing the same module at once can deadlock on a circular import. The modules both paths import
(``asyncio``, ``concurrent.futures``, ``ssl``, ``email.parser``: measured on the ``iterate`` path) are imported by
the caller's thread first (:data:`SHARED`), so the SDK's thread imports only modules the command's thread does
not import until it needs the SDK. A failed import on the thread is ignored: the provider imports the SDK again
when it makes its client, and reports a missing one as before.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

#: the SDK module each built-in SDK provider sends through (``Provider.requires`` of :mod:`.registry`, first entry)
SDKS = {"openai": "openai", "anthropic": "anthropic"}
#: the variables one of which the provider needs (``Provider.keys``): without them the command stops at once with
#: "set OPENAI_API_KEY", and an import on a thread would only have slowed that answer down
KEYS = {"openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"), "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
#: modules both the SDKs and the engine import: imported by the caller's thread before the SDK's thread starts
SHARED = ("asyncio", "concurrent.futures", "ssl", "email.parser")

_started: dict[str, threading.Thread] = {}


def preload(model_name: str | None) -> threading.Thread | None:
    """Start importing the SDK of ``model_name``'s provider (``openai/NAME``...) on a daemon thread; the thread,
    or None when the provider has no SDK to import, none of its key variables is set, or its SDK is imported (or
    being imported) already."""
    prefix = (model_name or "").partition("/")[0]
    sdk = SDKS.get(prefix)
    if sdk is None or sdk in _started or sdk in sys.modules or not any(os.environ.get(k) for k in KEYS[prefix]):
        return None
    for name in SHARED:
        importlib.import_module(name)
    thread = threading.Thread(target=_import, args=(sdk,), name=f"preload-{sdk}", daemon=True)
    _started[sdk] = thread
    thread.start()
    return thread


def _import(name: str) -> None:
    try:
        importlib.import_module(name)
    except BaseException:  # noqa: BLE001 - not installed, or broken: the provider reports it when it needs the SDK
        return
