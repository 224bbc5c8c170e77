"""The run engine: it prepares a run, owns every side effect of it, and hands protocols a typed run object.

Layers: cli -> experiment -> engine -> protocols; engine -> call path -> models; engine -> store
(see docs/architecture.md).
"""

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
