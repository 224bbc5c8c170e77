"""The run engine: it prepares a run, owns every side effect of it, and hands protocols a typed run object.

Layers: cli -> experiment -> engine -> protocols; engine -> call path -> models; engine -> store
(see docs/architecture.md).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stability.engine.batcher import Batcher, BatchEvent
    from stability.engine.execute import RunOutcome, RunResult, create_run, execute, iterate, resume
    from stability.engine.prepare import (
        IterateConfig,
        ModelPool,
        Prepared,
        ReadOnce,
        load_run_spec,
        prepare,
        prepare_resume,
        validate,
    )
    from stability.engine.run import Run, StepEvent, derive_seed

# Imported on first use (PEP 562): a protocol importing ``stability.engine.run`` loads run.py alone, not the
# executor (which imports the protocols back).
_HOMES = {
    "stability.engine.batcher": ("Batcher", "BatchEvent"),
    "stability.engine.execute": ("RunOutcome", "RunResult", "create_run", "execute", "iterate", "resume"),
    "stability.engine.prepare": ("IterateConfig", "ModelPool", "Prepared", "ReadOnce", "load_run_spec", "prepare",
                                 "prepare_resume", "validate"),
    "stability.engine.run": ("Run", "StepEvent", "derive_seed"),
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "BatchEvent",
    "Batcher",
    "IterateConfig",
    "ModelPool",
    "Prepared",
    "ReadOnce",
    "Run",
    "RunOutcome",
    "RunResult",
    "StepEvent",
    "create_run",
    "derive_seed",
    "execute",
    "iterate",
    "load_run_spec",
    "prepare",
    "prepare_resume",
    "resume",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stability.engine' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
