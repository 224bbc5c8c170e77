"""The llama-cpp-python runtime the built-in local models share: each GGUF loaded once per process, quietly.

:func:`load` keeps one ``Llama`` per (GGUF path, log-probabilities or not) and hands the same one back; callers
hold :data:`LOCK` around a generation (a ``Llama`` is not thread-safe, and each generation resets it first, so the
same seed and prompt give the same answer whatever was generated before). llama.cpp writes load-time notes
straight to fd 2 even when not verbose; they are kept off the terminal and shown only if loading fails.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from stability.errors import MissingDependency

LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}


def cache_dir() -> Path:
    """Where assembled model files are kept (``STABILITY_CACHE_DIR``, default ``~/.cache/stability``)."""
    return Path(os.environ.get("STABILITY_CACHE_DIR") or Path.home() / ".cache" / "stability")


@atexit.register
def _close_all() -> None:
    """Free the models before interpreter teardown (llama-cpp-python's own __del__ fails at exit)."""
    for llm in _LOADED.values():
        llm.close()
    _LOADED.clear()


def load(path: Path, who: str, install: str, n_ctx: int, logits_all: bool = False) -> Any:
    """The ``Llama`` for ``path`` (loaded now if it is not yet); ``who`` and ``install`` name the model and the
    command that installs what is missing, for the one-line error."""
    key = str(path) + ("#logits" if logits_all else "")
    if key not in _LOADED:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise MissingDependency(f"{who}: llama-cpp-python is missing; {install}") from None
        with tempfile.TemporaryFile() as captured:
            saved = os.dup(2)
            os.dup2(captured.fileno(), 2)
            try:
                _LOADED[key] = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count() or 1,
                                     verbose=False, seed=0, logits_all=logits_all)
            except Exception as err:
                os.dup2(saved, 2)
                captured.seek(0)
                detail = captured.read().decode("utf-8", "replace").strip().splitlines()[-1:]
                raise MissingDependency(f"{who}: cannot load {key}: {err} {' '.join(detail)}") from err
            finally:
                os.dup2(saved, 2)
                os.close(saved)
    return _LOADED[key]
